//! The SQLite schema, as numbered steps, and bringing a store up to date.

use super::durability::Durability;
use super::{err, err_of, Result, SqliteStore};
use rusqlite::TransactionBehavior;
use tap_core::store::{StoreError, StoreErrorKind};

/// Each entry takes the schema from version N to N+1; never edit one that shipped.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 5: tapd records who asked, from the socket (`pid=… uid=…`), beside the
    // service, rhost and tty the client reported.
    "ALTER TABLE audit ADD COLUMN peer TEXT NOT NULL DEFAULT '';",
    // 6: OpenSSH keys, served to sshd. The fingerprint is the key: one key
    // belongs to one user. The index serves `authorized-keys USER`, which
    // sshd runs on every publickey attempt.
    "CREATE TABLE ssh_keys (
        fingerprint TEXT PRIMARY KEY NOT NULL,
        user        TEXT NOT NULL,
        key_type    TEXT NOT NULL,
        blob        BLOB NOT NULL,
        label       TEXT NOT NULL,
        application TEXT NOT NULL,
        aaguid      BLOB,
        attestation TEXT NOT NULL,
        created     INTEGER NOT NULL,
        last_used   INTEGER
    ) STRICT;
    CREATE INDEX ssh_keys_by_user ON ssh_keys (user, created);",
];

impl SqliteStore {
    pub(super) fn schema_version(&self) -> Result<usize> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err(&self.path, "unreadable or corrupt", e))?;
        let schema = StoreErrorKind::Schema;
        usize::try_from(version).map_err(|_| err_of(schema, &self.path, "schema version", version))
    }

    pub(super) fn migrate(&mut self, version: usize) -> Result<()> {
        let known = MIGRATIONS.len();
        if version == known {
            return Ok(());
        }
        if version > known {
            return Err(StoreError::schema(format!(
                "store {} has schema version {version}; this pam_tap understands up to {known}",
                self.path.display()
            )));
        }
        self.set_durability(Durability::Synced)?;
        let path = self.path.clone();
        // A migration that fails leaves the schema one this build cannot use.
        let err = |what: &str, e| err_of(StoreErrorKind::Schema, &path, what, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err("migration", e))?;
        // Another process may have migrated while we waited for the lock.
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| err("migration", e))?;
        for (index, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(known))
        {
            tx.execute_batch(step)
                .map_err(|e| err(&format!("migration {}", index + 1), e))?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(index + 1).unwrap_or(i64::MAX),
            )
            .map_err(|e| err("migration", e))?;
        }
        tx.commit().map_err(|e| err("migration commit", e))
    }
}
