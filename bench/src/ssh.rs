//! Case (g): `tapctl authorized-keys USER` as sshd runs it (one whole
//! process: spawn, stdout read to its end, wait), against `cat` of an
//! authorized_keys file holding the same lines, and against itself with
//! 100,000 other users' keys in the store. Both stores are written before
//! their daemons start; every answer is checked against the file.

use crate::daemon::Tapd;
use crate::workspace::Workspace;
use crate::{fail, now};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tap_core::audit::{AuditRecord, Event};
use tap_core::ssh::record::SshKeyRecord;
use tap_core::ssh::{SshKeyType, SshPublicKey};
use tap_core::store::{AddKey, Store};
use tap_store::{OpenOptions, SqliteStore};

/// A user NSS knows and the default scope admits.
pub const SSH_USER: &str = "root";
pub const OTHER_USERS: usize = 100_000;
pub const SMALL: &str = "ssh-1";
pub const BIG: &str = "ssh-100k";
const CAT: &str = "/bin/cat";
/// Who sshd runs the command as here: root (AuthorizedKeysCommandUser
/// would be `[ssh] command_user`; tapd admits either).
const COMMAND_USER: &str = "root";
const COMMAND_HOME: &str = "/root";
const POLICY: &str = "[ssh]\nenabled = true\n";
const APPLICATION: &str = "ssh:";

pub struct SshSetup {
    tapctl: PathBuf,
    /// The authorized_keys file `cat` reads: what tapctl must print.
    pub file: PathBuf,
    pub expected: Vec<u8>,
}

/// One whole process whose output is known.
pub struct Sample<'a> {
    program: &'a Path,
    args: Vec<String>,
    expected: &'a [u8],
}

impl SshSetup {
    /// Both stores (SSH_USER's two sk keys; the big one also one key for
    /// each of OTHER_USERS others) and the file, before the daemons start.
    pub fn new(work: &Workspace, tapctl: &Path) -> SshSetup {
        let mine = [sk_ed25519(&random_seed()), sk_ecdsa_p256(&random_seed())];
        let created = now();
        // ORDER BY created, fingerprint: one second apart, in this order.
        let records: Vec<SshKeyRecord> = mine
            .iter()
            .zip([created - 1, created])
            .map(|(key, created)| record(SSH_USER, key, created))
            .collect();
        for name in [SMALL, BIG] {
            let policy = work.policy(name, POLICY);
            let mut store = open(&policy);
            for key in &records {
                let audit = AuditRecord::new(created, Event::SshKeyAdded, SSH_USER, "bench")
                    .detail(format!("ssh key {}", key.fingerprint));
                match store.add_ssh_key(key, 5, &audit) {
                    Ok(AddKey::Added) => {}
                    other => fail(&format!("adding {SSH_USER}'s SSH key: {other:?}")),
                }
            }
        }
        fill(&work.dir.join(BIG).join("tap.db"), OTHER_USERS, created);

        // What tapd serves: `TYPE BASE64 pam_tap`, no options at the
        // policy's defaults (require_verify off).
        let expected: String = mine
            .iter()
            .map(|key| format!("{} pam_tap\n", key.to_line()))
            .collect();
        let file = work.dir.join("authorized_keys");
        std::fs::write(&file, &expected)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", file.display())));
        SshSetup {
            tapctl: tapctl.to_path_buf(),
            file,
            expected: expected.into_bytes(),
        }
    }

    /// `tapctl --socket SOCKET authorized-keys SSH_USER`, as sshd's
    /// `AuthorizedKeysCommand /usr/bin/tapctl authorized-keys %u`.
    pub fn tapctl<'a>(&'a self, tapd: &Tapd) -> Sample<'a> {
        Sample {
            program: &self.tapctl,
            args: vec![
                "--socket".into(),
                tapd.socket.display().to_string(),
                "authorized-keys".into(),
                SSH_USER.into(),
            ],
            expected: &self.expected,
        }
    }

    pub fn cat(&self) -> Sample<'_> {
        Sample {
            program: Path::new(CAT),
            args: vec![self.file.display().to_string()],
            expected: &self.expected,
        }
    }
}

impl Sample<'_> {
    /// The process, behind `wrapper` (valgrind) if any, set up as sshd's
    /// `subprocess()` sets up AuthorizedKeysCommand: stdin and stderr on
    /// /dev/null, and a minimal environment (sshd's PATH, the command
    /// user's USER, LOGNAME and HOME, and LANG if sshd has one).
    pub fn command(&self, wrapper: &[OsString], stderr: Stdio) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(self.program);
                c
            }
            None => Command::new(self.program),
        };
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("USER", COMMAND_USER)
            .env("LOGNAME", COMMAND_USER)
            .env("HOME", COMMAND_HOME)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(lang) = std::env::var_os("LANG") {
            command.env("LANG", lang);
        }
        command
    }

    /// One run: spawn, read stdout to its end, wait. Fails the bench
    /// unless the process succeeded and printed exactly the file.
    pub fn once(&self) {
        self.run(&[]);
    }

    /// `once` behind `wrapper`.
    pub fn run(&self, wrapper: &[OsString]) {
        let run = |stderr| {
            self.command(wrapper, stderr)
                .output()
                .unwrap_or_else(|e| fail(&format!("{}: {e}", self.program.display())))
        };
        let first = run(Stdio::null());
        if !self.answered(&first) {
            // Once more with stderr kept, to say why.
            let again = run(Stdio::piped());
            fail(&format!(
                "(g) {} {} ({}) printed {:?}, not the authorized_keys file's {:?}; run again ({}): stderr {:?}",
                self.program.display(),
                self.args.join(" "),
                first.status,
                String::from_utf8_lossy(&first.stdout),
                String::from_utf8_lossy(self.expected),
                again.status,
                String::from_utf8_lossy(&again.stderr).trim()
            ));
        }
    }

    fn answered(&self, out: &Output) -> bool {
        out.status.success() && out.stdout == self.expected
    }
}

/// Blocks of `per_block` runs of each sample in turn; the mean per run.
pub fn interleaved(blocks: u32, per_block: u32, samples: &[Sample<'_>]) -> Vec<Duration> {
    for s in samples {
        (0..per_block).for_each(|_| s.once());
    }
    let mut totals = vec![Duration::ZERO; samples.len()];
    for _ in 0..blocks {
        for (s, total) in samples.iter().zip(totals.iter_mut()) {
            *total += crate::cases::time(|| (0..per_block).for_each(|_| s.once()));
        }
    }
    totals
        .into_iter()
        .map(|t| t / (blocks * per_block))
        .collect()
}

fn open(policy: &Path) -> SqliteStore {
    let policy = tap_core::policy::Policy::load(policy).unwrap_or_else(|e| fail(&e.to_string()));
    SqliteStore::open(
        policy.store.sqlite_path(),
        OpenOptions {
            create: true,
            check_trust: false,
        },
    )
    .unwrap_or_else(|e| fail(e.detail()))
}

fn record(user: &str, key: &SshPublicKey, created: i64) -> SshKeyRecord {
    SshKeyRecord {
        user: user.into(),
        fingerprint: key.fingerprint(),
        key_type: key.key_type.name().into(),
        blob: key.blob.clone(),
        label: "bench".into(),
        application: APPLICATION.into(),
        aaguid: None,
        attestation: "no attestation".into(),
        created,
        last_used: None,
    }
}

/// One sk-ssh-ed25519 key for each of `count` other users, straight into
/// SQLite in one transaction (as tapd's enrollment would store them, less
/// the audit records, which `authorized-keys` never reads).
fn fill(store: &Path, count: usize, created: i64) {
    let mut conn = rusqlite::Connection::open(store).unwrap_or_else(|e| fail(&e.to_string()));
    let tx = conn.transaction().unwrap_or_else(|e| fail(&e.to_string()));
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO ssh_keys
                 (fingerprint, user, key_type, blob, label, application, aaguid, attestation, created, last_used)
                 VALUES (?1, ?2, ?3, ?4, 'bench', ?5, NULL, 'no attestation', ?6, NULL)",
            )
            .unwrap_or_else(|e| fail(&e.to_string()));
        let mut seed = random_seed();
        for i in 0..count {
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = sk_ed25519(&seed);
            insert
                .execute(rusqlite::params![
                    key.fingerprint(),
                    format!("user{i:06}"),
                    key.key_type.name(),
                    key.blob,
                    APPLICATION,
                    created
                ])
                .unwrap_or_else(|e| fail(&e.to_string()));
        }
    }
    tx.commit().unwrap_or_else(|e| fail(&e.to_string()));
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM ssh_keys", [], |r| r.get(0))
        .unwrap_or_else(|e| fail(&e.to_string()));
    if usize::try_from(rows).ok() != Some(count + 2) {
        fail(&format!(
            "{}: {rows} SSH keys, not {}",
            store.display(),
            count + 2
        ));
    }
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    tap_core::keys::random_bytes(&mut seed).unwrap_or_else(|e| fail(&e.to_string()));
    seed
}

/// SSH wire encoding: a 32-bit big-endian length, then the bytes.
fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or_else(|_| fail("SSH string too long"));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The blob as keyline.rs reads it; parsed back, so only a valid key passes.
fn parsed(blob: Vec<u8>) -> SshPublicKey {
    SshPublicKey::from_blob(&blob).unwrap_or_else(|e| fail(&format!("bench SSH key: {e}")))
}

/// `string type | string pk(32) | string application`.
fn sk_ed25519(seed: &[u8; 32]) -> SshPublicKey {
    let public = ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes();
    let mut blob = Vec::new();
    put_string(&mut blob, SshKeyType::SkEd25519.name().as_bytes());
    put_string(&mut blob, &public);
    put_string(&mut blob, APPLICATION.as_bytes());
    parsed(blob)
}

/// `string type | string "nistp256" | string Q | string application`.
fn sk_ecdsa_p256(seed: &[u8; 32]) -> SshPublicKey {
    let secret = p256::SecretKey::from_slice(seed)
        .unwrap_or_else(|_| fail("a random P-256 scalar out of range (try again)"));
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let mut blob = Vec::new();
    put_string(&mut blob, SshKeyType::SkEcdsaP256.name().as_bytes());
    put_string(&mut blob, b"nistp256");
    put_string(&mut blob, point.as_bytes());
    put_string(&mut blob, APPLICATION.as_bytes());
    parsed(blob)
}
