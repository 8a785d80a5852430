//! The device's attestation certificate: self-signed by its P-256
//! attestation key and shaped as WebAuthn §8.2.1 asks of a `packed`
//! attestation certificate (v3; subject C, O, OU "Authenticator
//! Attestation", CN; basic constraints CA false; the FIDO AAGUID extension
//! 1.3.6.1.4.1.45724.1.1.4, non-critical, an OCTET STRING wrapping the
//! 16-byte AAGUID). Deterministic (RFC 6979 signature, fixed validity and a
//! serial from the key), so every enrollment carries the same certificate,
//! as a real key's does.

use std::str::FromStr;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString, UtcTime};
use x509_cert::der::{Any, Encode};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::api::SkError;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
pub const FIDO_AAGUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

const SUBJECT: &str =
    "CN=pam_tap software security key,OU=Authenticator Attestation,O=pam_tap tests,C=XX";
/// 2020-01-01T00:00:00Z.
const NOT_BEFORE: u64 = 1_577_836_800;
/// 9999-12-31T23:59:59Z, RFC 5280's "no well-defined expiration date".
const NOT_AFTER: u64 = 253_402_300_799;

fn der_error(e: x509_cert::der::Error) -> SkError {
    SkError::General(format!("attestation certificate: {e}"))
}

/// The DER certificate of `key` for a device with `aaguid`.
pub fn certificate(key: &SigningKey, aaguid: &[u8; 16]) -> Result<Vec<u8>, SkError> {
    let point = key.verifying_key().to_encoded_point(false);
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: EC_PUBLIC_KEY,
            parameters: Some(Any::from(PRIME256V1)),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes()).map_err(der_error)?,
    };
    // A positive 16-byte serial, stable for the key.
    let mut serial: [u8; 16] = Sha256::digest(point.as_bytes())[..16]
        .try_into()
        .map_err(|_| SkError::General("serial".into()))?;
    serial[0] = (serial[0] & 0x7f) | 0x40;

    let aaguid_value = OctetString::new(aaguid.to_vec())
        .and_then(|inner| inner.to_der())
        .map_err(der_error)?;
    let extensions = vec![
        Extension {
            extn_id: BASIC_CONSTRAINTS,
            critical: true,
            extn_value: OctetString::new(
                BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                }
                .to_der()
                .map_err(der_error)?,
            )
            .map_err(der_error)?,
        },
        Extension {
            extn_id: FIDO_AAGUID,
            critical: false,
            extn_value: OctetString::new(aaguid_value).map_err(der_error)?,
        },
    ];
    let signature_algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let name = Name::from_str(SUBJECT).map_err(der_error)?;
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(der_error)?,
        signature: signature_algorithm.clone(),
        issuer: name.clone(),
        validity: Validity {
            not_before: Time::UtcTime(
                UtcTime::from_unix_duration(std::time::Duration::from_secs(NOT_BEFORE))
                    .map_err(der_error)?,
            ),
            not_after: Time::GeneralTime(
                GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(NOT_AFTER))
                    .map_err(der_error)?,
            ),
        },
        subject: name,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs = tbs_certificate.to_der().map_err(der_error)?;
    let signature: Signature = key.sign(&tbs);
    Certificate {
        tbs_certificate,
        signature_algorithm,
        signature: BitString::from_bytes(signature.to_der().as_bytes()).map_err(der_error)?,
    }
    .to_der()
    .map_err(der_error)
}
