//! Reading a whole store, read-only: the source of `tapctl store migrate`.
//! The file is opened with SQLite's read-only flag and never migrated or
//! configured, so copying it out changes nothing in it.

use super::durability::BUSY_TIMEOUT;
use super::{err, files, migrations, Result, SqliteStore};
use crate::snapshot::Snapshot;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use tap_core::store::{AuditFilter, StoreError};

impl SqliteStore {
    /// Opens an existing store to read it only. Trusted as the daemon trusts
    /// it (this process's alone), and at this build's schema version: an
    /// older one is brought up to date by starting tapd (or `tapd
    /// --migrate`) first, which this open never does.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore> {
        let meta = std::fs::metadata(path).map_err(|e| err(path, "cannot be reached", e))?;
        files::check_store_file(path, &meta)?;
        files::check_side_files(path, &meta, true)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| err(path, "cannot open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err(path, "busy timeout", e))?;
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            durability: super::durability::Durability::Atomic,
            offline_copy: false,
        };
        let version = store.schema_version()?;
        let known = migrations::MIGRATIONS.len();
        if version != known {
            return Err(StoreError::schema(format!(
                "store {} has schema version {version}, this pam_tap reads {known}: {}",
                path.display(),
                if version < known {
                    "run `tapd --migrate` as the store's owner first"
                } else {
                    "a newer pam_tap wrote it"
                }
            )));
        }
        Ok(store)
    }

    /// Everything in the store, read in one transaction (one consistent
    /// moment, even while tapd keeps writing).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let fail = |e: rusqlite::Error| err(&self.path, "reading", e);
        self.conn.execute_batch("BEGIN DEFERRED").map_err(fail)?;
        let read = self.read_all();
        // A read-only transaction: ending it cannot lose anything.
        let _ = self.conn.execute_batch("COMMIT");
        read
    }

    fn read_all(&self) -> Result<Snapshot> {
        let fail = |e: rusqlite::Error| err(&self.path, "reading", e);
        let passes = super::passes::passes(self)?;
        let keys = self
            .conn
            .prepare(concat!(
                "SELECT ",
                super::keys::key_columns!(),
                " FROM keys ORDER BY user, created, credential_id"
            ))
            .and_then(|mut s| {
                s.query_map([], super::keys::key_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        let ssh_keys = self
            .conn
            .prepare(concat!(
                "SELECT ",
                super::ssh_keys::ssh_key_columns!(),
                " FROM ssh_keys ORDER BY user, created, fingerprint"
            ))
            .and_then(|mut s| {
                s.query_map([], super::ssh_keys::key_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        let audit = super::audit::audit(self, AuditFilter::default(), u32::MAX)?;
        Ok(Snapshot {
            passes,
            keys,
            ssh_keys,
            audit,
        })
    }
}
