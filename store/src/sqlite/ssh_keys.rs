//! The ssh_keys table: each user's OpenSSH keys, as sshd is served them.

use super::audit::insert_audit;
use super::durability::Durability;
use super::{err, Result, SqliteStore};
use rusqlite::{params, Row};
use tap_core::audit::AuditRecord;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::AddKey;
use tap_core::timefmt::Timestamp;

/// The columns `key_from_row` reads, in its order (by position: see
/// `passes::pass_columns`).
macro_rules! ssh_key_columns {
    () => {
        "user, fingerprint, key_type, blob, label, application, aaguid, attestation, created, \
         last_used"
    };
}
pub(super) use ssh_key_columns;

/// A user's SSH keys, as sshd's `AuthorizedKeysCommand` reads them.
pub(super) const SSH_KEYS_OF_USER: &str = concat!(
    "SELECT ",
    ssh_key_columns!(),
    " FROM ssh_keys WHERE user = ?1 ORDER BY created, fingerprint"
);

pub(super) fn ssh_keys(store: &SqliteStore, user: &str) -> Result<Vec<SshKeyRecord>> {
    let mut stmt = store
        .conn
        .prepare_cached(SSH_KEYS_OF_USER)
        .map_err(|e| err(&store.path, "reading SSH keys", e))?;
    let rows = stmt
        .query_map([user], key_from_row)
        .map_err(|e| err(&store.path, "reading SSH keys", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| err(&store.path, "reading SSH keys", e))
}

/// Inserts `key` with `last_used`, unless anyone has this key already;
/// the number of rows inserted.
pub(super) fn insert_ssh_key(
    tx: &rusqlite::Connection,
    key: &SshKeyRecord,
    last_used: Option<Timestamp>,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR IGNORE INTO ssh_keys
         (fingerprint, user, key_type, blob, label, application, aaguid, attestation, created, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            key.fingerprint,
            key.user,
            key.key_type,
            key.blob,
            key.label,
            key.application,
            key.aaguid.map(|a| a.to_vec()),
            key.attestation,
            key.created,
            last_used
        ],
    )
}

/// Adds a key unless the user has `max_keys` already, or anyone has this key.
pub(super) fn add_ssh_key(
    store: &mut SqliteStore,
    key: &SshKeyRecord,
    max_keys: usize,
    audit: &AuditRecord,
) -> Result<AddKey> {
    store.write(Durability::Synced, |tx| {
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM ssh_keys WHERE user = ?1",
            [&key.user],
            |r| r.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_keys {
            return Ok(AddKey::TooMany);
        }
        if insert_ssh_key(tx, key, None)? == 0 {
            return Ok(AddKey::Duplicate);
        }
        insert_audit(tx, audit)?;
        Ok(AddKey::Added)
    })
}

pub(super) fn remove_ssh_key(
    store: &mut SqliteStore,
    user: &str,
    fingerprint: &str,
    audit: &AuditRecord,
) -> Result<bool> {
    store.change_audited(
        Durability::Synced,
        "DELETE FROM ssh_keys WHERE user = ?1 AND fingerprint = ?2",
        params![user, fingerprint],
        audit,
    )
}

/// Last use guards nothing (sshd decided already), so atomic is enough.
pub(super) fn record_ssh_key_use(
    store: &mut SqliteStore,
    user: &str,
    fingerprint: &str,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    store.change_audited(
        Durability::Atomic,
        "UPDATE ssh_keys SET last_used = ?3 WHERE user = ?1 AND fingerprint = ?2",
        params![user, fingerprint, now],
        audit,
    )
}

pub(super) fn key_from_row(r: &Row<'_>) -> rusqlite::Result<SshKeyRecord> {
    let aaguid: Option<Vec<u8>> = r.get(6)?;
    Ok(SshKeyRecord {
        user: r.get(0)?,
        fingerprint: r.get(1)?,
        key_type: r.get(2)?,
        blob: r.get(3)?,
        label: r.get(4)?,
        application: r.get(5)?,
        aaguid: aaguid.and_then(|a| a.try_into().ok()),
        attestation: r.get(7)?,
        created: r.get(8)?,
        last_used: r.get(9)?,
    })
}
