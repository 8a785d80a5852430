//! `tapd --migrate-to URL`: copies the SQLite store this daemon's user owns
//! into a PostgreSQL database, as the admin role, and exits. tapd does it
//! (not tapctl) because the store is the daemon user's alone: this mode
//! runs as that user (`tapctl store migrate` starts it so, as root) and
//! opens the file read-only. The admin password comes on stdin, so root's
//! password file never has to be given to the daemon's user.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use tap_core::policy::{Backend, Policy, PolicyError};
use tap_core::store::StoreError;
use tap_store::{PostgresConfig, PostgresStore, SqliteStore};
use zeroize::Zeroizing;

/// What to copy where.
pub struct CopyRequest<'a> {
    pub policy: &'a Path,
    pub url: &'a str,
    pub ca_file: Option<PathBuf>,
    pub merge: bool,
}

/// Why nothing (or not everything) was copied.
#[derive(Debug)]
pub enum CopyError {
    Policy(PolicyError),
    /// The policy names PostgreSQL: there is no SQLite store to copy.
    AlreadyPostgres(PathBuf),
    /// Reading the SQLite store, or writing the database.
    Store(StoreError),
    Password(io::Error),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Policy(e) => write!(f, "policy not usable: {e}"),
            CopyError::AlreadyPostgres(policy) => write!(
                f,
                "the policy {} names a PostgreSQL store already; copy this host's SQLite store \
                 while the policy still names it, then point the host at PostgreSQL",
                policy.display()
            ),
            CopyError::Store(e) => write!(f, "{e}"),
            CopyError::Password(e) => write!(f, "reading the password from stdin: {e}"),
        }
    }
}

impl std::error::Error for CopyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CopyError::Policy(e) => Some(e),
            CopyError::AlreadyPostgres(_) => None,
            CopyError::Store(e) => Some(e),
            CopyError::Password(e) => Some(e),
        }
    }
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> Self {
        CopyError::Store(e)
    }
}

/// Copies, and returns the line that says what was copied.
pub fn copy(request: &CopyRequest<'_>, stdin: impl Read) -> Result<String, CopyError> {
    let policy = Policy::load(request.policy).map_err(CopyError::Policy)?;
    if policy.store.backend != Backend::Sqlite {
        return Err(CopyError::AlreadyPostgres(request.policy.to_path_buf()));
    }
    let path = policy.store.sqlite_path();
    // Everything is read before anything is written: a source that cannot
    // be read never touches the database.
    let snapshot = SqliteStore::open_read_only(path).and_then(|source| source.snapshot())?;
    let password = read_password(stdin).map_err(CopyError::Password)?;
    let config = PostgresConfig {
        url: request.url.to_string(),
        password_file: None,
        ca_file: request.ca_file.clone(),
        connect_timeout: policy.store.connect_timeout.into(),
        statement_timeout: policy.store.statement_timeout.into(),
    };
    let mut target = match password {
        Some(password) => PostgresStore::connect_and_migrate_with_password(&config, password),
        None => PostgresStore::connect_and_migrate(&config),
    }?;
    for warning in target.warnings() {
        eprintln!("tapd: warning: {warning}");
    }
    let copied = target.import(&snapshot, request.merge)?;
    Ok(format!(
        "copied {copied} from {} into {} (schema version {}); the audit records name host {}",
        path.display(),
        request.url,
        tap_store::postgres::SCHEMA_VERSION,
        target.host_name()
    ))
}

/// The first line of stdin; None when there is none (a Unix-socket peer
/// needs no password).
fn read_password(stdin: impl Read) -> io::Result<Option<Zeroizing<String>>> {
    // Room for all of it up front: a growing String would leave copies
    // of the password behind in the buffers it outgrew.
    let mut text = Zeroizing::new(String::with_capacity(4096));
    stdin.take(4096).read_to_string(&mut text)?;
    let line = text.lines().next().unwrap_or("");
    Ok((!line.is_empty()).then(|| Zeroizing::new(line.to_string())))
}

#[cfg(test)]
mod tests {
    use super::read_password;

    #[test]
    fn password_is_the_first_line_and_may_be_absent() {
        let got = read_password(&b"s3cret\nignored\n"[..]).unwrap();
        assert_eq!(got.as_deref().map(String::as_str), Some("s3cret"));
        assert!(read_password(&b""[..]).unwrap().is_none());
        assert!(read_password(&b"\n"[..]).unwrap().is_none());
    }
}
