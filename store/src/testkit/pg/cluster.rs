//! A real PostgreSQL for the tests: `initdb` in a temporary directory as an
//! unprivileged user (nobody, when the tests run as root: PostgreSQL refuses
//! root), listening on 127.0.0.1 at a free port and on a private socket
//! directory, TLS from a CA the tests make, scram-sha-256 over hostssl only.
//! Never the host's clusters, services or /etc/postgresql. The tests'
//! cluster skips flushes; the bench's (`Settings::durable`) does not.

use super::certs::{Certs, Pem};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const UNPRIVILEGED: u32 = 65534;
pub const ADMIN_PASSWORD: &str = "admin-Secret-4242";
pub const HOST_PASSWORD: &str = "host-Secret-4242";

pub struct Cluster {
    bin: PathBuf,
    server: tempfile::TempDir,
    client: tempfile::TempDir,
    pub port: u16,
    pub certs: Certs,
    child: Child,
    databases: std::sync::atomic::AtomicUsize,
}

fn root() -> bool {
    crate::sys::euid() == 0
}

/// What differs between a cluster for semantics and one for timing.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// fsync and full_page_writes: off for the tests (nothing they check
    /// needs durability), on for timing, as a real server runs.
    pub durable: bool,
    pub max_connections: u32,
    pub shared_buffers_mib: u32,
}

impl Settings {
    /// The tests': no flushes, 150 connections, 16 MiB of buffers.
    pub const TESTS: Settings = Settings {
        durable: false,
        max_connections: 150,
        shared_buffers_mib: 16,
    };

    /// As a server is run: flushes on, PostgreSQL's default buffers.
    pub fn durable(max_connections: u32) -> Settings {
        Settings {
            durable: true,
            max_connections,
            shared_buffers_mib: 128,
        }
    }
}

/// The newest installed server's bin directory.
fn server_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb and \
             postgres): install them with tests/install-deps.sh (Debian's postgresql package)"
        )
    })
}

/// Runs `program` as the cluster's user.
fn as_owner(program: &Path) -> Command {
    if root() {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={UNPRIVILEGED}"))
            .arg(format!("--regid={UNPRIVILEGED}"))
            .arg("--clear-groups")
            .arg("--pdeathsig=KILL")
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn give_to_owner(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    if root() {
        std::os::unix::fs::chown(path, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("free port: {e}"))
}

impl Cluster {
    /// The tests' cluster (`Settings::TESTS`).
    pub fn start() -> Cluster {
        Cluster::start_with(Settings::TESTS)
    }

    pub fn start_with(settings: Settings) -> Cluster {
        let started = Instant::now();
        let bin = server_bin();
        let server = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let client = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        give_to_owner(server.path(), 0o700);
        let data = server.path().join("data");
        let status = as_owner(&bin.join("initdb"))
            .current_dir(server.path())
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=reject",
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("initdb: {e}"));
        assert!(status.success(), "initdb failed");

        let certs = Certs::new();
        certs.server.write(server.path(), "server");
        for name in ["server.crt", "server.key"] {
            give_to_owner(&server.path().join(name), 0o600);
        }
        certs.ca_pem(&client.path().join("ca.pem"));
        let sock = server.path().join("sock");
        std::fs::create_dir(&sock).unwrap_or_else(|e| panic!("{e}"));
        give_to_owner(&sock, 0o700);
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n\
             password_encryption = 'scram-sha-256'\nmax_connections = {}\n\
             shared_buffers = {}MB\nlogging_collector = off\n{}",
            sock.display(),
            server.path().join("server.crt").display(),
            server.path().join("server.key").display(),
            settings.max_connections,
            settings.shared_buffers_mib,
            if settings.durable {
                ""
            } else {
                "# a throwaway cluster: no flushes (semantics, not durability, are tested)\n\
                 fsync = off\nfull_page_writes = off\n"
            },
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all postgres trust\n\
             hostssl all pam_tap_admin,pam_tap_host 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let log = std::fs::File::create(client.path().join("postgres.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = as_owner(&bin.join("postgres"))
            .current_dir(server.path())
            .arg("-D")
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("postgres: {e}"));
        let cluster = Cluster {
            bin,
            server,
            client,
            port,
            certs,
            child,
            databases: std::sync::atomic::AtomicUsize::new(0),
        };
        cluster.wait_ready();
        eprintln!(
            "postgres: {} on 127.0.0.1:{port}, ready in {:.1} s",
            cluster.bin.display(),
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .psql("postgres")
                .args(["-c", "SELECT 1"])
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.client.path().join("postgres.log")).unwrap_or_default()
    }

    /// psql as the superuser over the private socket, to database `db`.
    pub fn psql(&self, db: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .arg("-X")
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-A", "-t"])
            .arg("-h")
            .arg(self.server.path().join("sock"))
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db]);
        command
    }

    /// Runs SQL as the superuser, over the private socket; panics on error.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self
            .psql(db)
            .args(["-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a SQL file as the superuser (`psql -f FILE`).
    pub fn sql_file(&self, db: &str, file: &Path) -> std::process::Output {
        self.psql(db)
            .arg("-f")
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"))
    }

    /// A new database, with roles.sql (the shipped file) run in it and the
    /// roles' passwords set.
    pub fn database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let db = format!("tap{n}");
        self.sql("postgres", &format!("CREATE DATABASE {db}"));
        let out = self.sql_file(&db, &roles_sql_path());
        assert!(
            out.status.success(),
            "roles.sql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.sql(
            &db,
            &format!(
                "ALTER ROLE pam_tap_admin PASSWORD '{ADMIN_PASSWORD}';
                 ALTER ROLE pam_tap_host PASSWORD '{HOST_PASSWORD}'"
            ),
        );
        db
    }

    pub fn client_dir(&self) -> &Path {
        self.client.path()
    }

    pub fn ca_file(&self) -> PathBuf {
        self.client.path().join("ca.pem")
    }

    /// Serves `pem` as the server's certificate from now on.
    pub fn serve_certificate(&self, pem: &Pem) {
        pem.write(self.server.path(), "server");
        for name in ["server.crt", "server.key"] {
            give_to_owner(&self.server.path().join(name), 0o600);
        }
        self.sql("postgres", "SELECT pg_reload_conf()");
        // The postmaster reloads on its own time; new sessions see it after.
        std::thread::sleep(Duration::from_millis(700));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // An immediate shutdown: no checkpoint, the files go with the directory.
        crate::sys::signal(self.child.id(), libc::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn roles_sql_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/postgres/roles.sql")
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
}
