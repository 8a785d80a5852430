//! How far a commit reaches before it returns, and keeping the write-ahead
//! log: WAL with `synchronous=FULL` for everything that guards access, so a
//! consumed one-time pass stays consumed after a crash.

use super::files::side_file;
use super::{err, Result, SqliteStore};
use rusqlite::config::DbConfig;
use std::time::Duration;

pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The write-ahead log outlives each connection (see `configure`); the
/// writer that grows it past this size checkpoints and empties it. Every
/// open replays the log to rebuild its index, and emptying costs a few
/// fsyncs: this balances the two (25 to 50 sign-ins, at one or two
/// changed pages each).
pub(super) const LOG_EMPTY_ABOVE_BYTES: u64 = 64 * 1024;

/// Page size of a new store. A sign-in changes one audit row (~150 bytes)
/// and one pass row (~300): each is a whole page in the log, and every
/// later open reads and checksums the log. Small pages make the log a
/// quarter the size (measured: ~0.1 ms less per sign-in than 4 KiB).
/// Existing stores keep the size they were made with.
pub(super) const NEW_STORE_PAGE_BYTES: i64 = 1024;

/// How far a commit has reached when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Durability {
    /// On disk (`synchronous=FULL`): everything that guards access.
    Synced,
    /// Atomic, on disk with the next synced commit or checkpoint
    /// (`synchronous=NORMAL` in WAL): a power cut may lose it, never half.
    Atomic,
}

impl SqliteStore {
    pub(super) fn configure(&self) -> Result<()> {
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
        // One plan per statement, whatever its parameters: otherwise a
        // read with `WHERE user = ?1 ORDER BY ...` (a user's keys) is
        // compiled again every time it is bound to another user, which
        // is every sign-in (the daemon caches its statements).
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| err(&self.path, "configuration", e))?;
        Ok(())
    }

    /// Sets `synchronous` for the next commit, only when it changes: each
    /// pragma is a statement to compile, on every sign-in.
    pub(super) fn set_durability(&mut self, wanted: Durability) -> Result<()> {
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

    /// Copies the log into the database and truncates it once it passes
    /// [`LOG_EMPTY_ABOVE_BYTES`]. (SQLite's own automatic checkpoint would
    /// not do: a new connection's index rebuild forgets what was copied, so
    /// with one connection per sign-in the log would never start over.)
    /// Maintenance, not part of the write: the data is committed already,
    /// and if a reader is in the log, the next writer tries again.
    pub(super) fn empty_log_when_large(&self) {
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
