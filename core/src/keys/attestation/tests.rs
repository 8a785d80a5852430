use super::*;
use crate::keys::authdata::Flags;
use crate::keys::cose::KeyError;
use crate::keys::testkit::{
    auth_data, cbor_array, cbor_bytes, cbor_int, cbor_map, cbor_text, certificate, cose_ec2,
    AuthDataSpec, TestKey, AAGUID,
};

const RP_ID: &str = "pam://host.example";
const CLIENT_DATA_HASH: [u8; 32] = [0x3c; 32];
const CREDENTIAL_ID: &[u8] = &[0x1d; 64];
const BOTH: [Algorithm; 2] = [Algorithm::Es256, Algorithm::EdDsa];

/// A new credential made by an authenticator.
struct NewCredential {
    key: TestKey,
    cose: Vec<u8>,
    auth_data: Vec<u8>,
}

impl NewCredential {
    fn new(algorithm: Algorithm) -> Self {
        Self::with(algorithm, |_| {})
    }

    fn with(algorithm: Algorithm, spoil: impl FnOnce(&mut AuthDataSpec<'_>)) -> Self {
        let key = TestKey::of(algorithm);
        let cose = key.cose();
        let mut spec = AuthDataSpec::registration(RP_ID, CREDENTIAL_ID, &cose);
        spec.sign_count = 3;
        spoil(&mut spec);
        let auth_data = auth_data(&spec);
        Self {
            key,
            cose,
            auth_data,
        }
    }

    fn message(&self) -> Vec<u8> {
        [&self.auth_data[..], &CLIENT_DATA_HASH].concat()
    }

    fn u2f_message(&self) -> Vec<u8> {
        let rp_id_hash = crate::keys::verify::rp_id_hash(RP_ID);
        [
            &[0u8][..],
            &rp_id_hash,
            &CLIENT_DATA_HASH,
            CREDENTIAL_ID,
            &self.key.sec1(),
        ]
        .concat()
    }

    fn verify(&self, format: &str, statement: &[u8]) -> Result<VerifiedRegistration, VerifyError> {
        verify(&self.auth_data, format, statement, false)
    }
}

fn verify(
    auth_data: &[u8],
    format: &str,
    statement: &[u8],
    uv_required: bool,
) -> Result<VerifiedRegistration, VerifyError> {
    verify_registration(
        RP_ID,
        &CLIENT_DATA_HASH,
        uv_required,
        &RegistrationAnswer {
            authenticator_data: auth_data,
            attestation_format: format,
            attestation_statement: statement,
        },
    )
}

fn statement(alg: Option<i64>, sig: Option<&[u8]>, x5c: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut entries = Vec::new();
    if let Some(alg) = alg {
        entries.push((cbor_text("alg"), cbor_int(alg)));
    }
    if let Some(sig) = sig {
        entries.push((cbor_text("sig"), cbor_bytes(sig)));
    }
    if let Some(x5c) = x5c {
        let certs: Vec<Vec<u8>> = x5c.iter().map(|c| cbor_bytes(c)).collect();
        entries.push((cbor_text("x5c"), cbor_array(&certs)));
    }
    cbor_map(&entries)
}

/// A `packed` statement signed by a certificate key.
fn packed_certified(
    credential: &NewCredential,
    signer: &TestKey,
    aaguid_extension: Option<[u8; 16]>,
) -> (Vec<u8>, Vec<u8>) {
    let cert = certificate(signer, aaguid_extension);
    let sig = signer.sign(&credential.message());
    let statement = statement(
        Some(signer.algorithm().cose_id()),
        Some(&sig),
        Some(std::slice::from_ref(&cert)),
    );
    (statement, cert)
}

fn packed_self(credential: &NewCredential) -> Vec<u8> {
    let sig = credential.key.sign(&credential.message());
    statement(Some(credential.key.algorithm().cose_id()), Some(&sig), None)
}

fn fido_u2f(credential: &NewCredential, signer: &TestKey) -> (Vec<u8>, Vec<u8>) {
    let cert = certificate(signer, None);
    let sig = signer.sign(&credential.u2f_message());
    (
        statement(None, Some(&sig), Some(std::slice::from_ref(&cert))),
        cert,
    )
}

#[test]
fn none_is_accepted_and_says_so() {
    for algorithm in BOTH {
        let credential = NewCredential::new(algorithm);
        let verified = credential.verify("none", &[0xa0]).unwrap();
        assert_eq!(verified.credential_id, CREDENTIAL_ID);
        assert_eq!(verified.public_key, credential.cose);
        assert_eq!(verified.algorithm, algorithm);
        assert_eq!(verified.aaguid, AAGUID);
        assert_eq!(verified.sign_count, 3);
        assert!(!verified.user_verified);
        assert_eq!(verified.attestation_format, "none");
        assert_eq!(verified.attestation, Attestation::None);
        assert!(!verified.attestation_verified());
        assert!(verified.attestation_certificates.is_empty());
        // The stored key verifies later assertions.
        assert_eq!(
            CredentialKey::from_cose(&verified.public_key)
                .unwrap()
                .algorithm(),
            algorithm
        );
    }
}

#[test]
fn none_with_a_statement_is_refused() {
    let credential = NewCredential::new(Algorithm::Es256);
    for statement in [&[][..], &[0xa1, 0x01, 0x02], &[0x80], &[0xa0, 0x00]] {
        assert_eq!(
            credential.verify("none", statement),
            Err(VerifyError::AttestationMalformed)
        );
    }
}

#[test]
fn packed_self_attestation_is_verified() {
    for algorithm in BOTH {
        let credential = NewCredential::new(algorithm);
        let verified = credential
            .verify("packed", &packed_self(&credential))
            .unwrap();
        assert_eq!(verified.attestation, Attestation::SelfAttestation);
        assert!(verified.attestation_verified());
        assert_eq!(verified.attestation_format, "packed");
    }
}

#[test]
fn packed_self_attestation_with_another_alg_is_refused() {
    for algorithm in BOTH {
        let credential = NewCredential::new(algorithm);
        let sig = credential.key.sign(&credential.message());
        for alg in [-7, -8, -257] {
            if alg == algorithm.cose_id() {
                continue;
            }
            assert_eq!(
                credential.verify("packed", &statement(Some(alg), Some(&sig), None)),
                Err(VerifyError::AttestationAlgorithmMismatch)
            );
        }
    }
}

#[test]
fn packed_self_attestation_with_a_bad_signature_is_refused() {
    for algorithm in BOTH {
        let credential = NewCredential::new(algorithm);
        let alg = Some(algorithm.cose_id());
        let other_challenge = credential
            .key
            .sign(&[&credential.auth_data[..], &[0; 32]].concat());
        let other_key = TestKey::of(algorithm).sign(&credential.message());
        let mut flipped = credential.key.sign(&credential.message());
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for sig in [other_challenge, other_key, flipped, vec![]] {
            assert_eq!(
                credential.verify("packed", &statement(alg, Some(&sig), None)),
                Err(VerifyError::AttestationSignatureInvalid)
            );
        }
    }
}

#[test]
fn packed_certificate_attestation_is_verified_and_recorded() {
    for credential_algorithm in BOTH {
        for signer_algorithm in BOTH {
            let credential = NewCredential::new(credential_algorithm);
            let signer = TestKey::of(signer_algorithm);
            let (statement, cert) = packed_certified(&credential, &signer, Some(AAGUID));
            let verified = credential.verify("packed", &statement).unwrap();
            assert_eq!(verified.attestation, Attestation::Certificate);
            assert!(verified.attestation_verified());
            assert_eq!(verified.attestation_certificates, vec![cert]);
            assert_eq!(verified.algorithm, credential_algorithm);
        }
    }
}

#[test]
fn packed_certificate_without_aaguid_extension_is_fine() {
    let credential = NewCredential::new(Algorithm::Es256);
    let (statement, _) = packed_certified(&credential, &TestKey::es256(), None);
    assert!(credential.verify("packed", &statement).is_ok());
}

#[test]
fn packed_certificate_naming_another_model_is_refused() {
    let credential = NewCredential::new(Algorithm::Es256);
    let (statement, _) = packed_certified(&credential, &TestKey::es256(), Some([9; 16]));
    assert_eq!(
        credential.verify("packed", &statement),
        Err(VerifyError::AttestationAaguidMismatch)
    );
}

#[test]
fn packed_certificate_signature_must_come_from_the_certificate_key() {
    let credential = NewCredential::new(Algorithm::Es256);
    let signer = TestKey::es256();
    let cert = certificate(&TestKey::es256(), None);
    // Signed by a key other than the certificate's, or by the credential.
    for sig in [
        signer.sign(&credential.message()),
        credential.key.sign(&credential.message()),
    ] {
        let statement = statement(Some(-7), Some(&sig), Some(std::slice::from_ref(&cert)));
        assert_eq!(
            credential.verify("packed", &statement),
            Err(VerifyError::AttestationSignatureInvalid)
        );
    }
}

#[test]
fn packed_certificate_alg_must_fit_the_certificate_key() {
    let credential = NewCredential::new(Algorithm::Es256);
    let signer = TestKey::es256();
    let cert = certificate(&signer, None);
    let sig = signer.sign(&credential.message());
    let statement = statement(Some(-8), Some(&sig), Some(&[cert]));
    assert_eq!(
        credential.verify("packed", &statement),
        Err(VerifyError::AttestationAlgorithmMismatch)
    );
}

#[test]
fn packed_certificate_with_an_algorithm_we_lack_is_accepted_unchecked() {
    let credential = NewCredential::new(Algorithm::Es256);
    let cert = certificate(&TestKey::es256(), None);
    let statement = statement(
        Some(-257),
        Some(&[1; 256]),
        Some(std::slice::from_ref(&cert)),
    );
    let verified = credential.verify("packed", &statement).unwrap();
    assert_eq!(verified.attestation, Attestation::UnsupportedAlgorithm);
    assert!(!verified.attestation_verified());
    assert_eq!(verified.attestation_certificates, vec![cert]);
}

#[test]
fn packed_certificate_that_does_not_parse_is_refused() {
    let credential = NewCredential::new(Algorithm::Es256);
    let signer = TestKey::es256();
    let sig = signer.sign(&credential.message());
    let mut cert = certificate(&signer, None);
    let truncated = cert[..cert.len() - 1].to_vec();
    cert.push(0);
    for bad in [vec![], vec![0x30, 0x00], truncated, cert] {
        let statement = statement(Some(-7), Some(&sig), Some(&[bad]));
        assert_eq!(
            credential.verify("packed", &statement),
            Err(VerifyError::AttestationCertificateInvalid)
        );
    }
}

#[test]
fn packed_statements_of_the_wrong_shape_are_refused() {
    let credential = NewCredential::new(Algorithm::EdDsa);
    let good = packed_self(&credential);
    let sig = credential.key.sign(&credential.message());
    let cases = [
        statement(None, Some(&sig), None),
        statement(Some(-8), None, None),
        statement(Some(-8), Some(&sig), Some(&[])),
        // ecdaaKeyId, an unknown field, a duplicate field.
        cbor_map(&[
            (cbor_text("alg"), cbor_int(-8)),
            (cbor_text("sig"), cbor_bytes(&sig)),
            (cbor_text("ecdaaKeyId"), cbor_bytes(&[1; 16])),
        ]),
        cbor_map(&[
            (cbor_text("alg"), cbor_int(-8)),
            (cbor_text("sig"), cbor_bytes(&sig)),
            (cbor_text("sig"), cbor_bytes(&sig)),
        ]),
        // Wrong value types: text alg, text sig, x5c not an array, of text.
        cbor_map(&[
            (cbor_text("alg"), cbor_text("EdDSA")),
            (cbor_text("sig"), cbor_bytes(&sig)),
        ]),
        cbor_map(&[
            (cbor_text("alg"), cbor_int(-8)),
            (cbor_text("sig"), cbor_text("x")),
        ]),
        cbor_map(&[
            (cbor_text("alg"), cbor_int(-8)),
            (cbor_text("sig"), cbor_bytes(&sig)),
            (cbor_text("x5c"), cbor_bytes(&[1])),
        ]),
        cbor_map(&[
            (cbor_text("alg"), cbor_int(-8)),
            (cbor_text("sig"), cbor_bytes(&sig)),
            (cbor_text("x5c"), cbor_array(&[cbor_text("cert")])),
        ]),
        // Integer keys, not a map, trailing bytes.
        cbor_map(&[(cbor_int(1), cbor_int(-8))]),
        cbor_array(&[cbor_int(-8)]),
        [&good[..], &[0]].concat(),
    ];
    for (i, statement) in cases.iter().enumerate() {
        assert_eq!(
            credential.verify("packed", statement),
            Err(VerifyError::AttestationMalformed),
            "case {i}"
        );
    }
    for len in 0..good.len() {
        assert!(credential.verify("packed", &good[..len]).is_err(), "{len}");
    }
}

#[test]
fn fido_u2f_is_verified() {
    let credential = NewCredential::with(Algorithm::Es256, |spec| spec.aaguid = [0; 16]);
    let (statement, cert) = fido_u2f(&credential, &TestKey::es256());
    let verified = credential.verify("fido-u2f", &statement).unwrap();
    assert_eq!(verified.attestation, Attestation::Certificate);
    assert_eq!(verified.attestation_certificates, vec![cert]);
    assert_eq!(verified.aaguid, [0; 16]);
}

#[test]
fn fido_u2f_signature_is_over_the_u2f_message() {
    let credential = NewCredential::new(Algorithm::Es256);
    let signer = TestKey::es256();
    let cert = certificate(&signer, None);
    let mut tampered = credential.u2f_message();
    tampered[0] = 1;
    for sig in [signer.sign(&credential.message()), signer.sign(&tampered)] {
        assert_eq!(
            credential.verify(
                "fido-u2f",
                &statement(None, Some(&sig), Some(std::slice::from_ref(&cert)))
            ),
            Err(VerifyError::AttestationSignatureInvalid)
        );
    }
}

#[test]
fn fido_u2f_is_p256_only() {
    // An Ed25519 credential cannot be U2F-attested ...
    let credential = NewCredential::new(Algorithm::EdDsa);
    let signer = TestKey::es256();
    let cert = certificate(&signer, None);
    let sig = signer.sign(&credential.message());
    assert_eq!(
        credential.verify("fido-u2f", &statement(None, Some(&sig), Some(&[cert]))),
        Err(VerifyError::AttestationAlgorithmMismatch)
    );
    // ... nor can a certificate with an Ed25519 key attest.
    let credential = NewCredential::new(Algorithm::Es256);
    let (statement, _) = fido_u2f(&credential, &TestKey::eddsa());
    assert_eq!(
        credential.verify("fido-u2f", &statement),
        Err(VerifyError::AttestationAlgorithmMismatch)
    );
}

#[test]
fn fido_u2f_statements_of_the_wrong_shape_are_refused() {
    let credential = NewCredential::new(Algorithm::Es256);
    let signer = TestKey::es256();
    let cert = certificate(&signer, None);
    let sig = signer.sign(&credential.u2f_message());
    for statement in [
        statement(None, Some(&sig), Some(&[cert.clone(), cert.clone()])),
        statement(None, Some(&sig), None),
        statement(None, None, Some(std::slice::from_ref(&cert))),
        statement(Some(-7), Some(&sig), Some(std::slice::from_ref(&cert))),
    ] {
        assert_eq!(
            credential.verify("fido-u2f", &statement),
            Err(VerifyError::AttestationMalformed)
        );
    }
}

#[test]
fn unknown_formats_are_accepted_unattested() {
    let credential = NewCredential::new(Algorithm::Es256);
    for format in ["tpm", "android-key", "apple", "x-private"] {
        let verified = credential
            .verify(format, &[0xa1, 0x61, b'x', 0x00])
            .unwrap();
        assert_eq!(verified.attestation, Attestation::UnknownFormat);
        assert!(!verified.attestation_verified());
        assert_eq!(verified.attestation_format, format);
    }
}

#[test]
fn format_names_must_be_short_and_printable() {
    let credential = NewCredential::new(Algorithm::Es256);
    let too_long = "p".repeat(MAX_FORMAT_LEN + 1);
    for format in [
        "",
        "pac ked",
        "packed\n",
        "a\"b",
        "a\\b",
        "pâcked",
        too_long.as_str(),
    ] {
        assert_eq!(
            credential.verify(format, &[0xa0]),
            Err(VerifyError::AttestationFormatInvalid),
            "{format:?}"
        );
    }
    assert!(credential
        .verify(&"p".repeat(MAX_FORMAT_LEN), &[0xa0])
        .is_ok());
}

#[test]
fn registration_for_another_rp_is_refused() {
    let credential = NewCredential::new(Algorithm::Es256);
    let verified = verify_registration(
        "pam://other",
        &CLIENT_DATA_HASH,
        false,
        &RegistrationAnswer {
            authenticator_data: &credential.auth_data,
            attestation_format: "none",
            attestation_statement: &[0xa0],
        },
    );
    assert_eq!(verified, Err(VerifyError::RpIdMismatch));
}

#[test]
fn registration_flags_are_checked() {
    let credential = NewCredential::with(Algorithm::Es256, |spec| {
        spec.flags &= !Flags::USER_PRESENT;
    });
    assert_eq!(
        credential.verify("none", &[0xa0]),
        Err(VerifyError::UserNotPresent)
    );

    let credential = NewCredential::new(Algorithm::EdDsa);
    assert_eq!(
        verify(&credential.auth_data, "none", &[0xa0], true),
        Err(VerifyError::UserNotVerified)
    );
    let credential = NewCredential::with(Algorithm::EdDsa, |spec| {
        spec.flags |= Flags::USER_VERIFIED;
    });
    let verified = verify(&credential.auth_data, "none", &[0xa0], true).unwrap();
    assert!(verified.user_verified);
}

#[test]
fn registration_without_a_credential_is_refused() {
    let bytes = auth_data(&AuthDataSpec::assertion(RP_ID, 1));
    assert_eq!(
        verify(&bytes, "none", &[0xa0], false),
        Err(VerifyError::MissingAttestedCredential)
    );
}

#[test]
fn registration_with_an_empty_credential_id_is_refused() {
    let cose = TestKey::eddsa().cose();
    let bytes = auth_data(&AuthDataSpec::registration(RP_ID, &[], &cose));
    assert_eq!(
        verify(&bytes, "none", &[0xa0], false),
        Err(VerifyError::EmptyCredentialId)
    );
}

#[test]
fn registration_of_an_unsupported_key_is_refused() {
    let (x, y) = TestKey::es256().ec_coordinates();
    for (cose, error) in [
        (
            cose_ec2(2, Some(-35), 2, &x, &y),
            KeyError::UnsupportedAlgorithm,
        ),
        (
            cose_ec2(2, Some(-8), 1, &x, &y),
            KeyError::InconsistentParameters,
        ),
        (cose_ec2(2, None, 1, &x, &y), KeyError::MissingAlgorithm),
    ] {
        let bytes = auth_data(&AuthDataSpec::registration(RP_ID, CREDENTIAL_ID, &cose));
        assert_eq!(
            verify(&bytes, "none", &[0xa0], false),
            Err(VerifyError::CredentialKey(error))
        );
    }
}

#[test]
fn registration_authenticator_data_is_checked_at_every_length_and_byte() {
    for algorithm in BOTH {
        let credential = NewCredential::new(algorithm);
        let statement = packed_self(&credential);
        for len in 0..credential.auth_data.len() {
            assert!(
                verify(&credential.auth_data[..len], "packed", &statement, false).is_err(),
                "{algorithm} {len}"
            );
        }
        for bit in (0..credential.auth_data.len()).map(|byte| byte * 8 + byte % 8) {
            let mut tampered = credential.auth_data.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify(&tampered, "packed", &statement, false).is_err(),
                "{algorithm} bit {bit}"
            );
        }
    }
}
