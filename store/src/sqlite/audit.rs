//! The audit table: append-only, numbered records.

use super::durability::Durability;
use super::{err, Result, SqliteStore};
use rusqlite::params;
use tap_core::audit::AuditRecord;
use tap_core::store::AuditFilter;

pub(super) fn append_audit(store: &mut SqliteStore, audit: &AuditRecord) -> Result<()> {
    store.write(Durability::Synced, |tx| insert_audit(tx, audit))
}

/// Audit records matching `filter`, oldest first; the newest `limit` of
/// them. A SQLite store is one host's: its records carry this host's name,
/// so a host filter keeps all of them or none, in the query itself.
pub(super) fn audit(
    store: &SqliteStore,
    filter: AuditFilter<'_>,
    limit: u32,
) -> Result<Vec<AuditRecord>> {
    let here = crate::sys::host_name().map_err(|e| err(&store.path, "reading the host name", e))?;
    let mut stmt = store
        .conn
        .prepare(
            "SELECT * FROM (SELECT seq, time, event, user, actor, service, rhost, tty, detail, peer FROM audit
             WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR ?2 = ?3)
             ORDER BY seq DESC LIMIT ?4) ORDER BY seq",
        )
        .map_err(|e| err(&store.path, "reading audit", e))?;
    let rows = stmt
        .query_map(params![filter.user, filter.host, here, limit], |r| {
            audit_from_row(r, &here)
        })
        .map_err(|e| err(&store.path, "reading audit", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| err(&store.path, "reading audit", e))
}

/// Whether a record about `user` ends its detail with `detail_end` (a
/// SQLite store is one host's: every record is its own).
pub(super) fn has_record(store: &SqliteStore, user: &str, detail_end: &str) -> Result<bool> {
    store
        .conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE user = ?1
                            AND substr(detail, -length(?2)) = ?2)",
        )
        .and_then(|mut stmt| stmt.query_row(params![user, detail_end], |r| r.get(0)))
        .map_err(|e| err(&store.path, "reading audit", e))
}

/// A record from a row whose first ten columns are `seq, time, event, user,
/// actor, service, rhost, tty, detail, peer`.
pub(super) fn audit_from_row(r: &rusqlite::Row<'_>, host: &str) -> rusqlite::Result<AuditRecord> {
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
        peer: r.get(9)?,
        host: host.to_string(),
    })
}

/// Appends one record inside the caller's transaction.
pub(super) fn insert_audit(tx: &rusqlite::Connection, a: &AuditRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, event, user, actor, service, rhost, tty, detail, peer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        a.time, a.event, a.user, a.actor, a.service, a.rhost, a.tty, a.detail, a.peer
    ])?;
    Ok(())
}
