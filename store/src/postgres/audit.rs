//! The audit table: append-only, numbered records, each naming its host.

use super::link::Session;
use super::{PostgresStore, Result};
use tap_core::audit::AuditRecord;
use tap_core::store::AuditFilter;
use tokio_postgres::types::ToSql;

/// One record's ten values, in the order every audit-writing function takes
/// them (the host last).
pub(super) fn values<'r>(a: &'r AuditRecord, host: &'r &'r str) -> [&'r (dyn ToSql + Sync); 10] {
    [
        &a.time, &a.event, &a.user, &a.actor, &a.service, &a.rhost, &a.tty, &a.detail, &a.peer,
        host,
    ]
}

/// Appends one record inside the caller's transaction (or as its own).
pub(super) async fn insert(
    c: &Session,
    a: &AuditRecord,
    host: &&str,
) -> std::result::Result<(), tokio_postgres::Error> {
    c.execute(
        "SELECT pam_tap.append_audit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &values(a, host),
    )
    .await?;
    Ok(())
}

pub(super) fn append_audit(store: &mut PostgresStore, audit: &AuditRecord) -> Result<()> {
    let host = store.host_name.as_str();
    store.call("appending audit", |c| {
        Box::pin(async move { insert(&c, audit, &host).await })
    })
}

/// Whether this host wrote a record about `user` whose detail ends with
/// `detail_end` (the user's index, then this host's records of them).
pub(super) fn has_own_record(store: &PostgresStore, user: &str, detail_end: &str) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("reading audit", |c| {
        Box::pin(async move {
            c.query_one(
                "SELECT EXISTS (SELECT 1 FROM pam_tap.audit WHERE \"user\" = $1 AND host = $2
                                AND right(detail, length($3)) = $3)",
                &[&user, &host, &detail_end],
            )
            .await?
            .try_get(0)
        })
    })
}

/// Audit records matching `filter`, oldest first; the newest `limit` of
/// them: the filter is in the query, so it applies before the limit.
pub(super) fn audit(
    store: &PostgresStore,
    filter: AuditFilter<'_>,
    limit: u32,
) -> Result<Vec<AuditRecord>> {
    let limit = i64::from(limit);
    let (user, host) = (filter.user, filter.host);
    store.call("reading audit", |c| {
        Box::pin(async move {
            let rows = c
                .query(
                    "SELECT * FROM (SELECT seq, time, event, \"user\", actor, service, rhost, tty,
                            detail, peer, host FROM pam_tap.audit
                        WHERE ($1::TEXT IS NULL OR \"user\" = $1)
                          AND ($2::TEXT IS NULL OR host = $2)
                        ORDER BY seq DESC LIMIT $3) newest
                     ORDER BY seq",
                    &[&user, &host, &limit],
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(AuditRecord {
                        seq: r.try_get(0)?,
                        time: r.try_get(1)?,
                        event: r.try_get(2)?,
                        user: r.try_get(3)?,
                        actor: r.try_get(4)?,
                        service: r.try_get(5)?,
                        rhost: r.try_get(6)?,
                        tty: r.try_get(7)?,
                        detail: r.try_get(8)?,
                        peer: r.try_get(9)?,
                        host: r.try_get(10)?,
                    })
                })
                .collect()
        })
    })
}
