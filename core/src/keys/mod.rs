//! Security keys: the helper protocol, and (in their own modules) parsing
//! and verifying what an authenticator returns.

pub mod attestation;
pub mod authdata;
mod cbor;
pub mod cose;
pub mod credential;
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod testkit;
pub mod verify;

/// The key-helper protocol lives with the daemon's, in `tap-protocol`.
pub use tap_protocol::helper as protocol;

pub use attestation::{verify_registration, Attestation, RegistrationAnswer, VerifiedRegistration};
pub use cbor::CborError;
pub use cose::{Algorithm, CredentialKey, KeyError};
pub use verify::{
    verify_assertion, AssertionAnswer, StoredCredential, VerifiedAssertion, VerifyError,
};

/// Fills `buf` from the OS random source (challenges, user handles).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), String> {
    getrandom::getrandom(buf).map_err(|e| format!("random source: {e}"))
}
