//! Proof of an enrolled key, the daemon's side: tapctl's self-service
//! (enrolling outside a window, removing one's own key) asks the caller to
//! touch a key they already have. The challenge is the daemon's; the
//! answer is verified here and the key's counter moves as at sign-in.

use crate::audit::Event;
use crate::keys::credential::KeyCredential;
use crate::keys::verify::{verify_assertion, AssertionAnswer, StoredCredential, VerifyError};
use tap_protocol::admin::KeyProof;
use tap_protocol::helper::{AssertRequest, Bytes, UserVerification};

use crate::policy::Policy;

/// getAssertion for any of `keys`.
pub fn proof_request(
    policy: &Policy,
    keys: &[KeyCredential],
    challenge: [u8; 32],
) -> AssertRequest {
    AssertRequest {
        rp_id: policy.keys.rp_id().to_string(),
        client_data_hash: Bytes(challenge.to_vec()),
        allow: keys
            .iter()
            .map(|k| Bytes(k.credential_id.clone()))
            .collect(),
        user_verification: policy.keys.user_verification,
        pin: None,
    }
}

/// A verified proof: which key, and the counter to store for it.
#[derive(Debug)]
pub struct Proven<'k> {
    pub key: &'k KeyCredential,
    pub sign_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofRefusal {
    /// The answer names a key that is not among the allowed ones.
    NotEnrolled,
    Verify {
        label: String,
        error: VerifyError,
    },
}

impl ProofRefusal {
    /// The audit event, as a key sign-in writes it.
    pub fn event(&self) -> Event {
        match self {
            ProofRefusal::Verify { error, .. } if error.is_possible_clone() => {
                Event::KeyCounterRegressed
            }
            _ => Event::KeySignInFailed,
        }
    }

    /// The audit detail, as a key sign-in writes it.
    pub fn audit_detail(&self) -> String {
        match self {
            ProofRefusal::NotEnrolled => {
                "a key that is not enrolled for this user answered".to_string()
            }
            ProofRefusal::Verify { label, error } if error.is_possible_clone() => {
                format!("possible cloned key {label}: {error}")
            }
            ProofRefusal::Verify { error, .. } => format!("{}: {error}", error.code()),
        }
    }
}

impl std::fmt::Display for ProofRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "your security key was not accepted: {}",
            self.audit_detail()
        )
    }
}

impl std::error::Error for ProofRefusal {}

/// Verifies `proof` against `challenge` and the allowed `keys`.
pub fn verify_proof<'k>(
    policy: &Policy,
    keys: &'k [KeyCredential],
    challenge: &[u8; 32],
    proof: &KeyProof,
) -> Result<Proven<'k>, ProofRefusal> {
    let key = keys
        .iter()
        .find(|k| k.credential_id == proof.credential_id.0)
        .ok_or(ProofRefusal::NotEnrolled)?;
    let stored = StoredCredential {
        credential_id: &key.credential_id,
        public_key: &key.public_key,
        sign_count: key.sign_count,
    };
    let answer = AssertionAnswer {
        credential_id: &proof.credential_id.0,
        authenticator_data: &proof.authenticator_data.0,
        signature: &proof.signature.0,
    };
    let uv_required = policy.keys.user_verification == UserVerification::Required;
    verify_assertion(
        &stored,
        policy.keys.rp_id(),
        challenge,
        uv_required,
        &answer,
    )
    .map(|verified| Proven {
        key,
        sign_count: verified.sign_count,
    })
    .map_err(|error| ProofRefusal::Verify {
        label: key.label.clone(),
        error,
    })
}
