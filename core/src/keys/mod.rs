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

/// Fills `buf` from the OS random source (challenges, user handles, salts).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::getrandom(buf).map_err(RandomError)
}

/// The OS random source failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomError(pub getrandom::Error);

impl std::fmt::Display for RandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "random source: {}", self.0)
    }
}

impl std::error::Error for RandomError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
