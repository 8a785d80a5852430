//! `tapd --migrate-to URL`: copies the SQLite store this daemon's user owns
//! into a PostgreSQL database, as the admin role, and exits. tapd does it
//! (not tapctl) because the store is the daemon user's alone: this mode
//! runs as that user (`tapctl store migrate` starts it so, as root) and
//! opens the file read-only. The admin password comes on stdin, so root's
//! password file never has to be given to the daemon's user.

use std::io::Read;
use std::path::{Path, PathBuf};
use tap_core::policy::{Backend, Policy};
use tap_store::{PostgresConfig, PostgresStore, SqliteStore};
use zeroize::Zeroizing;

/// What to copy where.
pub struct CopyRequest<'a> {
    pub policy: &'a Path,
    pub url: &'a str,
    pub ca_file: Option<PathBuf>,
    pub merge: bool,
}

/// Copies, and returns the line that says what was copied.
pub fn copy(request: &CopyRequest<'_>, stdin: impl Read) -> Result<String, String> {
    let policy = Policy::load(request.policy).map_err(|e| format!("policy not usable: {e}"))?;
    if policy.store.backend != Backend::Sqlite {
        return Err(format!(
            "the policy {} names a PostgreSQL store already; copy this host's SQLite store \
             while the policy still names it, then point the host at PostgreSQL",
            request.policy.display()
        ));
    }
    let path = policy.store.sqlite_path();
    // Everything is read before anything is written: a source that cannot
    // be read never touches the database.
    let snapshot = SqliteStore::open_read_only(path)
        .and_then(|source| source.snapshot())
        .map_err(|e| e.0)?;
    let password = read_password(stdin)?;
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
    }
    .map_err(|e| e.0)?;
    for warning in target.warnings() {
        eprintln!("tapd: warning: {warning}");
    }
    let copied = target.import(&snapshot, request.merge).map_err(|e| e.0)?;
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
fn read_password(stdin: impl Read) -> Result<Option<Zeroizing<String>>, String> {
    // Room for all of it up front: a growing String would leave copies
    // of the password behind in the buffers it outgrew.
    let mut text = Zeroizing::new(String::with_capacity(4096));
    stdin
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
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
