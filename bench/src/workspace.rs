//! The bench's private directory: policies, stores written before their
//! daemon starts, PAM service files, and the daemons' sockets and logs.
//! Not under /tmp: the module and tapd refuse a policy or helper below a
//! directory others may write, sticky or not. /run is root's.

use crate::daemon::Tapd;
use crate::{fail, now, PASS, PASS_USER};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tap_core::audit::{AuditRecord, Event};
use tap_core::hashing;
use tap_core::pass::{NewPass, PassRecord};
use tap_core::policy::Policy;
use tap_core::store::Store;
use tap_store::{OpenOptions, SqliteStore};

pub struct Workspace {
    pub dir: PathBuf,
    pub confdir: PathBuf,
    module: PathBuf,
    tapd: PathBuf,
    /// Extra environment for every daemon (`--tapd-env`), for experiments.
    pub tapd_env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new(module: &Path, tapd: &Path) -> Workspace {
        let dir = PathBuf::from(format!("/run/tap-bench-{}", std::process::id()));
        let confdir = dir.join("pam.d");
        std::fs::create_dir_all(&confdir)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
        crate::cleanup::directory(Some(dir.clone()));
        Workspace {
            dir,
            confdir,
            module: module.to_path_buf(),
            tapd: tapd.to_path_buf(),
            tapd_env: Vec::new(),
        }
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    }

    /// `NAME.toml`, naming the store `NAME/tap.db`, plus `extra` lines.
    pub fn policy(&self, name: &str, extra: &str) -> PathBuf {
        let file = format!("{name}.toml");
        let store = self.dir.join(name).join("tap.db");
        self.write(&file, &format!("store = \"{}\"\n{extra}", store.display()));
        self.dir.join(file)
    }

    pub fn socket(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.sock"))
    }

    /// A service whose first line is pam_tap against daemon `name` (its
    /// policy for the key helper), then `last` (the rest of the stack).
    pub fn tap_service(&self, service: &str, name: &str, last: &str) {
        self.tap_service_on(service, name, name, last);
    }

    /// As `tap_service`, for the daemon on socket `socket` serving policy
    /// `policy` (several daemons, one policy: hosts sharing one database).
    pub fn tap_service_on(&self, service: &str, policy: &str, socket: &str, last: &str) {
        self.write(
            &format!("pam.d/{service}"),
            &format!(
                "auth [success=done ignore=ignore default=die] {} policy={} socket={} nodelay\n{last}\n",
                self.module.display(),
                self.dir.join(format!("{policy}.toml")).display(),
                self.socket(socket).display()
            ),
        );
    }

    pub fn plain_service(&self, service: &str, stack: &str) {
        self.write(&format!("pam.d/{service}"), stack);
    }

    /// Starts the daemon for policy `name` on its own socket.
    pub fn start(&self, name: &str, wrapper: &[OsString], ready_within: Duration) -> Tapd {
        self.start_on(name, name, wrapper, ready_within)
    }

    /// Starts a daemon for policy `policy` on socket `socket`.
    pub fn start_on(
        &self,
        policy: &str,
        socket: &str,
        wrapper: &[OsString],
        ready_within: Duration,
    ) -> Tapd {
        Tapd::start(
            &self.tapd,
            &self.dir.join(format!("{policy}.toml")),
            &self.socket(socket),
            wrapper,
            &self.tapd_env,
            ready_within,
        )
    }

    /// The store of a policy, opened directly: only before its daemon runs.
    fn store(policy: &Path) -> SqliteStore {
        let policy = Policy::load(policy).unwrap_or_else(|e| fail(&e.to_string()));
        SqliteStore::open(
            policy.store.sqlite_path(),
            OpenOptions {
                create: true,
                check_trust: false,
            },
        )
        .unwrap_or_else(|e| fail(e.detail()))
    }

    /// A multi-use pass for PASS_USER, at the policy's default cost.
    pub fn issue(&self, policy: &Path) {
        let (pass, audit) = bench_pass();
        Self::store(policy)
            .put_pass(&pass, &audit)
            .unwrap_or_else(|e| fail(e.detail()));
    }

    /// Other users' passes, written straight to SQLite in one transaction
    /// before the daemon starts: 100,000 Argon2 hashes would take an hour
    /// and are never read here.
    pub fn fill(&self, policy: &Path, count: usize) {
        let store_path = Policy::load(policy)
            .unwrap_or_else(|e| fail(&e.to_string()))
            .store
            .sqlite_path()
            .to_path_buf();
        let mut conn =
            rusqlite::Connection::open(&store_path).unwrap_or_else(|e| fail(&e.to_string()));
        let tx = conn.transaction().unwrap_or_else(|e| fail(&e.to_string()));
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO passes (user, id, phc, issued_by, created, start, expires, one_time, failures)
                     VALUES (?1, ?2, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g', 'bench', ?3, ?3, ?4, 0, 0)",
                )
                .unwrap_or_else(|e| fail(&e.to_string()));
            let now = now();
            for i in 0..count {
                let id = i64::try_from(i).unwrap_or(0) + 2;
                insert
                    .execute(rusqlite::params![
                        format!("user{i:06}"),
                        id,
                        now,
                        now + 6 * 3_600
                    ])
                    .unwrap_or_else(|e| fail(&e.to_string()));
            }
        }
        tx.commit().unwrap_or_else(|e| fail(&e.to_string()));
    }
}

/// A multi-use pass for PASS_USER, at the policy's default cost, with its
/// audit record: what every store of the bench holds.
pub fn bench_pass() -> (PassRecord, AuditRecord) {
    let cost = Policy::default().pass.hash;
    let now = now();
    let pass = PassRecord::issue(NewPass {
        user: PASS_USER,
        id: 1,
        phc: hashing::hash(PASS, &cost).unwrap_or_else(|e| fail(&e.to_string())),
        issued_by: "bench",
        created: now,
        start: now,
        expires: now + 6 * 3_600,
        one_time: false,
        length: PASS.len(),
    });
    (
        pass,
        AuditRecord::new(now, Event::PassIssued, PASS_USER, "bench"),
    )
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::cleanup::directory(None);
    }
}
