//! Copying a snapshot (a host's SQLite store) into the database, for
//! `tapctl store migrate`: one transaction as pam_tap_admin, so a failure
//! leaves the database as it was. A database that holds passes or keys
//! already is refused, unless `merge` is asked for; even then nothing is
//! ever replaced: one user's pass, key or SSH key already there refuses
//! the whole copy.

use super::link::Outcome;
use super::link::Session;
use super::{PostgresStore, Result};
use crate::snapshot::{Copied, Snapshot};
use tap_core::store::StoreError;

type Sql<T> = std::result::Result<T, tokio_postgres::Error>;

impl PostgresStore {
    /// Writes every row of `snapshot`; its audit records, in their order,
    /// carry this host's name (the host whose store it was) and their own
    /// times.
    pub fn import(&mut self, snapshot: &Snapshot, merge: bool) -> Result<Copied> {
        let host = self.host_name.as_str();
        let outcome = self.call_raw(|c| {
            Box::pin(async move {
                c.batch_execute("BEGIN").await?;
                // Nobody adds a pass or key between the check and the copy.
                c.batch_execute(
                    "LOCK TABLE pam_tap.passes, pam_tap.keys, pam_tap.ssh_keys
                     IN SHARE ROW EXCLUSIVE MODE",
                )
                .await?;
                let refusal = if merge {
                    conflicts(&c, snapshot).await?
                } else {
                    not_empty(&c).await?
                };
                if let Some(why) = refusal {
                    c.batch_execute("ROLLBACK").await?;
                    return Ok(Err(why));
                }
                let copied = insert_all(&c, snapshot, host).await?;
                c.batch_execute("COMMIT").await?;
                Ok(Ok(copied))
            })
        });
        match outcome {
            Outcome::Done(Ok(copied)) => Ok(copied),
            Outcome::Done(Err(why)) => Err(StoreError::refused(format!(
                "postgresql database {}: {why}; nothing was copied",
                self.database
            ))),
            Outcome::Refused(e) => Err(StoreError::refused(format!(
                "postgresql database {}: copying: {}; nothing was copied",
                self.database,
                super::link::describe(&e)
            ))),
            Outcome::Lost(why) => Err(StoreError::new(
                why.kind(),
                format!(
                    "postgresql database {}: copying: {why}; the transaction did not commit",
                    self.database
                ),
            )),
        }
    }
}

/// Without `merge`: any pass, key or SSH key in the database refuses.
async fn not_empty(c: &Session) -> Sql<Option<String>> {
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM pam_tap.passes), (SELECT count(*) FROM pam_tap.keys),
                    (SELECT count(*) FROM pam_tap.ssh_keys)",
            &[],
        )
        .await?;
    let (passes, keys, ssh_keys): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if passes + keys + ssh_keys == 0 {
        return Ok(None);
    }
    Ok(Some(format!(
        "it holds {passes} passes, {keys} security keys and {ssh_keys} SSH keys already; \
         --merge adds this store's to them (refusing if any user's is there already)"
    )))
}

/// With `merge`: the rows the copy would replace, if any, refuse it.
async fn conflicts(c: &Session, snapshot: &Snapshot) -> Sql<Option<String>> {
    let users: Vec<&str> = snapshot.passes.iter().map(|p| p.user.as_str()).collect();
    let mut found: Vec<String> = c
        .query(
            "SELECT 'the pass of ' || \"user\" FROM pam_tap.passes
             WHERE \"user\" = ANY($1::TEXT[]) ORDER BY 1",
            &[&users],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let key_users: Vec<&str> = snapshot.keys.iter().map(|k| k.user.as_str()).collect();
    let key_ids: Vec<&[u8]> = snapshot
        .keys
        .iter()
        .map(|k| k.credential_id.as_slice())
        .collect();
    found.extend(
        c.query(
            "SELECT 'a security key of ' || k.\"user\" FROM pam_tap.keys k
             JOIN UNNEST($1::TEXT[], $2::BYTEA[]) AS n(u, id)
               ON k.\"user\" = n.u AND k.credential_id = n.id ORDER BY 1",
            &[&key_users, &key_ids],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0)),
    );
    let prints: Vec<&str> = snapshot
        .ssh_keys
        .iter()
        .map(|k| k.fingerprint.as_str())
        .collect();
    found.extend(
        c.query(
            "SELECT 'SSH key ' || fingerprint || ' of ' || \"user\" FROM pam_tap.ssh_keys
             WHERE fingerprint = ANY($1::TEXT[]) ORDER BY 1",
            &[&prints],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0)),
    );
    if found.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "it holds {} already; a copy never replaces anything",
        found.join(", ")
    )))
}

fn wide(n: Option<usize>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

async fn insert_all(c: &Session, s: &Snapshot, host: &str) -> Sql<Copied> {
    // One statement per table, the columns as arrays: four round trips
    // whatever the size, each well inside the statement timeout.
    let p = &s.passes;
    let passes = c
        .execute(
            "INSERT INTO pam_tap.passes (\"user\", id, phc, issued_by, created, start, expires,
                 one_time, used_at, last_used, failures, locked_at, revoked_at, enroll_until, length)
             SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[],
                 $6::BIGINT[], $7::BIGINT[], $8::BOOLEAN[], $9::BIGINT[], $10::BIGINT[],
                 $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[])",
            &[
                &p.iter().map(|x| x.user.as_str()).collect::<Vec<_>>(),
                &p.iter().map(|x| x.id).collect::<Vec<_>>(),
                &p.iter().map(|x| x.phc.as_str()).collect::<Vec<_>>(),
                &p.iter().map(|x| x.issued_by.as_str()).collect::<Vec<_>>(),
                &p.iter().map(|x| x.created).collect::<Vec<_>>(),
                &p.iter().map(|x| x.start).collect::<Vec<_>>(),
                &p.iter().map(|x| x.expires).collect::<Vec<_>>(),
                &p.iter().map(|x| x.one_time).collect::<Vec<_>>(),
                &p.iter().map(|x| x.used_at).collect::<Vec<_>>(),
                &p.iter().map(|x| x.last_used).collect::<Vec<_>>(),
                &p.iter().map(|x| i64::from(x.failures)).collect::<Vec<_>>(),
                &p.iter().map(|x| x.locked_at).collect::<Vec<_>>(),
                &p.iter().map(|x| x.revoked_at).collect::<Vec<_>>(),
                &p.iter().map(|x| x.enroll_until).collect::<Vec<_>>(),
                &p.iter().map(|x| wide(x.length)).collect::<Vec<_>>(),
            ],
        )
        .await?;
    let k = &s.keys;
    let keys = c
        .execute(
            "INSERT INTO pam_tap.keys (\"user\", credential_id, public_key, algorithm, aaguid,
                 sign_count, label, attestation, created, last_used)
             SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[], $3::BYTEA[], $4::BIGINT[],
                 $5::BYTEA[], $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[])",
            &[
                &k.iter().map(|x| x.user.as_str()).collect::<Vec<_>>(),
                &k.iter()
                    .map(|x| x.credential_id.as_slice())
                    .collect::<Vec<_>>(),
                &k.iter()
                    .map(|x| x.public_key.as_slice())
                    .collect::<Vec<_>>(),
                &k.iter().map(|x| x.algorithm).collect::<Vec<_>>(),
                &k.iter().map(|x| x.aaguid.as_slice()).collect::<Vec<_>>(),
                &k.iter()
                    .map(|x| i64::from(x.sign_count))
                    .collect::<Vec<_>>(),
                &k.iter().map(|x| x.label.as_str()).collect::<Vec<_>>(),
                &k.iter().map(|x| x.attestation.as_str()).collect::<Vec<_>>(),
                &k.iter().map(|x| x.created).collect::<Vec<_>>(),
                &k.iter().map(|x| x.last_used).collect::<Vec<_>>(),
            ],
        )
        .await?;
    let h = &s.ssh_keys;
    let ssh_keys = c
        .execute(
            "INSERT INTO pam_tap.ssh_keys (fingerprint, \"user\", key_type, blob, label,
                 application, aaguid, attestation, created, last_used)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::TEXT[],
                 $6::TEXT[], $7::BYTEA[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[])",
            &[
                &h.iter().map(|x| x.fingerprint.as_str()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.user.as_str()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.key_type.as_str()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.blob.as_slice()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.label.as_str()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.application.as_str()).collect::<Vec<_>>(),
                &h.iter()
                    .map(|x| x.aaguid.as_ref().map(|a| a.as_slice()))
                    .collect::<Vec<_>>(),
                &h.iter().map(|x| x.attestation.as_str()).collect::<Vec<_>>(),
                &h.iter().map(|x| x.created).collect::<Vec<_>>(),
                &h.iter().map(|x| x.last_used).collect::<Vec<_>>(),
            ],
        )
        .await?;
    let a = &s.audit;
    // The identity column numbers them in this order, after any records
    // the database holds already.
    let audit = c
        .execute(
            "INSERT INTO pam_tap.audit (time, event, \"user\", actor, service, rhost, tty,
                 detail, peer, host)
             SELECT time, event, u, actor, service, rhost, tty, detail, peer, $10::TEXT
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[])
                 WITH ORDINALITY AS a(time, event, u, actor, service, rhost, tty, detail, peer, n)
             ORDER BY n",
            &[
                &a.iter().map(|x| x.time).collect::<Vec<_>>(),
                &a.iter().map(|x| x.event.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.user.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.actor.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.service.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.rhost.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.tty.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.detail.as_str()).collect::<Vec<_>>(),
                &a.iter().map(|x| x.peer.as_str()).collect::<Vec<_>>(),
                &host,
            ],
        )
        .await?;
    let n = |rows: u64| usize::try_from(rows).unwrap_or(usize::MAX);
    Ok(Copied {
        passes: n(passes),
        keys: n(keys),
        ssh_keys: n(ssh_keys),
        audit: n(audit),
    })
}
