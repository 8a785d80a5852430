//! The seeds must stay meaningful: each structured seed is a case the
//! verifiers accept, so the fuzzer starts from deep inside them.

use std::path::Path;

use tap_core::keys::{
    verify_assertion, verify_registration, AssertionAnswer, Attestation, RegistrationAnswer,
    StoredCredential,
};
use tap_fuzz::{Case, CLIENT_DATA_HASH, RP_ID};

fn seed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds/keys_verify")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn assertion_seeds_verify() {
    for name in ["assert_es256", "assert_eddsa_uv_ext"] {
        let bytes = seed(name);
        let case = Case::decode(&bytes);
        assert_eq!(Case::decode(&case.encode()), case);
        let stored = StoredCredential {
            credential_id: case.credential_id,
            public_key: case.stored_key,
            sign_count: case.stored_sign_count,
        };
        let answer = AssertionAnswer {
            credential_id: case.credential_id,
            authenticator_data: case.authenticator_data,
            signature: case.signature,
        };
        verify_assertion(&stored, RP_ID, &CLIENT_DATA_HASH, case.uv_required, &answer)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn registration_seeds_verify() {
    for (name, expected) in [
        ("register_es256_none", Attestation::None),
        ("register_eddsa_packed_self", Attestation::SelfAttestation),
        ("register_es256_packed_p256_cert", Attestation::Certificate),
        (
            "register_eddsa_packed_ed25519_cert",
            Attestation::Certificate,
        ),
        ("register_es256_fido_u2f", Attestation::Certificate),
        ("register_es256_tpm", Attestation::UnknownFormat),
    ] {
        let bytes = seed(name);
        let case = Case::decode(&bytes);
        let answer = RegistrationAnswer {
            authenticator_data: case.authenticator_data,
            attestation_format: case.format,
            attestation_statement: case.attestation_statement,
        };
        let verified = verify_registration(RP_ID, &CLIENT_DATA_HASH, case.uv_required, &answer)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.attestation, expected, "{name}");
    }
}

#[test]
fn protocol_seeds_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/helper_protocol");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("request") {
            tap_core::keys::protocol::Request::from_json(&bytes).unwrap();
        } else {
            tap_core::keys::protocol::Response::from_json(&bytes).unwrap();
        }
    }
}

/// Each request seed is a message tapd reads whole and decodes; the
/// hostile ones are refused as what they are.
#[test]
fn daemon_request_seeds_decode() {
    use tap_protocol::{read_message, FrameError, Request, Response, MAX_REQUEST_BYTES};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/daemon_request");
    let mut requests = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut reader = &bytes[..];
        match name.as_str() {
            "other_version" => assert!(matches!(
                read_message::<Request>(&mut reader, MAX_REQUEST_BYTES),
                Err(FrameError::Version(2))
            )),
            "too_large" => assert!(matches!(
                read_message::<Request>(&mut reader, MAX_REQUEST_BYTES),
                Err(FrameError::TooLarge { .. })
            )),
            n if n.starts_with("response") => {
                read_message::<Response>(&mut reader, MAX_REQUEST_BYTES).unwrap();
            }
            _ => {
                read_message::<Request>(&mut reader, MAX_REQUEST_BYTES)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                requests += 1;
            }
        }
    }
    assert!(requests >= 5);
}
