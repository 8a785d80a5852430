//! `--postgres` (issue 14): the fleet store's cases beside their SQLite
//! twins in the same run. A real PostgreSQL started by the bench
//! (`tap_store::testkit::pg`, flushes on, as a server runs), on loopback
//! with TLS and scram; the schema migrated and the pass issued through the
//! admin role; every measured tapd reads it as `pam_tap_host` through a
//! `[store] backend = "postgresql"` policy.

use crate::cases::Login;
use crate::daemon::Tapd;
use crate::workspace::{bench_pass, Workspace};
use crate::{fail, READY, STOP};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tap_core::store::Store;
use tap_store::testkit::pg::cluster::{Cluster, Settings, ADMIN_PASSWORD, HOST_PASSWORD};
use tap_store::{PostgresConfig, PostgresStore};

/// Daemons, each a host with its own tapd, all on one database.
pub const HOSTS: usize = 8;
/// Logins released together on each host: HOSTS x PER_HOST at once.
pub const PER_HOST: usize = 8;
/// Each tapd keeps one connection per worker (6 at the defaults), so
/// HOSTS daemons need up to 48; room for the bench's own and headroom.
const MAX_CONNECTIONS: u32 = 200;
/// How often the connections are counted during a flood.
const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// The policy all PostgreSQL daemons share; sockets `pg-0` ... `pg-7`.
pub const POLICY: &str = "pg";

pub struct Fleet {
    cluster: Cluster,
    pub database: String,
    pub daemons: Vec<Tapd>,
}

fn socket(host: usize) -> String {
    format!("{POLICY}-{host}")
}

/// The service whose pam_tap asks the daemon of `host`.
pub fn service(host: usize) -> String {
    format!("tap-{}", socket(host))
}

/// A file only its owner (root, tapd's user) may read: the password file
/// must be, and tapd refuses it otherwise.
fn secret(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

impl Fleet {
    /// Starts the cluster, migrates and issues as the admin role, writes
    /// the hosts' policy and services, and starts the HOSTS daemons.
    pub fn start(work: &Workspace) -> Fleet {
        let cluster = Cluster::start_with(Settings::durable(MAX_CONNECTIONS));
        let database = cluster.database();
        // Beside the policies in the bench's root-only directory: tapd
        // trusts nothing under a directory others may write.
        let dir = work.dir.join("pg-client");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{e}")));
        let ca = dir.join("ca.pem");
        std::fs::copy(cluster.ca_file(), &ca).unwrap_or_else(|e| fail(&format!("ca: {e}")));
        let admin_pw = dir.join("pam_tap_admin.pw");
        let host_pw = dir.join("pam_tap_host.pw");
        secret(&admin_pw, &format!("{ADMIN_PASSWORD}\n"));
        secret(&host_pw, &format!("{HOST_PASSWORD}\n"));
        let url = |role: &str| {
            format!(
                "postgresql://{role}@127.0.0.1:{}/{database}?sslmode=verify-full",
                cluster.port
            )
        };

        // The schema and the pass, as an administrator makes them.
        let mut admin = PostgresStore::connect_and_migrate(&PostgresConfig {
            url: url("pam_tap_admin"),
            password_file: Some(admin_pw),
            ca_file: Some(ca.clone()),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(4),
        })
        .unwrap_or_else(|e| fail(&format!("migrating as pam_tap_admin: {e}")));
        let (pass, audit) = bench_pass();
        admin
            .put_pass(&pass, &audit)
            .unwrap_or_else(|e| fail(&format!("issuing as pam_tap_admin: {e}")));
        drop(admin);

        // The hosts' policy: the shipped defaults but for the store.
        work.write(
            &format!("{POLICY}.toml"),
            &format!(
                "[store]\nbackend = \"postgresql\"\nurl = \"{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
                url("pam_tap_host"),
                host_pw.display(),
                ca.display()
            ),
        );
        let daemons = (0..HOSTS)
            .map(|host| {
                work.tap_service_on(
                    &service(host),
                    POLICY,
                    &socket(host),
                    "auth required pam_permit.so",
                );
                work.start_on(POLICY, &socket(host), &[], READY)
            })
            .collect();
        Fleet {
            cluster,
            database,
            daemons,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL: database {} on 127.0.0.1:{} (TLS verify-full, scram; fsync on, max_connections {MAX_CONNECTIONS}); {HOSTS} tapd as pam_tap_host, one policy, own sockets",
            self.database, self.cluster.port
        )
    }

    /// The database's client connections, counted by pg_stat_activity
    /// through one psql session (not one process per count).
    pub fn counter(&self) -> PgCounter {
        let mut child = self
            .cluster
            .psql("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(&format!("psql: {e}")));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => PgCounter {
                child,
                stdin,
                stdout,
                database: self.database.clone(),
            },
            _ => fail("psql: no pipes"),
        }
    }

    pub fn stop(self) {
        for tapd in self.daemons {
            tapd.stop(STOP);
        }
        drop(self.cluster);
    }
}

/// Connections to the database: all of them, and those running a
/// statement at the moment of the count.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connections {
    pub open: usize,
    pub active: usize,
}

pub struct PgCounter {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    database: String,
}

impl PgCounter {
    pub fn count(&mut self) -> Connections {
        let query = format!(
            "SELECT count(*) || '|' || count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity \
             WHERE datname = '{}' AND backend_type = 'client backend';\n",
            self.database
        );
        self.stdin
            .write_all(query.as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| fail(&format!("psql: {e}")));
        let mut line = String::new();
        while line.trim().is_empty() {
            line.clear();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => fail("psql ended while counting connections"),
                Ok(_) => {}
            }
        }
        let mut parts = line.trim().split('|').map(|n| n.parse::<usize>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(open), Some(active)) => Connections { open, active },
            _ => fail(&format!("pg_stat_activity count: {line:?}")),
        }
    }
}

impl Drop for PgCounter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SQLite's connections: the daemon's open descriptors of the store file.
pub fn sqlite_connections(tapd: &Tapd, store: &Path) -> Connections {
    let fds = std::fs::read_dir(format!("/proc/{}/fd", tapd.pid()))
        .unwrap_or_else(|e| fail(&format!("tapd's /proc fd: {e}")));
    let open = fds
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_link(e.path()).ok().as_deref() == Some(store))
        .count();
    Connections { open, active: 0 }
}

/// Runs `work` while another thread counts connections every
/// SAMPLE_EVERY; returns its result and the peak of each count.
pub fn sampled<T>(
    mut count: impl FnMut() -> Connections + Send,
    work: impl FnOnce() -> T,
) -> (T, Connections) {
    let done = AtomicBool::new(false);
    let peak = Mutex::new(Connections::default());
    let result = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let now = count();
                if let Ok(mut p) = peak.lock() {
                    p.open = p.open.max(now.open);
                    p.active = p.active.max(now.active);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        result
    });
    let peak = peak.lock().map(|p| *p).unwrap_or_default();
    (result, peak)
}

/// The logins of the flood: one service per host.
pub fn host_logins<'a>(confdir: &'a Path, services: &'a [String], user: &'a str) -> Vec<Login<'a>> {
    services
        .iter()
        .map(|service| Login {
            confdir,
            service,
            user,
        })
        .collect()
}

/// The SQLite store file of a policy in the workspace.
pub fn sqlite_store(work: &Workspace, name: &str) -> PathBuf {
    work.dir.join(name).join("tap.db")
}
