//! Verifying what the key helper brings back from a makeCredential: the new
//! credential, and its attestation "as far as its format allows".
//!
//! * `none`: there is nothing to check; accepted and reported as such.
//! * `packed` without `x5c` (self attestation): the statement's alg must be
//!   the credential's, and the credential key must have signed
//!   authenticatorData || clientDataHash.
//! * `packed` with `x5c`: the leaf certificate's key must have signed it;
//!   an AAGUID extension in the certificate must match authenticatorData.
//! * `fido-u2f`: the one certificate's P-256 key must have signed
//!   0x00 || rpIdHash || clientDataHash || credentialId || 0x04 || x || y.
//! * any other format, or a `packed` certificate signature algorithm we do
//!   not implement: accepted as unattested, and reported as such.
//!
//! Attestation certificates are returned so the caller can record them,
//! but they are never trusted: no chain is built or validated, no root is
//! consulted, no revocation checked. A verified attestation proves only
//! that the statement is internally consistent and bound to this
//! registration's challenge — not which vendor made the key. The AAGUID is
//! the authenticator's own claim.

use ciborium::value::Value;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::Certificate;

use super::authdata::{AttestedCredential, AuthenticatorData, AAGUID_LEN};
use super::cbor;
use super::cose::{Algorithm, CredentialKey};
use super::verify::{check_rp_and_flags, signed_message, VerifyError};

/// WebAuthn §8: format identifiers are at most 32 printable characters.
pub const MAX_FORMAT_LEN: usize = 32;

pub(crate) mod oid {
    use super::ObjectIdentifier;

    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    /// id-fido-gen-ce-aaguid: the authenticator model, in its certificate.
    pub const FIDO_AAGUID: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");
}

/// The helper's `registered` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationAnswer<'a> {
    pub authenticator_data: &'a [u8],
    pub attestation_format: &'a str,
    /// The attestation statement, CBOR-encoded.
    pub attestation_statement: &'a [u8],
}

/// How far the attestation could be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attestation {
    /// Format `none`: the authenticator made no statement.
    None,
    /// `packed` self attestation: signed by the credential's own key.
    SelfAttestation,
    /// Signed by the key in the leaf certificate (`packed` or `fido-u2f`);
    /// the certificate itself is not validated.
    Certificate,
    /// Accepted without checking: a format we do not know.
    UnknownFormat,
    /// Accepted without checking: a certificate signature algorithm we do
    /// not implement (RSA, ES384, ...).
    UnsupportedAlgorithm,
}

impl Attestation {
    /// Whether an attestation signature was verified.
    pub fn signature_verified(self) -> bool {
        matches!(self, Self::SelfAttestation | Self::Certificate)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "no attestation",
            Self::SelfAttestation => "self attestation, verified",
            Self::Certificate => {
                "certificate attestation, signature verified, certificate not validated"
            }
            Self::UnknownFormat => "attestation format not checked",
            Self::UnsupportedAlgorithm => "attestation algorithm not checked",
        }
    }
}

/// A new credential, checked and ready to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRegistration {
    pub credential_id: Vec<u8>,
    /// The COSE_Key exactly as the authenticator encoded it; pass it back
    /// as [`super::verify::StoredCredential::public_key`].
    pub public_key: Vec<u8>,
    pub algorithm: Algorithm,
    pub aaguid: [u8; AAGUID_LEN],
    pub sign_count: u32,
    pub user_verified: bool,
    pub attestation_format: String,
    pub attestation: Attestation,
    /// The statement's certificates (leaf first), DER, recorded but not
    /// trusted. Empty when there are none.
    pub attestation_certificates: Vec<Vec<u8>>,
}

impl VerifiedRegistration {
    pub fn attestation_verified(&self) -> bool {
        self.attestation.signature_verified()
    }
}

/// Checks a makeCredential answer. `client_data_hash` is the 32 bytes the
/// caller generated and sent in the request.
pub fn verify_registration(
    rp_id: &str,
    client_data_hash: &[u8; 32],
    user_verification_required: bool,
    answer: &RegistrationAnswer<'_>,
) -> Result<VerifiedRegistration, VerifyError> {
    let auth_data = AuthenticatorData::parse(answer.authenticator_data)?;
    let credential = auth_data
        .attested_credential
        .ok_or(VerifyError::MissingAttestedCredential)?;
    if credential.credential_id.is_empty() {
        return Err(VerifyError::EmptyCredentialId);
    }
    let key =
        CredentialKey::from_cose(credential.public_key).map_err(VerifyError::CredentialKey)?;
    check_rp_and_flags(&auth_data, rp_id, user_verification_required)?;
    check_format_name(answer.attestation_format)?;

    let signed = Signed {
        auth_data: &auth_data,
        auth_data_bytes: answer.authenticator_data,
        credential: &credential,
        key: &key,
        client_data_hash,
    };
    let statement = answer.attestation_statement;
    let (attestation, attestation_certificates) = match answer.attestation_format {
        "none" => (check_none(statement)?, Vec::new()),
        "packed" => check_packed(statement, &signed)?,
        "fido-u2f" => check_fido_u2f(statement, &signed)?,
        _ => (Attestation::UnknownFormat, Vec::new()),
    };

    Ok(VerifiedRegistration {
        credential_id: credential.credential_id.to_vec(),
        public_key: credential.public_key.to_vec(),
        algorithm: key.algorithm(),
        aaguid: credential.aaguid,
        sign_count: auth_data.sign_count,
        user_verified: auth_data.flags.user_verified(),
        attestation_format: answer.attestation_format.to_owned(),
        attestation,
        attestation_certificates,
    })
}

/// What an attestation signature may cover, gathered once.
struct Signed<'a> {
    auth_data: &'a AuthenticatorData<'a>,
    auth_data_bytes: &'a [u8],
    credential: &'a AttestedCredential<'a>,
    key: &'a CredentialKey,
    client_data_hash: &'a [u8; 32],
}

fn check_format_name(name: &str) -> Result<(), VerifyError> {
    let printable = |b: u8| (0x21..=0x7e).contains(&b) && b != b'\\' && b != b'"';
    if name.is_empty() || name.len() > MAX_FORMAT_LEN || !name.bytes().all(printable) {
        return Err(VerifyError::AttestationFormatInvalid);
    }
    Ok(())
}

fn check_none(statement: &[u8]) -> Result<Attestation, VerifyError> {
    // The statement of `none` is the empty map, and nothing else.
    if statement != [0xa0] {
        return Err(VerifyError::AttestationMalformed);
    }
    Ok(Attestation::None)
}

fn check_packed(
    statement: &[u8],
    signed: &Signed<'_>,
) -> Result<(Attestation, Vec<Vec<u8>>), VerifyError> {
    // ecdaaKeyId (withdrawn ECDAA) falls out as an unknown field here.
    let statement = Statement::parse(statement, &[Field::Alg, Field::Sig, Field::X5c])?;
    let alg = statement.alg.ok_or(VerifyError::AttestationMalformed)?;
    let sig = statement.sig.ok_or(VerifyError::AttestationMalformed)?;
    let message = signed_message(signed.auth_data_bytes, signed.client_data_hash);

    let Some(chain) = statement.x5c else {
        if alg != signed.key.algorithm().cose_id() {
            return Err(VerifyError::AttestationAlgorithmMismatch);
        }
        signed
            .key
            .verify(&message, &sig)
            .map_err(|_| VerifyError::AttestationSignatureInvalid)?;
        return Ok((Attestation::SelfAttestation, Vec::new()));
    };

    let leaf = parse_leaf(&chain)?;
    check_aaguid_extension(&leaf, &signed.credential.aaguid)?;
    let Some(algorithm) = Algorithm::from_cose_id(alg) else {
        return Ok((Attestation::UnsupportedAlgorithm, chain));
    };
    let leaf_key = certificate_key(&leaf)?;
    if leaf_key.algorithm() != algorithm {
        return Err(VerifyError::AttestationAlgorithmMismatch);
    }
    leaf_key
        .verify(&message, &sig)
        .map_err(|_| VerifyError::AttestationSignatureInvalid)?;
    Ok((Attestation::Certificate, chain))
}

fn check_fido_u2f(
    statement: &[u8],
    signed: &Signed<'_>,
) -> Result<(Attestation, Vec<Vec<u8>>), VerifyError> {
    let statement = Statement::parse(statement, &[Field::Sig, Field::X5c])?;
    let sig = statement.sig.ok_or(VerifyError::AttestationMalformed)?;
    let chain = statement.x5c.ok_or(VerifyError::AttestationMalformed)?;
    if chain.len() != 1 {
        return Err(VerifyError::AttestationMalformed);
    }
    let leaf_key = certificate_key(&parse_leaf(&chain)?)?;
    // U2F knows only P-256, for the certificate and the credential alike.
    if leaf_key.algorithm() != Algorithm::Es256 {
        return Err(VerifyError::AttestationAlgorithmMismatch);
    }
    let point = signed
        .key
        .sec1_uncompressed()
        .ok_or(VerifyError::AttestationAlgorithmMismatch)?;

    let credential_id = signed.credential.credential_id;
    let mut message = Vec::with_capacity(1 + 32 + 32 + credential_id.len() + point.len());
    message.push(0x00);
    message.extend_from_slice(&signed.auth_data.rp_id_hash);
    message.extend_from_slice(signed.client_data_hash);
    message.extend_from_slice(credential_id);
    message.extend_from_slice(&point);
    leaf_key
        .verify(&message, &sig)
        .map_err(|_| VerifyError::AttestationSignatureInvalid)?;
    Ok((Attestation::Certificate, chain))
}

fn parse_leaf(chain: &[Vec<u8>]) -> Result<Certificate, VerifyError> {
    let leaf = chain.first().ok_or(VerifyError::AttestationMalformed)?;
    Certificate::from_der(leaf).map_err(|_| VerifyError::AttestationCertificateInvalid)
}

/// The leaf certificate's public key, if it is P-256 or Ed25519.
pub(crate) fn certificate_key(certificate: &Certificate) -> Result<CredentialKey, VerifyError> {
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or(VerifyError::AttestationCertificateInvalid)?;
    let parameters = spki.algorithm.parameters.as_ref();
    if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        let curve = parameters
            .and_then(|any| any.decode_as::<ObjectIdentifier>().ok())
            .ok_or(VerifyError::AttestationCertificateInvalid)?;
        if curve != oid::SECP256R1 {
            return Err(VerifyError::AttestationAlgorithmMismatch);
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map(CredentialKey::Es256)
            .map_err(|_| VerifyError::AttestationCertificateInvalid)
    } else if spki.algorithm.oid == oid::ED25519 {
        // RFC 8410: the parameters are absent.
        let bytes: &[u8; 32] = match (parameters, key_bytes.try_into()) {
            (None, Ok(bytes)) => bytes,
            _ => return Err(VerifyError::AttestationCertificateInvalid),
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| VerifyError::AttestationCertificateInvalid)?;
        if key.is_weak() {
            return Err(VerifyError::AttestationCertificateInvalid);
        }
        Ok(CredentialKey::EdDsa(key))
    } else {
        Err(VerifyError::AttestationAlgorithmMismatch)
    }
}

/// WebAuthn §8.2.1: if the certificate names the authenticator model, it
/// must be the model authenticatorData names; the extension is never critical.
fn check_aaguid_extension(
    certificate: &Certificate,
    aaguid: &[u8; AAGUID_LEN],
) -> Result<(), VerifyError> {
    let extensions = certificate.tbs_certificate.extensions.iter().flatten();
    for extension in extensions.filter(|e| e.extn_id == oid::FIDO_AAGUID) {
        if extension.critical {
            return Err(VerifyError::AttestationCertificateInvalid);
        }
        let named = OctetString::from_der(extension.extn_value.as_bytes())
            .map_err(|_| VerifyError::AttestationCertificateInvalid)?;
        if named.as_bytes() != aaguid {
            return Err(VerifyError::AttestationAaguidMismatch);
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Alg,
    Sig,
    X5c,
}

impl Field {
    fn named(name: &str) -> Option<Self> {
        match name {
            "alg" => Some(Self::Alg),
            "sig" => Some(Self::Sig),
            "x5c" => Some(Self::X5c),
            _ => None,
        }
    }
}

/// The fields of a `packed` or `fido-u2f` statement.
#[derive(Default)]
struct Statement {
    alg: Option<i64>,
    sig: Option<Vec<u8>>,
    x5c: Option<Vec<Vec<u8>>>,
}

impl Statement {
    /// Reads a statement map holding only `allowed` fields, each at most once.
    fn parse(bytes: &[u8], allowed: &[Field]) -> Result<Self, VerifyError> {
        const MALFORMED: VerifyError = VerifyError::AttestationMalformed;
        // Our walk first: it bounds every length ciborium will see.
        if cbor::map_len(bytes).map_err(|_| MALFORMED)? != bytes.len() {
            return Err(MALFORMED);
        }
        let value: Value = ciborium::de::from_reader(bytes).map_err(|_| MALFORMED)?;
        let mut statement = Self::default();
        for (name, value) in value.into_map().map_err(|_| MALFORMED)? {
            let field = name
                .as_text()
                .and_then(Field::named)
                .filter(|field| allowed.contains(field))
                .ok_or(MALFORMED)?;
            match field {
                Field::Alg if statement.alg.is_none() => {
                    let alg = value.as_integer().and_then(|i| i64::try_from(i).ok());
                    statement.alg = Some(alg.ok_or(MALFORMED)?);
                }
                Field::Sig if statement.sig.is_none() => {
                    statement.sig = Some(value.into_bytes().map_err(|_| MALFORMED)?);
                }
                Field::X5c if statement.x5c.is_none() => {
                    let chain = value
                        .into_array()
                        .map_err(|_| MALFORMED)?
                        .into_iter()
                        .map(Value::into_bytes)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| MALFORMED)?;
                    if chain.is_empty() {
                        return Err(MALFORMED);
                    }
                    statement.x5c = Some(chain);
                }
                // A field seen twice.
                _ => return Err(MALFORMED),
            }
        }
        Ok(statement)
    }
}

#[cfg(test)]
mod tests;
