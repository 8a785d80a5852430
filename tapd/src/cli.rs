//! tapd's command line.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Default socket path when tapd binds its own socket.
pub const DEFAULT_SOCKET: &str = "/run/pam_tap/tapd.sock";
/// Idle period before a socket-activated tapd exits (systemd starts it
/// again on the next connection).
pub const ACTIVATED_IDLE_EXIT: Duration = Duration::from_secs(60);

/// pam_tap's daemon: the only process that opens the store. Under systemd
/// it is socket-activated (pam-tap.socket) and exits when idle; elsewhere
/// it binds --socket itself and runs in the foreground.
#[derive(Parser, Debug)]
#[command(name = "tapd", version)]
pub struct Cli {
    /// The policy file (read again whenever it changes).
    #[arg(long, value_name = "PATH", default_value = tap_core::policy::DEFAULT_PATH)]
    pub policy: PathBuf,
    /// The socket to bind when not socket-activated.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Exit after this many seconds without a connection (0: never).
    /// Default: 60 when socket-activated, never otherwise.
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<u64>,
    /// Create the policy's store or bring its schema up to date, then exit.
    /// For PostgreSQL, run it with a policy whose url names the admin role
    /// (pam_tap_admin): the hosts' role may not change the schema.
    #[arg(long)]
    pub migrate: bool,
    /// Copy the policy's SQLite store into the PostgreSQL database at URL,
    /// connecting as the admin role (its password, if any, as the first line
    /// of stdin), then exit. Run as the store's owner; `tapctl store migrate`
    /// does that. The SQLite store is only read.
    #[arg(long, value_name = "URL", conflicts_with = "migrate")]
    pub migrate_to: Option<String>,
    /// With --migrate-to: the CA file that signed the database's certificate.
    #[arg(long, value_name = "PATH", requires = "migrate_to")]
    pub ca_file: Option<PathBuf>,
    /// With --migrate-to: copy into a database that holds passes or keys
    /// already (refused if any user's pass or key is there).
    #[arg(long, requires = "migrate_to")]
    pub merge: bool,
}

impl Cli {
    /// The idle period in force, if any.
    pub fn idle_exit(&self, activated: bool) -> Option<Duration> {
        match self.idle_exit {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs)),
            None if activated => Some(ACTIVATED_IDLE_EXIT),
            None => None,
        }
    }
}
