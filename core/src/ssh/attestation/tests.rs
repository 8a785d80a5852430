use super::*;
use crate::keys::authdata::Flags;
use crate::keys::testkit::{
    auth_data, cbor_bytes, certificate, certificate_with_key_info, AuthDataSpec, TestKey, AAGUID,
};
use crate::ssh::testkit::{
    attestation_file as file, attestation_file_with as file_with, sk_public_key as ssh_key_for,
};
use crate::ssh::wire::put_string;

const APPLICATION: &str = "ssh:";
const CHALLENGE: &[u8] = b"a challenge the daemon issued, 32+ bytes of it";
/// Long enough that authData needs a two-byte CBOR length head.
const CREDENTIAL_ID: &[u8] = &[0x6b; 240];

/// Who signs the attestation.
#[derive(Clone, Copy, Debug)]
enum Signer {
    /// The credential key itself, no certificate.
    SelfSigned,
    /// A certificate holding a key of this algorithm.
    Certificate(Algorithm),
}

/// One enrollment as OpenSSH + an authenticator would produce it; every
/// field may be spoiled before [`Enrollment::blob`] assembles the file.
struct Enrollment {
    credential: TestKey,
    attestation_key: Option<TestKey>,
    certificate: Vec<u8>,
    /// What the authenticator put in authData.
    application: String,
    flags: u8,
    /// The challenge the authenticator was given.
    challenge: Vec<u8>,
    aaguid_extension: Option<[u8; 16]>,
    /// authData extensions (a CBOR map), with the ED flag.
    extensions: Option<Vec<u8>>,
}

impl Enrollment {
    fn new(algorithm: Algorithm, signer: Signer) -> Self {
        let credential = TestKey::of(algorithm);
        let attestation_key = match signer {
            Signer::SelfSigned => None,
            Signer::Certificate(alg) => Some(TestKey::of(alg)),
        };
        let mut enrollment = Self {
            credential,
            attestation_key,
            certificate: Vec::new(),
            application: APPLICATION.into(),
            flags: Flags::USER_PRESENT | Flags::ATTESTED_CREDENTIAL,
            challenge: CHALLENGE.to_vec(),
            aaguid_extension: Some(AAGUID),
            extensions: None,
        };
        enrollment.make_certificate();
        enrollment
    }

    fn make_certificate(&mut self) {
        self.certificate = match &self.attestation_key {
            Some(key) => certificate(key, self.aaguid_extension),
            None => Vec::new(),
        };
    }

    /// The key line `ssh-keygen` would print for this credential.
    fn ssh_key(&self) -> SshPublicKey {
        ssh_key_for(&self.credential, APPLICATION)
    }

    fn auth_data(&self) -> Vec<u8> {
        let cose = self.credential.cose();
        let mut spec = AuthDataSpec::registration(&self.application, CREDENTIAL_ID, &cose);
        spec.flags = self.flags;
        spec.extensions = self.extensions.as_deref();
        if spec.extensions.is_some() {
            spec.flags |= Flags::EXTENSIONS;
        }
        auth_data(&spec)
    }

    fn client_data_hash(&self) -> [u8; 32] {
        Sha256::digest(&self.challenge).into()
    }

    fn signing_key(&self) -> &TestKey {
        self.attestation_key.as_ref().unwrap_or(&self.credential)
    }

    /// A FIDO2 ("packed") signature: authData || SHA-256(challenge).
    fn signature(&self, auth_data: &[u8]) -> Vec<u8> {
        self.signing_key()
            .sign(&[auth_data, &self.client_data_hash()].concat())
    }

    /// A U2F registration signature, as a CTAP1-only key makes it.
    fn u2f_signature(&self) -> Vec<u8> {
        let message = [
            &[0u8][..],
            &crate::keys::verify::rp_id_hash(&self.application),
            &self.client_data_hash(),
            CREDENTIAL_ID,
            &self.credential.sec1(),
        ]
        .concat();
        self.signing_key().sign(&message)
    }

    fn blob(&self) -> Vec<u8> {
        let auth_data = self.auth_data();
        let signature = self.signature(&auth_data);
        file(&self.certificate, &signature, &cbor_bytes(&auth_data))
    }

    fn parsed(&self) -> SshAttestation {
        SshAttestation::parse(&self.blob()).unwrap()
    }
}

fn check(key: &SshPublicKey, uv: bool) -> SshAttestationCheck<'_> {
    SshAttestationCheck {
        challenge: CHALLENGE,
        key,
        user_verification_required: uv,
    }
}

fn verified(enrollment: &Enrollment) -> Result<VerifiedSshAttestation, SshAttestationError> {
    let key = enrollment.ssh_key();
    verify(&enrollment.parsed(), &check(&key, false))
}

const SIGNERS: [Signer; 3] = [
    Signer::SelfSigned,
    Signer::Certificate(Algorithm::Es256),
    Signer::Certificate(Algorithm::EdDsa),
];
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::EdDsa];

fn every_enrollment() -> impl Iterator<Item = Enrollment> {
    ALGORITHMS
        .into_iter()
        .flat_map(|alg| SIGNERS.map(|signer| Enrollment::new(alg, signer)))
}

#[test]
fn accepts_every_kind_of_attestation() {
    for enrollment in every_enrollment() {
        let result = verified(&enrollment).unwrap();
        assert_eq!(result.aaguid, AAGUID);
        assert!(!result.user_verified);
        assert_eq!(result.format, "packed");
        assert_eq!(result.certificate, enrollment.certificate);
        let expected = match enrollment.attestation_key {
            Some(_) => Attestation::Certificate,
            None => Attestation::SelfAttestation,
        };
        assert_eq!(result.attestation, expected);
    }
}

#[test]
fn a_certificate_without_aaguid_extension_is_fine() {
    for alg in ALGORITHMS {
        let mut enrollment = Enrollment::new(alg, Signer::Certificate(alg));
        enrollment.aaguid_extension = None;
        enrollment.make_certificate();
        assert_eq!(
            verified(&enrollment).unwrap().attestation,
            Attestation::Certificate
        );
    }
}

#[test]
fn the_parsed_fields_are_the_raw_ones() {
    let enrollment = Enrollment::new(Algorithm::Es256, Signer::Certificate(Algorithm::Es256));
    let parsed = enrollment.parsed();
    assert_eq!(parsed.authenticator_data, enrollment.auth_data());
    assert_eq!(parsed.certificate, enrollment.certificate);
    assert!(!parsed.signature.is_empty());
}

#[test]
fn user_verification_is_reported_and_required_when_asked() {
    for mut enrollment in every_enrollment() {
        let key = enrollment.ssh_key();
        let parsed = enrollment.parsed();
        assert_eq!(
            verify(&parsed, &check(&key, true)),
            Err(SshAttestationError::Registration(
                VerifyError::UserNotVerified
            ))
        );
        enrollment.flags |= Flags::USER_VERIFIED;
        let parsed = enrollment.parsed();
        let result = verify(&parsed, &check(&key, true)).unwrap();
        assert!(result.user_verified);
    }
}

#[test]
fn verify_required_keys_report_cred_protect() {
    // `ssh-keygen -O verify-required` makes sk-usbhid.c ask for credProtect
    // 3, which the authenticator echoes in authData's extensions.
    let cred_protect = [&[0xa1, 0x6b][..], b"credProtect", &[0x03]].concat();
    for mut enrollment in every_enrollment() {
        enrollment.flags |= Flags::USER_VERIFIED;
        enrollment.extensions = Some(cred_protect.clone());
        let key = enrollment.ssh_key();
        let result = verify(&enrollment.parsed(), &check(&key, true)).unwrap();
        assert!(result.user_verified);
    }
}

#[test]
fn user_presence_is_required() {
    for mut enrollment in every_enrollment() {
        enrollment.flags = Flags::ATTESTED_CREDENTIAL | Flags::USER_VERIFIED;
        assert_eq!(
            verified(&enrollment),
            Err(SshAttestationError::Registration(
                VerifyError::UserNotPresent
            ))
        );
    }
}

#[test]
fn another_challenge_is_refused() {
    for mut enrollment in every_enrollment() {
        enrollment.challenge = b"an old challenge".to_vec();
        assert_eq!(
            verified(&enrollment),
            Err(SshAttestationError::Registration(
                VerifyError::AttestationSignatureInvalid
            ))
        );
    }
    // The challenge itself as the hash (fido_cred_set_clientdata_hash)
    // is not what OpenSSH 9.2 signs.
    {
        let mut raw = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
        raw.challenge = CHALLENGE.to_vec();
        let auth_data = raw.auth_data();
        let mut hash_as_given = [0u8; 32];
        hash_as_given.copy_from_slice(&CHALLENGE[..32]);
        let signature = raw
            .credential
            .sign(&[&auth_data[..], &hash_as_given].concat());
        let parsed =
            SshAttestation::parse(&file(&[], &signature, &cbor_bytes(&auth_data))).unwrap();
        let key = raw.ssh_key();
        let check = SshAttestationCheck {
            challenge: &CHALLENGE[..32],
            key: &key,
            user_verification_required: false,
        };
        assert!(verify(&parsed, &check).is_err());
    }
}

#[test]
fn a_certificate_naming_another_model_is_refused() {
    for alg in ALGORITHMS {
        let mut enrollment = Enrollment::new(alg, Signer::Certificate(Algorithm::Es256));
        enrollment.aaguid_extension = Some(*b"another model!!!");
        enrollment.make_certificate();
        assert_eq!(
            verified(&enrollment),
            Err(SshAttestationError::Registration(
                VerifyError::AttestationAaguidMismatch
            ))
        );
    }
}

#[test]
fn every_tampered_auth_data_byte_is_refused() {
    for enrollment in every_enrollment() {
        let key = enrollment.ssh_key();
        let auth_data = enrollment.auth_data();
        let signature = enrollment.signature(&auth_data);
        // Every byte but most of the long credential id (slow ECDSA in debug builds).
        let id_start = 32 + 1 + 4 + 16 + 2;
        let id = id_start..id_start + CREDENTIAL_ID.len();
        for at in (0..auth_data.len()).filter(|at| !id.contains(at) || at % 16 == 0) {
            let mut tampered = auth_data.clone();
            tampered[at] ^= 0x01;
            let blob = file(&enrollment.certificate, &signature, &cbor_bytes(&tampered));
            let parsed = SshAttestation::parse(&blob).unwrap();
            assert!(
                verify(&parsed, &check(&key, false)).is_err(),
                "byte {at} of {}",
                auth_data.len()
            );
        }
    }
}

#[test]
fn every_tampered_signature_byte_is_refused() {
    for enrollment in every_enrollment() {
        let key = enrollment.ssh_key();
        let auth_data = enrollment.auth_data();
        let signature = enrollment.signature(&auth_data);
        for at in 0..signature.len() {
            let mut tampered = signature.clone();
            tampered[at] ^= 0x80;
            let blob = file(&enrollment.certificate, &tampered, &cbor_bytes(&auth_data));
            let parsed = SshAttestation::parse(&blob).unwrap();
            assert_eq!(
                verify(&parsed, &check(&key, false)),
                Err(SshAttestationError::Registration(
                    VerifyError::AttestationSignatureInvalid
                )),
                "byte {at}"
            );
        }
    }
}

#[test]
fn another_public_key_is_refused() {
    for enrollment in every_enrollment() {
        let parsed = enrollment.parsed();
        for other in ALGORITHMS {
            let other_key = ssh_key_for(&TestKey::of(other), APPLICATION);
            assert_eq!(
                verify(&parsed, &check(&other_key, false)),
                Err(SshAttestationError::KeyMismatch)
            );
        }
    }
    // The other key's own self attestation, presented for our key.
    let ours = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let theirs = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    assert_eq!(
        verify(&theirs.parsed(), &check(&ours.ssh_key(), false)),
        Err(SshAttestationError::KeyMismatch)
    );
}

#[test]
fn another_application_is_refused() {
    for mut enrollment in every_enrollment() {
        // The authenticator made it for "ssh:other"; the key says "ssh:".
        enrollment.application = "ssh:other".into();
        assert_eq!(
            verified(&enrollment),
            Err(SshAttestationError::ApplicationMismatch)
        );
        // And the reverse: a line claiming another application.
        let enrollment = Enrollment::new(Algorithm::Es256, Signer::SelfSigned);
        let key = ssh_key_for(&enrollment.credential, "ssh:elsewhere");
        assert_eq!(
            verify(&enrollment.parsed(), &check(&key, false)),
            Err(SshAttestationError::ApplicationMismatch)
        );
    }
}

#[test]
fn only_security_keys_have_attestations() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, &enrollment.credential.ed_public());
    let plain = SshPublicKey::from_blob(&blob).unwrap();
    assert_eq!(
        verify(&enrollment.parsed(), &check(&plain, false)),
        Err(SshAttestationError::NotSecurityKey)
    );
}

#[test]
fn empty_challenge_and_signature_are_refused() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let key = enrollment.ssh_key();
    let parsed = enrollment.parsed();
    let empty = SshAttestationCheck {
        challenge: b"",
        key: &key,
        user_verification_required: false,
    };
    assert_eq!(
        verify(&parsed, &empty),
        Err(SshAttestationError::EmptyChallenge)
    );
    let unsigned = file(&[], &[], &cbor_bytes(&enrollment.auth_data()));
    let parsed = SshAttestation::parse(&unsigned).unwrap();
    assert_eq!(
        verify(&parsed, &check(&key, false)),
        Err(SshAttestationError::Unsigned)
    );
}

#[test]
fn unsupported_certificate_algorithms_are_refused() {
    use x509_cert::der::asn1::{BitString, ObjectIdentifier};
    use x509_cert::der::Any;
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

    let secp384r1 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    let rsa = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let p384 = p384::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let infos = [
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: crate::keys::attestation::oid::EC_PUBLIC_KEY,
                parameters: Some(Any::from(secp384r1)),
            },
            subject_public_key: BitString::from_bytes(&p384.public_key().to_sec1_bytes()).unwrap(),
        },
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rsa,
                parameters: Some(Any::null()),
            },
            subject_public_key: BitString::from_bytes(&[0x30, 0x03, 0x02, 0x01, 0x03]).unwrap(),
        },
    ];
    for info in infos {
        let mut enrollment = Enrollment::new(Algorithm::Es256, Signer::SelfSigned);
        enrollment.certificate = certificate_with_key_info(info, Some(AAGUID));
        let error = verified(&enrollment).unwrap_err();
        assert_eq!(error, SshAttestationError::UnsupportedAlgorithm);
        assert!(error
            .to_string()
            .starts_with("unsupported attestation algorithm"));
    }
}

#[test]
fn a_garbage_certificate_is_refused() {
    for garbage in [&b"\x30\x03\x02\x01\x01"[..], b"not a certificate", &[0x30]] {
        let mut enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
        enrollment.certificate = garbage.to_vec();
        assert_eq!(
            verified(&enrollment),
            Err(SshAttestationError::Registration(
                VerifyError::AttestationCertificateInvalid
            ))
        );
    }
}

#[test]
fn auth_data_must_carry_the_credential() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let spec = AuthDataSpec::assertion(APPLICATION, 0);
    let bare = auth_data(&spec);
    let signature = enrollment.signature(&bare);
    let parsed = SshAttestation::parse(&file(&[], &signature, &cbor_bytes(&bare))).unwrap();
    assert_eq!(
        verify(&parsed, &check(&enrollment.ssh_key(), false)),
        Err(SshAttestationError::Registration(
            VerifyError::MissingAttestedCredential
        ))
    );
}

#[test]
fn u2f_only_keys_attest_the_u2f_message() {
    let enrollment = Enrollment::new(Algorithm::Es256, Signer::Certificate(Algorithm::Es256));
    let key = enrollment.ssh_key();
    let auth_data = enrollment.auth_data();
    let signature = enrollment.u2f_signature();
    let blob = file(&enrollment.certificate, &signature, &cbor_bytes(&auth_data));
    let result = verify(&SshAttestation::parse(&blob).unwrap(), &check(&key, false)).unwrap();
    assert_eq!(result.format, "fido-u2f");
    assert_eq!(result.attestation, Attestation::Certificate);

    // Bound to the challenge like the packed one.
    let other = SshAttestationCheck {
        challenge: b"another challenge",
        ..check(&key, false)
    };
    assert_eq!(
        verify(&SshAttestation::parse(&blob).unwrap(), &other),
        Err(SshAttestationError::Registration(
            VerifyError::AttestationSignatureInvalid
        ))
    );
    // A U2F message is never a self attestation (U2F keys always have a certificate).
    let mut self_signed = Enrollment::new(Algorithm::Es256, Signer::SelfSigned);
    self_signed.certificate = Vec::new();
    let signature = self_signed.u2f_signature();
    let blob = file(&[], &signature, &cbor_bytes(&self_signed.auth_data()));
    assert_eq!(
        verify(
            &SshAttestation::parse(&blob).unwrap(),
            &check(&self_signed.ssh_key(), false)
        ),
        Err(SshAttestationError::Registration(
            VerifyError::AttestationSignatureInvalid
        ))
    );
}

// The file's layout.

#[test]
fn every_truncation_is_refused() {
    let blob = Enrollment::new(Algorithm::Es256, Signer::Certificate(Algorithm::Es256)).blob();
    for len in 0..blob.len() {
        let error = SshAttestation::parse(&blob[..len]).unwrap_err();
        assert!(
            matches!(
                error,
                SshAttestationError::Truncated
                    | SshAttestationError::UnknownFormat
                    | SshAttestationError::AuthenticatorDataNotCbor
            ),
            "{len}: {error:?}"
        );
    }
}

#[test]
fn trailing_bytes_and_reserved_fields_are_refused() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let mut blob = enrollment.blob();
    blob.push(0);
    assert_eq!(
        SshAttestation::parse(&blob),
        Err(SshAttestationError::TrailingBytes)
    );
    let parsed = enrollment.parsed();
    let wrapped = cbor_bytes(&parsed.authenticator_data);
    for (flags, reserved) in [(1u32, &b""[..]), (0, b"x"), (0x8000_0000, b"")] {
        let blob = file_with(MAGIC_V01, &[], &parsed.signature, &wrapped, flags, reserved);
        assert_eq!(
            SshAttestation::parse(&blob),
            Err(SshAttestationError::ReservedFieldsSet)
        );
    }
}

#[test]
fn other_formats_are_refused() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let parsed = enrollment.parsed();
    // v00: certificate, signature, flags, reserved; no authenticator data.
    let mut v00 = Vec::new();
    put_string(&mut v00, MAGIC_V00.as_bytes());
    put_string(&mut v00, &[]);
    put_string(&mut v00, &parsed.signature);
    v00.extend_from_slice(&0u32.to_be_bytes());
    put_string(&mut v00, &[]);
    let error = SshAttestation::parse(&v00).unwrap_err();
    assert_eq!(error, SshAttestationError::Version00);
    assert!(error.to_string().contains("OpenSSH before 8.4"));
    let wrapped = cbor_bytes(&parsed.authenticator_data);
    for magic in ["ssh-sk-attest-v02", "SSH-SK-ATTEST-V01", "", "ssh-ed25519"] {
        let blob = file_with(magic, &[], &parsed.signature, &wrapped, 0, b"");
        assert_eq!(
            SshAttestation::parse(&blob),
            Err(SshAttestationError::UnknownFormat),
            "{magic}"
        );
    }
    // A key file or base64 text is not an attestation either.
    assert_eq!(
        SshAttestation::parse(b"c3NoLXNrLWF0dGVzdC12MDE="),
        Err(SshAttestationError::Truncated)
    );
}

#[test]
fn authenticator_data_must_be_one_definite_cbor_byte_string() {
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let parsed = enrollment.parsed();
    let raw = &parsed.authenticator_data;
    assert!(raw.len() > 0xff, "the test wants a two-byte length head");
    let len = raw.len() as u16;
    let indefinite = [&[0x5f][..], &cbor_bytes(raw), &[0xff]].concat();
    let four_byte_head = [&[0x5a][..], &u32::from(len).to_be_bytes(), raw].concat();
    let text = [&[0x79][..], &len.to_be_bytes(), raw].concat();
    let short_head = [&[0x58, 0x05][..], &raw[..5]].concat();
    let too_long = [&cbor_bytes(raw)[..], &[0]].concat();
    for (name, wrapped) in [
        ("raw", raw.clone()),
        ("indefinite", indefinite),
        ("4-byte head", four_byte_head),
        ("text string", text),
        ("one-byte head for 5 bytes", short_head),
        ("extra byte", too_long),
        ("cut", cbor_bytes(raw)[..raw.len()].to_vec()),
        ("empty", Vec::new()),
    ] {
        let blob = file(&[], &parsed.signature, &wrapped);
        assert_eq!(
            SshAttestation::parse(&blob),
            Err(SshAttestationError::AuthenticatorDataNotCbor),
            "{name}"
        );
    }
    // The shortest heads are accepted (tiny authData is refused later).
    for content in [&[][..], &[1; 23], &[1; 24], &[1; 255]] {
        assert_eq!(unwrap_cbor_bytes(&cbor_bytes(content)), Ok(content));
    }
}

#[test]
fn huge_inputs_are_refused() {
    assert_eq!(
        SshAttestation::parse(&vec![0; MAX_ATTESTATION_LEN + 1]),
        Err(SshAttestationError::TooLong)
    );
    // A length field promising 4 GiB.
    let mut blob = Vec::new();
    put_string(&mut blob, MAGIC_V01.as_bytes());
    blob.extend_from_slice(&u32::MAX.to_be_bytes());
    blob.extend_from_slice(&[0; 64]);
    assert_eq!(
        SshAttestation::parse(&blob),
        Err(SshAttestationError::Truncated)
    );
    // A huge certificate within the limit is parsed, then refused as a certificate.
    let enrollment = Enrollment::new(Algorithm::EdDsa, Signer::SelfSigned);
    let parsed = enrollment.parsed();
    let big = vec![0x30; MAX_ATTESTATION_LEN - 1000];
    let blob = file(
        &big,
        &parsed.signature,
        &cbor_bytes(&parsed.authenticator_data),
    );
    assert!(blob.len() <= MAX_ATTESTATION_LEN);
    let parsed = SshAttestation::parse(&blob).unwrap();
    assert_eq!(
        verify(&parsed, &check(&enrollment.ssh_key(), false)),
        Err(SshAttestationError::Registration(
            VerifyError::AttestationCertificateInvalid
        ))
    );
}

#[test]
fn errors_have_messages_and_codes() {
    let all = [
        SshAttestationError::TooLong,
        SshAttestationError::Truncated,
        SshAttestationError::TrailingBytes,
        SshAttestationError::UnknownFormat,
        SshAttestationError::Version00,
        SshAttestationError::ReservedFieldsSet,
        SshAttestationError::AuthenticatorDataNotCbor,
        SshAttestationError::NotSecurityKey,
        SshAttestationError::EmptyChallenge,
        SshAttestationError::Unsigned,
        SshAttestationError::KeyMismatch,
        SshAttestationError::ApplicationMismatch,
        SshAttestationError::UnsupportedAlgorithm,
        SshAttestationError::Registration(VerifyError::UserNotPresent),
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(|e| e.code()).collect();
    assert_eq!(codes.len(), all.len());
    for error in all {
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        SshAttestationError::Registration(VerifyError::UserNotPresent).to_string(),
        "attestation refused: the key was not touched (user presence missing)"
    );
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_files_never_panic_nor_verify_with_altered_signed_data() {
    let mut rng = XorShift(0x0a77_e57a_7105_0001);
    let enrollments: Vec<Enrollment> = every_enrollment().collect();
    let originals: Vec<(Vec<u8>, SshAttestation, SshPublicKey)> = enrollments
        .iter()
        .map(|e| (e.blob(), e.parsed(), e.ssh_key()))
        .collect();
    for round in 0..6_000 {
        let (blob, original, key) = &originals[round % originals.len()];
        let mut mutated = blob.clone();
        for _ in 0..=rng.below(3) {
            match rng.below(3) {
                0 => {
                    let at = rng.below(mutated.len());
                    mutated[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let at = rng.below(mutated.len() + 1);
                    mutated.insert(at, rng.next() as u8);
                }
                _ => {
                    let at = rng.below(mutated.len());
                    mutated.truncate(at.max(1));
                }
            }
        }
        let Ok(parsed) = SshAttestation::parse(&mutated) else {
            continue;
        };
        if verify(&parsed, &check(key, false)).is_ok() {
            // Only the certificate's unsigned parts may change and still pass.
            assert_eq!(parsed.authenticator_data, original.authenticator_data);
            assert_eq!(parsed.signature, original.signature);
        }
    }
}
