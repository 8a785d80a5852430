//! tapd's offline copy of a fleet's keys (`[store] offline_keys`): a SQLite
//! store of the daemon's own, beside the PostgreSQL one it copies. It holds
//! the security keys and SSH keys last read from the database for each user
//! who signed in on this host, so that a key sign-in still works while the
//! database is unreachable, and the key sign-ins made from it until they
//! are reconciled with the database. Its audit table holds only those
//! offline records: each leaves it once the database has it.

use super::audit::audit_from_row;
use super::durability::Durability;
use super::{err, keys, ssh_keys, OpenOptions, Result, SqliteStore};
use rusqlite::params;
use std::path::Path;
use tap_core::audit::AuditRecord;
use tap_core::keys::credential::KeyCredential;
use tap_core::ssh::record::SshKeyRecord;

/// Which offline audit record is a key sign-in, and with what counter: the
/// record's `seq` in this copy's audit table.
const OFFLINE_USES: &str = "CREATE TABLE IF NOT EXISTS offline_uses (
    audit_seq     INTEGER PRIMARY KEY NOT NULL,
    user          TEXT NOT NULL,
    credential_id BLOB NOT NULL,
    counter       INTEGER NOT NULL
) STRICT;";

/// Each offline record's name, random, made with the record: the mark
/// reconciling puts on it in the database, so that it can tell whether the
/// database has it already. (The record's `seq` will not do: once every
/// record is settled, SQLite numbers the next one 1 again.)
const OFFLINE_IDS: &str = "CREATE TABLE IF NOT EXISTS offline_ids (
    audit_seq INTEGER PRIMARY KEY NOT NULL,
    id        BLOB NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS offline_id AFTER INSERT ON audit BEGIN
    INSERT INTO offline_ids (audit_seq, id) VALUES (NEW.seq, randomblob(8));
END;";

/// One record made while the database was unreachable, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offline {
    pub record: AuditRecord,
    /// Its name, random: 16 hex digits.
    pub id: String,
    /// For a key sign-in: the key and the counter it answered with.
    pub key_use: Option<OfflineKeyUse>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineKeyUse {
    pub credential_id: Vec<u8>,
    pub counter: u32,
}

impl SqliteStore {
    /// Opens tapd's offline copy at `path`, creating it (0600 in a 0700
    /// directory, the daemon's) when missing. Its key sign-ins are noted for
    /// reconciling (`offline_records`).
    pub fn open_offline_copy(path: &Path) -> Result<SqliteStore> {
        let mut store = SqliteStore::open(
            path,
            OpenOptions {
                create: !path.exists(),
                check_trust: true,
            },
        )?;
        store
            .conn
            .execute_batch(&format!("{OFFLINE_USES}\n{OFFLINE_IDS}"))
            .map_err(|e| err(path, "offline copy", e))?;
        store.offline_copy = true;
        Ok(store)
    }

    /// Makes the copy of `user`'s security keys what the database has.
    /// A counter never moves back: one raised by an offline sign-in that
    /// the database has not seen yet stays. Writes only when something
    /// changed, so a sign-in that finds the copy current costs one read.
    pub fn remember_keys(&mut self, user: &str, from_database: &[KeyCredential]) -> Result<()> {
        let copied = keys::keys(self, user)?;
        let merged: Vec<KeyCredential> = from_database
            .iter()
            .map(|key| {
                let mut key = key.clone();
                if let Some(old) = copied.iter().find(|c| c.credential_id == key.credential_id) {
                    key.sign_count = key.sign_count.max(old.sign_count);
                }
                key
            })
            .collect();
        if merged == copied {
            return Ok(());
        }
        // A copy, not the record: losing the last change to a power cut
        // only makes it older.
        self.write(Durability::Atomic, |tx| {
            tx.execute("DELETE FROM keys WHERE user = ?1", [user])?;
            for key in &merged {
                keys::insert_key(tx, key, key.last_used)?;
            }
            Ok(())
        })
    }

    /// Makes the copy of `user`'s SSH keys what the database has (a key
    /// now another user's leaves this user's copy: one key, one user).
    pub fn remember_ssh_keys(&mut self, user: &str, from_database: &[SshKeyRecord]) -> Result<()> {
        if ssh_keys::ssh_keys(self, user)? == from_database {
            return Ok(());
        }
        self.write(Durability::Atomic, |tx| {
            tx.execute("DELETE FROM ssh_keys WHERE user = ?1", [user])?;
            for key in from_database {
                // One key, one user: a key now this user's leaves another's copy.
                tx.execute(
                    "DELETE FROM ssh_keys WHERE fingerprint = ?1",
                    [&key.fingerprint],
                )?;
                ssh_keys::insert_ssh_key(tx, key, key.last_used)?;
            }
            Ok(())
        })
    }

    /// Notes, inside the transaction that wrote the sign-in's audit record,
    /// which key answered with which counter.
    pub(super) fn note_offline_use(
        tx: &rusqlite::Connection,
        key: &KeyCredential,
        counter: u32,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO offline_uses (audit_seq, user, credential_id, counter)
             VALUES (last_insert_rowid(), ?1, ?2, ?3)",
            params![key.user, key.credential_id, counter],
        )?;
        Ok(())
    }

    /// The oldest `limit` records not yet in the database.
    pub fn offline_records(&self, limit: u32) -> Result<Vec<Offline>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.seq, a.time, a.event, a.user, a.actor, a.service, a.rhost, a.tty,
                        a.detail, a.peer, u.credential_id, u.counter, hex(i.id)
                 FROM audit a LEFT JOIN offline_uses u ON u.audit_seq = a.seq
                      LEFT JOIN offline_ids i ON i.audit_seq = a.seq
                 ORDER BY a.seq LIMIT ?1",
            )
            .map_err(|e| err(&self.path, "reading offline records", e))?;
        let rows = stmt
            .query_map([limit], |r| {
                let credential_id: Option<Vec<u8>> = r.get(10)?;
                let counter: Option<u32> = r.get(11)?;
                // A record from before the copy named its records gets its
                // sequence number; nothing else lacks a name.
                let id: Option<String> = r.get(12)?;
                let record = audit_from_row(r, "")?;
                Ok(Offline {
                    id: id.unwrap_or_else(|| format!("seq{}", record.seq)),
                    // The database names the host when it takes the record.
                    record,
                    key_use: credential_id.zip(counter).map(|(credential_id, counter)| {
                        OfflineKeyUse {
                            credential_id,
                            counter,
                        }
                    }),
                })
            })
            .map_err(|e| err(&self.path, "reading offline records", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| err(&self.path, "reading offline records", e))
    }

    /// Forgets a record the database now has. Synced: a record settled
    /// twice would be written to the database twice.
    pub fn settle_offline_record(&mut self, seq: i64) -> Result<()> {
        self.write(Durability::Synced, |tx| {
            tx.execute("DELETE FROM offline_uses WHERE audit_seq = ?1", [seq])?;
            tx.execute("DELETE FROM offline_ids WHERE audit_seq = ?1", [seq])?;
            tx.execute("DELETE FROM audit WHERE seq = ?1", [seq])?;
            Ok(())
        })
    }

    /// Whether this is an offline copy (its key sign-ins are noted).
    pub fn is_offline_copy(&self) -> bool {
        self.offline_copy
    }
}
