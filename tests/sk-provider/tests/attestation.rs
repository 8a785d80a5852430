//! The attestation blob `ssh-keygen -O write-attestation=FILE` saves, read
//! per PROTOCOL.u2f (`ssh-sk-attest-v01`) and checked here with p256,
//! ed25519-dalek and sha2 directly: the signature covers authenticatorData
//! ‖ SHA-256(challenge), and the key inside authenticatorData is the one in
//! the .pub file.

mod common;

use ciborium::Value;
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};
use x509_cert::der::asn1::{ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use common::{read_private_sk, read_public, Device, Reader, Via};

const FIDO_AAGUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const DEFAULT_AAGUID: &[u8; 16] = b"pam_tap-sk-soft\0";

struct Attestation {
    certificate: Vec<u8>,
    signature: Vec<u8>,
    /// authenticatorData, unwrapped from its CBOR byte string.
    auth_data: Vec<u8>,
}

fn read_attestation(dev: &Device, name: &str) -> Attestation {
    let blob = std::fs::read(dev.path(&format!("{name}.attest"))).expect("attestation file");
    let mut reader = Reader(&blob);
    assert_eq!(reader.string(), b"ssh-sk-attest-v01");
    let certificate = reader.string().to_vec();
    let signature = reader.string().to_vec();
    let wrapped = reader.string();
    assert_eq!(reader.u32(), 0, "reserved flags");
    assert_eq!(reader.string(), b"", "reserved string");
    assert!(reader.is_empty());
    // "authenticator data (CBOR encoded)": one CBOR byte string, nothing after.
    let mut rest = wrapped;
    let auth_data = match ciborium::from_reader::<Value, _>(&mut rest).expect("CBOR") {
        Value::Bytes(bytes) => bytes,
        other => panic!("authdata is not a CBOR byte string: {other:?}"),
    };
    assert!(rest.is_empty(), "bytes after the CBOR byte string");
    Attestation {
        certificate,
        signature,
        auth_data,
    }
}

struct AuthData {
    rp_id_hash: Vec<u8>,
    flags: u8,
    counter: u32,
    aaguid: Vec<u8>,
    credential_id: Vec<u8>,
    /// SEC1 uncompressed (P-256) or 32 bytes (Ed25519), as OpenSSH holds it.
    public_key: Vec<u8>,
    extensions: Option<Value>,
}

fn parse_auth_data(data: &[u8]) -> AuthData {
    let mut reader = Reader(data);
    let rp_id_hash = reader.raw(32).to_vec();
    let flags = reader.u8();
    let counter = reader.u32();
    assert!(flags & 0x40 != 0, "AT: attested credential data present");
    let aaguid = reader.raw(16).to_vec();
    let id_len = u16::from_be_bytes(reader.raw(2).try_into().expect("len")) as usize;
    let credential_id = reader.raw(id_len).to_vec();
    let mut rest = reader.0;
    let cose: Value = ciborium::from_reader(&mut rest).expect("COSE key");
    let field = |label: i64| -> Value {
        cose.as_map()
            .expect("COSE map")
            .iter()
            .find(|(k, _)| {
                k.as_integer()
                    .is_some_and(|k| i128::from(k) == i128::from(label))
            })
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("COSE label {label} missing"))
    };
    let int = |v: Value| i128::from(v.as_integer().expect("integer"));
    let bytes = |v: Value| v.as_bytes().expect("bytes").clone();
    let public_key = match (int(field(1)), int(field(3))) {
        (2, -7) => {
            assert_eq!(int(field(-1)), 1, "crv P-256");
            [vec![0x04], bytes(field(-2)), bytes(field(-3))].concat()
        }
        (1, -8) => {
            assert_eq!(int(field(-1)), 6, "crv Ed25519");
            bytes(field(-2))
        }
        other => panic!("unexpected COSE kty/alg {other:?}"),
    };
    let extensions = if flags & 0x80 != 0 {
        Some(ciborium::from_reader::<Value, _>(&mut rest).expect("extensions"))
    } else {
        None
    };
    assert!(rest.is_empty(), "trailing bytes in authenticatorData");
    AuthData {
        rp_id_hash,
        flags,
        counter,
        aaguid,
        credential_id,
        public_key,
        extensions,
    }
}

fn signed(auth_data: &[u8], challenge: &[u8]) -> Vec<u8> {
    [auth_data, &Sha256::digest(challenge)[..]].concat()
}

/// The certificate's P-256 key, after checking the certificate's shape.
fn certificate_key(der: &[u8], aaguid: &[u8]) -> p256::ecdsa::VerifyingKey {
    let certificate = Certificate::from_der(der).expect("DER certificate");
    let tbs = &certificate.tbs_certificate;
    assert_eq!(tbs.version, x509_cert::Version::V3);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        tbs.subject_public_key_info
            .subject_public_key
            .as_bytes()
            .expect("key bits"),
    )
    .expect("P-256 key");
    let extensions = tbs.extensions.as_ref().expect("extensions");
    let aaguid_ext = extensions
        .iter()
        .find(|e| e.extn_id == FIDO_AAGUID)
        .expect("FIDO AAGUID extension");
    assert!(!aaguid_ext.critical);
    let inner = OctetString::from_der(aaguid_ext.extn_value.as_bytes()).expect("OCTET STRING");
    assert_eq!(inner.as_bytes(), aaguid);
    let basic = extensions
        .iter()
        .find(|e| e.extn_id == BASIC_CONSTRAINTS)
        .expect("basic constraints");
    assert_eq!(basic.extn_value.as_bytes(), [0x30, 0x00], "CA false");
    assert!(tbs
        .subject
        .to_string()
        .contains("OU=Authenticator Attestation"));
    // Self-signed by the attestation key.
    let signature =
        p256::ecdsa::Signature::from_der(certificate.signature.as_bytes().expect("signature bits"))
            .expect("DER signature");
    key.verify(&tbs.to_der().expect("tbs"), &signature)
        .expect("certificate self-signature");
    key
}

fn check_full_attestation(key_type: &str) {
    let dev = Device::new();
    let challenge = b"challenge from the server 0123456789";
    dev.enroll(Via::Flag, key_type, "id", challenge, &[])
        .assert_ok("enroll");
    let attestation = read_attestation(&dev, "id");
    let auth = parse_auth_data(&attestation.auth_data);

    assert_eq!(auth.rp_id_hash, Sha256::digest(b"ssh:").to_vec());
    assert_eq!(auth.flags, 0x41, "UP and AT");
    assert_eq!(auth.counter, 1);
    assert_eq!(auth.aaguid, DEFAULT_AAGUID);
    assert!(auth.extensions.is_none());
    let (_, public, application) = read_public(&dev, "id");
    assert_eq!(application, "ssh:");
    assert_eq!(auth.public_key, public, "the attested key is the .pub key");
    let (_, handle) = read_private_sk(&dev, "id");
    assert_eq!(
        auth.credential_id, handle,
        "credential id is the key handle"
    );

    let key = certificate_key(&attestation.certificate, &auth.aaguid);
    let signature = p256::ecdsa::Signature::from_der(&attestation.signature).expect("DER");
    key.verify(&signed(&attestation.auth_data, challenge), &signature)
        .expect("attestation signature over authData || SHA-256(challenge)");
    assert!(key
        .verify(
            &signed(&attestation.auth_data, b"another challenge"),
            &signature
        )
        .is_err());
    // Not over the challenge itself, nor over the CBOR-wrapped authData.
    assert!(key
        .verify(
            &[&attestation.auth_data[..], challenge].concat(),
            &signature
        )
        .is_err());
}

#[test]
fn ed25519_sk_full_attestation() {
    check_full_attestation("ed25519-sk");
}

#[test]
fn ecdsa_sk_full_attestation() {
    check_full_attestation("ecdsa-sk");
}

#[test]
fn one_certificate_per_device() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ed25519-sk", "a", b"c1", &[])
        .assert_ok("enroll");
    dev.enroll(Via::Env, "ecdsa-sk", "b", b"c2", &[])
        .assert_ok("enroll");
    let a = read_attestation(&dev, "a");
    let b = read_attestation(&dev, "b");
    assert_eq!(a.certificate, b.certificate);
    assert_eq!(parse_auth_data(&b.auth_data).counter, 2);
    let other = Device::new();
    other
        .enroll(Via::Flag, "ed25519-sk", "a", b"c1", &[])
        .assert_ok("enroll");
    assert_ne!(read_attestation(&other, "a").certificate, a.certificate);
}

#[test]
fn self_attestation_is_signed_by_the_credential() {
    let dev = Device::new().with_env("PAM_TAP_SK_SELF_ATTESTATION", "1");
    let challenge = b"c";
    dev.enroll(Via::Flag, "ecdsa-sk", "ec", challenge, &[])
        .assert_ok("enroll");
    let attestation = read_attestation(&dev, "ec");
    assert!(attestation.certificate.is_empty());
    let auth = parse_auth_data(&attestation.auth_data);
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&auth.public_key).expect("key");
    let signature = p256::ecdsa::Signature::from_der(&attestation.signature).expect("DER");
    key.verify(&signed(&attestation.auth_data, challenge), &signature)
        .expect("ES256 self attestation");
    assert!(key
        .verify(&signed(&attestation.auth_data, b"d"), &signature)
        .is_err());

    dev.enroll(Via::Flag, "ed25519-sk", "ed", challenge, &[])
        .assert_ok("enroll");
    let attestation = read_attestation(&dev, "ed");
    assert!(attestation.certificate.is_empty());
    let auth = parse_auth_data(&attestation.auth_data);
    let key = ed25519_dalek::VerifyingKey::from_bytes(
        &auth.public_key.as_slice().try_into().expect("32 bytes"),
    )
    .expect("key");
    let signature = ed25519_dalek::Signature::from_slice(&attestation.signature).expect("64 bytes");
    key.verify_strict(&signed(&attestation.auth_data, challenge), &signature)
        .expect("EdDSA self attestation");
    assert!(key
        .verify_strict(&signed(&attestation.auth_data, b"d"), &signature)
        .is_err());
}

#[test]
fn aaguid_at_init_and_no_user_presence() {
    let aaguid = "0123456789abcdef0123456789abcdef";
    let dev = Device::new()
        .with_env("PAM_TAP_SK_AAGUID", aaguid)
        .with_env("PAM_TAP_SK_NO_UP", "1");
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &[])
        .assert_ok("enroll");
    let attestation = read_attestation(&dev, "id");
    let auth = parse_auth_data(&attestation.auth_data);
    let expected: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&aaguid[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(auth.aaguid, expected);
    assert_eq!(auth.flags, 0x40, "AT only: no UP");
    certificate_key(&attestation.certificate, &expected);
    assert_eq!(dev.state_json()["aaguid"], aaguid);
}

#[test]
fn bad_aaguid_is_refused() {
    let dev = Device::new().with_env("PAM_TAP_SK_AAGUID", "not hex");
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &[])
        .assert_fails_with("enroll", &["PAM_TAP_SK_AAGUID must be 32 hex digits"]);
}

#[test]
fn verify_required_attests_uv_and_cred_protect() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ecdsa-sk", "id", b"c", &["verify-required"])
        .assert_ok("enroll");
    let attestation = read_attestation(&dev, "id");
    let auth = parse_auth_data(&attestation.auth_data);
    assert_eq!(auth.flags, 0x01 | 0x04 | 0x40 | 0x80, "UP UV AT ED");
    assert_eq!(
        auth.extensions,
        Some(Value::Map(vec![(
            Value::Text("credProtect".into()),
            Value::Integer(3.into())
        )]))
    );
}
