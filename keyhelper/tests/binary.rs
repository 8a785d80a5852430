//! pam_tap-keyhelper as a process, through the runner that pam_tap.so and
//! tapctl use. Without a key (this machine has no USB) it must answer
//! `no_device`; with one, the `#[ignore]`d tests do a real register and
//! assert (run them with `cargo test -p tap-keyhelper -- --ignored` and
//! touch the key when it blinks).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tap_core::helper::runner::run_helper;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, Pin, RegisterRequest, Request, Response, UserVerification,
};
use zeroize::Zeroizing;

const HELPER: &str = env!("CARGO_BIN_EXE_pam_tap-keyhelper");

fn key_present() -> bool {
    matches!(
        run_helper(Path::new(HELPER), &Request::Probe, Duration::from_secs(10)),
        Ok(Response::Present { .. })
    )
}

fn raw(stdin: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut child = Command::new(HELPER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    (out.stdout, out.stderr)
}

#[test]
fn without_a_key_it_answers_no_device_and_nothing_else() {
    if key_present() {
        eprintln!("a security key is plugged in; skipping the no-device test");
        return;
    }
    for request in [
        Request::Probe,
        Request::Assert(AssertRequest {
            rp_id: "pam://host".into(),
            client_data_hash: Bytes(vec![1; 32]),
            allow: vec![Bytes(vec![2; 16])],
            user_verification: UserVerification::Required,
            pin: Some(Pin(Zeroizing::new("123456".into()))),
        }),
    ] {
        let (stdout, stderr) = raw(&request.to_json());
        assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
        let response = Response::from_json(&stdout).unwrap();
        assert!(
            matches!(
                response,
                Response::Failed {
                    error: HelperError::NoDevice,
                    ..
                }
            ),
            "{response:?}"
        );
        // One line of JSON, nothing more.
        assert_eq!(stdout.iter().filter(|b| **b == b'\n').count(), 1);
    }
}

#[test]
fn bad_requests_never_echo_their_content() {
    for input in [
        &b"not json"[..],
        br#"{"op":"assert","rp_id":"x","client_data_hash":"","allow":[],"user_verification":"required","pin":987654}"#,
        br#"{"op":"launch"}"#,
        b"",
    ] {
        let (stdout, _) = raw(input);
        let response = Response::from_json(&stdout).unwrap();
        match response {
            Response::Failed {
                error: HelperError::BadRequest,
                message,
            } => assert!(!message.contains("987654"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
    let (stdout, _) = raw(&vec![b' '; 70 * 1024]);
    assert!(matches!(
        Response::from_json(&stdout).unwrap(),
        Response::Failed {
            error: HelperError::BadRequest,
            ..
        }
    ));
}

/// The rp id and user for the real-key tests.
const RP: &str = "pam://keyhelper-test";

fn real_register(pin: Option<&str>) -> Response {
    run_helper(
        Path::new(HELPER),
        &Request::Register(RegisterRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(vec![0x5a; 32]),
            user_id: Bytes(b"keyhelper-test".to_vec()),
            user_name: "keyhelper-test".into(),
            exclude: vec![],
            algorithms: vec![-7, -8],
            user_verification: UserVerification::Preferred,
            pin: pin.map(|p| Pin(Zeroizing::new(p.into()))),
        }),
        Duration::from_secs(30),
    )
    .unwrap()
}

fn pin_from_env() -> Option<String> {
    std::env::var("PAM_TAP_TEST_PIN").ok()
}

#[test]
#[ignore = "needs a real FIDO2 key plugged in; run with cargo test -- --ignored"]
fn real_key_probe() {
    let response = run_helper(Path::new(HELPER), &Request::Probe, Duration::from_secs(10)).unwrap();
    assert!(matches!(response, Response::Present { .. }), "{response:?}");
}

#[test]
#[ignore = "needs a real FIDO2 key plugged in; run with cargo test -- --ignored"]
fn real_key_register_then_assert() {
    // Set PAM_TAP_TEST_PIN when the key has a PIN. Touch the key twice.
    let pin = pin_from_env();
    let response = real_register(pin.as_deref());
    let Response::Registered {
        authenticator_data,
        attestation_format,
        ..
    } = response
    else {
        panic!("register: {response:?}");
    };
    eprintln!("attestation format: {attestation_format}");
    let auth_data = authenticator_data.0;
    assert!(
        auth_data.len() > 55 && auth_data[32] & 0x41 == 0x41,
        "AT and UP"
    );
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let credential_id = auth_data[55..55 + id_len].to_vec();

    // Excluding it now must be refused.
    let excluded = run_helper(
        Path::new(HELPER),
        &Request::Register(RegisterRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(vec![0x5b; 32]),
            user_id: Bytes(b"keyhelper-test".to_vec()),
            user_name: "keyhelper-test".into(),
            exclude: vec![Bytes(credential_id.clone())],
            algorithms: vec![-7],
            user_verification: UserVerification::Preferred,
            pin: pin.clone().map(|p| Pin(Zeroizing::new(p))),
        }),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(
        matches!(
            excluded,
            Response::Failed {
                error: HelperError::AlreadyEnrolled,
                ..
            }
        ),
        "{excluded:?}"
    );

    let response = run_helper(
        Path::new(HELPER),
        &Request::Assert(AssertRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(vec![0xa5; 32]),
            allow: vec![Bytes(vec![7; 32]), Bytes(credential_id.clone())],
            user_verification: UserVerification::Preferred,
            pin: pin.map(|p| Pin(Zeroizing::new(p))),
        }),
        Duration::from_secs(30),
    )
    .unwrap();
    let Response::Asserted {
        credential_id: got,
        authenticator_data,
        signature,
    } = response
    else {
        panic!("assert: {response:?}");
    };
    assert_eq!(got.0, credential_id);
    assert_eq!(
        &authenticator_data.0[..32],
        &auth_data[..32],
        "same rpIdHash"
    );
    assert_eq!(authenticator_data.0[32] & 0x01, 0x01, "UP");
    assert!(!signature.0.is_empty());
}

#[test]
#[ignore = "needs a real FIDO2 key plugged in; run with cargo test -- --ignored"]
fn real_key_unknown_credential() {
    let response = run_helper(
        Path::new(HELPER),
        &Request::Assert(AssertRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(vec![0xa5; 32]),
            allow: vec![Bytes(vec![7; 32])],
            user_verification: UserVerification::Discouraged,
            pin: None,
        }),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(
        matches!(
            response,
            Response::Failed {
                error: HelperError::NoCredentials,
                ..
            }
        ),
        "{response:?}"
    );
}
