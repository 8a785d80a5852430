//! The SQLite backend: one file, opened per process, in WAL mode. This
//! module opens and configures it; the files beside it each do one job
//! (schema, durability, files on disk, and one per table).

mod audit;
mod durability;
mod files;
mod keys;
mod migrations;
mod offline;
mod passes;
mod snapshot;
mod ssh_keys;
#[cfg(test)]
mod tests;

pub use offline::{Offline, OfflineKeyUse};

use audit::insert_audit;
use durability::{Durability, BUSY_TIMEOUT, NEW_STORE_PAGE_BYTES};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use tap_core::audit::AuditRecord;
use tap_core::hashing::PassProof;
use tap_core::keys::credential::KeyCredential;
use tap_core::pass::PassRecord;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::{AddKey, AuditFilter, FailureCount, Store, StoreError, StoreErrorKind};
use tap_core::timefmt::Timestamp;

type Result<T> = std::result::Result<T, StoreError>;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: usize = migrations::MIGRATIONS.len();

/// How to open the store.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Create the file (0600) and its directory (0700) when missing.
    pub create: bool,
    /// Refuse a store (file, directory, side files) that is not this
    /// process's alone (see `files`). Always on in the daemon.
    pub check_trust: bool,
}

/// The SQLite store: core's `Store` over one connection.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// What the connection's `synchronous` is set to.
    durability: Durability,
    /// tapd's offline copy of a fleet's keys: key sign-ins are noted for
    /// reconciling with the database (`offline`).
    offline_copy: bool,
}

/// A local failure (a file, or SQLite) at `path`.
fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    err_of(StoreErrorKind::Io, path, what, e)
}

fn err_of(kind: StoreErrorKind, path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(kind, format!("store {}: {what}: {e}", path.display()))
}

impl SqliteStore {
    /// Opens (with `create`, first makes) the SQLite store at `path`, and
    /// brings its schema up to date.
    pub fn open(path: &Path, options: OpenOptions) -> Result<SqliteStore> {
        if options.create {
            files::create_file(path, options.check_trust)?;
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !options.create => {
                return Err(StoreError::io(format!(
                    "store {} does not exist; an administrator creates it with `tapctl init`",
                    path.display()
                )))
            }
            Err(e) => return Err(err(path, "cannot be reached", e)),
        };
        if options.check_trust {
            files::check_store_file(path, &meta)?;
        }
        // Before SQLite touches them: side files outlive the connection,
        // and one someone else left would be read.
        files::check_side_files(path, &meta, options.check_trust)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| err(path, "cannot open", e))?;
        // Before the first statement: another opener may be rebuilding the
        // log's index, and a reader without a timeout would fail on it.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err(path, "busy timeout", e))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            // The build's default for a WAL connection (.cargo/config.toml:
            // SQLITE_DEFAULT_WAL_SYNCHRONOUS=1), so a multi-use sign-in, the
            // commonest write, compiles no pragma. Were the default FULL, that
            // commit would only be synced too: every Synced write sets FULL.
            durability: Durability::Atomic,
            offline_copy: false,
        };
        let version = store.schema_version()?;
        // A file without our schema (empty, or some other SQLite database)
        // is corrupt for a reader, not a store to set up: the sign-in path
        // must fail closed on it, not build tables and find "no pass".
        if !options.create && version == 0 {
            return Err(StoreError::schema(format!(
                "store {} holds no pam_tap schema (empty or another database); \
                 an administrator recreates it with `tapctl init`",
                path.display()
            )));
        }
        if version == 0 {
            // Before anything is written: it fixes the file's layout.
            store
                .conn
                .pragma_update(None, "page_size", NEW_STORE_PAGE_BYTES)
                .map_err(|e| err(path, "page size", e))?;
        }
        store.configure()?;
        store.migrate(version)?;
        Ok(store)
    }

    /// Opens the store a policy names, as the daemon does: it must be this
    /// process's alone (owner = effective uid, 0600 in a directory nobody
    /// else may write). The policy's `store_group` is ignored.
    pub fn open_for(policy: &tap_core::policy::Policy, create: bool) -> Result<SqliteStore> {
        SqliteStore::open(
            policy.store.sqlite_path(),
            OpenOptions {
                create,
                check_trust: true,
            },
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one conditional change; its audit record commits with it, and
    /// only when a row changed. True when one did.
    fn change_audited(
        &mut self,
        durability: Durability,
        sql: &str,
        params: impl rusqlite::Params,
        audit: &AuditRecord,
    ) -> Result<bool> {
        self.write(durability, |tx| {
            // Cached: a sign-in runs the same few statements every time.
            let changed = tx.prepare_cached(sql)?.execute(params)?;
            if changed == 1 {
                insert_audit(tx, audit)?;
            }
            Ok(changed == 1)
        })
    }

    /// Runs `work` in one immediate (write-locking) transaction, rolled
    /// back unless it commits. BEGIN and COMMIT are cached statements like
    /// the rest: compiling the two cost as much as a sign-in's write.
    fn write<T>(
        &mut self,
        durability: Durability,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.set_durability(durability)?;
        let cannot = |what, e| err(&self.path, what, e);
        let run = |sql| {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut stmt| stmt.execute([]))
        };
        run("BEGIN IMMEDIATE").map_err(|e| cannot("cannot write", e))?;
        let open = Open(&self.conn);
        let value = work(&self.conn).map_err(|e| cannot("cannot write", e))?;
        run("COMMIT").map_err(|e| cannot("cannot commit", e))?;
        drop(open);
        self.empty_log_when_large();
        Ok(value)
    }
}

/// A write transaction begun on a connection: rolled back when dropped
/// before it committed (an error, or a panic in a handler).
struct Open<'a>(&'a Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl Store for SqliteStore {
    fn pass(&self, user: &str) -> Result<Option<PassRecord>> {
        passes::pass(self, user)
    }

    fn passes(&self) -> Result<Vec<PassRecord>> {
        passes::passes(self)
    }

    fn put_pass(&mut self, pass: &PassRecord, audit: &AuditRecord) -> Result<Option<PassRecord>> {
        passes::put_pass(self, pass, audit)
    }

    fn revoke(&mut self, user: &str, now: Timestamp, audit: &AuditRecord) -> Result<bool> {
        passes::revoke(self, user, now, audit)
    }

    fn record_success(
        &mut self,
        pass: &PassRecord,
        _proof: &PassProof,
        now: Timestamp,
        enroll_until: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        passes::record_success(self, pass, now, enroll_until, audit)
    }

    fn record_failure(
        &mut self,
        user: &str,
        id: i64,
        now: Timestamp,
        max_failures: u32,
        audit: &dyn Fn(FailureCount) -> Vec<AuditRecord>,
    ) -> Result<FailureCount> {
        passes::record_failure(self, user, id, now, max_failures, audit)
    }

    fn append_audit(&mut self, audit: &AuditRecord) -> Result<()> {
        audit::append_audit(self, audit)
    }

    fn audit_where(&self, filter: AuditFilter<'_>, limit: u32) -> Result<Vec<AuditRecord>> {
        audit::audit(self, filter, limit)
    }

    fn has_own_record(&self, user: &str, detail_end: &str) -> Result<bool> {
        audit::has_record(self, user, detail_end)
    }

    fn keys(&self, user: &str) -> Result<Vec<KeyCredential>> {
        keys::keys(self, user)
    }

    fn add_key(
        &mut self,
        key: &KeyCredential,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey> {
        keys::add_key(self, key, max_keys, audit)
    }

    fn remove_key(
        &mut self,
        user: &str,
        credential_id: &[u8],
        audit: &AuditRecord,
    ) -> Result<bool> {
        keys::remove_key(self, user, credential_id, audit)
    }

    fn record_key_use(
        &mut self,
        key: &KeyCredential,
        new_count: u32,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        keys::record_key_use(self, key, new_count, now, audit)
    }

    fn ssh_keys(&self, user: &str) -> Result<Vec<SshKeyRecord>> {
        ssh_keys::ssh_keys(self, user)
    }

    fn add_ssh_key(
        &mut self,
        key: &SshKeyRecord,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey> {
        ssh_keys::add_ssh_key(self, key, max_keys, audit)
    }

    fn remove_ssh_key(
        &mut self,
        user: &str,
        fingerprint: &str,
        audit: &AuditRecord,
    ) -> Result<bool> {
        ssh_keys::remove_ssh_key(self, user, fingerprint, audit)
    }

    fn record_ssh_key_use(
        &mut self,
        user: &str,
        fingerprint: &str,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        ssh_keys::record_ssh_key_use(self, user, fingerprint, now, audit)
    }
}
