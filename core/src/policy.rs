//! The policy file: what may be issued, to whom, and where the store lives.

use crate::duration::{Duration, DAY, SECOND};
use crate::hashing::HashCost;
use crate::keys::protocol::UserVerification;
use crate::ssh::SshKeyType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod error;
mod store;
pub use error::{Amount, LifetimeOutOfBounds, NotAnAaguid, PolicyError, SettingError};
pub use store::{Backend, StorePolicy, DEFAULT_STORE};

pub const DEFAULT_PATH: &str = "/etc/security/pam_tap.toml";
pub const DEFAULT_STORE_GROUP: &str = "pam-tap";
pub const DEFAULT_HELPER: &str = "/usr/libexec/pam_tap/pam_tap-keyhelper";

/// A policy file is a few hundred bytes; anything far larger is a mistake or
/// an attack on the login path.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

const MAX_FAILURES: std::ops::RangeInclusive<u32> = 1..=1000;
const LIFETIME_BOUNDS: std::ops::RangeInclusive<Duration> =
    SECOND..=Duration::from_secs(30 * DAY.as_secs());
const MEMORY_KIB: std::ops::RangeInclusive<u32> = 19_456..=4_194_304;
const ITERATIONS: std::ops::RangeInclusive<u32> = 2..=64;
const PARALLELISM: std::ops::RangeInclusive<u32> = 1..=16;
const MAX_KEYS: std::ops::RangeInclusive<usize> = 1..=32;
const TOUCH_TIMEOUT: std::ops::RangeInclusive<Duration> = SECOND..=Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub enabled: bool,
    #[serde(deserialize_with = "store::store_or_path")]
    pub store: StorePolicy,
    /// Ignored. The 0.1 store's group, for the set-group-id tapctl; the
    /// store is now the daemon's alone. Still accepted so that an old
    /// policy keeps loading.
    pub store_group: String,
    pub pass: PassPolicy,
    pub scope: Scope,
    pub admins: Admins,
    pub keys: KeysPolicy,
    pub daemon: DaemonPolicy,
    pub ssh: SshPolicy,
}

/// `[ssh]`: OpenSSH security keys enrolled under a pass and served to sshd
/// by `tapctl authorized-keys`. sshd verifies them itself.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshPolicy {
    /// Off: nothing may be enrolled and `authorized-keys` prints nothing.
    pub enabled: bool,
    /// OpenSSH key type names that may be enrolled. Plain (non-FIDO) types
    /// are refused unless listed here.
    pub key_types: Vec<String>,
    /// Serve every key with `verify-required` (PIN or biometrics on each use).
    pub require_verify: bool,
    /// Enrollment must carry an attestation for a challenge tapd issued.
    pub require_attestation: bool,
    pub max_keys: usize,
    /// The FIDO application (relying party) the keys must be made for.
    pub application: String,
    /// The `AuthorizedKeysCommandUser`: besides root, the one user who may
    /// ask for another user's keys.
    pub command_user: String,
}

pub const DEFAULT_SSH_COMMAND_USER: &str = "pam-tap-ssh";

impl Default for SshPolicy {
    fn default() -> Self {
        SshPolicy {
            enabled: false,
            key_types: SshKeyType::DEFAULT_ALLOWED
                .iter()
                .map(|t| t.name().to_string())
                .collect(),
            require_verify: false,
            require_attestation: false,
            max_keys: 5,
            application: "ssh:".into(),
            command_user: DEFAULT_SSH_COMMAND_USER.into(),
        }
    }
}

impl SshPolicy {
    pub fn allows_type(&self, name: &str) -> bool {
        self.key_types.iter().any(|t| t == name)
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.key_types.is_empty() {
            return Err(SettingError::NoSshKeyTypes);
        }
        for name in &self.key_types {
            if SshKeyType::from_name(name).is_none() {
                return Err(SettingError::UnknownSshKeyType(name.clone()));
            }
        }
        check_range("[ssh] max_keys", self.max_keys, &MAX_KEYS)?;
        let app = &self.application;
        if !app.starts_with("ssh:")
            || app.len() > 255
            || app.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(SettingError::SshApplication(app.clone()));
        }
        let user = &self.command_user;
        if user.is_empty()
            || user == "root"
            || user.len() > 64
            || user
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == ':' || c == '/')
        {
            return Err(SettingError::SshCommandUser(user.clone()));
        }
        Ok(())
    }
}

/// `[daemon]`: the limits `tapd` applies. Root's connections are never
/// capped.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonPolicy {
    /// Argon2id hashes computed at once, each using `[pass.hash]
    /// memory_kib`: bounds the daemon's memory under a flood of sign-ins.
    pub max_concurrent_hashes: usize,
    /// Connections one non-root uid may hold open at once.
    pub max_connections_per_uid: usize,
}

impl Default for DaemonPolicy {
    fn default() -> Self {
        DaemonPolicy {
            max_concurrent_hashes: 4,
            max_connections_per_uid: 8,
        }
    }
}

const CONCURRENT_HASHES: std::ops::RangeInclusive<usize> = 1..=64;
const CONNECTIONS_PER_UID: std::ops::RangeInclusive<usize> = 1..=1024;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassPolicy {
    pub default_lifetime: Duration,
    pub min_lifetime: Duration,
    pub max_lifetime: Duration,
    pub one_time: bool,
    pub require_one_time: bool,
    pub length: usize,
    pub max_failures: u32,
    pub enroll_window: Duration,
    /// The one prompt, for the password or the pass, where a password
    /// module follows (the module's default).
    pub prompt: String,
    /// The prompt of a pass-only service (module argument `pass_only`).
    pub pass_only_prompt: String,
    pub hash: HashCost,
}

/// Longest prompt a policy may set: it is one line at a login prompt.
const PROMPT_CHARS: usize = 80;

/// Security keys: the relying party, what a sign-in demands, the helper.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysPolicy {
    /// One value may be shared by many hosts, so a key enrolled on one
    /// signs in on all. Default `pam://` + this host's name.
    pub rp_id: Option<String>,
    pub user_verification: UserVerification,
    pub max_keys: usize,
    /// Authenticator models (AAGUIDs, UUID form) that may be enrolled; empty = any.
    pub allowed_aaguids: Vec<String>,
    /// How long the helper may wait for a touch before it is killed.
    pub touch_timeout: Duration,
    /// The key helper program (absolute path).
    pub helper: PathBuf,
}

impl Default for KeysPolicy {
    fn default() -> Self {
        KeysPolicy {
            rp_id: None,
            user_verification: UserVerification::Preferred,
            max_keys: 5,
            allowed_aaguids: Vec::new(),
            touch_timeout: Duration::from_secs(30),
            helper: PathBuf::from(DEFAULT_HELPER),
        }
    }
}

impl KeysPolicy {
    /// The relying party id, filled in by `Policy::from_toml`.
    pub fn rp_id(&self) -> &str {
        self.rp_id.as_deref().unwrap_or("pam://localhost")
    }

    /// Whether an authenticator model may be enrolled.
    pub fn allows_aaguid(&self, aaguid: &[u8; 16]) -> bool {
        self.allowed_aaguids.is_empty()
            || self
                .allowed_aaguids
                .iter()
                .any(|a| parse_aaguid(a) == Ok(*aaguid))
    }
}

/// `cb69481e-8ff7-4039-93ec-0a2729a154a8` (dashes optional) → 16 bytes.
pub fn parse_aaguid(text: &str) -> Result<[u8; 16], NotAnAaguid> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let bad = || NotAnAaguid(text.to_string());
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.chunks(2)) {
        let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// `cb69481e-8ff7-4039-93ec-0a2729a154a8`.
pub fn format_aaguid(aaguid: &[u8; 16]) -> String {
    let hex: String = aaguid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn host_name() -> String {
    crate::sys::host_name().unwrap_or_else(|| "localhost".to_string())
}

/// Who may use a pass. Both include lists empty means everyone; exclusions win.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scope {
    pub include_users: Vec<String>,
    pub include_groups: Vec<String>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admins {
    pub groups: Vec<String>,
    /// Members of these groups get a pass from root only.
    pub protected_groups: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            store: StorePolicy::default(),
            store_group: DEFAULT_STORE_GROUP.into(),
            pass: PassPolicy::default(),
            scope: Scope::default(),
            admins: Admins::default(),
            keys: KeysPolicy::default(),
            daemon: DaemonPolicy::default(),
            ssh: SshPolicy::default(),
        }
    }
}

impl Default for PassPolicy {
    fn default() -> Self {
        PassPolicy {
            default_lifetime: Duration::from_secs(3_600),
            min_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(8 * 3_600),
            one_time: false,
            require_one_time: false,
            length: 10,
            max_failures: 5,
            enroll_window: Duration::from_secs(600),
            prompt: "Password or Temporary Access Pass: ".into(),
            pass_only_prompt: "Temporary Access Pass: ".into(),
            hash: HashCost::default(),
        }
    }
}

impl Default for Admins {
    fn default() -> Self {
        Admins {
            groups: vec!["tap-admins".into()],
            protected_groups: vec!["sudo".into(), "wheel".into()],
        }
    }
}

impl Scope {
    /// `groups` is asked only when a group list could change the answer, so
    /// the common policy costs no group lookups on the login path.
    pub fn admits<E>(
        &self,
        user: &str,
        groups: impl FnOnce() -> Result<Vec<String>, E>,
    ) -> Result<bool, E> {
        if self.exclude_users.iter().any(|u| u == user) {
            return Ok(false);
        }
        let included_by_name = self.include_users.iter().any(|u| u == user);
        let everyone = self.include_users.is_empty() && self.include_groups.is_empty();
        if self.exclude_groups.is_empty() && (everyone || included_by_name) {
            return Ok(true);
        }
        if self.exclude_groups.is_empty() && self.include_groups.is_empty() {
            return Ok(false);
        }
        let groups = groups()?;
        let member_of = |list: &[String]| groups.iter().any(|g| list.contains(g));
        if member_of(&self.exclude_groups) {
            return Ok(false);
        }
        Ok(everyone || included_by_name || member_of(&self.include_groups))
    }
}

impl Policy {
    /// Reads, checks and validates a policy file: root's alone, small, valid.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = crate::trust::read_trusted(path, MAX_FILE_BYTES)?;
        Policy::from_toml(&text, path)
    }

    /// Parses and validates policy text. `origin` names the file in messages.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, PolicyError> {
        let mut policy: Policy = toml::from_str(text).map_err(|source| PolicyError::Syntax {
            origin: origin.to_path_buf(),
            source,
        })?;
        policy.validate().map_err(|setting| PolicyError::Invalid {
            origin: origin.to_path_buf(),
            setting,
        })?;
        if policy.keys.rp_id.is_none() {
            policy.keys.rp_id = Some(format!("pam://{}", host_name()));
        }
        Ok(policy)
    }

    fn validate(&self) -> Result<(), SettingError> {
        self.store.validate()?;
        // store_group is not checked: it is ignored (see the field).
        let pass = &self.pass;
        for (name, value) in [
            ("[pass] default_lifetime", pass.default_lifetime),
            ("[pass] min_lifetime", pass.min_lifetime),
            ("[pass] max_lifetime", pass.max_lifetime),
            ("[pass] enroll_window", pass.enroll_window),
        ] {
            check_range(name, value, &LIFETIME_BOUNDS)?;
        }
        if pass.min_lifetime > pass.max_lifetime {
            return Err(SettingError::MinAboveMax {
                min: pass.min_lifetime,
                max: pass.max_lifetime,
            });
        }
        if pass.default_lifetime < pass.min_lifetime || pass.default_lifetime > pass.max_lifetime {
            return Err(SettingError::DefaultOutsideBounds {
                default: pass.default_lifetime,
                min: pass.min_lifetime,
                max: pass.max_lifetime,
            });
        }
        check_range("[pass] length", pass.length, &crate::passcode::LENGTHS)?;
        check_range("[pass] max_failures", pass.max_failures, &MAX_FAILURES)?;
        for (setting, text) in [
            ("[pass] prompt", &pass.prompt),
            ("[pass] pass_only_prompt", &pass.pass_only_prompt),
        ] {
            if text.trim().is_empty()
                || text.chars().count() > PROMPT_CHARS
                || text.chars().any(char::is_control)
            {
                return Err(SettingError::Prompt {
                    setting,
                    text: text.clone(),
                });
            }
        }
        check_range("[pass.hash] memory_kib", pass.hash.memory_kib, &MEMORY_KIB)?;
        check_range("[pass.hash] iterations", pass.hash.iterations, &ITERATIONS)?;
        check_range(
            "[pass.hash] parallelism",
            pass.hash.parallelism,
            &PARALLELISM,
        )?;
        let keys = &self.keys;
        if let Some(rp_id) = &keys.rp_id {
            if rp_id.is_empty() || rp_id.len() > 253 || rp_id.chars().any(char::is_control) {
                return Err(SettingError::RpId(rp_id.clone()));
            }
        }
        check_range("[keys] max_keys", keys.max_keys, &MAX_KEYS)?;
        check_range("[keys] touch_timeout", keys.touch_timeout, &TOUCH_TIMEOUT)?;
        if !keys.helper.is_absolute() {
            return Err(SettingError::NotAbsolute {
                setting: "[keys] helper",
                path: keys.helper.clone(),
            });
        }
        for aaguid in &keys.allowed_aaguids {
            parse_aaguid(aaguid).map_err(SettingError::Aaguid)?;
        }
        check_range(
            "[daemon] max_concurrent_hashes",
            self.daemon.max_concurrent_hashes,
            &CONCURRENT_HASHES,
        )?;
        check_range(
            "[daemon] max_connections_per_uid",
            self.daemon.max_connections_per_uid,
            &CONNECTIONS_PER_UID,
        )?;
        self.ssh.validate()?;
        Ok(())
    }

    /// Whether new passes are one-time, given what the issuer asked for.
    pub fn one_time_for(&self, requested: bool) -> bool {
        requested || self.pass.one_time || self.pass.require_one_time
    }

    /// The lifetime to give a new pass, or why the request is refused.
    pub fn lifetime_for(
        &self,
        requested: Option<Duration>,
    ) -> Result<Duration, LifetimeOutOfBounds> {
        let lifetime = requested.unwrap_or(self.pass.default_lifetime);
        let (min, max) = (self.pass.min_lifetime, self.pass.max_lifetime);
        if lifetime < min || lifetime > max {
            return Err(LifetimeOutOfBounds { lifetime, min, max });
        }
        Ok(lifetime)
    }

    /// The effective policy, every default spelled out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render policy: {e}\n"))
    }
}

fn check_range<T: PartialOrd + Copy + Into<Amount>>(
    setting: &'static str,
    value: T,
    allowed: &std::ops::RangeInclusive<T>,
) -> Result<(), SettingError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(SettingError::OutOfRange {
            setting,
            value: value.into(),
            low: (*allowed.start()).into(),
            high: (*allowed.end()).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the admin reads it.
    fn parse(text: &str) -> Result<Policy, String> {
        Policy::from_toml(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let policy = parse("").unwrap_or_default();
        assert!(policy.enabled);
        assert_eq!(
            policy.store.sqlite_path(),
            Path::new("/var/lib/pam_tap/tap.db")
        );
        assert_eq!(policy.pass.default_lifetime.as_secs(), 3_600);
        assert_eq!(policy.pass.min_lifetime.as_secs(), 600);
        assert_eq!(policy.pass.max_lifetime.as_secs(), 28_800);
        assert_eq!(policy.pass.length, 10);
        assert_eq!(policy.pass.max_failures, 5);
        assert_eq!(policy.admins.protected_groups, vec!["sudo", "wheel"]);
    }

    #[test]
    fn reads_every_documented_key() {
        let policy = parse(
            r#"
            enabled = false
            store = "/tmp/x.db"
            [pass]
            default_lifetime = "2h"
            min_lifetime = "1s"
            max_lifetime = "30d"
            one_time = true
            require_one_time = true
            length = 12
            max_failures = 3
            enroll_window = "5m"
            [scope]
            include_users = ["alice"]
            include_groups = ["staff"]
            exclude_users = ["root"]
            exclude_groups = ["nologin"]
            [admins]
            groups = ["helpdesk"]
            protected_groups = ["wheel"]
            "#,
        );
        let policy = policy.unwrap_or_default();
        assert!(!policy.enabled);
        assert_eq!(policy.pass.min_lifetime.as_secs(), 1);
        assert_eq!(policy.pass.max_lifetime.as_secs(), 30 * 86_400);
        assert!(policy.pass.require_one_time);
        assert_eq!(policy.scope.exclude_groups, vec!["nologin"]);
        assert_eq!(policy.admins.groups, vec!["helpdesk"]);
    }

    #[test]
    fn errors_say_where_what_and_what_is_allowed() {
        let unknown = parse("[pass]\nlifetime = \"1h\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            unknown.contains("test.toml") && unknown.contains("lifetime"),
            "{unknown}"
        );
        assert!(
            unknown.contains("default_lifetime"),
            "should list the known keys: {unknown}"
        );

        let range = parse("[pass]\nmax_lifetime = \"31d\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            range.contains("max_lifetime") && range.contains("1s to 30d"),
            "{range}"
        );

        let order = parse("[pass]\nmin_lifetime = \"2h\"\nmax_lifetime = \"1h\"\n")
            .err()
            .unwrap_or_default();
        assert!(order.contains("min_lifetime"), "{order}");

        let duration = parse("[pass]\nmin_lifetime = \"ten minutes\"\n")
            .err()
            .unwrap_or_default();
        assert!(duration.contains("90s"), "{duration}");

        assert!(parse("store = \"relative.db\"").is_err());
        assert!(parse("[pass]\nlength = 4")
            .err()
            .unwrap_or_default()
            .contains("8 to 48"));
        assert!(parse("[pass.hash]\nmemory_kib = 1024").is_err());
        assert!(parse("[pass]\nprompt = \"\"").is_err());
        assert!(parse("[pass]\nprompt = \"Pass\\nword: \"").is_err());
        assert!(parse(&format!(
            "[pass]\npass_only_prompt = \"{}\"",
            "x".repeat(81)
        ))
        .is_err());
        assert_eq!(
            parse("[pass]\nprompt = \"Kennwort oder Zugangspass: \"")
                .map(|p| p.pass.prompt)
                .unwrap_or_default(),
            "Kennwort oder Zugangspass: "
        );
        assert!(parse("enabled = \"yes\"").is_err());
        assert!(parse("[[[").is_err());
    }

    #[test]
    fn errors_are_typed_by_cause() {
        let origin = Path::new("test.toml");
        assert!(matches!(
            Policy::from_toml("[[[", origin),
            Err(PolicyError::Syntax { .. })
        ));
        assert!(matches!(
            Policy::from_toml("[pass]\nmax_lifetime = \"31d\"\n", origin),
            Err(PolicyError::Invalid {
                setting: SettingError::OutOfRange {
                    setting: "[pass] max_lifetime",
                    value: Amount::Duration(_),
                    ..
                },
                ..
            })
        ));
        assert!(matches!(
            Policy::from_toml("[keys]\nallowed_aaguids = [\"xyz\"]", origin),
            Err(PolicyError::Invalid {
                setting: SettingError::Aaguid(NotAnAaguid(ref text)),
                ..
            }) if text == "xyz"
        ));
        // The path as written, not as an Option.
        let relative = parse(
            "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\npassword_file = \"pw\"",
        );
        assert_eq!(
            relative.err().unwrap_or_default(),
            "test.toml: [store] password_file = \"pw\" must be an absolute path"
        );
    }

    #[test]
    fn keys_section() {
        let policy = parse(
            r#"
            [keys]
            rp_id = "pam://fleet.example"
            user_verification = "required"
            max_keys = 2
            allowed_aaguids = ["CB69481E-8FF7-4039-93EC-0A2729A154A8"]
            touch_timeout = "15s"
            helper = "/opt/helper"
            "#,
        )
        .unwrap_or_default();
        assert_eq!(policy.keys.rp_id(), "pam://fleet.example");
        assert_eq!(policy.keys.user_verification, UserVerification::Required);
        let yubikey = parse_aaguid("cb69481e8ff7403993ec0a2729a154a8").unwrap_or_default();
        assert!(policy.keys.allows_aaguid(&yubikey));
        assert!(!policy.keys.allows_aaguid(&[0; 16]));
        assert_eq!(
            format_aaguid(&yubikey),
            "cb69481e-8ff7-4039-93ec-0a2729a154a8"
        );

        let default = parse("").unwrap_or_default();
        assert!(default.keys.rp_id().starts_with("pam://"));
        assert!(default.keys.allows_aaguid(&[0; 16]));
        assert_eq!(default.keys.touch_timeout.as_secs(), 30);

        for bad in [
            "[keys]\nuser_verification = \"always\"",
            "[keys]\nmax_keys = 0",
            "[keys]\ntouch_timeout = \"1h\"",
            "[keys]\nhelper = \"relative\"",
            "[keys]\nallowed_aaguids = [\"xyz\"]",
            "[keys]\nrp_id = \"\"",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn daemon_section() {
        let default = parse("").unwrap_or_default();
        assert_eq!(default.daemon.max_concurrent_hashes, 4);
        assert_eq!(default.daemon.max_connections_per_uid, 8);
        let set = parse("[daemon]\nmax_concurrent_hashes = 2\nmax_connections_per_uid = 3")
            .unwrap_or_default();
        assert_eq!(set.daemon.max_concurrent_hashes, 2);
        assert_eq!(set.daemon.max_connections_per_uid, 3);
        for (bad, says) in [
            ("[daemon]\nmax_concurrent_hashes = 0", "1 to 64"),
            ("[daemon]\nmax_connections_per_uid = 0", "1 to 1024"),
            ("[daemon]\nmax_connections_per_uid = 5000", "1 to 1024"),
            ("[daemon]\nthreads = 3", "threads"),
        ] {
            let why = parse(bad).err().unwrap_or_default();
            assert!(why.contains(says), "{bad}: {why}");
        }
        // An old policy's store_group still loads, and means nothing.
        assert!(parse("store_group = \"\"").is_ok());
        assert!(parse("store_group = \"pam-tap\"").is_ok());
    }

    #[test]
    fn lifetime_requests_are_bounded() {
        let policy = Policy::default();
        assert_eq!(policy.lifetime_for(None).map(|d| d.as_secs()), Ok(3_600));
        let refused = policy.lifetime_for(Some(Duration::from_secs(9 * 3_600)));
        assert_eq!(
            refused,
            Err(LifetimeOutOfBounds {
                lifetime: Duration::from_secs(9 * 3_600),
                min: Duration::from_secs(600),
                max: Duration::from_secs(8 * 3_600),
            })
        );
        assert!(refused
            .err()
            .is_some_and(|e| e.to_string().contains("10m to 8h")));
        assert!(policy.lifetime_for(Some(Duration::from_secs(60))).is_err());
    }

    #[test]
    fn scope_rules() {
        let groups = |list: &[&str]| {
            let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            move || Ok::<_, ()>(owned)
        };
        let everyone = Scope::default();
        assert_eq!(
            everyone.admits("alice", || Err(())),
            Ok(true),
            "no group lookup needed"
        );

        let scope = Scope {
            include_users: vec!["bob".into()],
            include_groups: vec!["staff".into()],
            exclude_users: vec!["carol".into()],
            exclude_groups: vec!["contractors".into()],
        };
        assert_eq!(scope.admits("bob", groups(&[])), Ok(true));
        assert_eq!(scope.admits("dave", groups(&["staff"])), Ok(true));
        assert_eq!(scope.admits("dave", groups(&["users"])), Ok(false));
        assert_eq!(scope.admits("carol", groups(&["staff"])), Ok(false));
        assert_eq!(scope.admits("bob", groups(&["contractors"])), Ok(false));

        let only_exclusions = Scope {
            exclude_groups: vec!["nologin".into()],
            ..Scope::default()
        };
        assert_eq!(only_exclusions.admits("eve", groups(&["users"])), Ok(true));
        assert_eq!(
            only_exclusions.admits("eve", groups(&["nologin"])),
            Ok(false)
        );
        let only_users = Scope {
            include_users: vec!["bob".into()],
            ..Scope::default()
        };
        assert_eq!(only_users.admits("eve", || Err(())), Ok(false));
    }

    #[test]
    fn ssh_defaults_and_refusals() {
        let policy = parse("").unwrap_or_default();
        assert!(
            !policy.ssh.enabled,
            "SSH keys are off until the admin turns them on"
        );
        assert_eq!(
            policy.ssh.key_types,
            [
                "sk-ssh-ed25519@openssh.com",
                "sk-ecdsa-sha2-nistp256@openssh.com"
            ]
        );
        assert!(policy.ssh.allows_type("sk-ssh-ed25519@openssh.com"));
        assert!(!policy.ssh.allows_type("ssh-ed25519"));
        assert_eq!(
            (policy.ssh.application.as_str(), policy.ssh.max_keys),
            ("ssh:", 5)
        );
        assert_eq!(policy.ssh.command_user, "pam-tap-ssh");
        let ok = parse(
            "[ssh]\nenabled = true\nkey_types = [\"ssh-ed25519\"]\napplication = \"ssh:fleet\"\n",
        )
        .unwrap_or_default();
        assert!(ok.ssh.enabled && ok.ssh.allows_type("ssh-ed25519"));
        for (text, words) in [
            ("key_types = [\"ssh-dss\"]", "not a key type pam_tap knows"),
            ("key_types = []", "list at least one"),
            ("application = \"fido:\"", "start with \"ssh:\""),
            ("application = \"ssh: x\"", "no spaces"),
            ("max_keys = 0", "[ssh] max_keys = 0 is out of range"),
            ("command_user = \"root\"", "other than root"),
            ("command_user = \"\"", "other than root"),
            ("verify = true", "unknown field"),
        ] {
            let error = parse(&format!("[ssh]\n{text}\n")).err().unwrap_or_default();
            assert!(error.contains(words), "{text}: {error}");
        }
    }

    #[test]
    fn store_as_a_path_or_a_table_and_inconsistent_settings_refused() {
        let old = parse("store = \"/srv/tap.db\"\n").unwrap_or_default();
        assert_eq!(old.store, StorePolicy::sqlite("/srv/tap.db"));
        let table =
            parse("[store]\nbackend = \"sqlite\"\npath = \"/srv/tap.db\"\n").unwrap_or_default();
        assert_eq!(table.store, StorePolicy::sqlite("/srv/tap.db"));
        let pg = parse(
            "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://tapd@db1,db2/pam_tap?target_session_attrs=read-write\"\npassword_file = \"/etc/pam_tap/db-password\"\nconnect_timeout = \"2s\"\n",
        )
        .unwrap_or_default();
        assert_eq!(pg.store.backend, Backend::Postgresql);
        assert_eq!(pg.store.connect_timeout.as_secs(), 2);
        assert!(pg
            .store
            .describe()
            .starts_with("postgresql://tapd@db1,db2/"));
        let offline = parse(
            "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\noffline_keys = true\n",
        )
        .unwrap_or_default();
        assert_eq!(
            offline.store.offline_cache_path(),
            Some(std::path::Path::new("/var/lib/pam_tap/offline-keys.db"))
        );
        assert_eq!(pg.store.offline_cache_path(), None);
        // The effective policy, as `tapctl policy check` prints it, reads back.
        for policy in [&old, &pg, &offline] {
            let text = policy.to_toml();
            assert_eq!(parse(&text).as_ref(), Ok(policy), "{text}");
        }
        for (text, words) in [
            ("store = \"tap.db\"", "must be an absolute path"),
            ("[store]\nurl = \"postgresql://h/d\"", "url is a postgresql setting, but backend = \"sqlite\""),
            ("[store]\noffline_keys = true", "offline_keys is a postgresql setting"),
            ("[store]\nbackend = \"postgresql\"", "needs url ="),
            (
                "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\noffline_cache = \"/x\"",
                "offline_cache is set, but offline_keys is not true",
            ),
            (
                "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\noffline_keys = true\noffline_cache = \"x.db\"",
                "offline_cache = \"x.db\" must be an absolute path",
            ),
            ("[store]\noffline_cache = \"/x\"", "offline_cache is a postgresql setting"),
            ("[store]\nbackend = \"postgresql\"\nurl = \"mysql://h/d\"", "needs url ="),
            (
                "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\npath = \"/x\"",
                "path is a sqlite setting, but backend = \"postgresql\"",
            ),
            (
                "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\npassword_file = \"pw\"",
                "must be an absolute path",
            ),
            ("[store]\nstatement_timeout = \"2m\"", "statement_timeout = \"2m\" is out of range"),
            (
                "[store]\nbackend = \"postgresql\"\nurl = \"postgresql://h/d\"\nconnect_timeout = \"3s\"\nstatement_timeout = \"4s\"",
                "statement_timeout + 2 x connect_timeout is 10s, but a login waits at most 10s",
            ),
            ("[store]\nbackend = \"mysql\"", "unknown variant"),
            ("[store]\nhost = \"db1\"", "unknown field"),
            ("store = 5", "a [store] table, or the SQLite file's path"),
        ] {
            let error = parse(&format!("{text}\n")).err().unwrap_or_default();
            assert!(error.contains(words), "{text}: {error}");
        }
    }
}
