//! pam_tap-softkey through the real runner, as pam_tap.so and tapctl use it.
//! Signatures are checked here with the credential's private key from the
//! state file (derived public key), not with tap-core's verifier.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use passkey_crypto::coset::{CborSerializable, CoseKey};
use passkey_crypto::hash::Sha256Backend;
use passkey_crypto::rust_crypto::{RustCryptoSecretKey, RustCryptoSha2};
use passkey_crypto::{PublicKeyT, SecretKeyT};
use tap_core::helper::runner::{run_helper, HelperFailure};
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, Pin, RegisterRequest, Request, Response, UserVerification,
};
use zeroize::Zeroizing;

const RP: &str = "pam://testhost";
const SOFTKEY: &str = env!("CARGO_BIN_EXE_pam_tap-softkey");

struct Key {
    _dir: tempfile::TempDir,
    state: PathBuf,
    dir: PathBuf,
}

impl Key {
    fn new() -> Key {
        let dir = tempfile::tempdir().unwrap();
        Key {
            state: dir.path().join("state.json"),
            dir: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    /// A per-test wrapper script, as the policy's `helper` would name it.
    fn helper(&self, args: &[&str]) -> PathBuf {
        let name = format!("helper-{}", args.join("").replace(['-', ' ', '/'], ""));
        let path = self.dir.join(name);
        let args: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec '{SOFTKEY}' --state '{}' {} \"$@\"\n",
                self.state.display(),
                args.join(" ")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run(&self, args: &[&str], request: &Request) -> Response {
        run_helper(&self.helper(args), request, Duration::from_secs(20)).unwrap()
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.state).unwrap()).unwrap()
    }

    fn private_key(&self, credential_id: &[u8]) -> RustCryptoSecretKey {
        let state = self.state();
        let id = URL_SAFE_NO_PAD.encode(credential_id);
        let credential = state["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .expect("credential in state");
        let key = URL_SAFE_NO_PAD
            .decode(credential["key"].as_str().unwrap())
            .unwrap();
        RustCryptoSecretKey::from_cose_key(&CoseKey::from_slice(&key).unwrap()).unwrap()
    }
}

fn cdh(fill: u8) -> Bytes {
    Bytes(vec![fill; 32])
}

fn register(uv: UserVerification, pin: Option<&str>, exclude: Vec<Bytes>) -> Request {
    Request::Register(RegisterRequest {
        rp_id: RP.into(),
        client_data_hash: cdh(0xc1),
        user_id: Bytes(b"uid-alice".to_vec()),
        user_name: "alice".into(),
        exclude,
        algorithms: vec![-7, -8],
        user_verification: uv,
        pin: pin.map(|p| Pin(Zeroizing::new(p.into()))),
    })
}

fn assert_req(allow: Vec<Bytes>, uv: UserVerification, pin: Option<&str>) -> Request {
    Request::Assert(AssertRequest {
        rp_id: RP.into(),
        client_data_hash: cdh(0xa5),
        allow,
        user_verification: uv,
        pin: pin.map(|p| Pin(Zeroizing::new(p.into()))),
    })
}

/// What a test needs from authenticator data (parsed here, independently).
#[derive(Debug)]
struct AuthData {
    rp_id_hash: [u8; 32],
    flags: u8,
    counter: u32,
    aaguid: Option<[u8; 16]>,
    credential_id: Option<Vec<u8>>,
    public_key: Option<Vec<u8>>,
}

fn parse(auth_data: &[u8]) -> AuthData {
    let flags = auth_data[32];
    let counter = u32::from_be_bytes(auth_data[33..37].try_into().unwrap());
    let mut parsed = AuthData {
        rp_id_hash: auth_data[..32].try_into().unwrap(),
        flags,
        counter,
        aaguid: None,
        credential_id: None,
        public_key: None,
    };
    if flags & 0x40 != 0 {
        parsed.aaguid = Some(auth_data[37..53].try_into().unwrap());
        let len = u16::from_be_bytes([auth_data[53], auth_data[54]]) as usize;
        parsed.credential_id = Some(auth_data[55..55 + len].to_vec());
        parsed.public_key = Some(auth_data[55 + len..].to_vec());
    }
    parsed
}

const UP: u8 = 0x01;
const UV: u8 = 0x04;

fn registered(response: Response) -> (Vec<u8>, String, Vec<u8>) {
    match response {
        Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        } => (
            authenticator_data.0,
            attestation_format,
            attestation_statement.0,
        ),
        other => panic!("expected registered, got {other:?}"),
    }
}

fn asserted(response: Response) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    match response {
        Response::Asserted {
            credential_id,
            authenticator_data,
            signature,
        } => (credential_id.0, authenticator_data.0, signature.0),
        other => panic!("expected asserted, got {other:?}"),
    }
}

fn failed(response: Response) -> HelperError {
    match response {
        Response::Failed { error, .. } => error,
        other => panic!("expected failed, got {other:?}"),
    }
}

fn signature_ok(key: &RustCryptoSecretKey, auth_data: &[u8], fill: u8, signature: &[u8]) -> bool {
    let mut target = auth_data.to_vec();
    target.extend_from_slice(&[fill; 32]);
    key.public_key().verify(&target, signature).is_ok()
}

/// Register with defaults and return the credential id.
fn enroll(key: &Key, args: &[&str]) -> Vec<u8> {
    let (auth_data, _, _) =
        registered(key.run(args, &register(UserVerification::Preferred, None, vec![])));
    parse(&auth_data).credential_id.unwrap()
}

#[test]
fn probe() {
    let key = Key::new();
    assert_eq!(
        key.run(&[], &Request::Probe),
        Response::Present { pin_set: false }
    );
    assert_eq!(
        key.run(&["--pin", "1234"], &Request::Probe),
        Response::Present { pin_set: true }
    );
    assert_eq!(
        failed(key.run(&["--no-device"], &Request::Probe)),
        HelperError::NoDevice
    );
}

#[test]
fn register_then_assert_across_processes() {
    let key = Key::new();
    let (auth_data, format, statement) =
        registered(key.run(&[], &register(UserVerification::Preferred, None, vec![])));
    assert_eq!(format, "none");
    assert_eq!(statement, vec![0xa0]);
    let parsed = parse(&auth_data);
    assert_eq!(parsed.rp_id_hash, RustCryptoSha2::sha256(RP.as_bytes()));
    assert_eq!(parsed.flags & (UP | UV | 0x40), UP | UV | 0x40);
    assert_eq!(parsed.counter, 0);
    assert_eq!(parsed.aaguid, Some(*b"softkey-pam_tap\0"));
    let id = parsed.credential_id.unwrap();
    assert!(id.len() >= 16);
    // The COSE public key in authData is the state's key's public half.
    let private = key.private_key(&id);
    let public = private.public_key().to_cose_key().to_vec().unwrap();
    assert_eq!(parsed.public_key.unwrap(), public);
    assert_eq!(key.state()["credentials"][0]["alg"], -7);

    for expected in 1..=3u32 {
        let (got_id, auth_data, signature) = asserted(key.run(
            &[],
            &assert_req(
                vec![Bytes(vec![9; 16]), Bytes(id.clone())],
                UserVerification::Preferred,
                None,
            ),
        ));
        assert_eq!(got_id, id);
        let parsed = parse(&auth_data);
        assert_eq!(parsed.counter, expected);
        assert_eq!(parsed.flags & (UP | UV), UP | UV);
        assert_eq!(parsed.rp_id_hash, RustCryptoSha2::sha256(RP.as_bytes()));
        assert!(signature_ok(&private, &auth_data, 0xa5, &signature));
        // ES256 signatures are DER.
        assert_eq!(signature[0], 0x30);
    }
    assert_eq!(key.state()["credentials"][0]["counter"], 3);
}

#[test]
fn eddsa_and_algorithm_choice() {
    let key = Key::new();
    let mut request = register(UserVerification::Preferred, None, vec![]);
    if let Request::Register(r) = &mut request {
        r.algorithms = vec![-8, -7];
    }
    let (auth_data, _, _) = registered(key.run(&[], &request));
    let id = parse(&auth_data).credential_id.unwrap();
    assert_eq!(key.state()["credentials"][0]["alg"], -8);
    let (_, auth_data, signature) = asserted(key.run(
        &[],
        &assert_req(vec![Bytes(id.clone())], UserVerification::Preferred, None),
    ));
    assert_eq!(signature.len(), 64);
    assert!(signature_ok(
        &key.private_key(&id),
        &auth_data,
        0xa5,
        &signature
    ));

    // A key that only does ES256, asked for EdDSA only.
    if let Request::Register(r) = &mut request {
        r.algorithms = vec![-8];
    }
    assert_eq!(
        failed(key.run(&["--alg", "-7"], &request)),
        HelperError::Device
    );
    // Unknown algorithm ids are skipped.
    if let Request::Register(r) = &mut request {
        r.algorithms = vec![-65535, -7];
    }
    registered(key.run(&["--alg", "-7"], &request));
}

#[test]
fn packed_self_attestation() {
    let key = Key::new();
    let (auth_data, format, statement) = registered(key.run(
        &["--attestation", "packed"],
        &register(UserVerification::Preferred, None, vec![]),
    ));
    assert_eq!(format, "packed");
    let value: ciborium::Value = ciborium::from_reader(&statement[..]).unwrap();
    let map = value.as_map().unwrap();
    assert_eq!(map[0].0.as_text(), Some("alg"));
    assert_eq!(map[0].1, ciborium::Value::Integer((-7).into()));
    assert_eq!(map[1].0.as_text(), Some("sig"));
    let sig = map[1].1.as_bytes().unwrap();
    let id = parse(&auth_data).credential_id.unwrap();
    assert!(signature_ok(&key.private_key(&id), &auth_data, 0xc1, sig));
}

#[test]
fn allow_and_exclude_lists() {
    let key = Key::new();
    let id = enroll(&key, &[]);
    assert_eq!(
        failed(key.run(
            &[],
            &assert_req(vec![Bytes(vec![1; 16])], UserVerification::Preferred, None)
        )),
        HelperError::NoCredentials
    );
    // Another rp id does not see the credential.
    let mut other_rp = assert_req(vec![Bytes(id.clone())], UserVerification::Preferred, None);
    if let Request::Assert(a) = &mut other_rp {
        a.rp_id = "pam://elsewhere".into();
    }
    assert_eq!(failed(key.run(&[], &other_rp)), HelperError::NoCredentials);
    assert_eq!(
        failed(key.run(
            &[],
            &register(
                UserVerification::Preferred,
                None,
                vec![Bytes(vec![3; 16]), Bytes(id.clone())]
            )
        )),
        HelperError::AlreadyEnrolled
    );
    // Excluding ids this key does not hold is fine: a second credential.
    registered(key.run(
        &[],
        &register(UserVerification::Preferred, None, vec![Bytes(vec![3; 16])]),
    ));
    assert_eq!(key.state()["credentials"].as_array().unwrap().len(), 2);
}

#[test]
fn pin() {
    let key = Key::new();
    let pin = ["--pin", "1234"];
    // A key with a PIN wants it to register (CTAP 2.0).
    assert_eq!(
        failed(key.run(&pin, &register(UserVerification::Preferred, None, vec![]))),
        HelperError::PinRequired
    );
    assert_eq!(
        failed(key.run(
            &pin,
            &register(UserVerification::Preferred, Some("0000"), vec![])
        )),
        HelperError::PinInvalid
    );
    let (auth_data, _, _) = registered(key.run(
        &pin,
        &register(UserVerification::Required, Some("1234"), vec![]),
    ));
    let id = parse(&auth_data).credential_id.unwrap();
    assert_eq!(parse(&auth_data).flags & UV, UV);

    let allow = vec![Bytes(id.clone())];
    assert_eq!(
        failed(key.run(
            &pin,
            &assert_req(allow.clone(), UserVerification::Required, None)
        )),
        HelperError::PinRequired
    );
    // Preferred without a PIN: presence only.
    let (_, auth_data, _) = asserted(key.run(
        &pin,
        &assert_req(allow.clone(), UserVerification::Preferred, None),
    ));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP);
    let (_, auth_data, signature) = asserted(key.run(
        &pin,
        &assert_req(allow.clone(), UserVerification::Required, Some("1234")),
    ));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP | UV);
    assert!(signature_ok(
        &key.private_key(&id),
        &auth_data,
        0xa5,
        &signature
    ));

    // Eight wrong PINs in a row block it, across processes; a right one resets.
    for left in (1..8).rev() {
        match key.run(
            &pin,
            &assert_req(allow.clone(), UserVerification::Required, Some("9")),
        ) {
            Response::Failed {
                error: HelperError::PinInvalid,
                message,
            } => {
                assert!(message.contains(&format!("{left} attempts")), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(key.state()["pin_retries"], 1);
    asserted(key.run(
        &pin,
        &assert_req(allow.clone(), UserVerification::Required, Some("1234")),
    ));
    assert_eq!(key.state()["pin_retries"], 8);
    for _ in 0..7 {
        key.run(
            &pin,
            &assert_req(allow.clone(), UserVerification::Required, Some("9")),
        );
    }
    assert_eq!(
        failed(key.run(
            &pin,
            &assert_req(allow.clone(), UserVerification::Required, Some("9"))
        )),
        HelperError::PinBlocked
    );
    assert_eq!(
        failed(key.run(
            &pin,
            &assert_req(allow, UserVerification::Required, Some("1234"))
        )),
        HelperError::PinBlocked
    );
}

#[test]
fn user_verification_modes() {
    let key = Key::new();
    let id = enroll(&key, &[]);
    let allow = vec![Bytes(id)];
    // Built-in UV: verified unless discouraged.
    let (_, auth_data, _) = asserted(key.run(
        &[],
        &assert_req(allow.clone(), UserVerification::Discouraged, None),
    ));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP);
    // No UV at all.
    assert_eq!(
        failed(key.run(
            &["--no-uv"],
            &assert_req(allow.clone(), UserVerification::Required, None)
        )),
        HelperError::Device
    );
    let (_, auth_data, _) = asserted(key.run(
        &["--no-uv"],
        &assert_req(allow, UserVerification::Preferred, None),
    ));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP);
}

#[test]
fn signed_faults_are_validly_signed() {
    let key = Key::new();
    let id = enroll(&key, &[]);
    let private = key.private_key(&id);
    let allow = vec![Bytes(id.clone())];
    let request = assert_req(allow, UserVerification::Required, None);

    let (_, auth_data, signature) = asserted(key.run(&["--wrong-rp-id"], &request));
    assert_eq!(
        parse(&auth_data).rp_id_hash,
        RustCryptoSha2::sha256(b"wrong-rp.invalid")
    );
    assert!(signature_ok(&private, &auth_data, 0xa5, &signature));

    let (_, auth_data, signature) = asserted(key.run(&["--no-up"], &request));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UV);
    assert!(signature_ok(&private, &auth_data, 0xa5, &signature));

    let (_, auth_data, signature) = asserted(key.run(&["--no-uv-flag"], &request));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP);
    assert!(signature_ok(&private, &auth_data, 0xa5, &signature));

    // Three good sign-ins so far: counter 3. A regression reports 2, and
    // leaves the real counter where it was.
    assert_eq!(key.state()["credentials"][0]["counter"], 3);
    let (_, auth_data, signature) = asserted(key.run(&["--counter-regress"], &request));
    assert_eq!(parse(&auth_data).counter, 2);
    assert!(signature_ok(&private, &auth_data, 0xa5, &signature));
    assert_eq!(key.state()["credentials"][0]["counter"], 3);
    let (_, auth_data, _) = asserted(key.run(&[], &request));
    assert_eq!(parse(&auth_data).counter, 4);
}

#[test]
fn tampering_breaks_the_signature() {
    let key = Key::new();
    let id = enroll(&key, &[]);
    let private = key.private_key(&id);
    let request = assert_req(vec![Bytes(id.clone())], UserVerification::Preferred, None);

    let (_, auth_data, signature) = asserted(key.run(&["--tamper-authdata"], &request));
    let parsed = parse(&auth_data);
    assert_eq!(parsed.rp_id_hash, RustCryptoSha2::sha256(RP.as_bytes()));
    assert_eq!(parsed.flags & UP, UP);
    assert!(
        parsed.counter > 1,
        "counter still goes up: {}",
        parsed.counter
    );
    assert!(!signature_ok(&private, &auth_data, 0xa5, &signature));

    let (_, auth_data, signature) = asserted(key.run(&["--tamper-signature"], &request));
    assert!(!signature_ok(&private, &auth_data, 0xa5, &signature));

    // Both on an EdDSA key too.
    let mut eddsa = register(UserVerification::Preferred, None, vec![]);
    if let Request::Register(r) = &mut eddsa {
        r.algorithms = vec![-8];
    }
    let (auth_data, _, _) = registered(key.run(&[], &eddsa));
    let ed_id = parse(&auth_data).credential_id.unwrap();
    let ed_private = key.private_key(&ed_id);
    let request = assert_req(vec![Bytes(ed_id)], UserVerification::Preferred, None);
    let (_, auth_data, signature) = asserted(key.run(&["--tamper-signature"], &request));
    assert!(!signature_ok(&ed_private, &auth_data, 0xa5, &signature));
    let (_, auth_data, signature) = asserted(key.run(&["--tamper-authdata"], &request));
    assert!(!signature_ok(&ed_private, &auth_data, 0xa5, &signature));
}

#[test]
fn registration_faults() {
    let key = Key::new();
    let request = register(UserVerification::Preferred, None, vec![]);
    let (auth_data, _, _) = registered(key.run(&["--no-up"], &request));
    assert_eq!(parse(&auth_data).flags & UP, 0);
    let (auth_data, _, _) = registered(key.run(&["--no-uv-flag"], &request));
    assert_eq!(parse(&auth_data).flags & (UP | UV), UP);
    let (auth_data, _, _) = registered(key.run(&["--wrong-rp-id"], &request));
    assert_eq!(
        parse(&auth_data).rp_id_hash,
        RustCryptoSha2::sha256(b"wrong-rp.invalid")
    );
    let (auth_data, _, statement) =
        registered(key.run(&["--attestation", "packed", "--tamper-authdata"], &request));
    let value: ciborium::Value = ciborium::from_reader(&statement[..]).unwrap();
    let sig = value.as_map().unwrap()[1].1.as_bytes().unwrap().clone();
    let id = parse(&auth_data).credential_id.unwrap();
    assert!(!signature_ok(&key.private_key(&id), &auth_data, 0xc1, &sig));
}

#[test]
fn aaguid_and_other_key() {
    let key = Key::new();
    let (auth_data, _, _) = registered(key.run(
        &["--aaguid", "cb69481e-8ff7-4039-93ec-0a2729a154a8"],
        &register(UserVerification::Preferred, None, vec![]),
    ));
    let parsed = parse(&auth_data);
    assert_eq!(parsed.aaguid.unwrap()[..4], [0xcb, 0x69, 0x48, 0x1e]);
    // Saved: the next registration without the option keeps it.
    assert_eq!(key.state()["aaguid"], "cb69481e8ff7403993ec0a2729a154a8");
    let id = parsed.credential_id.unwrap();

    let (other, auth_data, _) = asserted(key.run(
        &["--other-key"],
        &assert_req(vec![Bytes(id.clone())], UserVerification::Preferred, None),
    ));
    assert_ne!(other, id);
    assert_eq!(
        parse(&auth_data).rp_id_hash,
        RustCryptoSha2::sha256(RP.as_bytes())
    );
    // The throwaway credential is not kept, and the real one is untouched.
    assert_eq!(key.state()["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(key.state()["credentials"][0]["counter"], 0);
}

#[test]
fn process_faults() {
    let key = Key::new();
    let request = Request::Probe;
    let start = Instant::now();
    assert!(matches!(
        run_helper(
            &key.helper(&["--hang"]),
            &request,
            Duration::from_millis(500)
        ),
        Err(HelperFailure::Timeout)
    ));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(
        run_helper(&key.helper(&["--die"]), &request, Duration::from_secs(10)),
        Err(HelperFailure::Died(death)) if death.code() == Some(3)
    ));
    assert!(matches!(
        run_helper(
            &key.helper(&["--garbage"]),
            &request,
            Duration::from_secs(10)
        ),
        Err(HelperFailure::Garbage(_))
    ));
    // A bad option: the helper exits 2 without an answer.
    assert!(matches!(
        run_helper(&key.helper(&["--bogus"]), &request, Duration::from_secs(10)),
        Err(HelperFailure::Died(_))
    ));
}

#[test]
fn bad_requests() {
    let key = Key::new();
    let helper = key.helper(&[]);
    // Not via run_helper: raw bytes on stdin.
    let out = std::process::Command::new(&helper)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"{\"op\":\"dance\"}")?;
            child.wait_with_output()
        })
        .unwrap();
    let response = Response::from_json(&out.stdout).unwrap();
    assert_eq!(failed(response), HelperError::BadRequest);
    let mut short = assert_req(vec![Bytes(vec![1])], UserVerification::Preferred, None);
    if let Request::Assert(a) = &mut short {
        a.client_data_hash = Bytes(vec![1; 31]);
    }
    assert_eq!(failed(key.run(&[], &short)), HelperError::BadRequest);
}

#[test]
fn concurrent_runs_share_the_state() {
    let key = Key::new();
    let id = enroll(&key, &[]);
    let helper = key.helper(&[]);
    let request = assert_req(vec![Bytes(id)], UserVerification::Preferred, None);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let helper = helper.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let (_, auth_data, _) =
                    asserted(run_helper(&helper, &request, Duration::from_secs(30)).unwrap());
                parse(&auth_data).counter
            })
        })
        .collect();
    let mut counters: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    counters.sort();
    assert_eq!(counters, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn init_creates_a_state_file() {
    let key = Key::new();
    let status = std::process::Command::new(SOFTKEY)
        .args(["--state", key.state.to_str().unwrap(), "--init", "--aaguid"])
        .arg("00112233445566778899aabbccddeeff")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(key.state()["aaguid"], "00112233445566778899aabbccddeeff");
    assert_eq!(key.state()["credentials"], serde_json::json!([]));
    let _ = Path::new(&key.state);
}
