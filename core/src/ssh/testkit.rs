//! Test data for SSH keys: an sk key and its `ssh-sk-attest-v01` file as
//! `ssh-keygen -O challenge=… -O write-attestation=…` and a FIDO2 key make
//! them, built from the spec (PROTOCOL.u2f) and `keys::testkit`.

use super::attestation::MAGIC_V01;
use super::wire::put_string;
use super::{SshKeyType, SshPublicKey};
use crate::keys::authdata::Flags;
use crate::keys::cose::Algorithm;
use crate::keys::testkit::{auth_data, cbor_bytes, certificate, AuthDataSpec, TestKey};
use sha2::{Digest, Sha256};

/// The sk public key of `credential`, made for `application`.
pub fn sk_public_key(credential: &TestKey, application: &str) -> SshPublicKey {
    let mut blob = Vec::new();
    match credential.algorithm() {
        Algorithm::EdDsa => {
            put_string(&mut blob, SshKeyType::SkEd25519.name().as_bytes());
            put_string(&mut blob, &credential.ed_public());
        }
        Algorithm::Es256 => {
            put_string(&mut blob, SshKeyType::SkEcdsaP256.name().as_bytes());
            put_string(&mut blob, b"nistp256");
            put_string(&mut blob, &credential.sec1());
        }
    }
    put_string(&mut blob, application.as_bytes());
    match SshPublicKey::from_blob(&blob) {
        Ok(key) => key,
        Err(e) => panic!("testkit made a bad sk key: {e}"),
    }
}

/// An `ssh-sk-attest-v01` file from its three fields, reserved ones zero.
pub fn attestation_file(certificate: &[u8], signature: &[u8], wrapped_auth_data: &[u8]) -> Vec<u8> {
    attestation_file_with(MAGIC_V01, certificate, signature, wrapped_auth_data, 0, b"")
}

pub fn attestation_file_with(
    magic: &str,
    certificate: &[u8],
    signature: &[u8],
    wrapped_auth_data: &[u8],
    reserved_flags: u32,
    reserved: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, magic.as_bytes());
    put_string(&mut out, certificate);
    put_string(&mut out, signature);
    put_string(&mut out, wrapped_auth_data);
    out.extend_from_slice(&reserved_flags.to_be_bytes());
    put_string(&mut out, reserved);
    out
}

/// A new sk key and its attestation for `challenge`, certified by a P-256
/// attestation key whose certificate names `aaguid`, as a hardware key
/// would make them.
pub struct SkEnrollment {
    pub credential: TestKey,
    /// The `.pub` line `ssh-keygen` writes.
    pub line: String,
    pub attestation: Vec<u8>,
}

impl SkEnrollment {
    pub fn new(
        algorithm: Algorithm,
        challenge: &[u8],
        application: &str,
        aaguid: [u8; 16],
    ) -> Self {
        Self::with_flags(
            algorithm,
            challenge,
            application,
            aaguid,
            Flags::USER_PRESENT,
        )
    }

    /// With these authData flags (AT is added): `Flags::USER_VERIFIED` for
    /// a key that verified its user.
    pub fn with_flags(
        algorithm: Algorithm,
        challenge: &[u8],
        application: &str,
        aaguid: [u8; 16],
        flags: u8,
    ) -> Self {
        let credential = TestKey::of(algorithm);
        let attestation_key = TestKey::es256();
        let cose = credential.cose();
        let mut spec = AuthDataSpec::registration(application, &[0x6b; 64], &cose);
        spec.aaguid = aaguid;
        spec.flags = flags | Flags::ATTESTED_CREDENTIAL;
        let auth = auth_data(&spec);
        let client_data_hash: [u8; 32] = Sha256::digest(challenge).into();
        let signature = attestation_key.sign(&[auth.as_slice(), &client_data_hash].concat());
        let attestation = attestation_file(
            &certificate(&attestation_key, Some(aaguid)),
            &signature,
            &cbor_bytes(&auth),
        );
        let line = format!(
            "{} user@laptop",
            sk_public_key(&credential, application).to_line()
        );
        SkEnrollment {
            credential,
            line,
            attestation,
        }
    }
}
