//! Writes the seed corpora under fuzz/seeds/: valid assertions and
//! registrations for every algorithm and attestation format, and one of
//! every helper message. Keys are fixed, so the seeds are reproducible.
//!
//!     cargo run --example make_seeds        (from fuzz/)

use std::path::Path;

use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, Pin, RegisterRequest, Request, Response, UserVerification,
};
use tap_fuzz::{Case, CLIENT_DATA_HASH, RP_ID};

enum Key {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl Key {
    fn p256(seed: u8) -> Self {
        Self::P256(p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("scalar"))
    }
    fn ed25519(seed: u8) -> Self {
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }
    fn alg(&self) -> i64 {
        match self {
            Self::P256(_) => -7,
            Self::Ed25519(_) => -8,
        }
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }
    fn sec1(&self) -> Vec<u8> {
        match self {
            Self::P256(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Self::Ed25519(_) => Vec::new(),
        }
    }
    fn cose(&self) -> Vec<u8> {
        match self {
            Self::P256(_) => {
                let sec1 = self.sec1();
                let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
                out.extend_from_slice(&sec1[1..33]);
                out.extend_from_slice(&[0x22, 0x58, 0x20]);
                out.extend_from_slice(&sec1[33..]);
                out
            }
            Self::Ed25519(key) => {
                let mut out = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
                out.extend_from_slice(&key.verifying_key().to_bytes());
                out
            }
        }
    }
    fn certificate(&self, aaguid: Option<[u8; 16]>) -> Vec<u8> {
        use std::str::FromStr;
        use x509_cert::der::asn1::{BitString, OctetString, UtcTime};
        use x509_cert::der::oid::ObjectIdentifier as Oid;
        use x509_cert::der::{Any, Encode};
        use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
        use x509_cert::time::{Time, Validity};

        let (algorithm, key) = match self {
            Self::P256(_) => (
                AlgorithmIdentifierOwned {
                    oid: Oid::new_unwrap("1.2.840.10045.2.1"),
                    parameters: Some(Any::from(Oid::new_unwrap("1.2.840.10045.3.1.7"))),
                },
                self.sec1(),
            ),
            Self::Ed25519(key) => (
                AlgorithmIdentifierOwned {
                    oid: Oid::new_unwrap("1.3.101.112"),
                    parameters: None,
                },
                key.verifying_key().to_bytes().to_vec(),
            ),
        };
        let extensions = aaguid.map(|aaguid| {
            vec![x509_cert::ext::Extension {
                extn_id: Oid::new_unwrap("1.3.6.1.4.1.45724.1.1.4"),
                critical: false,
                extn_value: OctetString::new(
                    OctetString::new(aaguid.to_vec()).unwrap().to_der().unwrap(),
                )
                .unwrap(),
            }]
        });
        let signature_algorithm = AlgorithmIdentifierOwned {
            oid: Oid::new_unwrap("1.2.840.10045.4.3.2"),
            parameters: None,
        };
        let time = Time::UtcTime(
            UtcTime::from_unix_duration(std::time::Duration::from_secs(1_700_000_000)).unwrap(),
        );
        let name = x509_cert::name::Name::from_str("CN=seed,O=pam_tap,C=XX").unwrap();
        x509_cert::Certificate {
            tbs_certificate: x509_cert::TbsCertificate {
                version: x509_cert::Version::V3,
                serial_number: x509_cert::serial_number::SerialNumber::new(&[1]).unwrap(),
                signature: signature_algorithm.clone(),
                issuer: name.clone(),
                validity: Validity {
                    not_before: time,
                    not_after: time,
                },
                subject: name,
                subject_public_key_info: SubjectPublicKeyInfoOwned {
                    algorithm,
                    subject_public_key: BitString::from_bytes(&key).unwrap(),
                },
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions,
            },
            signature_algorithm,
            signature: BitString::from_bytes(&[0x30, 0x00]).unwrap(),
        }
        .to_der()
        .unwrap()
    }
}

const AAGUID: [u8; 16] = *b"pam_tap-fuzzseed";

fn rp_id_hash() -> [u8; 32] {
    Sha256::digest(RP_ID.as_bytes()).into()
}

fn auth_data(
    flags: u8,
    count: u32,
    credential: Option<(&[u8; 16], &[u8], &[u8])>,
    ext: &[u8],
) -> Vec<u8> {
    let mut out = rp_id_hash().to_vec();
    out.push(flags);
    out.extend_from_slice(&count.to_be_bytes());
    if let Some((aaguid, id, key)) = credential {
        out.extend_from_slice(aaguid);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(key);
    }
    out.extend_from_slice(ext);
    out
}

fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = match bytes.len() {
        n @ 0..=23 => vec![0x40 | n as u8],
        n @ 24..=255 => vec![0x58, n as u8],
        n => vec![0x59, (n >> 8) as u8, n as u8],
    };
    out.extend_from_slice(bytes);
    out
}

/// {"alg": alg?, "sig": sig, "x5c": [cert]?}
fn statement(alg: Option<i64>, sig: &[u8], cert: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![0xa0 + 1 + u8::from(alg.is_some()) + u8::from(cert.is_some())];
    if let Some(alg) = alg {
        out.extend_from_slice(&[0x63, b'a', b'l', b'g', (0x20 | (-1 - alg)) as u8]);
    }
    out.extend_from_slice(&[0x63, b's', b'i', b'g']);
    out.extend(cbor_bytes(sig));
    if let Some(cert) = cert {
        out.extend_from_slice(&[0x63, b'x', b'5', b'c', 0x81]);
        out.extend(cbor_bytes(cert));
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let keys_dir = root.join("keys_verify");
    let protocol_dir = root.join("helper_protocol");
    std::fs::create_dir_all(&keys_dir).unwrap();
    std::fs::create_dir_all(&protocol_dir).unwrap();

    const UP: u8 = 0x01;
    const UV: u8 = 0x04;
    const AT: u8 = 0x40;
    const ED: u8 = 0x80;
    let credential_id = [0xc5u8; 32];

    // Assertions.
    for (name, key, flags, stored, count, uv, ext) in [
        ("assert_es256", Key::p256(1), UP, 5, 6, false, &[][..]),
        (
            "assert_eddsa_uv_ext",
            Key::ed25519(2),
            UP | UV | ED,
            0,
            0,
            true,
            &[0xa1, 0x61, b'x', 0xf5][..],
        ),
    ] {
        let data = auth_data(flags, count, None, ext);
        let signature = key.sign(&[&data[..], &CLIENT_DATA_HASH].concat());
        let cose = key.cose();
        let case = Case {
            uv_required: uv,
            format: "none",
            stored_sign_count: stored,
            stored_key: &cose,
            credential_id: &credential_id,
            authenticator_data: &data,
            signature: &signature,
            attestation_statement: &[],
        };
        write(&keys_dir, name, &case.encode());
        write(&keys_dir, &format!("raw_authdata_{name}"), &data);
    }

    // Registrations, one per format.
    let attestation_p256 = Key::p256(9);
    let attestation_ed25519 = Key::ed25519(10);
    for (name, key, format) in [
        ("register_es256_none", Key::p256(3), "none"),
        ("register_eddsa_packed_self", Key::ed25519(4), "packed"),
        (
            "register_es256_packed_p256_cert",
            Key::p256(5),
            "packed-p256",
        ),
        (
            "register_eddsa_packed_ed25519_cert",
            Key::ed25519(6),
            "packed-ed25519",
        ),
        ("register_es256_fido_u2f", Key::p256(7), "fido-u2f"),
        ("register_es256_tpm", Key::p256(8), "tpm"),
    ] {
        let cose = key.cose();
        let data = auth_data(UP | AT, 1, Some((&AAGUID, &credential_id, &cose)), &[]);
        let signed = [&data[..], &CLIENT_DATA_HASH].concat();
        let (format, stmt) = match format {
            "none" => ("none", vec![0xa0]),
            "packed" => (
                "packed",
                statement(Some(key.alg()), &key.sign(&signed), None),
            ),
            "packed-p256" => {
                let cert = attestation_p256.certificate(Some(AAGUID));
                (
                    "packed",
                    statement(Some(-7), &attestation_p256.sign(&signed), Some(&cert)),
                )
            }
            "packed-ed25519" => {
                let cert = attestation_ed25519.certificate(None);
                (
                    "packed",
                    statement(Some(-8), &attestation_ed25519.sign(&signed), Some(&cert)),
                )
            }
            "fido-u2f" => {
                let message = [
                    &[0u8][..],
                    &rp_id_hash(),
                    &CLIENT_DATA_HASH,
                    &credential_id,
                    &key.sec1(),
                ]
                .concat();
                let cert = attestation_p256.certificate(None);
                (
                    "fido-u2f",
                    statement(None, &attestation_p256.sign(&message), Some(&cert)),
                )
            }
            _ => (
                "tpm",
                vec![0xa1, 0x63, b'v', b'e', b'r', 0x63, b'2', b'.', b'0'],
            ),
        };
        let case = Case {
            uv_required: false,
            format,
            stored_sign_count: 0,
            stored_key: &cose,
            credential_id: &credential_id,
            authenticator_data: &data,
            signature: &[],
            attestation_statement: &stmt,
        };
        write(&keys_dir, name, &case.encode());
        write(&keys_dir, &format!("raw_authdata_{name}"), &data);
        write(&keys_dir, &format!("raw_cose_{name}"), &cose);
    }

    // One of every helper message.
    let bytes = |n: usize, b: u8| Bytes(vec![b; n]);
    let requests = [
        Request::Probe,
        Request::Register(RegisterRequest {
            rp_id: RP_ID.into(),
            client_data_hash: bytes(32, 1),
            user_id: bytes(16, 2),
            user_name: "alice".into(),
            exclude: vec![bytes(64, 3)],
            algorithms: vec![-7, -8],
            user_verification: UserVerification::Preferred,
            pin: Some(Pin(String::from("123456").into())),
        }),
        Request::Assert(AssertRequest {
            rp_id: RP_ID.into(),
            client_data_hash: bytes(32, 4),
            allow: vec![bytes(64, 5), bytes(16, 6)],
            user_verification: UserVerification::Required,
            pin: None,
        }),
    ];
    for (i, request) in requests.iter().enumerate() {
        write(&protocol_dir, &format!("request_{i}"), &request.to_json());
    }
    let responses = [
        Response::Present { pin_set: true },
        Response::Registered {
            authenticator_data: bytes(150, 7),
            attestation_format: "packed".into(),
            attestation_statement: bytes(80, 8),
        },
        Response::Asserted {
            credential_id: bytes(64, 9),
            authenticator_data: bytes(37, 10),
            signature: bytes(72, 11),
        },
        Response::Failed {
            error: HelperError::PinRequired,
            message: "this key has a PIN \u{e9}\"\\".into(),
        },
    ];
    for (i, response) in responses.iter().enumerate() {
        write(&protocol_dir, &format!("response_{i}"), &response.to_json());
    }
    println!("seeds written under {}", root.display());
}
