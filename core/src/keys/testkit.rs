//! Test-only builders: authenticators' keys made fresh for each test, and
//! authenticatorData / COSE keys / certificates assembled byte by byte so
//! tests can break any one field.

// signature::Signer, which both key types implement.
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::rand_core::{OsRng, RngCore};

use super::authdata::Flags;
use super::cose::Algorithm;
use super::verify::rp_id_hash;

pub const AAGUID: [u8; 16] = *b"pam_tap-testkey!";

pub enum TestKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    pub fn es256() -> Self {
        Self::P256(p256::ecdsa::SigningKey::random(&mut OsRng))
    }

    pub fn eddsa() -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&secret))
    }

    pub fn of(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Es256 => Self::es256(),
            Algorithm::EdDsa => Self::eddsa(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::P256(_) => Algorithm::Es256,
            Self::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// The signature format WebAuthn uses: DER for ES256, raw for EdDSA.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    pub fn ec_coordinates(&self) -> ([u8; 32], [u8; 32]) {
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        if let Self::P256(key) = self {
            let point = key.verifying_key().to_encoded_point(false);
            x.copy_from_slice(point.x().unwrap());
            y.copy_from_slice(point.y().unwrap());
        }
        (x, y)
    }

    pub fn ed_public(&self) -> [u8; 32] {
        match self {
            Self::Ed25519(key) => key.verifying_key().to_bytes(),
            Self::P256(_) => [0; 32],
        }
    }

    /// The uncompressed SEC1 point of a P-256 key.
    pub fn sec1(&self) -> Vec<u8> {
        let (x, y) = self.ec_coordinates();
        [&[4u8][..], &x, &y].concat()
    }

    /// The COSE_Key an authenticator would send, in CTAP2 canonical order.
    pub fn cose(&self) -> Vec<u8> {
        match self {
            Self::P256(_) => {
                let (x, y) = self.ec_coordinates();
                cose_ec2(2, Some(-7), 1, &x, &y)
            }
            Self::Ed25519(_) => cose_okp(1, Some(-8), 6, &self.ed_public()),
        }
    }
}

pub fn cbor_int(value: i64) -> Vec<u8> {
    let (major, n) = if value >= 0 {
        (0u8, value as u64)
    } else {
        (1u8, (-1 - value) as u64)
    };
    cbor_head(major, n)
}

pub fn cbor_head(major: u8, n: u64) -> Vec<u8> {
    let major = major << 5;
    match n {
        0..=23 => vec![major | n as u8],
        24..=0xff => vec![major | 24, n as u8],
        0x100..=0xffff => [&[major | 25][..], &(n as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[major | 26][..], &(n as u32).to_be_bytes()].concat(),
        _ => [&[major | 27][..], &n.to_be_bytes()].concat(),
    }
}

pub fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    [cbor_head(2, bytes.len() as u64), bytes.to_vec()].concat()
}

pub fn cbor_text(text: &str) -> Vec<u8> {
    [cbor_head(3, text.len() as u64), text.as_bytes().to_vec()].concat()
}

/// A CBOR map from already-encoded keys and values.
pub fn cbor_map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = cbor_head(5, entries.len() as u64);
    for (key, value) in entries {
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }
    out
}

pub fn cbor_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = cbor_head(4, items.len() as u64);
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

pub fn cose_ec2(kty: i64, alg: Option<i64>, crv: i64, x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut entries = vec![(cbor_int(1), cbor_int(kty))];
    if let Some(alg) = alg {
        entries.push((cbor_int(3), cbor_int(alg)));
    }
    entries.push((cbor_int(-1), cbor_int(crv)));
    entries.push((cbor_int(-2), cbor_bytes(x)));
    entries.push((cbor_int(-3), cbor_bytes(y)));
    cbor_map(&entries)
}

pub fn cose_okp(kty: i64, alg: Option<i64>, crv: i64, x: &[u8]) -> Vec<u8> {
    let mut entries = vec![(cbor_int(1), cbor_int(kty))];
    if let Some(alg) = alg {
        entries.push((cbor_int(3), cbor_int(alg)));
    }
    entries.push((cbor_int(-1), cbor_int(crv)));
    entries.push((cbor_int(-2), cbor_bytes(x)));
    cbor_map(&entries)
}

/// The fields of an authenticatorData, any of which a test may spoil.
pub struct AuthDataSpec<'a> {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
    pub aaguid: [u8; 16],
    /// (credential id, COSE key) when the data should carry a credential.
    pub credential: Option<(&'a [u8], &'a [u8])>,
    pub extensions: Option<&'a [u8]>,
}

impl<'a> AuthDataSpec<'a> {
    pub fn assertion(rp_id: &str, sign_count: u32) -> Self {
        Self {
            rp_id_hash: rp_id_hash(rp_id),
            flags: Flags::USER_PRESENT,
            sign_count,
            aaguid: AAGUID,
            credential: None,
            extensions: None,
        }
    }

    pub fn registration(rp_id: &str, credential_id: &'a [u8], cose_key: &'a [u8]) -> Self {
        Self {
            flags: Flags::USER_PRESENT | Flags::ATTESTED_CREDENTIAL,
            credential: Some((credential_id, cose_key)),
            ..Self::assertion(rp_id, 0)
        }
    }
}

pub fn auth_data(spec: &AuthDataSpec<'_>) -> Vec<u8> {
    let mut out = spec.rp_id_hash.to_vec();
    out.push(spec.flags);
    out.extend_from_slice(&spec.sign_count.to_be_bytes());
    if let Some((id, key)) = spec.credential {
        out.extend_from_slice(&spec.aaguid);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(key);
    }
    if let Some(extensions) = spec.extensions {
        out.extend_from_slice(extensions);
    }
    out
}

/// A minimal X.509 certificate holding `key`'s public key, optionally with
/// the FIDO AAGUID extension. Its own signature is junk: nothing here
/// checks it, by design (attestation certificates are recorded, not
/// trusted).
pub fn certificate(key: &TestKey, aaguid_extension: Option<[u8; 16]>) -> Vec<u8> {
    use x509_cert::der::asn1::BitString;
    use x509_cert::der::Any;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

    use super::attestation::oid;

    let subject_public_key_info = match key {
        TestKey::P256(_) => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oid::EC_PUBLIC_KEY,
                parameters: Some(Any::from(oid::SECP256R1)),
            },
            subject_public_key: BitString::from_bytes(&key.sec1()).unwrap(),
        },
        TestKey::Ed25519(_) => SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oid::ED25519,
                parameters: None,
            },
            subject_public_key: BitString::from_bytes(&key.ed_public()).unwrap(),
        },
    };
    certificate_with_key_info(subject_public_key_info, aaguid_extension)
}

/// [`certificate`] for any public key: `key_info` is the certificate's
/// SubjectPublicKeyInfo, as it is (tests of keys we do not support).
pub fn certificate_with_key_info(
    subject_public_key_info: x509_cert::spki::SubjectPublicKeyInfoOwned,
    aaguid_extension: Option<[u8; 16]>,
) -> Vec<u8> {
    use std::str::FromStr;
    use x509_cert::der::asn1::{BitString, OctetString, UtcTime};
    use x509_cert::der::Encode;
    use x509_cert::ext::Extension;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_cert::time::{Time, Validity};
    use x509_cert::{Certificate, TbsCertificate, Version};

    use super::attestation::oid;

    let extensions = aaguid_extension.map(|aaguid| {
        let inner = OctetString::new(aaguid.to_vec()).unwrap().to_der().unwrap();
        vec![Extension {
            extn_id: oid::FIDO_AAGUID,
            critical: false,
            extn_value: OctetString::new(inner).unwrap(),
        }]
    });
    let signature_algorithm = AlgorithmIdentifierOwned {
        oid: x509_cert::der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        parameters: None,
    };
    let time = Time::UtcTime(
        UtcTime::from_unix_duration(std::time::Duration::from_secs(1_700_000_000)).unwrap(),
    );
    let name = Name::from_str("CN=pam_tap test attestation,O=pam_tap,C=XX").unwrap();
    let tbs_certificate = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1]).unwrap(),
        signature: signature_algorithm.clone(),
        issuer: name.clone(),
        validity: Validity {
            not_before: time,
            not_after: time,
        },
        subject: name,
        subject_public_key_info,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions,
    };
    Certificate {
        tbs_certificate,
        signature_algorithm,
        signature: BitString::from_bytes(&[0x30, 0x00]).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// A `packed` self-attested makeCredential answer by `key` for
/// `client_data_hash`: (authenticator data, statement).
pub fn packed_registration(
    key: &TestKey,
    rp_id: &str,
    credential_id: &[u8],
    client_data_hash: &[u8; 32],
) -> (Vec<u8>, Vec<u8>) {
    let cose = key.cose();
    let mut spec = AuthDataSpec::registration(rp_id, credential_id, &cose);
    spec.sign_count = 1;
    let data = auth_data(&spec);
    let sig = key.sign(&[&data[..], client_data_hash].concat());
    let statement = cbor_map(&[
        (cbor_text("alg"), cbor_int(key.algorithm().cose_id())),
        (cbor_text("sig"), cbor_bytes(&sig)),
    ]);
    (data, statement)
}

/// A getAssertion answer by `key` for `client_data_hash` with counter
/// `sign_count`: (authenticator data, signature).
pub fn assertion(
    key: &TestKey,
    rp_id: &str,
    client_data_hash: &[u8; 32],
    sign_count: u32,
) -> (Vec<u8>, Vec<u8>) {
    let data = auth_data(&AuthDataSpec::assertion(rp_id, sign_count));
    let signature = key.sign(&[&data[..], client_data_hash].concat());
    (data, signature)
}
