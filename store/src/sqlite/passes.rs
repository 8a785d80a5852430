//! The passes table: one pass per user, and the conditional changes that
//! use, count and revoke it.

use super::audit::insert_audit;
use super::durability::Durability;
use super::{err, Result, SqliteStore};
use rusqlite::{params, OptionalExtension, Row};
use tap_core::audit::AuditRecord;
use tap_core::pass::PassRecord;
use tap_core::store::FailureCount;
use tap_core::timefmt::Timestamp;

/// The columns `pass_from_row` reads, in its order. Named, not `*`, and
/// read by position: finding each of 15 columns by name cost more than
/// the rest of the read.
macro_rules! pass_columns {
    () => {
        "user, id, phc, issued_by, created, start, expires, one_time, used_at, last_used, \
         failures, locked_at, revoked_at, enroll_until, length"
    };
}

/// A user's pass, as a sign-in reads it.
pub(super) const PASS_OF_USER: &str =
    concat!("SELECT ", pass_columns!(), " FROM passes WHERE user = ?1");

pub(super) fn pass(store: &SqliteStore, user: &str) -> Result<Option<PassRecord>> {
    store
        .conn
        .prepare_cached(PASS_OF_USER)
        .and_then(|mut stmt| stmt.query_row([user], pass_from_row).optional())
        .map_err(|e| err(&store.path, "reading a pass", e))
}

pub(super) fn passes(store: &SqliteStore) -> Result<Vec<PassRecord>> {
    let mut stmt = store
        .conn
        .prepare(concat!(
            "SELECT ",
            pass_columns!(),
            " FROM passes ORDER BY user"
        ))
        .map_err(|e| err(&store.path, "listing passes", e))?;
    let rows = stmt
        .query_map([], pass_from_row)
        .map_err(|e| err(&store.path, "listing passes", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| err(&store.path, "listing passes", e))
}

/// Stores a new pass for its user, replacing any old one. Returns the old one.
pub(super) fn put_pass(
    store: &mut SqliteStore,
    pass: &PassRecord,
    audit: &AuditRecord,
) -> Result<Option<PassRecord>> {
    store.write(Durability::Synced, |tx| {
        let old = tx.query_row(PASS_OF_USER, [&pass.user], pass_from_row).optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO passes
             (user, id, phc, issued_by, created, start, expires, one_time, used_at, last_used, failures, locked_at, revoked_at, length)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, 0, NULL, NULL, ?9)",
            params![pass.user, pass.id, pass.phc, pass.issued_by, pass.created, pass.start, pass.expires, pass.one_time, pass.length.and_then(|l| i64::try_from(l).ok())],
        )?;
        insert_audit(tx, audit)?;
        Ok(old)
    })
}

/// Marks the user's pass revoked. False when there was nothing to revoke.
pub(super) fn revoke(
    store: &mut SqliteStore,
    user: &str,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    store.change_audited(
        Durability::Synced,
        "UPDATE passes SET revoked_at = ?2 WHERE user = ?1 AND revoked_at IS NULL",
        params![user, now],
        audit,
    )
}

/// Records a right pass. The update re-checks every condition, so of many
/// concurrent sign-ins with one one-time pass exactly one gets `true`.
///
/// Consuming a one-time pass is synced to disk before the sign-in
/// succeeds. A multi-use pass changes no state that guards access (only
/// `last_used`, the enrollment window and the audit row, which syslog
/// also carries; losing the window only closes it), so that commit is
/// not fsynced at once: WAL keeps it atomic, and the next synced commit
/// or checkpoint makes it durable. A power cut may lose it, never half
/// of it. That saves one flush (about 0.7 ms here) on the login path.
pub(super) fn record_success(
    store: &mut SqliteStore,
    pass: &PassRecord,
    now: Timestamp,
    enroll_until: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let durability = if pass.one_time {
        Durability::Synced
    } else {
        Durability::Atomic
    };
    store.change_audited(
        durability,
        "UPDATE passes
         SET last_used = ?4, used_at = CASE WHEN one_time = 1 THEN ?4 ELSE used_at END,
             enroll_until = ?5
         WHERE user = ?1 AND id = ?2 AND one_time = ?3 AND revoked_at IS NULL AND locked_at IS NULL
           AND (one_time = 0 OR used_at IS NULL) AND start <= ?4 AND expires > ?4",
        params![pass.user, pass.id, pass.one_time, now, enroll_until],
        audit,
    )
}

/// Counts a wrong pass and locks the pass when the count reaches
/// `max_failures`. `audit` makes the records from the count this very
/// update produced (concurrent failures each see their own), and they
/// commit with it.
pub(super) fn record_failure(
    store: &mut SqliteStore,
    user: &str,
    id: i64,
    now: Timestamp,
    max_failures: u32,
    audit: &dyn Fn(FailureCount) -> Vec<AuditRecord>,
) -> Result<FailureCount> {
    store.write(Durability::Synced, |tx| {
        let counted = tx
            .query_row(
                "UPDATE passes
                 SET failures = failures + 1,
                     locked_at = CASE WHEN locked_at IS NULL AND failures + 1 >= ?4 THEN ?3 ELSE locked_at END
                 WHERE user = ?1 AND id = ?2
                 RETURNING failures, locked_at = ?3",
                params![user, id, now, max_failures],
                |r| Ok(FailureCount { failures: r.get(0)?, locked_now: r.get::<_, Option<bool>>(1)?.unwrap_or(false) }),
            )
            .optional()?;
        let counted = counted.unwrap_or(FailureCount { failures: 0, locked_now: false });
        for record in audit(counted) {
            insert_audit(tx, &record)?;
        }
        Ok(counted)
    })
}

fn pass_from_row(r: &Row<'_>) -> rusqlite::Result<PassRecord> {
    Ok(PassRecord {
        user: r.get(0)?,
        id: r.get(1)?,
        phc: r.get(2)?,
        issued_by: r.get(3)?,
        created: r.get(4)?,
        start: r.get(5)?,
        expires: r.get(6)?,
        one_time: r.get(7)?,
        used_at: r.get(8)?,
        last_used: r.get(9)?,
        failures: r.get(10)?,
        locked_at: r.get(11)?,
        revoked_at: r.get(12)?,
        enroll_until: r.get(13)?,
        length: r
            .get::<_, Option<i64>>(14)?
            .and_then(|l| usize::try_from(l).ok()),
    })
}
