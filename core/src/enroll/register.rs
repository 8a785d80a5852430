//! The daemon's side of a registration: the request the helper gets, and
//! the checks an answer must pass before a key is stored.

use crate::keys::credential::KeyCredential;
use crate::keys::{verify_registration, Algorithm, RegistrationAnswer, VerifyError};
use crate::policy::{format_aaguid, Policy};
use crate::timefmt::Timestamp;
use tap_protocol::admin::Registration;
use tap_protocol::helper::{Bytes, RegisterRequest, UserVerification};

/// A label is shown in tables and logs: short, printable, one line.
pub const MAX_LABEL_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLabel;

impl std::fmt::Display for BadLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--label must be 1 to {MAX_LABEL_CHARS} printable characters"
        )
    }
}

impl std::error::Error for BadLabel {}

pub fn check_label(label: Option<&str>) -> Result<(), BadLabel> {
    match label {
        Some(text)
            if text.is_empty()
                || text.chars().count() > MAX_LABEL_CHARS
                || text.chars().any(char::is_control) =>
        {
            Err(BadLabel)
        }
        _ => Ok(()),
    }
}

/// makeCredential for `user`, excluding the keys they have (an
/// authenticator refuses to make a second credential for itself).
pub fn registration_request(
    policy: &Policy,
    user: &str,
    existing: &[KeyCredential],
    challenge: [u8; 32],
    user_handle: [u8; 16],
) -> RegisterRequest {
    RegisterRequest {
        rp_id: policy.keys.rp_id().to_string(),
        client_data_hash: Bytes(challenge.to_vec()),
        user_id: Bytes(user_handle.to_vec()),
        user_name: user.to_string(),
        exclude: existing
            .iter()
            .map(|k| Bytes(k.credential_id.clone()))
            .collect(),
        algorithms: vec![Algorithm::Es256.cose_id(), Algorithm::EdDsa.cose_id()],
        user_verification: policy.keys.user_verification,
        pin: None,
    }
}

/// Why an answer was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRefusal {
    /// The answer does not verify against the challenge.
    Verify(VerifyError),
    /// The policy's `allowed_aaguids` does not list this model.
    ModelNotAllowed(String),
}

impl EnrollRefusal {
    /// The audit record's detail (`key.enroll_refused`).
    pub fn audit_detail(&self) -> String {
        match self {
            EnrollRefusal::Verify(e) => e.code().to_string(),
            EnrollRefusal::ModelNotAllowed(model) => format!("model {model} not allowed"),
        }
    }
}

impl std::fmt::Display for EnrollRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollRefusal::Verify(e) => write!(f, "the security key's answer was refused: {e}"),
            EnrollRefusal::ModelNotAllowed(model) => write!(
                f,
                "this key model ({model}) is not allowed by the policy's [keys] allowed_aaguids"
            ),
        }
    }
}

impl std::error::Error for EnrollRefusal {}

/// Verifies the helper's answer to `challenge` and makes the key to store.
/// `label` was checked already; `existing` names the default label.
pub fn verified_key(
    policy: &Policy,
    user: &str,
    challenge: &[u8; 32],
    answer: &Registration,
    label: Option<&str>,
    existing: usize,
    now: Timestamp,
) -> Result<KeyCredential, EnrollRefusal> {
    let uv_required = policy.keys.user_verification == UserVerification::Required;
    let answer = RegistrationAnswer {
        authenticator_data: &answer.authenticator_data.0,
        attestation_format: &answer.attestation_format,
        attestation_statement: &answer.attestation_statement.0,
    };
    let verified = verify_registration(policy.keys.rp_id(), challenge, uv_required, &answer)
        .map_err(EnrollRefusal::Verify)?;
    if !policy.keys.allows_aaguid(&verified.aaguid) {
        return Err(EnrollRefusal::ModelNotAllowed(format_aaguid(
            &verified.aaguid,
        )));
    }
    Ok(KeyCredential {
        user: user.to_string(),
        credential_id: verified.credential_id.clone(),
        public_key: verified.public_key.clone(),
        algorithm: verified.algorithm.cose_id(),
        aaguid: verified.aaguid,
        sign_count: verified.sign_count,
        label: label.map_or_else(|| format!("key {}", existing + 1), str::to_string),
        attestation: format!(
            "{}: {}",
            verified.attestation_format,
            verified.attestation.describe()
        ),
        created: now,
        last_used: None,
    })
}

/// The audit detail of a stored key (`key.enrolled`).
pub fn enrolled_detail(key: &KeyCredential) -> String {
    format!(
        "key {} ({}), model {}, {}",
        key.label,
        key.id_text(),
        format_aaguid(&key.aaguid),
        key.attestation
    )
}
