//! The audit table: append-only, numbered records.

use super::durability::Durability;
use super::{err, Result, SqliteStore};
use rusqlite::params;
use tap_core::audit::AuditRecord;

pub(super) fn append_audit(store: &mut SqliteStore, audit: &AuditRecord) -> Result<()> {
    store.write(Durability::Synced, |tx| insert_audit(tx, audit))
}

/// Audit records, oldest first; the newest `limit` of them.
pub(super) fn audit(
    store: &SqliteStore,
    user: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditRecord>> {
    let mut stmt = store
        .conn
        .prepare(
            "SELECT * FROM (SELECT seq, time, event, user, actor, service, rhost, tty, detail, peer FROM audit
             WHERE ?1 IS NULL OR user = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
        )
        .map_err(|e| err(&store.path, "reading audit", e))?;
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
                peer: r.get(9)?,
            })
        })
        .map_err(|e| err(&store.path, "reading audit", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| err(&store.path, "reading audit", e))
}

/// Appends one record inside the caller's transaction.
pub(super) fn insert_audit(
    tx: &rusqlite::Transaction<'_>,
    a: &AuditRecord,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, event, user, actor, service, rhost, tty, detail, peer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        a.time, a.event, a.user, a.actor, a.service, a.rhost, a.tty, a.detail, a.peer
    ])?;
    Ok(())
}
