//! The store's records as the protocol carries them to tapctl.

use tap_core::audit::AuditRecord;
use tap_core::keys::credential::KeyCredential;
use tap_core::keys::Algorithm;
use tap_core::pass::PassRecord;
use tap_core::policy::{format_aaguid, Policy};
use tap_core::ssh::record::SshKeyRecord;
use tap_core::timefmt::Timestamp;
use tap_protocol::admin::{AuditEntry, KeyInfo, PassInfo, SshKeyInfo};

/// A pass, with its usability now for a user the scope does or does not
/// admit.
pub fn pass_info(pass: &PassRecord, policy: &Policy, admitted: bool, now: Timestamp) -> PassInfo {
    PassInfo {
        user: pass.user.clone(),
        start: pass.start,
        expires: pass.expires,
        one_time: pass.one_time,
        reason: pass.usability(policy.enabled && admitted, now),
        failures: pass.failures,
        max_failures: policy.pass.max_failures,
        issued_by: pass.issued_by.clone(),
        created: pass.created,
        used_at: pass.used_at,
        last_used: pass.last_used,
        locked_at: pass.locked_at,
        revoked_at: pass.revoked_at,
    }
}

pub fn key_info(key: &KeyCredential) -> KeyInfo {
    KeyInfo {
        id: key.id_text(),
        label: key.label.clone(),
        model: format_aaguid(&key.aaguid),
        algorithm: Algorithm::from_cose_id(key.algorithm)
            .map_or("unknown", |a| a.name())
            .to_string(),
        sign_count: key.sign_count,
        attestation: key.attestation.clone(),
        created: key.created,
        last_used: key.last_used,
    }
}

pub fn ssh_key_info(key: &SshKeyRecord) -> SshKeyInfo {
    SshKeyInfo {
        fingerprint: key.fingerprint.clone(),
        key_type: key.key_type.clone(),
        label: key.label.clone(),
        application: key.application.clone(),
        model: key.aaguid.as_ref().map(format_aaguid).unwrap_or_default(),
        attestation: key.attestation.clone(),
        created: key.created,
        last_used: key.last_used,
    }
}

pub fn audit_entry(record: AuditRecord) -> AuditEntry {
    AuditEntry {
        seq: record.seq,
        time: record.time,
        event: record.event,
        user: record.user,
        actor: record.actor,
        service: record.service,
        rhost: record.rhost,
        tty: record.tty,
        detail: record.detail,
        host: record.host,
    }
}
