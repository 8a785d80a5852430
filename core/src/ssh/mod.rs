//! OpenSSH keys enrolled under a pass: checking a submitted public-key
//! line, and the attestation `ssh-keygen -O write-attestation=` writes for
//! a FIDO key made with `-O challenge=`. Pure functions over bytes: no
//! I/O, no policy (allowed types and AAGUIDs are the caller's to judge).

pub mod attestation;
pub mod keyline;
pub mod record;
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::panic)]
pub mod testkit;
mod wire;

pub use attestation::{
    verify, SshAttestation, SshAttestationCheck, SshAttestationError, VerifiedSshAttestation,
};
pub use keyline::{KeyLineError, SshKeyType, SshPublicKey};
