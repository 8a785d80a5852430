//! The software authenticator and tap-core's verifier agree: what the
//! well-behaved softkey answers verifies, and each fault option is refused
//! for the reason it stands for. (The softkey binary itself uses none of
//! tap-core's verification code; only this test puts the two together.)

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use tap_core::helper::runner::run_helper;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, RegisterRequest, Request, Response, UserVerification,
};
use tap_core::keys::{
    verify_assertion, verify_registration, AssertionAnswer, Attestation, RegistrationAnswer,
    StoredCredential, VerifiedRegistration, VerifyError,
};

const RP: &str = "pam://verifier-test";
const SOFTKEY: &str = env!("CARGO_BIN_EXE_pam_tap-softkey");
const REG_CDH: [u8; 32] = [0x11; 32];
const ASSERT_CDH: [u8; 32] = [0x22; 32];

struct Key {
    dir: tempfile::TempDir,
}

impl Key {
    fn new() -> Key {
        Key {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str], request: &Request) -> Response {
        let helper: PathBuf = self.dir.path().join("helper");
        let args: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nexec '{SOFTKEY}' --state '{}' {}\n",
                self.dir.path().join("state.json").display(),
                args.join(" ")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        run_helper(&helper, request, Duration::from_secs(20)).unwrap()
    }

    fn register(
        &self,
        args: &[&str],
        algorithms: Vec<i64>,
    ) -> Result<VerifiedRegistration, VerifyError> {
        let request = Request::Register(RegisterRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(REG_CDH.to_vec()),
            user_id: Bytes(b"uid".to_vec()),
            user_name: "alice".into(),
            exclude: vec![],
            algorithms,
            user_verification: UserVerification::Required,
            pin: None,
        });
        let Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        } = self.run(args, &request)
        else {
            panic!("not registered");
        };
        verify_registration(
            RP,
            &REG_CDH,
            true,
            &RegistrationAnswer {
                authenticator_data: &authenticator_data.0,
                attestation_format: &attestation_format,
                attestation_statement: &attestation_statement.0,
            },
        )
    }

    fn assert(&self, args: &[&str], enrolled: &Enrolled) -> Result<u32, VerifyError> {
        let request = Request::Assert(AssertRequest {
            rp_id: RP.into(),
            client_data_hash: Bytes(ASSERT_CDH.to_vec()),
            allow: vec![Bytes(enrolled.id.clone())],
            user_verification: UserVerification::Required,
            pin: None,
        });
        let Response::Asserted {
            credential_id,
            authenticator_data,
            signature,
        } = self.run(args, &request)
        else {
            panic!("not asserted");
        };
        verify_assertion(
            &StoredCredential {
                credential_id: &enrolled.id,
                public_key: &enrolled.public_key,
                sign_count: enrolled.count,
            },
            RP,
            &ASSERT_CDH,
            true,
            &AssertionAnswer {
                credential_id: &credential_id.0,
                authenticator_data: &authenticator_data.0,
                signature: &signature.0,
            },
        )
        .map(|verified| verified.sign_count)
    }
}

struct Enrolled {
    id: Vec<u8>,
    public_key: Vec<u8>,
    count: u32,
}

fn enroll(key: &Key, algorithms: Vec<i64>) -> Enrolled {
    let registration = key.register(&[], algorithms).unwrap();
    assert_eq!(registration.attestation, Attestation::None);
    assert!(registration.user_verified);
    assert_eq!(&registration.aaguid, b"softkey-pam_tap\0");
    Enrolled {
        id: registration.credential_id,
        public_key: registration.public_key,
        count: registration.sign_count,
    }
}

#[test]
fn good_answers_verify_es256_and_eddsa() {
    for algorithms in [vec![-7], vec![-8]] {
        let key = Key::new();
        let mut enrolled = enroll(&key, algorithms);
        for expected in 1..=2 {
            let count = key.assert(&[], &enrolled).unwrap();
            assert_eq!(count, expected);
            enrolled.count = count;
        }
    }
}

#[test]
fn packed_self_attestation_verifies() {
    let key = Key::new();
    let registration = key
        .register(&["--attestation", "packed"], vec![-7, -8])
        .unwrap();
    assert_eq!(registration.attestation, Attestation::SelfAttestation);
    let registration = key
        .register(&["--attestation", "packed"], vec![-8])
        .unwrap();
    assert_eq!(registration.attestation, Attestation::SelfAttestation);
    assert_eq!(
        key.register(&["--attestation", "packed", "--tamper-signature"], vec![-7])
            .unwrap_err(),
        VerifyError::AttestationSignatureInvalid
    );
    assert_eq!(
        key.register(&["--attestation", "packed", "--tamper-authdata"], vec![-7])
            .unwrap_err(),
        VerifyError::AttestationSignatureInvalid
    );
}

#[test]
fn registration_faults_are_refused() {
    let key = Key::new();
    assert_eq!(
        key.register(&["--wrong-rp-id"], vec![-7]).unwrap_err(),
        VerifyError::RpIdMismatch
    );
    assert_eq!(
        key.register(&["--no-up"], vec![-7]).unwrap_err(),
        VerifyError::UserNotPresent
    );
    assert_eq!(
        key.register(&["--no-uv-flag"], vec![-7]).unwrap_err(),
        VerifyError::UserNotVerified
    );
}

#[test]
fn assertion_faults_are_refused_for_their_reason() {
    let key = Key::new();
    let mut enrolled = enroll(&key, vec![-7]);
    enrolled.count = key.assert(&[], &enrolled).unwrap();
    // Right after a good sign-in the key's and the store's counters agree:
    // a regression reports one less.
    let regress = key.assert(&["--counter-regress"], &enrolled).unwrap_err();
    assert_eq!(
        regress,
        VerifyError::SignCountNotIncreased {
            stored: 1,
            received: 0
        }
    );
    assert!(regress.is_possible_clone());
    let cases: [(&str, VerifyError); 6] = [
        ("--wrong-rp-id", VerifyError::RpIdMismatch),
        ("--no-up", VerifyError::UserNotPresent),
        ("--no-uv-flag", VerifyError::UserNotVerified),
        ("--tamper-authdata", VerifyError::SignatureInvalid),
        ("--tamper-signature", VerifyError::SignatureInvalid),
        ("--other-key", VerifyError::CredentialIdMismatch),
    ];
    for (fault, expected) in cases {
        assert_eq!(key.assert(&[fault], &enrolled), Err(expected), "{fault}");
    }
    // Refused answers still advanced the key's own counter, as on a real key.
    assert_eq!(key.assert(&[], &enrolled), Ok(7));
}
