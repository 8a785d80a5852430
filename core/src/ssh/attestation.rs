//! The attestation OpenSSH writes for a new FIDO key
//! (`ssh-keygen -t ed25519-sk -O challenge=FILE -O write-attestation=FILE`),
//! and checking it against the challenge we issued and the public key
//! being enrolled.
//!
//! The file is raw binary in the SSH wire encoding (PROTOCOL.u2f,
//! "ssh-sk-attest-v01"; ssh-sk.c `fill_attestation_blob`, written as is by
//! ssh-keygen.c `save_attestation`):
//!
//! ```text
//! string  "ssh-sk-attest-v01"
//! string  attestation certificate (X.509 DER; empty when self-attested)
//! string  enrollment signature
//! string  authenticator data, CBOR encoded
//! uint32  reserved flags (0)
//! string  reserved (empty)
//! ```
//!
//! `ssh-sk-attest-v00`, written before OpenSSH 8.4, lacks the
//! authenticator data: nothing it holds can be bound to a challenge or a
//! key, so it is refused.
//!
//! What Debian 12's OpenSSH 9.2p1 with libfido2 1.12 puts in it (read in
//! openssh-portable tag V_9_2_P1 and libfido2 tag 1.12.0):
//!
//! * **clientDataHash = SHA-256(challenge)**, the challenge being the
//!   challenge file's bytes exactly (ssh-keygen.c:3798-3803 loads it with
//!   `sshbuf_load_file`; ssh-sk.c:518-525 passes it on unchanged, and
//!   refuses an empty one). sk-usbhid.c:911-912 calls
//!   `fido_cred_set_clientdata(cred, challenge, challenge_len)`; libfido2
//!   1.12 has that function (OpenSSH's configure.ac:3253 detects it), and
//!   its src/cred.c:769-782 stores SHA-256 of the data as the hash. Without
//!   it, OpenSSH's own fallback (sk-usbhid.c:342-361) hashes the same way.
//! * **Authenticator data is CBOR-wrapped**: sk-usbhid.c:1014-1022 copies
//!   `fido_cred_authdata_ptr`, which (libfido2 src/cred.c:1047-1050) is
//!   `authdata_cbor`: the authenticator's CBOR byte string re-serialized
//!   (src/cbor.c:1299-1310), i.e. a definite-length CBOR byte string
//!   header followed by the raw authenticatorData. The raw bytes are what
//!   is signed. PROTOCOL.u2f says the same: "authenticator data (CBOR
//!   encoded)".
//! * **The signature** is the statement's `sig` (`fido_cred_sig_ptr`,
//!   sk-usbhid.c:995-1002) and the certificate is x5c's first entry only
//!   (`fido_cred_x5c_ptr`, sk-usbhid.c:1004-1013). The format name (packed,
//!   fido-u2f, ...) is not kept: a FIDO2 key signs authenticatorData ||
//!   clientDataHash ("packed"); libfido2 reports a U2F-only key's
//!   registration as "fido-u2f" (src/u2f.c:503-560, 645), whose signature
//!   covers the U2F registration message. Both are tried for a P-256
//!   certificate and a P-256 credential.
//! * The application is the FIDO rp id (sk-usbhid.c:927,
//!   `fido_cred_set_rp(cred, application, NULL)`), so rpIdHash =
//!   SHA-256(application).
//!
//! The certificate is used for its public key only and never trusted: no
//! chain, no validity period, no revocation, as in `keys::attestation`.

use sha2::{Digest, Sha256};
use x509_cert::der::Decode;
use x509_cert::Certificate;

use super::keyline::{SshKeyType, SshPublicKey};
use super::wire::{Reader, Truncated};
use crate::keys::attestation::{
    certificate_key, verify_registration, Attestation, RegistrationAnswer,
};
use crate::keys::authdata::{AuthenticatorData, AAGUID_LEN};
use crate::keys::cose::{Algorithm, CredentialKey};
use crate::keys::VerifyError;

pub const MAGIC_V01: &str = "ssh-sk-attest-v01";
pub const MAGIC_V00: &str = "ssh-sk-attest-v00";
/// A larger file is refused unread; real ones are under 2 KiB.
pub const MAX_ATTESTATION_LEN: usize = 16 * 1024;

/// A parsed `ssh-sk-attest-v01` blob; nothing in it is checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshAttestation {
    /// X.509 DER, or empty for self attestation.
    pub certificate: Vec<u8>,
    pub signature: Vec<u8>,
    /// The raw authenticatorData, its CBOR wrapping removed.
    pub authenticator_data: Vec<u8>,
}

/// What the attestation must prove.
#[derive(Clone, Copy, Debug)]
pub struct SshAttestationCheck<'a> {
    /// The challenge file's bytes, exactly as given to `ssh-keygen -O challenge=`.
    pub challenge: &'a [u8],
    /// The key being enrolled: the attestation must be for it.
    pub key: &'a SshPublicKey,
    pub user_verification_required: bool,
}

/// A verified attestation: what the caller judges by policy and records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSshAttestation {
    /// The authenticator model, as the authenticator claims it.
    pub aaguid: [u8; AAGUID_LEN],
    pub user_verified: bool,
    /// `Certificate` or `SelfAttestation`; never an unchecked kind.
    pub attestation: Attestation,
    /// Which signed message verified: "packed" or "fido-u2f".
    pub format: &'static str,
    /// The certificate (DER) as sent, recorded but not trusted; empty for
    /// self attestation.
    pub certificate: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshAttestationError {
    /// Longer than [`MAX_ATTESTATION_LEN`].
    TooLong,
    /// A field runs past the end.
    Truncated,
    /// Bytes after the reserved string.
    TrailingBytes,
    /// Does not start with "ssh-sk-attest-v01".
    UnknownFormat,
    /// "ssh-sk-attest-v00" (OpenSSH before 8.4): no authenticator data.
    Version00,
    /// The reserved flags or string are set: a layout we do not know.
    ReservedFieldsSet,
    /// The authenticator data is not one definite CBOR byte string.
    AuthenticatorDataNotCbor,
    /// The key is not a FIDO (sk-) key, so there is nothing to attest.
    NotSecurityKey,
    /// The caller passed an empty challenge (OpenSSH refuses those too).
    EmptyChallenge,
    /// The attestation carries no signature.
    Unsigned,
    /// The attested credential is not the key being enrolled.
    KeyMismatch,
    /// The attestation is for another application (rp id) than the key's.
    ApplicationMismatch,
    /// The certificate's key is neither P-256 ECDSA nor Ed25519.
    UnsupportedAlgorithm,
    /// Refused by the FIDO checks: signature, flags, certificate, ...
    Registration(VerifyError),
}

impl SshAttestationError {
    /// A stable snake_case word for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong => "ssh_attestation_too_long",
            Self::Truncated => "ssh_attestation_truncated",
            Self::TrailingBytes => "ssh_attestation_trailing_bytes",
            Self::UnknownFormat => "ssh_attestation_unknown_format",
            Self::Version00 => "ssh_attestation_v00",
            Self::ReservedFieldsSet => "ssh_attestation_reserved_fields_set",
            Self::AuthenticatorDataNotCbor => "ssh_attestation_authdata_not_cbor",
            Self::NotSecurityKey => "ssh_attestation_not_security_key",
            Self::EmptyChallenge => "ssh_attestation_empty_challenge",
            Self::Unsigned => "ssh_attestation_unsigned",
            Self::KeyMismatch => "ssh_attestation_key_mismatch",
            Self::ApplicationMismatch => "ssh_attestation_application_mismatch",
            Self::UnsupportedAlgorithm => "ssh_attestation_unsupported_algorithm",
            Self::Registration(e) => e.code(),
        }
    }
}

impl std::fmt::Display for SshAttestationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => write!(f, "attestation is longer than {MAX_ATTESTATION_LEN} bytes"),
            Self::Truncated => f.write_str("attestation is cut short"),
            Self::TrailingBytes => f.write_str("attestation has unexplained trailing bytes"),
            Self::UnknownFormat => {
                write!(f, "not an OpenSSH attestation (expected {MAGIC_V01:?})")
            }
            Self::Version00 => f.write_str(
                "attestation is ssh-sk-attest-v00 (OpenSSH before 8.4), which cannot be \
                 verified; enroll with a newer ssh-keygen",
            ),
            Self::ReservedFieldsSet => f.write_str("attestation sets reserved fields"),
            Self::AuthenticatorDataNotCbor => {
                f.write_str("attestation's authenticator data is not a CBOR byte string")
            }
            Self::NotSecurityKey => f.write_str("only security keys (sk- types) have attestations"),
            Self::EmptyChallenge => f.write_str("the enrollment challenge is empty"),
            Self::Unsigned => f.write_str("attestation carries no signature"),
            Self::KeyMismatch => f.write_str("attestation is for another key"),
            Self::ApplicationMismatch => {
                f.write_str("attestation is for another application than the key")
            }
            Self::UnsupportedAlgorithm => f.write_str(
                "unsupported attestation algorithm (only P-256 ECDSA and Ed25519 certificates)",
            ),
            Self::Registration(e) => write!(f, "attestation refused: {e}"),
        }
    }
}

impl std::error::Error for SshAttestationError {}

impl From<Truncated> for SshAttestationError {
    fn from(_: Truncated) -> Self {
        Self::Truncated
    }
}

impl From<VerifyError> for SshAttestationError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::RpIdMismatch => Self::ApplicationMismatch,
            other => Self::Registration(other),
        }
    }
}

impl SshAttestation {
    /// Reads the file `ssh-keygen -O write-attestation=` wrote.
    pub fn parse(blob: &[u8]) -> Result<Self, SshAttestationError> {
        if blob.len() > MAX_ATTESTATION_LEN {
            return Err(SshAttestationError::TooLong);
        }
        let mut reader = Reader::new(blob);
        match reader.string()? {
            magic if magic == MAGIC_V01.as_bytes() => {}
            magic if magic == MAGIC_V00.as_bytes() => return Err(SshAttestationError::Version00),
            _ => return Err(SshAttestationError::UnknownFormat),
        }
        let certificate = reader.string()?;
        let signature = reader.string()?;
        let authenticator_data = unwrap_cbor_bytes(reader.string()?)?;
        let reserved_flags = reader.u32()?;
        let reserved = reader.string()?;
        if !reader.is_empty() {
            return Err(SshAttestationError::TrailingBytes);
        }
        if reserved_flags != 0 || !reserved.is_empty() {
            return Err(SshAttestationError::ReservedFieldsSet);
        }
        Ok(Self {
            certificate: certificate.to_vec(),
            signature: signature.to_vec(),
            authenticator_data: authenticator_data.to_vec(),
        })
    }
}

/// The content of one definite-length CBOR byte string that is the whole
/// input, its head minimal as libcbor writes it.
fn unwrap_cbor_bytes(bytes: &[u8]) -> Result<&[u8], SshAttestationError> {
    const NOT_CBOR: SshAttestationError = SshAttestationError::AuthenticatorDataNotCbor;
    let (&first, rest) = bytes.split_first().ok_or(NOT_CBOR)?;
    let (len, content) = match first {
        0x40..=0x57 => (usize::from(first & 0x1f), rest),
        0x58 => {
            let (&len, content) = rest.split_first().ok_or(NOT_CBOR)?;
            (usize::from(len), content)
        }
        0x59 => {
            let (len, content) = rest.split_first_chunk::<2>().ok_or(NOT_CBOR)?;
            (usize::from(u16::from_be_bytes(*len)), content)
        }
        // Longer heads cannot fit in MAX_ATTESTATION_LEN.
        _ => return Err(NOT_CBOR),
    };
    let minimal = match first {
        0x58 => len >= 24,
        0x59 => len > 0xff,
        _ => true,
    };
    if !minimal || content.len() != len {
        return Err(NOT_CBOR);
    }
    Ok(content)
}

/// Checks `attestation` against the challenge we issued and the key being
/// enrolled; see the module comment for what OpenSSH signs.
pub fn verify(
    attestation: &SshAttestation,
    check: &SshAttestationCheck<'_>,
) -> Result<VerifiedSshAttestation, SshAttestationError> {
    let key = check.key;
    let (Some(application), Some(public_key)) = (key.application.as_deref(), key.sk_public_key())
    else {
        return Err(SshAttestationError::NotSecurityKey);
    };
    if check.challenge.is_empty() {
        return Err(SshAttestationError::EmptyChallenge);
    }
    if attestation.signature.is_empty() {
        return Err(SshAttestationError::Unsigned);
    }
    let client_data_hash: [u8; 32] = Sha256::digest(check.challenge).into();

    // The attested key first, so a different key says so plainly.
    let auth_data = AuthenticatorData::parse(&attestation.authenticator_data)
        .map_err(VerifyError::AuthenticatorData)?;
    let credential = auth_data
        .attested_credential
        .ok_or(VerifyError::MissingAttestedCredential)?;
    let credential_key =
        CredentialKey::from_cose(credential.public_key).map_err(VerifyError::CredentialKey)?;
    if !is_same_key(&credential_key, key.key_type, public_key) {
        return Err(SshAttestationError::KeyMismatch);
    }

    let signer = if attestation.certificate.is_empty() {
        None
    } else {
        let certificate = Certificate::from_der(&attestation.certificate)
            .map_err(|_| VerifyError::AttestationCertificateInvalid)?;
        Some(certificate_key(&certificate).map_err(|e| match e {
            VerifyError::AttestationAlgorithmMismatch => SshAttestationError::UnsupportedAlgorithm,
            other => SshAttestationError::Registration(other),
        })?)
    };
    let registration = |format: &str, statement: &[u8]| {
        verify_registration(
            application,
            &client_data_hash,
            check.user_verification_required,
            &RegistrationAnswer {
                authenticator_data: &attestation.authenticator_data,
                attestation_format: format,
                attestation_statement: statement,
            },
        )
    };

    let alg = signer.as_ref().unwrap_or(&credential_key).algorithm();
    let packed = registration("packed", &statement(Some(alg), attestation));
    let u2f_possible = signer.as_ref().map(CredentialKey::algorithm) == Some(Algorithm::Es256)
        && credential_key.algorithm() == Algorithm::Es256;
    let (format, verified) = match packed {
        Err(VerifyError::AttestationSignatureInvalid) if u2f_possible => {
            let u2f = registration("fido-u2f", &statement(None, attestation));
            // Report the packed failure if neither message verifies.
            (
                "fido-u2f",
                u2f.map_err(|_| VerifyError::AttestationSignatureInvalid)?,
            )
        }
        other => ("packed", other?),
    };
    if !verified.attestation.signature_verified() {
        return Err(SshAttestationError::UnsupportedAlgorithm);
    }
    Ok(VerifiedSshAttestation {
        aaguid: verified.aaguid,
        user_verified: verified.user_verified,
        attestation: verified.attestation,
        format,
        certificate: attestation.certificate.clone(),
    })
}

/// The WebAuthn attestation statement equivalent to OpenSSH's fields:
/// `packed` when `alg` is given, else `fido-u2f`. Keys in canonical CBOR
/// order ("alg", "sig", "x5c").
fn statement(alg: Option<Algorithm>, attestation: &SshAttestation) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(attestation.signature.len() + attestation.certificate.len() + 32);
    let with_certificate = !attestation.certificate.is_empty();
    let entries = usize::from(alg.is_some()) + 1 + usize::from(with_certificate);
    cbor_head(&mut out, 5, entries);
    if let Some(alg) = alg {
        cbor_text(&mut out, "alg");
        // COSE ids -7 and -8: negative integers -1 - n.
        let n = usize::try_from(-1 - alg.cose_id()).unwrap_or(0);
        cbor_head(&mut out, 1, n);
    }
    cbor_text(&mut out, "sig");
    cbor_head(&mut out, 2, attestation.signature.len());
    out.extend_from_slice(&attestation.signature);
    if with_certificate {
        cbor_text(&mut out, "x5c");
        cbor_head(&mut out, 4, 1);
        cbor_head(&mut out, 2, attestation.certificate.len());
        out.extend_from_slice(&attestation.certificate);
    }
    out
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 3, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// A CBOR head; lengths here are bounded by [`MAX_ATTESTATION_LEN`].
fn cbor_head(out: &mut Vec<u8>, major: u8, n: usize) {
    let major = major << 5;
    if let Ok(byte) = u8::try_from(n) {
        if byte < 24 {
            out.push(major | byte);
        } else {
            out.extend_from_slice(&[major | 24, byte]);
        }
    } else if let Ok(short) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(major | 26);
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// Whether the COSE credential key is the SSH key: same algorithm, same point.
fn is_same_key(credential: &CredentialKey, key_type: SshKeyType, ssh_key: &[u8]) -> bool {
    match (credential, key_type) {
        (CredentialKey::EdDsa(key), SshKeyType::SkEd25519) => key.as_bytes() == ssh_key,
        (CredentialKey::Es256(_), SshKeyType::SkEcdsaP256) => credential
            .sec1_uncompressed()
            .is_some_and(|point| point == ssh_key),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
