//! The SQLite store: passes (hashes only) and the audit trail.
//!
//! WAL with `synchronous=FULL`, so a consumed one-time pass stays consumed
//! after a crash; every state change and its audit record commit together.

use crate::audit::AuditRecord;
use crate::keys::credential::KeyCredential;
use crate::pass::PassRecord;
use crate::timefmt::Timestamp;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Each entry takes the schema from version N to N+1; never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: passes and audit.
    "CREATE TABLE passes (
        user        TEXT PRIMARY KEY NOT NULL,
        id          INTEGER NOT NULL,
        phc         TEXT NOT NULL,
        issued_by   TEXT NOT NULL,
        created     INTEGER NOT NULL,
        start       INTEGER NOT NULL,
        expires     INTEGER NOT NULL,
        one_time    INTEGER NOT NULL,
        used_at     INTEGER,
        last_used   INTEGER,
        failures    INTEGER NOT NULL DEFAULT 0,
        locked_at   INTEGER,
        revoked_at  INTEGER
    ) STRICT;
    CREATE TABLE audit (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        time     INTEGER NOT NULL,
        event    TEXT NOT NULL,
        user     TEXT NOT NULL,
        actor    TEXT NOT NULL,
        service  TEXT NOT NULL,
        rhost    TEXT NOT NULL,
        tty      TEXT NOT NULL,
        detail   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_user ON audit (user, seq);",
    // 2: security keys, and the enrollment window a pass sign-in opens.
    "CREATE TABLE keys (
        user          TEXT NOT NULL,
        credential_id BLOB NOT NULL,
        public_key    BLOB NOT NULL,
        algorithm     INTEGER NOT NULL,
        aaguid        BLOB NOT NULL,
        sign_count    INTEGER NOT NULL,
        label         TEXT NOT NULL,
        attestation   TEXT NOT NULL,
        created       INTEGER NOT NULL,
        last_used     INTEGER,
        PRIMARY KEY (user, credential_id)
    ) STRICT;
    ALTER TABLE passes ADD COLUMN enroll_until INTEGER;",
    // 3: each audit record wrote three pages where one does. The index served
    // no query (`tapctl audit --user` scans newest first and stops at its
    // limit; SQLite's plan never used it) and AUTOINCREMENT's counter row
    // guards against reuse after deletes, which never happen: seq still only
    // grows. Every page a sign-in writes is one more its log holds, so each
    // later open replays it and the log fills and is emptied sooner.
    "CREATE TABLE audit_v3 (
        seq      INTEGER PRIMARY KEY,
        time     INTEGER NOT NULL,
        event    TEXT NOT NULL,
        user     TEXT NOT NULL,
        actor    TEXT NOT NULL,
        service  TEXT NOT NULL,
        rhost    TEXT NOT NULL,
        tty      TEXT NOT NULL,
        detail   TEXT NOT NULL
    ) STRICT;
    INSERT INTO audit_v3 SELECT seq, time, event, user, actor, service, rhost, tty, detail FROM audit;
    DROP TABLE audit;
    ALTER TABLE audit_v3 RENAME TO audit;
    DELETE FROM sqlite_sequence WHERE name = 'audit';",
    // 4: the clear pass's length, so an answer that cannot be the pass (a
    // password typed at the one prompt) is told apart without hashing and
    // is never counted as a wrong pass. NULL for passes issued before.
    "ALTER TABLE passes ADD COLUMN length INTEGER;",
];

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write-ahead log outlives each connection (see `configure`); the
/// writer that grows it past this size checkpoints and empties it. Every
/// open replays the log to rebuild its index, and emptying costs a few
/// fsyncs: this balances the two (25 to 50 sign-ins, at one or two
/// changed pages each).
const LOG_EMPTY_ABOVE_BYTES: u64 = 64 * 1024;

/// Page size of a new store. A sign-in changes one audit row (~150 bytes)
/// and one pass row (~300): each is a whole page in the log, and every
/// later open reads and checksums the log. Small pages make the log a
/// quarter the size (measured: ~0.1 ms less per sign-in than 4 KiB).
/// Existing stores keep the size they were made with.
const NEW_STORE_PAGE_BYTES: i64 = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

type Result<T> = std::result::Result<T, StoreError>;

/// How to open the store.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions<'a> {
    /// Create the file (and its directory) when missing.
    pub create: bool,
    /// The store's group: owns new files, and may write existing ones.
    /// Looked up only when needed: a missing group costs a full NSS walk.
    pub group: Option<&'a str>,
    /// Refuse a store that is not root's (see `trust`). On when running as root.
    pub check_trust: bool,
}

impl OpenOptions<'_> {
    fn group_id(&self) -> Result<Option<u32>> {
        match self.group {
            Some(name) => crate::accounts::gid_by_name(name).map_err(StoreError),
            None => Ok(None),
        }
    }
}

/// Outcome of adding a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKey {
    Added,
    /// The user already has the policy's `max_keys`.
    TooMany,
    /// This credential is already enrolled for the user.
    Duplicate,
}

/// Outcome of counting a wrong pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: u32,
    /// This failure reached the limit and locked the pass.
    pub locked_now: bool,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// What the connection's `synchronous` is set to.
    durability: Durability,
}

/// How far a commit has reached when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// On disk (`synchronous=FULL`): everything that guards access.
    Synced,
    /// Atomic, on disk with the next synced commit or checkpoint
    /// (`synchronous=NORMAL` in WAL): a power cut may lose it, never half.
    Atomic,
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("store {}: {what}: {e}", path.display()))
}

impl Store {
    pub fn open(path: &Path, options: OpenOptions) -> Result<Store> {
        if options.create {
            create_file(path, options.group_id()?)?;
        }
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !options.create => {
                return Err(StoreError(format!(
                    "store {} does not exist; an administrator creates it with `tapctl init`",
                    path.display()
                )))
            }
            Err(e) => return Err(err(path, "cannot be reached", e)),
        };
        if options.check_trust {
            if !meta.is_file() {
                return Err(StoreError(format!(
                    "store {} is not a regular file",
                    path.display()
                )));
            }
            // Only a group-writable file or directory needs the group's id.
            let parent = path.parent().unwrap_or(Path::new("/"));
            let parent_meta =
                std::fs::metadata(parent).map_err(|e| err(parent, "cannot read", e))?;
            let group = if (meta.mode() | parent_meta.mode()) & 0o020 != 0 {
                options.group_id()?
            } else {
                None
            };
            crate::trust::check_owner_and_mode(path, &meta, group).map_err(StoreError)?;
            crate::trust::check_owner_and_mode(parent, &parent_meta, group).map_err(StoreError)?;
        }
        // Before SQLite touches them: SQLite creates missing side files for
        // whoever opens, and run as root takes over ones a user made.
        check_side_files(path, &meta, options.check_trust)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| err(path, "cannot open", e))?;
        // Before the first statement: another opener may be rebuilding the
        // log's index, and a reader without a timeout would fail on it.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err(path, "busy timeout", e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            // The build's default for a WAL connection (.cargo/config.toml:
            // SQLITE_DEFAULT_WAL_SYNCHRONOUS=1), so a multi-use sign-in, the
            // commonest write, compiles no pragma. Were the default FULL, that
            // commit would only be synced too: every Synced write sets FULL.
            durability: Durability::Atomic,
        };
        let version = store.schema_version()?;
        // A file without our schema (empty, or some other SQLite database)
        // is corrupt for a reader, not a store to set up: the sign-in path
        // must fail closed on it, not build tables and find "no pass".
        if !options.create && version == 0 {
            return Err(StoreError(format!(
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

    fn configure(&self) -> Result<()> {
        // journal_mode is kept in the file; reading it first avoids taking a
        // write lock on every open.
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| err(&self.path, "unreadable or corrupt", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            self.conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
                .map_err(|e| err(&self.path, "cannot switch to WAL", e))?;
        }
        // Each sign-in opens the store, usually as its only connection, and
        // closes it. SQLite's default close checkpoints (two fsyncs) and
        // deletes the -wal and -shm files, which the next open creates again:
        // most of a sign-in's own cost. So they outlive the connection
        // (root made them; `check_side_files`), and `empty_log_when_large`
        // keeps the log short.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| err(&self.path, "configuration", e))?;
        Ok(())
    }

    /// Sets `synchronous` for the next commit, only when it changes: each
    /// pragma is a statement to compile, on every sign-in.
    fn set_durability(&mut self, wanted: Durability) -> Result<()> {
        if self.durability != wanted {
            let level = match wanted {
                Durability::Synced => "FULL",
                Durability::Atomic => "NORMAL",
            };
            self.conn
                .pragma_update(None, "synchronous", level)
                .map_err(|e| err(&self.path, "pragmas", e))?;
            self.durability = wanted;
        }
        Ok(())
    }

    fn schema_version(&self) -> Result<usize> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err(&self.path, "unreadable or corrupt", e))?;
        usize::try_from(version).map_err(|_| err(&self.path, "schema version", version))
    }

    fn migrate(&mut self, version: usize) -> Result<()> {
        let known = MIGRATIONS.len();
        if version == known {
            return Ok(());
        }
        if version > known {
            return Err(StoreError(format!(
                "store {} has schema version {version}; this pam_tap understands up to {known}",
                self.path.display()
            )));
        }
        self.set_durability(Durability::Synced)?;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&path, "migration", e))?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err(&path, "migration", e))?;
        for (index, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(known))
        {
            tx.execute_batch(step)
                .map_err(|e| err(&path, &format!("migration {}", index + 1), e))?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(index + 1).unwrap_or(i64::MAX),
            )
            .map_err(|e| err(&path, "migration", e))?;
        }
        tx.commit().map_err(|e| err(&path, "migration commit", e))
    }

    /// Opens the store a policy names, with its group, checking ownership
    /// and modes whenever this process runs with root's effective uid.
    pub fn open_for(policy: &crate::policy::Policy, create: bool) -> Result<Store> {
        // SAFETY: geteuid cannot fail.
        let check_trust = unsafe { libc::geteuid() } == 0;
        let group = Some(policy.store_group.as_str());
        Store::open(
            &policy.store,
            OpenOptions {
                create,
                group,
                check_trust,
            },
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn pass(&self, user: &str) -> Result<Option<PassRecord>> {
        self.conn
            .prepare_cached("SELECT * FROM passes WHERE user = ?1")
            .and_then(|mut stmt| stmt.query_row([user], pass_from_row).optional())
            .map_err(|e| err(&self.path, "reading a pass", e))
    }

    pub fn passes(&self) -> Result<Vec<PassRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM passes ORDER BY user")
            .map_err(|e| err(&self.path, "listing passes", e))?;
        let rows = stmt
            .query_map([], pass_from_row)
            .map_err(|e| err(&self.path, "listing passes", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| err(&self.path, "listing passes", e))
    }

    /// Stores a new pass for its user, replacing any old one. Returns the old one.
    pub fn put_pass(
        &mut self,
        pass: &PassRecord,
        audit: &AuditRecord,
    ) -> Result<Option<PassRecord>> {
        self.write(Durability::Synced, |tx| {
            let old = tx.query_row("SELECT * FROM passes WHERE user = ?1", [&pass.user], pass_from_row).optional()?;
            tx.execute(
                "INSERT OR REPLACE INTO passes
                 (user, id, phc, issued_by, created, start, expires, one_time, used_at, last_used, failures, locked_at, revoked_at, length)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, 0, NULL, NULL, ?9)",
                params![pass.user, pass.id, pass.phc, pass.issued_by, pass.created, pass.start, pass.expires, pass.one_time, pass.length.and_then(|l| i64::try_from(l).ok())],
            )?;
            insert_audit(tx, audit)?;
            Ok(old)
        })
    }

    /// Marks the user's pass revoked. False when there was nothing to revoke.
    pub fn revoke(&mut self, user: &str, now: Timestamp, audit: &AuditRecord) -> Result<bool> {
        self.change_audited(
            Durability::Synced,
            "UPDATE passes SET revoked_at = ?2 WHERE user = ?1 AND revoked_at IS NULL",
            params![user, now],
            audit,
        )
    }

    /// Records a right pass. The update re-checks every condition, so of many
    /// concurrent sign-ins with one one-time pass exactly one gets `true`.
    ///
    /// Consuming a one-time pass is synced to disk before the sign-in
    /// succeeds. A multi-use pass changes no state that guards access (only
    /// `last_used`, the enrollment window and the audit row, which syslog
    /// also carries; losing the window only closes it), so that commit is
    /// not fsynced at once: WAL keeps it atomic, and the next synced commit
    /// or checkpoint makes it durable. A power cut may lose it, never half
    /// of it. That saves one flush (about 0.7 ms here) on the login path.
    pub fn record_success(
        &mut self,
        pass: &PassRecord,
        now: Timestamp,
        enroll_until: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        let durability = if pass.one_time {
            Durability::Synced
        } else {
            Durability::Atomic
        };
        self.change_audited(
            durability,
            "UPDATE passes
             SET last_used = ?4, used_at = CASE WHEN one_time = 1 THEN ?4 ELSE used_at END,
                 enroll_until = ?5
             WHERE user = ?1 AND id = ?2 AND one_time = ?3 AND revoked_at IS NULL AND locked_at IS NULL
               AND (one_time = 0 OR used_at IS NULL) AND start <= ?4 AND expires > ?4",
            params![pass.user, pass.id, pass.one_time, now, enroll_until],
            audit,
        )
    }

    /// Counts a wrong pass and locks the pass when the count reaches
    /// `max_failures`. `audit` makes the records from the count this very
    /// update produced (concurrent failures each see their own), and they
    /// commit with it.
    pub fn record_failure(
        &mut self,
        user: &str,
        id: i64,
        now: Timestamp,
        max_failures: u32,
        audit: impl FnOnce(FailureCount) -> Vec<AuditRecord>,
    ) -> Result<FailureCount> {
        self.write(Durability::Synced, |tx| {
            let counted = tx
                .query_row(
                    "UPDATE passes
                     SET failures = failures + 1,
                         locked_at = CASE WHEN locked_at IS NULL AND failures + 1 >= ?4 THEN ?3 ELSE locked_at END
                     WHERE user = ?1 AND id = ?2
                     RETURNING failures, locked_at = ?3",
                    params![user, id, now, max_failures],
                    |r| Ok(FailureCount { failures: r.get(0)?, locked_now: r.get::<_, Option<bool>>(1)?.unwrap_or(false) }),
                )
                .optional()?;
            let counted = counted.unwrap_or(FailureCount { failures: 0, locked_now: false });
            for record in audit(counted) {
                insert_audit(tx, &record)?;
            }
            Ok(counted)
        })
    }

    pub fn append_audit(&mut self, audit: &AuditRecord) -> Result<()> {
        self.write(Durability::Synced, |tx| insert_audit(tx, audit))
    }

    /// Audit records, oldest first; the newest `limit` of them.
    pub fn audit(&self, user: Option<&str>, limit: u32) -> Result<Vec<AuditRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT * FROM (SELECT seq, time, event, user, actor, service, rhost, tty, detail FROM audit
                 WHERE ?1 IS NULL OR user = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
            )
            .map_err(|e| err(&self.path, "reading audit", e))?;
        let rows = stmt
            .query_map(params![user, limit], |r| {
                Ok(AuditRecord {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    event: r.get(2)?,
                    user: r.get(3)?,
                    actor: r.get(4)?,
                    service: r.get(5)?,
                    rhost: r.get(6)?,
                    tty: r.get(7)?,
                    detail: r.get(8)?,
                })
            })
            .map_err(|e| err(&self.path, "reading audit", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| err(&self.path, "reading audit", e))
    }

    pub fn keys(&self, user: &str) -> Result<Vec<KeyCredential>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT * FROM keys WHERE user = ?1 ORDER BY created, credential_id")
            .map_err(|e| err(&self.path, "reading keys", e))?;
        let rows = stmt
            .query_map([user], key_from_row)
            .map_err(|e| err(&self.path, "reading keys", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| err(&self.path, "reading keys", e))
    }

    /// Adds a key unless the user already has `max_keys` or this one.
    pub fn add_key(
        &mut self,
        key: &KeyCredential,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey> {
        self.write(Durability::Synced, |tx| {
            let count: i64 = tx.query_row("SELECT count(*) FROM keys WHERE user = ?1", [&key.user], |r| r.get(0))?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= max_keys {
                return Ok(AddKey::TooMany);
            }
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO keys
                 (user, credential_id, public_key, algorithm, aaguid, sign_count, label, attestation, created, last_used)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
                params![
                    key.user,
                    key.credential_id,
                    key.public_key,
                    key.algorithm,
                    key.aaguid.as_slice(),
                    key.sign_count,
                    key.label,
                    key.attestation,
                    key.created
                ],
            )?;
            if inserted == 0 {
                return Ok(AddKey::Duplicate);
            }
            insert_audit(tx, audit)?;
            Ok(AddKey::Added)
        })
    }

    /// Removes one key. False when the user has no such key.
    pub fn remove_key(
        &mut self,
        user: &str,
        credential_id: &[u8],
        audit: &AuditRecord,
    ) -> Result<bool> {
        self.change_audited(
            Durability::Synced,
            "DELETE FROM keys WHERE user = ?1 AND credential_id = ?2",
            params![user, credential_id],
            audit,
        )
    }

    /// Records a verified key sign-in. The counter moves only from the value
    /// the verifier checked against, so two sign-ins racing with one counter
    /// value (a cloned key) cannot both succeed. Synced: the counter guards
    /// against clones.
    pub fn record_key_use(
        &mut self,
        key: &KeyCredential,
        new_count: u32,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        self.change_audited(
            Durability::Synced,
            "UPDATE keys SET sign_count = ?4, last_used = ?5
             WHERE user = ?1 AND credential_id = ?2 AND sign_count = ?3",
            params![key.user, key.credential_id, key.sign_count, new_count, now],
            audit,
        )
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
            let changed = tx.execute(sql, params)?;
            if changed == 1 {
                insert_audit(tx, audit)?;
            }
            Ok(changed == 1)
        })
    }

    /// Runs `work` in one immediate (write-locking) transaction.
    fn write<T>(
        &mut self,
        durability: Durability,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.set_durability(durability)?;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&path, "cannot write", e))?;
        let value = work(&tx).map_err(|e| err(&path, "cannot write", e))?;
        tx.commit().map_err(|e| err(&path, "cannot commit", e))?;
        self.empty_log_when_large();
        Ok(value)
    }

    /// Copies the log into the database and truncates it once it passes
    /// [`LOG_EMPTY_ABOVE_BYTES`]. (SQLite's own automatic checkpoint would
    /// not do: a new connection's index rebuild forgets what was copied, so
    /// with one connection per sign-in the log would never start over.)
    /// Maintenance, not part of the write: the data is committed already,
    /// and if a reader is in the log, the next writer tries again.
    fn empty_log_when_large(&self) {
        let large = std::fs::metadata(side_file(&self.path, "-wal"))
            .is_ok_and(|meta| meta.len() > LOG_EMPTY_ABOVE_BYTES);
        if !large {
            return;
        }
        // Never make a sign-in wait for readers to leave the log.
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
    }
}

fn insert_audit(tx: &rusqlite::Transaction<'_>, a: &AuditRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, event, user, actor, service, rhost, tty, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![a.time, a.event, a.user, a.actor, a.service, a.rhost, a.tty, a.detail])?;
    Ok(())
}

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyCredential> {
    let aaguid: Vec<u8> = r.get("aaguid")?;
    Ok(KeyCredential {
        user: r.get("user")?,
        credential_id: r.get("credential_id")?,
        public_key: r.get("public_key")?,
        algorithm: r.get("algorithm")?,
        aaguid: aaguid.try_into().unwrap_or([0; 16]),
        sign_count: r.get("sign_count")?,
        label: r.get("label")?,
        attestation: r.get("attestation")?,
        created: r.get("created")?,
        last_used: r.get("last_used")?,
    })
}

fn pass_from_row(r: &Row<'_>) -> rusqlite::Result<PassRecord> {
    Ok(PassRecord {
        user: r.get("user")?,
        id: r.get("id")?,
        phc: r.get("phc")?,
        issued_by: r.get("issued_by")?,
        created: r.get("created")?,
        start: r.get("start")?,
        expires: r.get("expires")?,
        one_time: r.get("one_time")?,
        used_at: r.get("used_at")?,
        last_used: r.get("last_used")?,
        failures: r.get("failures")?,
        locked_at: r.get("locked_at")?,
        revoked_at: r.get("revoked_at")?,
        enroll_until: r.get("enroll_until")?,
        length: r
            .get::<_, Option<i64>>("length")?
            .and_then(|l| usize::try_from(l).ok()),
    })
}

/// The -wal and -shm files hold committed data and the index to it, and
/// SQLite creates them, owned by the caller, for whoever opens the store
/// while they are missing. A user running the setgid tapctl would own them
/// and could write them from another process. So they are made by the
/// store's owner (root's `tapctl init`, or any root sign-in) and kept
/// (`configure`): another user's opener refuses a store without them, and
/// nobody reads through side files that are not the store owner's (root's
/// SQLite would even take such files over, leaving the user's descriptors
/// working). With `check_trust`, their modes are checked like the store's.
fn check_side_files(path: &Path, store: &std::fs::Metadata, check_trust: bool) -> Result<()> {
    // SAFETY: geteuid cannot fail.
    let opener_owns_store = unsafe { libc::geteuid() } == store.uid();
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::symlink_metadata(&side) {
            Ok(meta) if meta.uid() != store.uid() || !meta.is_file() => {
                return Err(StoreError(format!(
                    "store {}: {} is owned by uid {}, not by the store's owner (uid {}); \
                     refusing to read through it (as root: give it back to root if you trust it, \
                     or remove it and lose its latest commits)",
                    path.display(),
                    side.display(),
                    meta.uid(),
                    store.uid()
                )))
            }
            Ok(meta) if check_trust => {
                crate::trust::check_owner_and_mode(&side, &meta, Some(store.gid()))
                    .map_err(StoreError)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opener_owns_store => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError(format!(
                    "store {}: {} is missing, and only the store's owner may create it; \
                     any tapctl command run as root (e.g. `sudo tapctl status`) restores it",
                    path.display(),
                    side.display()
                )))
            }
            Err(e) => return Err(err(&side, "cannot read", e)),
        }
    }
    Ok(())
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}

/// Creates the store's directory (0770) and file (0660), owned root and the
/// store's group; without that group, root's alone (0700, 0600). Existing
/// ones are left as they are.
fn create_file(path: &Path, group: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (dir_mode, file_mode) = if group.is_some() {
        (0o770, 0o660)
    } else {
        (0o700, 0o600)
    };
    // The umask may have narrowed a mode; set both exactly, then the group.
    let settle = |p: &Path, mode: u32| -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(p, "cannot set mode", e))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(p, Some(0), Some(gid))
                .map_err(|e| err(p, "cannot set owner", e))?;
        }
        Ok(())
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(dir_mode)
                .create(dir)
                .map_err(|e| err(dir, "cannot create directory", e))?;
            settle(dir, dir_mode)?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file_mode)
        .open(path)
    {
        Ok(_) => settle(path, file_mode),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(path, "cannot create", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::tests::sample;

    fn audit(event: &str) -> AuditRecord {
        AuditRecord::new(0, event, "alice", "root")
    }

    /// How tapctl and the module open an existing store, trust aside.
    const READER: OpenOptions<'static> = OpenOptions {
        create: false,
        group: None,
        check_trust: false,
    };

    /// The refusal an open meets, or "" when it opens.
    fn open_error(path: &Path, options: OpenOptions) -> String {
        Store::open(path, options)
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    fn fresh() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let options = OpenOptions {
            create: true,
            group: None,
            check_trust: false,
        };
        let store =
            Store::open(&dir.path().join("tap.db"), options).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    #[test]
    fn a_new_store_is_wal_and_current() -> Result<()> {
        let (_dir, store) = fresh();
        assert_eq!(pragma::<String>(&store, "journal_mode")?, "wal");
        assert_eq!(store.schema_version()?, MIGRATIONS.len());
        assert_eq!(pragma::<i64>(&store, "synchronous")?, 2, "FULL");
        Ok(())
    }

    #[test]
    fn missing_store_is_an_error_not_a_new_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("absent.db");
        let error = open_error(&path, READER);
        assert!(error.contains("tapctl init"), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn garbage_file_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tap.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap_or_else(|e| panic!("{e}"));
        let error = open_error(&path, READER);
        assert!(error.contains("corrupt"), "{error}");
    }

    #[test]
    fn empty_or_foreign_database_is_refused_by_readers_and_left_alone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap_or_else(|e| panic!("{e}"));
        let error = open_error(&empty, READER);
        assert!(error.contains("no pam_tap schema"), "{error}");
        assert_eq!(
            std::fs::metadata(&empty).map(|m| m.len()).ok(),
            Some(0),
            "not written"
        );

        let foreign = dir.path().join("foreign.db");
        rusqlite::Connection::open(&foreign)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Store::open(&foreign, READER).is_err());
        let tables: i64 = rusqlite::Connection::open(&foreign)
            .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)))
            .unwrap_or(0);
        assert_eq!(tables, 1, "no tables added to a foreign database");
    }

    #[test]
    fn root_refuses_side_files_another_user_owns() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // needs root to hand the files to another uid
        }
        let (dir, holder) = fresh();
        holder.pass("alice").unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tap.db");
        let trusted = OpenOptions {
            create: false,
            group: None,
            check_trust: true,
        };
        assert!(Store::open(&path, trusted).is_ok(), "root's own side files");
        for side in ["tap.db-wal", "tap.db-shm"] {
            std::os::unix::fs::chown(dir.path().join(side), Some(65534), None)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let error = open_error(&path, trusted);
        assert!(error.contains("not by the store's owner"), "{error}");
        drop(holder);
    }

    #[test]
    fn side_files_outlive_the_connection_and_the_log_stays_short() -> Result<()> {
        let (dir, mut store) = fresh();
        let wal = dir.path().join("tap.db-wal");
        let mut largest = 0;
        for _ in 0..400 {
            store.append_audit(&audit("filler"))?;
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        assert!(
            largest <= LOG_EMPTY_ABOVE_BYTES + 64 * 1024,
            "log grew to {largest} bytes"
        );
        drop(store);
        for side in ["tap.db-wal", "tap.db-shm"] {
            assert!(dir.path().join(side).exists(), "{side} removed on close");
        }
        let reopened = Store::open(&dir.path().join("tap.db"), READER)?;
        assert_eq!(reopened.audit(None, 1000)?.len(), 400, "nothing lost");
        Ok(())
    }

    /// Only the store's owner may be the one whose SQLite creates the side
    /// files; anyone else (a user's setgid tapctl) is refused without them.
    #[test]
    fn another_users_opener_never_creates_side_files() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // needs root to hand the store to another uid
        }
        let (dir, store) = fresh();
        // Everything into the main file first: the log holds committed data.
        store
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let path = dir.path().join("tap.db");
        for side in ["tap.db-wal", "tap.db-shm"] {
            std::fs::remove_file(dir.path().join(side)).unwrap_or_else(|e| panic!("{e}"));
        }
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap_or_else(|e| panic!("{e}"));
        let error = open_error(&path, READER);
        assert!(error.contains("is missing"), "{error}");
        assert!(!dir.path().join("tap.db-wal").exists());
        assert!(!dir.path().join("tap.db-shm").exists());
        // The owner opens it and makes them; then others may read through.
        std::os::unix::fs::chown(&path, Some(0), None).unwrap_or_else(|e| panic!("{e}"));
        drop(Store::open(&path, READER).unwrap_or_else(|e| panic!("{e}")));
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap_or_else(|e| panic!("{e}"));
        for side in ["tap.db-wal", "tap.db-shm"] {
            std::os::unix::fs::chown(dir.path().join(side), Some(65534), None)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(Store::open(&path, READER).is_ok());
    }

    #[test]
    fn newer_schema_is_refused() -> Result<()> {
        let (dir, store) = fresh();
        store
            .conn
            .pragma_update(None, "user_version", 99)
            .map_err(|e| StoreError(e.to_string()))?;
        drop(store);
        let error = open_error(&dir.path().join("tap.db"), READER);
        assert!(error.contains("schema version 99"), "{error}");
        Ok(())
    }

    #[test]
    fn put_replaces_and_returns_the_old_pass() -> Result<()> {
        let (_dir, mut store) = fresh();
        let first = sample(100);
        assert_eq!(store.put_pass(&first, &audit("pass.issued"))?, None);
        let second = PassRecord {
            id: 8,
            ..sample(200)
        };
        assert_eq!(
            store
                .put_pass(&second, &audit("pass.replaced"))?
                .map(|p| p.id),
            Some(7)
        );
        assert_eq!(store.pass("alice")?.map(|p| p.id), Some(8));
        assert_eq!(store.passes()?.len(), 1);
        assert_eq!(store.audit(Some("alice"), 10)?.len(), 2);
        Ok(())
    }

    #[test]
    fn one_time_pass_is_consumed_once() -> Result<()> {
        let (_dir, mut store) = fresh();
        let pass = PassRecord {
            one_time: true,
            ..sample(100)
        };
        store.put_pass(&pass, &audit("pass.issued"))?;
        assert!(store.record_success(&pass, 150, 500, &audit("signin.pass.success"))?);
        assert!(!store.record_success(&pass, 151, 500, &audit("signin.pass.success"))?);
        assert_eq!(store.pass("alice")?.and_then(|p| p.used_at), Some(150));
        assert_eq!(store.pass("alice")?.and_then(|p| p.enroll_until), Some(500));
        Ok(())
    }

    /// One pragma's current value.
    fn pragma<T: rusqlite::types::FromSql>(store: &Store, name: &str) -> Result<T> {
        store
            .conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(|e| StoreError(e.to_string()))
    }

    fn synchronous(store: &Store) -> i64 {
        pragma(store, "synchronous").unwrap_or(-1)
    }

    #[test]
    fn only_a_multi_use_success_commits_unsynced() -> Result<()> {
        const FULL: i64 = 2;
        const NORMAL: i64 = 1;
        let (_dir, mut store) = fresh();
        let pass = sample(100);
        store.put_pass(&pass, &audit("pass.issued"))?;
        assert_eq!(synchronous(&store), FULL);
        assert!(store.record_success(&pass, 150, 500, &audit("signin.pass.success"))?);
        assert_eq!(synchronous(&store), NORMAL);
        store.record_failure("alice", pass.id, 151, 5, |_| {
            vec![audit("signin.pass.failure")]
        })?;
        assert_eq!(synchronous(&store), FULL);
        let one_time = PassRecord {
            one_time: true,
            id: 8,
            ..sample(100)
        };
        store.put_pass(&one_time, &audit("pass.issued"))?;
        assert!(store.record_success(&one_time, 152, 500, &audit("signin.pass.success"))?);
        assert_eq!(synchronous(&store), FULL);
        assert!(store.revoke("alice", 153, &audit("pass.revoked"))?);
        assert_eq!(synchronous(&store), FULL);
        Ok(())
    }

    /// `Store.durability` starts as the build's WAL default; were the two to
    /// differ, a sign-in would skip a pragma it needs.
    #[test]
    fn an_opened_store_starts_at_the_durability_it_assumes() -> Result<()> {
        let (dir, mut store) = fresh();
        store.put_pass(&sample(100), &audit("pass.issued"))?;
        drop(store);
        let mut reopened = Store::open(&dir.path().join("tap.db"), READER)?;
        reopened.pass("alice")?;
        assert_eq!(reopened.durability, Durability::Atomic);
        assert_eq!(
            synchronous(&reopened),
            1,
            "NORMAL: built without .cargo/config.toml?"
        );
        reopened.append_audit(&audit("filler"))?;
        assert_eq!(synchronous(&reopened), 2, "a synced write sets FULL");
        Ok(())
    }

    #[test]
    fn a_new_store_has_small_pages() -> Result<()> {
        let (_dir, store) = fresh();
        assert_eq!(pragma::<i64>(&store, "page_size")?, NEW_STORE_PAGE_BYTES);
        Ok(())
    }

    #[test]
    fn a_version_2_audit_log_keeps_its_records_and_numbering() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError(e.to_string()))?;
        let path = dir.path().join("tap.db");
        {
            let conn = Connection::open(&path).map_err(|e| StoreError(e.to_string()))?;
            for step in &MIGRATIONS[..2] {
                conn.execute_batch(step)
                    .map_err(|e| StoreError(e.to_string()))?;
            }
            conn.execute_batch(
                "PRAGMA journal_mode=WAL;
                 INSERT INTO audit (time, event, user, actor, service, rhost, tty, detail)
                 VALUES (1, 'pass.issued', 'alice', 'root', '', '', '', ''),
                        (2, 'pass.issued', 'bob', 'root', '', '', '', ''),
                        (3, 'pass.revoked', 'bob', 'root', '', '', '', '');
                 PRAGMA user_version = 2;",
            )
            .map_err(|e| StoreError(e.to_string()))?;
        }
        let mut store = Store::open(&path, READER)?;
        assert_eq!(store.schema_version()?, MIGRATIONS.len());
        store.append_audit(&audit("pass.issued"))?;
        let seqs: Vec<(i64, String)> = store
            .audit(None, 10)?
            .into_iter()
            .map(|a| (a.seq, a.event))
            .collect();
        assert_eq!(
            seqs,
            [
                (1, "pass.issued".to_string()),
                (2, "pass.issued".to_string()),
                (3, "pass.revoked".to_string()),
                (4, "pass.issued".to_string())
            ]
        );
        let leftovers: i64 = store
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'audit_by_user')
                      + (SELECT count(*) FROM sqlite_sequence)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| StoreError(e.to_string()))?;
        assert_eq!(leftovers, 0);
        Ok(())
    }

    #[test]
    fn success_rechecks_window_revocation_and_id() -> Result<()> {
        let (_dir, mut store) = fresh();
        let pass = sample(100);
        let replaced = PassRecord {
            id: 6,
            ..sample(100)
        };
        store.put_pass(&pass, &audit("pass.issued"))?;
        assert!(
            !store.record_success(&pass, 99, 500, &audit("x"))?,
            "before start"
        );
        assert!(
            !store.record_success(&pass, 100 + 3_600, 500, &audit("x"))?,
            "at expiry"
        );
        assert!(
            !store.record_success(&replaced, 150, 500, &audit("x"))?,
            "a replaced pass"
        );
        assert!(store.record_success(&pass, 150, 500, &audit("x"))?);
        assert!(
            store.record_success(&pass, 160, 500, &audit("x"))?,
            "multi-use"
        );
        assert!(store.revoke("alice", 170, &audit("pass.revoked"))?);
        assert!(!store.revoke("alice", 171, &audit("pass.revoked"))?);
        assert!(!store.record_success(&pass, 180, 500, &audit("x"))?);
        Ok(())
    }

    #[test]
    fn failures_lock_at_the_limit() -> Result<()> {
        let (_dir, mut store) = fresh();
        let pass = sample(100);
        store.put_pass(&pass, &audit("pass.issued"))?;
        let counts: Vec<FailureCount> = (0..4)
            .map(|i| store.record_failure("alice", 7, 110 + i, 3, |_| vec![audit("f")]))
            .collect::<Result<_>>()?;
        assert_eq!(
            counts.iter().map(|c| c.failures).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(
            counts.iter().map(|c| c.locked_now).collect::<Vec<_>>(),
            vec![false, false, true, false]
        );
        assert_eq!(store.pass("alice")?.and_then(|p| p.locked_at), Some(112));
        assert!(
            !store.record_success(&pass, 120, 500, &audit("x"))?,
            "locked"
        );
        Ok(())
    }

    fn key(user: &str, id: u8) -> KeyCredential {
        KeyCredential {
            user: user.into(),
            credential_id: vec![id; 16],
            public_key: vec![0xa5],
            algorithm: -7,
            aaguid: [id; 16],
            sign_count: 10,
            label: format!("key {id}"),
            attestation: "none".into(),
            created: 100,
            last_used: None,
        }
    }

    #[test]
    fn keys_add_list_limit_remove() -> Result<()> {
        let (_dir, mut store) = fresh();
        assert_eq!(
            store.add_key(&key("alice", 1), 2, &audit("key.enrolled"))?,
            AddKey::Added
        );
        assert_eq!(
            store.add_key(&key("alice", 1), 2, &audit("key.enrolled"))?,
            AddKey::Duplicate
        );
        assert_eq!(
            store.add_key(&key("alice", 2), 2, &audit("key.enrolled"))?,
            AddKey::Added
        );
        assert_eq!(
            store.add_key(&key("alice", 3), 2, &audit("key.enrolled"))?,
            AddKey::TooMany
        );
        assert_eq!(
            store.add_key(&key("bob", 3), 2, &audit("key.enrolled"))?,
            AddKey::Added
        );
        assert_eq!(store.keys("alice")?, vec![key("alice", 1), key("alice", 2)]);
        assert!(store.remove_key("alice", &[1; 16], &audit("key.removed"))?);
        assert!(!store.remove_key("alice", &[1; 16], &audit("key.removed"))?);
        assert!(
            !store.remove_key("alice", &[3; 16], &audit("key.removed"))?,
            "bob's key"
        );
        assert_eq!(store.keys("alice")?.len(), 1);
        Ok(())
    }

    #[test]
    fn key_counter_moves_once_from_the_checked_value() -> Result<()> {
        let (_dir, mut store) = fresh();
        let stored = key("alice", 1);
        store.add_key(&stored, 5, &audit("key.enrolled"))?;
        assert!(store.record_key_use(&stored, 11, 200, &audit("signin.key.success"))?);
        assert!(
            !store.record_key_use(&stored, 11, 201, &audit("signin.key.success"))?,
            "stale counter"
        );
        let now = store.keys("alice")?;
        assert_eq!((now[0].sign_count, now[0].last_used), (11, Some(200)));
        Ok(())
    }

    #[test]
    fn audit_keeps_the_newest_in_order() -> Result<()> {
        let (_dir, mut store) = fresh();
        for i in 0..5 {
            store.append_audit(&AuditRecord {
                time: i,
                ..audit("e")
            })?;
        }
        let times: Vec<i64> = store.audit(None, 3)?.iter().map(|a| a.time).collect();
        assert_eq!(times, vec![2, 3, 4]);
        Ok(())
    }
}
