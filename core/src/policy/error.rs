//! Why a policy cannot be used, worded for the admin who edits the file:
//! each message names the file, the setting, and what is allowed.

use super::{Backend, PROMPT_CHARS};
use crate::duration::Duration;
use crate::ssh::SshKeyType;
use crate::trust::TrustError;
use std::fmt;
use std::path::PathBuf;

/// Why [`super::Policy::load`] or [`super::Policy::from_toml`] refused.
#[derive(Debug)]
pub enum PolicyError {
    /// The file is not root's alone, not a small regular file, or unreadable.
    Untrusted(TrustError),
    /// Not TOML, or not the policy's shape (an unknown key, a wrong type).
    Syntax {
        origin: PathBuf,
        source: toml::de::Error,
    },
    /// A setting is out of bounds, or settings contradict each other.
    Invalid {
        origin: PathBuf,
        setting: SettingError,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Untrusted(e) => write!(f, "{e}"),
            PolicyError::Syntax { origin, source } => {
                write!(f, "{}: {}", origin.display(), source.to_string().trim_end())
            }
            PolicyError::Invalid { origin, setting } => {
                write!(f, "{}: {setting}", origin.display())
            }
        }
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PolicyError::Untrusted(e) => Some(e),
            PolicyError::Syntax { source, .. } => Some(source),
            PolicyError::Invalid { setting, .. } => Some(setting),
        }
    }
}

impl From<TrustError> for PolicyError {
    fn from(e: TrustError) -> Self {
        PolicyError::Untrusted(e)
    }
}

/// A number or a duration a setting holds, for range messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    Number(u64),
    Duration(Duration),
}

impl From<u32> for Amount {
    fn from(n: u32) -> Self {
        Amount::Number(n.into())
    }
}

impl From<usize> for Amount {
    fn from(n: usize) -> Self {
        Amount::Number(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for Amount {
    fn from(d: Duration) -> Self {
        Amount::Duration(d)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Number(n) => write!(f, "{n}"),
            Amount::Duration(d) => write!(f, "{d}"),
        }
    }
}

/// One setting (or pair of settings) the policy may not have. `setting`
/// names are written as in the file: `[pass] length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingError {
    OutOfRange {
        setting: &'static str,
        value: Amount,
        low: Amount,
        high: Amount,
    },
    MinAboveMax {
        min: Duration,
        max: Duration,
    },
    DefaultOutsideBounds {
        default: Duration,
        min: Duration,
        max: Duration,
    },
    /// Empty, too long, or more than one line.
    Prompt {
        setting: &'static str,
        text: String,
    },
    RpId(String),
    NotAbsolute {
        setting: &'static str,
        path: PathBuf,
    },
    Aaguid(NotAnAaguid),
    NoSshKeyTypes,
    UnknownSshKeyType(String),
    SshApplication(String),
    SshCommandUser(String),
    /// A setting of the other backend.
    OtherBackend {
        setting: &'static str,
        belongs_to: Backend,
        backend: Backend,
    },
    /// `offline_cache` without `offline_keys = true`.
    OfflineCacheWithoutKeys,
    StoreUrl(String),
    /// A store call's worst case does not fit in a login's wait for tapd.
    StoreTooSlow {
        worst_secs: u64,
        wait_secs: u64,
    },
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::OutOfRange {
                setting,
                value,
                low,
                high,
            } => {
                // A duration is written quoted, as in the file.
                match value {
                    Amount::Number(n) => write!(f, "{setting} = {n}")?,
                    Amount::Duration(d) => write!(f, "{setting} = \"{d}\"")?,
                }
                write!(f, " is out of range: allowed {low} to {high}")
            }
            SettingError::MinAboveMax { min, max } => write!(
                f,
                "[pass] min_lifetime = \"{min}\" is longer than max_lifetime = \"{max}\""
            ),
            SettingError::DefaultOutsideBounds { default, min, max } => write!(
                f,
                "[pass] default_lifetime = \"{default}\" must lie between min_lifetime = \"{min}\" and max_lifetime = \"{max}\""
            ),
            SettingError::Prompt { setting, text } => write!(
                f,
                "{setting} = {text:?}: allowed one line of text, at most {PROMPT_CHARS} characters"
            ),
            SettingError::RpId(rp_id) => write!(
                f,
                "[keys] rp_id = {rp_id:?}: allowed a non-empty name of at most 253 characters"
            ),
            SettingError::NotAbsolute { setting, path } => {
                write!(f, "{setting} = {path:?} must be an absolute path")
            }
            SettingError::Aaguid(e) => write!(f, "[keys] allowed_aaguids: {e}"),
            SettingError::NoSshKeyTypes => {
                f.write_str("[ssh] key_types is empty: list at least one key type")
            }
            SettingError::UnknownSshKeyType(name) => {
                let known: Vec<&str> = SshKeyType::ALL.iter().map(|t| t.name()).collect();
                write!(
                    f,
                    "[ssh] key_types: {name:?} is not a key type pam_tap knows; allowed: {}",
                    known.join(", ")
                )
            }
            SettingError::SshApplication(app) => write!(
                f,
                "[ssh] application = {app:?}: OpenSSH requires it to start with \"ssh:\" (at most 255 characters, no spaces)"
            ),
            SettingError::SshCommandUser(user) => write!(
                f,
                "[ssh] command_user = {user:?}: a system user name other than root"
            ),
            SettingError::OtherBackend {
                setting,
                belongs_to,
                backend,
            } => write!(
                f,
                "[store] {setting} is a {} setting, but backend = {:?}: remove it, or set backend = {:?}",
                belongs_to.name(),
                backend.name(),
                belongs_to.name()
            ),
            SettingError::OfflineCacheWithoutKeys => f.write_str(
                "[store] offline_cache is set, but offline_keys is not true: \
                 set offline_keys = true, or remove offline_cache",
            ),
            SettingError::StoreUrl(url) => write!(
                f,
                "[store] backend = \"postgresql\" needs url = \"postgresql://ROLE@HOST[,HOST2]/DATABASE?…\"; it is {url:?}"
            ),
            SettingError::StoreTooSlow {
                worst_secs: worst,
                wait_secs: wait,
            } => write!(
                f,
                "[store] statement_timeout + 2 x connect_timeout is {worst}s, but a login waits \
                 at most {wait}s for tapd: a slow database would fail sign-ins tapd could still \
                 finish. Keep the sum under {wait}s (the defaults are 4s and 2s)"
            ),
        }
    }
}

impl std::error::Error for SettingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SettingError::Aaguid(e) => Some(e),
            _ => None,
        }
    }
}

/// Text that is not an AAGUID, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotAnAaguid(pub String);

impl fmt::Display for NotAnAaguid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an AAGUID: expected 32 hex digits such as cb69481e-8ff7-4039-93ec-0a2729a154a8",
            self.0
        )
    }
}

impl std::error::Error for NotAnAaguid {}

/// A pass lifetime the policy does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifetimeOutOfBounds {
    pub lifetime: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl fmt::Display for LifetimeOutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LifetimeOutOfBounds { lifetime, min, max } = self;
        write!(
            f,
            "lifetime {lifetime} is outside the policy's bounds: allowed {min} to {max}"
        )
    }
}

impl std::error::Error for LifetimeOutOfBounds {}
