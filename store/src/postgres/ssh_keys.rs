//! The ssh_keys table: each user's OpenSSH keys, as sshd is served them.

use super::audit::values;
use super::keys::add_through;
use super::{PostgresStore, Result};
use tap_core::audit::AuditRecord;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::AddKey;
use tap_core::timefmt::Timestamp;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(super) fn ssh_keys(store: &PostgresStore, user: &str) -> Result<Vec<SshKeyRecord>> {
    store.call("reading SSH keys", |c| {
        Box::pin(async move {
            c.query(
                "SELECT * FROM pam_tap.ssh_keys WHERE \"user\" = $1 ORDER BY created, fingerprint",
                &[&user],
            )
            .await?
            .iter()
            .map(from_row)
            .collect()
        })
    })
}

/// Adds a key through pam_tap.add_ssh_key: unless the user has `max_keys`
/// already, or anyone has this key; counted under a lock on the user, and
/// for a host only in the user's enrollment window (see keys.rs).
pub(super) fn add_ssh_key(
    store: &mut PostgresStore,
    key: &SshKeyRecord,
    max_keys: usize,
    audit: &AuditRecord,
) -> Result<AddKey> {
    let max = i64::try_from(max_keys).unwrap_or(i64::MAX);
    let aaguid = key.aaguid.map(|a| a.to_vec());
    let values: [&(dyn ToSql + Sync); 10] = [
        &key.fingerprint,
        &key.user,
        &key.key_type,
        &key.blob,
        &key.label,
        &key.application,
        &aaguid,
        &key.attestation,
        &key.created,
        &max,
    ];
    add_through(
        store,
        "adding an SSH key",
        "pam_tap.add_ssh_key",
        values,
        audit,
    )
}

pub(super) fn remove_ssh_key(
    store: &mut PostgresStore,
    user: &str,
    fingerprint: &str,
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("removing an SSH key", |c| {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user, &fingerprint];
            params.extend(values(audit, &host));
            c.query_one(
                "WITH changed AS (
                    DELETE FROM pam_tap.ssh_keys WHERE \"user\" = $1 AND fingerprint = $2 RETURNING 1
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

/// Last use guards nothing (sshd decided already).
pub(super) fn record_ssh_key_use(
    store: &mut PostgresStore,
    user: &str,
    fingerprint: &str,
    now: Timestamp,
    audit: &AuditRecord,
) -> Result<bool> {
    let host = store.host_name.as_str();
    store.call("recording an SSH key sign-in", |c| {
        Box::pin(async move {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user, &fingerprint, &now];
            params.extend(values(audit, &host));
            c.query_one(
                "SELECT pam_tap.record_ssh_key_use($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                                                   $12, $13)",
                &params,
            )
            .await?
            .try_get(0)
        })
    })
}

fn from_row(r: &Row) -> std::result::Result<SshKeyRecord, tokio_postgres::Error> {
    let aaguid: Option<Vec<u8>> = r.try_get("aaguid")?;
    Ok(SshKeyRecord {
        user: r.try_get("user")?,
        fingerprint: r.try_get("fingerprint")?,
        key_type: r.try_get("key_type")?,
        blob: r.try_get("blob")?,
        label: r.try_get("label")?,
        application: r.try_get("application")?,
        aaguid: aaguid.and_then(|a| a.try_into().ok()),
        attestation: r.try_get("attestation")?,
        created: r.try_get("created")?,
        last_used: r.try_get("last_used")?,
    })
}
