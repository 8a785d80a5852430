//! The passes table: one pass per user, and the conditional changes that
//! use, count and revoke it. Sign-in's changes go through the functions
//! migration 1 defines (the host role may call nothing else); issuing and
//! revoking are plain statements only pam_tap_admin may run. Passes are read
//! through the view `host_passes`, which shows the hash in verifier form
//! (see migrations.rs): what hosts may read, and all sign-in needs.

use super::audit::{insert, values};
use super::{PostgresStore, Result, Session};
use tap_core::audit::AuditRecord;
use tap_core::hashing::PassProof;
use tap_core::pass::PassRecord;
use tap_core::store::FailureCount;
use tap_core::timefmt::Timestamp;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLUMNS: &str = "\"user\", id, phc, issued_by, created, start, expires, one_time, used_at, \
                       last_used, failures, locked_at, revoked_at, enroll_until, length";

pub(super) fn pass(store: &PostgresStore, user: &str) -> Result<Option<PassRecord>> {
    store.call("reading a pass", |c| {
        Box::pin(async move { read_pass(&c, user).await })
    })
}

pub(super) async fn read_pass(
    c: &Session,
    user: &str,
) -> std::result::Result<Option<PassRecord>, tokio_postgres::Error> {
    let sql = format!("SELECT {COLUMNS} FROM pam_tap.host_passes WHERE \"user\" = $1");
    c.query_opt(&sql, &[&user])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}

pub(super) fn passes(store: &PostgresStore) -> Result<Vec<PassRecord>> {
    store.call("listing passes", |c| {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} FROM pam_tap.host_passes ORDER BY \"user\"");
            c.query(&sql, &[]).await?.iter().map(from_row).collect()
        })
    })
}

/// Stores a new pass for its user, replacing any old one. Returns the old
/// one. The old row is locked first, so two issuers for one user see each
/// other's pass as the one they replace.
pub(super) fn put_pass(
    store: &mut PostgresStore,
    pass: &PassRecord,
    audit: &AuditRecord,
) -> Result<Option<PassRecord>> {
    let host = store.host_name.as_str();
    let length = pass.length.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    store.call("issuing a pass", |c| {
        Box::pin(async move {
            c.batch_execute("BEGIN").await?;
            c.execute(
                "SELECT pg_advisory_xact_lock(hashtext('pam_tap.passes:' || $1))",
                &[&pass.user],
            )
            .await?;
            let sql =
                format!("SELECT {COLUMNS} FROM pam_tap.passes WHERE \"user\" = $1 FOR UPDATE");
            let old = c.query_opt(&sql, &[&pass.user]).await?.map(|r| from_row(&r)).transpose()?;
            c.execute(
                "INSERT INTO pam_tap.passes
                 (\"user\", id, phc, issued_by, created, start, expires, one_time, used_at,
                  last_used, failures, locked_at, revoked_at, enroll_until, length)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, 0, NULL, NULL, NULL, $9)
                 ON CONFLICT (\"user\") DO UPDATE SET
                   id = EXCLUDED.id, phc = EXCLUDED.phc, issued_by = EXCLUDED.issued_by,
                   created = EXCLUDED.created, start = EXCLUDED.start, expires = EXCLUDED.expires,
                   one_time = EXCLUDED.one_time, used_at = NULL, last_used = NULL, failures = 0,
                   locked_at = NULL, revoked_at = NULL, enroll_until = NULL, length = EXCLUDED.length",
                &[
                    &pass.user,
                    &pass.id,
                    &pass.phc,
                    &pass.issued_by,
                    &pass.created,
                    &pass.start,
                    &pass.expires,
                    &pass.one_time,
                    &length,
                ],
            )
            .await?;
            insert(&c, audit, &host).await?;
            c.batch_execute("COMMIT").await?;
            Ok(old)
        })
    })
}

/// Marks the user's pass revoked, in one statement with its audit record.
/// False when there was nothing to revoke.
pub(super) fn revoke(
    store: &mut PostgresStore,
    user: &str,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("revoking a pass", |c| {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user, &now];
            params.extend(values(audit, &host));
            let row = c
                .query_one(
                    "WITH changed AS (
                        UPDATE pam_tap.passes SET revoked_at = $2
                        WHERE \"user\" = $1 AND revoked_at IS NULL RETURNING 1
                     ), logged AS (
                        INSERT INTO pam_tap.audit
                        (time, event, \"user\", actor, service, rhost, tty, detail, peer, host)
                        SELECT $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM changed RETURNING 1
                     )
                     SELECT count(*) = 1 FROM changed",
                    &params,
                )
                .await?;
            row.try_get(0)
        })
    })
}

/// Records a right pass: one call of pam_tap.record_success, which
/// re-checks every condition as it writes, so of many concurrent sign-ins
/// with one one-time pass, on any hosts, exactly one gets `true`; and
/// which changes nothing unless `proof` is the pass's hash field.
pub(super) fn record_success(
    store: &mut PostgresStore,
    pass: &PassRecord,
    proof: &PassProof,
    now: Timestamp,
    enroll_until: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("recording a sign-in", |c| {
        Box::pin(async move {
            let proof = proof.expose();
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &pass.user,
                &pass.id,
                &pass.one_time,
                &now,
                &enroll_until,
                &proof,
            ];
            params.extend(values(audit, &host));
            c.query_one(
                "SELECT pam_tap.record_success($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                               $13, $14, $15, $16)",
                &params,
            )
            .await?
            .try_get(0)
        })
    })
}

/// Counts a wrong pass (and locks at `max_failures`) and writes the records
/// `audit` makes of this very count, in one transaction.
pub(super) fn record_failure(
    store: &mut PostgresStore,
    user: &str,
    id: i64,
    now: Timestamp,
    max_failures: u32,
    audit: &dyn Fn(FailureCount) -> Vec<AuditRecord>,
) -> Result<FailureCount> {
    let host = store.host_name.as_str();
    let max = i64::from(max_failures);
    store.call("counting a failure", |c| {
        Box::pin(async move {
            c.batch_execute("BEGIN").await?;
            let row = c
                .query_one(
                    "SELECT failures, locked_now FROM pam_tap.count_failure($1, $2, $3, $4)",
                    &[&user, &id, &now, &max],
                )
                .await?;
            let failures: i64 = row.try_get(0)?;
            let counted = FailureCount {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                locked_now: row.try_get(1)?,
            };
            for record in audit(counted) {
                insert(&c, &record, &host).await?;
            }
            c.batch_execute("COMMIT").await?;
            Ok(counted)
        })
    })
}

fn from_row(r: &Row) -> std::result::Result<PassRecord, tokio_postgres::Error> {
    let failures: i64 = r.try_get("failures")?;
    let length: Option<i64> = r.try_get("length")?;
    Ok(PassRecord {
        user: r.try_get("user")?,
        id: r.try_get("id")?,
        phc: r.try_get("phc")?,
        issued_by: r.try_get("issued_by")?,
        created: r.try_get("created")?,
        start: r.try_get("start")?,
        expires: r.try_get("expires")?,
        one_time: r.try_get("one_time")?,
        used_at: r.try_get("used_at")?,
        last_used: r.try_get("last_used")?,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        locked_at: r.try_get("locked_at")?,
        revoked_at: r.try_get("revoked_at")?,
        enroll_until: r.try_get("enroll_until")?,
        length: length.and_then(|l| usize::try_from(l).ok()),
    })
}
