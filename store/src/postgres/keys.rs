//! The keys table: each user's security keys and their signature counters.

use super::audit::values;
use super::{PostgresStore, Result, Session};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use tap_core::audit::AuditRecord;
use tap_core::keys::credential::KeyCredential;
use tap_core::pass::PassRecord;
use tap_core::store::AddKey;
use tap_core::timefmt::Timestamp;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(super) fn keys(store: &PostgresStore, user: &str) -> Result<Vec<KeyCredential>> {
    store.call("reading keys", |c| {
        Box::pin(async move { read_keys(&c, user).await })
    })
}

async fn read_keys(
    c: &Session,
    user: &str,
) -> std::result::Result<Vec<KeyCredential>, tokio_postgres::Error> {
    c.query(
        "SELECT * FROM pam_tap.keys WHERE \"user\" = $1 ORDER BY created, credential_id",
        &[&user],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Both reads sent before either answer is awaited: one round trip, as
/// the session pipelines them.
pub(super) fn keys_and_pass(
    store: &PostgresStore,
    user: &str,
) -> Result<(Vec<KeyCredential>, Option<PassRecord>)> {
    store.call("reading keys and a pass", |c| {
        Box::pin(async move {
            let mut keys = pin!(read_keys(&c, user));
            let mut pass = pin!(super::passes::read_pass(&c, user));
            let (mut got_keys, mut got_pass) = (None, None);
            let (keys, pass) = poll_fn(|cx| {
                if got_keys.is_none() {
                    if let Poll::Ready(result) = keys.as_mut().poll(cx) {
                        got_keys = Some(result);
                    }
                }
                if got_pass.is_none() {
                    if let Poll::Ready(result) = pass.as_mut().poll(cx) {
                        got_pass = Some(result);
                    }
                }
                match (got_keys.take(), got_pass.take()) {
                    (Some(keys), Some(pass)) => Poll::Ready((keys, pass)),
                    (keys, pass) => {
                        (got_keys, got_pass) = (keys, pass);
                        Poll::Pending
                    }
                }
            })
            .await;
            Ok((keys?, pass?))
        })
    })
}

/// Adds a key through pam_tap.add_key, which counts and inserts under a
/// lock on the user (so enrollments on several hosts cannot together pass
/// the limit) and, for a host, re-checks the user's enrollment window by
/// the database's clock.
pub(super) fn add_key(
    store: &mut PostgresStore,
    key: &KeyCredential,
    max_keys: usize,
    audit: &AuditRecord,
) -> Result<AddKey> {
    let max = i64::try_from(max_keys).unwrap_or(i64::MAX);
    let sign_count = i64::from(key.sign_count);
    let aaguid = key.aaguid.as_slice();
    let values: [&(dyn ToSql + Sync); 10] = [
        &key.user,
        &key.credential_id,
        &key.public_key,
        &key.algorithm,
        &aaguid,
        &sign_count,
        &key.label,
        &key.attestation,
        &key.created,
        &max,
    ];
    add_through(store, "adding a key", "pam_tap.add_key", values, audit)
}

/// One call of pam_tap.add_key or add_ssh_key: the key's ten values (the
/// limit last), then the audit record's.
pub(super) fn add_through(
    store: &PostgresStore,
    what: &str,
    function: &str,
    key: [&(dyn ToSql + Sync); 10],
    audit: &AuditRecord,
) -> Result<AddKey> {
    let host = store.host_name.as_str();
    let sql = format!(
        "SELECT {function}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20)"
    );
    let sql = sql.as_str();
    store.call(what, |c| {
        Box::pin(async move {
            let mut params = key.to_vec();
            params.extend(values(audit, &host));
            let row = c.query_one(sql, &params).await?;
            Ok(added(row.try_get(0)?))
        })
    })
}

/// pam_tap.add_key's and add_ssh_key's answer. Anything unknown is no key.
pub(super) fn added(answer: &str) -> AddKey {
    match answer {
        "added" => AddKey::Added,
        "too_many" => AddKey::TooMany,
        "duplicate" => AddKey::Duplicate,
        _ => AddKey::WindowClosed,
    }
}

/// Removes one key, with its audit record, in one statement.
pub(super) fn remove_key(
    store: &mut PostgresStore,
    user: &str,
    credential_id: &[u8],
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("removing a key", |c| {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user, &credential_id];
            params.extend(values(audit, &host));
            c.query_one(
                "WITH changed AS (
                    DELETE FROM pam_tap.keys WHERE \"user\" = $1 AND credential_id = $2 RETURNING 1
                 ), logged AS (
                    INSERT INTO pam_tap.audit
                    (time, event, \"user\", actor, service, rhost, tty, detail, peer, host)
                    SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM changed RETURNING 1
                 )
                 SELECT count(*) = 1 FROM changed",
                &params,
            )
            .await?
            .try_get(0)
        })
    })
}

/// Records a verified key sign-in through pam_tap.record_key_use: the
/// counter moves only from the value the verifier checked, so two sign-ins
/// with one counter value (a cloned key, on any two hosts) cannot both win.
pub(super) fn record_key_use(
    store: &mut PostgresStore,
    key: &KeyCredential,
    new_count: u32,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    let checked = i64::from(key.sign_count);
    let new_count = i64::from(new_count);
    store.call("recording a key sign-in", |c| {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> =
                vec![&key.user, &key.credential_id, &checked, &new_count, &now];
            params.extend(values(audit, &host));
            c.query_one(
                "SELECT pam_tap.record_key_use($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                               $13, $14, $15)",
                &params,
            )
            .await?
            .try_get(0)
        })
    })
}

fn from_row(r: &Row) -> std::result::Result<KeyCredential, tokio_postgres::Error> {
    let aaguid: Vec<u8> = r.try_get("aaguid")?;
    let sign_count: i64 = r.try_get("sign_count")?;
    Ok(KeyCredential {
        user: r.try_get("user")?,
        credential_id: r.try_get("credential_id")?,
        public_key: r.try_get("public_key")?,
        algorithm: r.try_get("algorithm")?,
        aaguid: aaguid.try_into().unwrap_or([0; 16]),
        sign_count: u32::try_from(sign_count).unwrap_or(u32::MAX),
        label: r.try_get("label")?,
        attestation: r.try_get("attestation")?,
        created: r.try_get("created")?,
        last_used: r.try_get("last_used")?,
    })
}
