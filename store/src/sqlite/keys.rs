//! The keys table: each user's security keys and their signature counters.

use super::audit::insert_audit;
use super::durability::Durability;
use super::{err, Result, SqliteStore};
use rusqlite::{params, Row};
use tap_core::audit::AuditRecord;
use tap_core::keys::credential::KeyCredential;
use tap_core::store::AddKey;
use tap_core::timefmt::Timestamp;

/// The columns `key_from_row` reads, in its order (by position: see
/// `passes::pass_columns`).
macro_rules! key_columns {
    () => {
        "user, credential_id, public_key, algorithm, aaguid, sign_count, label, attestation, \
         created, last_used"
    };
}
pub(super) use key_columns;

/// A user's keys, as a sign-in reads them.
pub(super) const KEYS_OF_USER: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM keys WHERE user = ?1 ORDER BY created, credential_id"
);

pub(super) fn keys(store: &SqliteStore, user: &str) -> Result<Vec<KeyCredential>> {
    let mut stmt = store
        .conn
        .prepare_cached(KEYS_OF_USER)
        .map_err(|e| err(&store.path, "reading keys", e))?;
    let rows = stmt
        .query_map([user], key_from_row)
        .map_err(|e| err(&store.path, "reading keys", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| err(&store.path, "reading keys", e))
}

/// Adds a key unless the user already has `max_keys` or this one.
pub(super) fn add_key(
    store: &mut SqliteStore,
    key: &KeyCredential,
    max_keys: usize,
    audit: &AuditRecord,
) -> Result<AddKey> {
    store.write(Durability::Synced, |tx| {
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM keys WHERE user = ?1",
            [&key.user],
            |r| r.get(0),
        )?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max_keys {
            return Ok(AddKey::TooMany);
        }
        if insert_key(tx, key, None)? == 0 {
            return Ok(AddKey::Duplicate);
        }
        insert_audit(tx, audit)?;
        Ok(AddKey::Added)
    })
}

/// Inserts `key` with `last_used`, unless the user has this credential
/// already; the number of rows inserted.
pub(super) fn insert_key(
    tx: &rusqlite::Connection,
    key: &KeyCredential,
    last_used: Option<Timestamp>,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR IGNORE INTO keys
         (user, credential_id, public_key, algorithm, aaguid, sign_count, label, attestation, created, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            key.user,
            key.credential_id,
            key.public_key,
            key.algorithm,
            key.aaguid.as_slice(),
            key.sign_count,
            key.label,
            key.attestation,
            key.created,
            last_used
        ],
    )
}

/// Removes one key. False when the user has no such key.
pub(super) fn remove_key(
    store: &mut SqliteStore,
    user: &str,
    credential_id: &[u8],
    audit: &AuditRecord,
) -> Result<bool> {
    store.change_audited(
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
pub(super) fn record_key_use(
    store: &mut SqliteStore,
    key: &KeyCredential,
    new_count: u32,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let sql = "UPDATE keys SET sign_count = ?4, last_used = ?5
         WHERE user = ?1 AND credential_id = ?2 AND sign_count = ?3";
    let params = params![key.user, key.credential_id, key.sign_count, new_count, now];
    if !store.offline_copy {
        return store.change_audited(Durability::Synced, sql, params, audit);
    }
    // An offline sign-in: which key and counter go with its record, for
    // reconciling with the database.
    store.write(Durability::Synced, |tx| {
        if tx.prepare_cached(sql)?.execute(params)? != 1 {
            return Ok(false);
        }
        insert_audit(tx, audit)?;
        SqliteStore::note_offline_use(tx, key, new_count)?;
        Ok(true)
    })
}

pub(super) fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyCredential> {
    let aaguid: Vec<u8> = r.get(4)?;
    Ok(KeyCredential {
        user: r.get(0)?,
        credential_id: r.get(1)?,
        public_key: r.get(2)?,
        algorithm: r.get(3)?,
        aaguid: aaguid.try_into().unwrap_or([0; 16]),
        sign_count: r.get(5)?,
        label: r.get(6)?,
        attestation: r.get(7)?,
        created: r.get(8)?,
        last_used: r.get(9)?,
    })
}
