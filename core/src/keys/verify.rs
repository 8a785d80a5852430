//! Verifying what the key helper brings back from a getAssertion, and the
//! one error type for everything the verifiers refuse.
//!
//! The helper is trusted for nothing: every byte it returns is checked
//! here. The signature is checked before the flags, rp id and counter, so
//! those checks judge only what the authenticator really signed — and so
//! a forged answer can never raise a "possible cloned key" alarm.

use sha2::{Digest, Sha256};

use super::authdata::{AuthDataError, AuthenticatorData, Flags};
use super::cose::{CredentialKey, KeyError};

/// SHA-256 of the relying party id, as the authenticator puts it in
/// authenticatorData.
pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}

/// An enrolled key, as the store keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredCredential<'a> {
    pub credential_id: &'a [u8],
    /// The COSE_Key bytes from the registration's authenticatorData.
    pub public_key: &'a [u8],
    pub sign_count: u32,
}

/// The helper's `asserted` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssertionAnswer<'a> {
    pub credential_id: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
}

/// A verified assertion: what the caller stores and audits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The counter to store from now on.
    pub sign_count: u32,
    pub user_verified: bool,
}

/// Everything the verifiers refuse. Messages are short, name no secret,
/// and may be logged; [`VerifyError::code`] gives a stable word for audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// authenticatorData does not parse.
    AuthenticatorData(AuthDataError),
    /// The enrolled key in the store is not usable (store damage?).
    StoredKey(KeyError),
    /// The new credential's public key is not one we accept.
    CredentialKey(KeyError),
    /// The helper answered for a credential other than the enrolled one.
    CredentialIdMismatch,
    /// An assertion carried attested credential data.
    UnexpectedAttestedCredential,
    /// A registration carried no attested credential data.
    MissingAttestedCredential,
    /// A registration's credential id is empty: nothing could ever ask
    /// the authenticator for it.
    EmptyCredentialId,
    /// The assertion signature is malformed or does not verify.
    SignatureInvalid,
    /// The authenticator signed for another relying party.
    RpIdMismatch,
    /// The UP flag is clear: nobody touched the key.
    UserNotPresent,
    /// UV is required and the UV flag is clear.
    UserNotVerified,
    /// BS set without BE, which WebAuthn forbids.
    BackupFlagsInconsistent,
    /// The counter did not increase: possibly a cloned key. Audit it.
    SignCountNotIncreased { stored: u32, received: u32 },
    /// The attestation format name is not a short printable name.
    AttestationFormatInvalid,
    /// The attestation statement does not have its format's shape.
    AttestationMalformed,
    /// The attestation's algorithm does not fit the key that should have
    /// signed it.
    AttestationAlgorithmMismatch,
    /// The attestation certificate does not parse or holds an unusable key.
    AttestationCertificateInvalid,
    /// The certificate's AAGUID extension differs from authenticatorData.
    AttestationAaguidMismatch,
    /// The attestation signature is malformed or does not verify.
    AttestationSignatureInvalid,
}

impl VerifyError {
    /// A stable snake_case word for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AuthenticatorData(_) => "authenticator_data_malformed",
            Self::StoredKey(_) => "stored_key_unusable",
            Self::CredentialKey(_) => "credential_key_unsupported",
            Self::CredentialIdMismatch => "credential_id_mismatch",
            Self::UnexpectedAttestedCredential => "unexpected_attested_credential",
            Self::MissingAttestedCredential => "missing_attested_credential",
            Self::EmptyCredentialId => "empty_credential_id",
            Self::SignatureInvalid => "signature_invalid",
            Self::RpIdMismatch => "rp_id_mismatch",
            Self::UserNotPresent => "user_not_present",
            Self::UserNotVerified => "user_not_verified",
            Self::BackupFlagsInconsistent => "backup_flags_inconsistent",
            Self::SignCountNotIncreased { .. } => "sign_count_not_increased",
            Self::AttestationFormatInvalid => "attestation_format_invalid",
            Self::AttestationMalformed => "attestation_malformed",
            Self::AttestationAlgorithmMismatch => "attestation_algorithm_mismatch",
            Self::AttestationCertificateInvalid => "attestation_certificate_invalid",
            Self::AttestationAaguidMismatch => "attestation_aaguid_mismatch",
            Self::AttestationSignatureInvalid => "attestation_signature_invalid",
        }
    }

    /// True when the refusal hints that the key has been cloned.
    pub fn is_possible_clone(&self) -> bool {
        matches!(self, Self::SignCountNotIncreased { .. })
    }
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AuthenticatorData(e) => write!(f, "{e}"),
            Self::StoredKey(e) => write!(f, "enrolled key is unusable: {e}"),
            Self::CredentialKey(e) => write!(f, "new credential: {e}"),
            Self::CredentialIdMismatch => f.write_str("the key answered for another credential"),
            Self::UnexpectedAttestedCredential => {
                f.write_str("assertion carries attested credential data")
            }
            Self::MissingAttestedCredential => f.write_str("registration carries no credential"),
            Self::EmptyCredentialId => f.write_str("registration has an empty credential id"),
            Self::SignatureInvalid => f.write_str("signature does not verify"),
            Self::RpIdMismatch => f.write_str("the key signed for another relying party"),
            Self::UserNotPresent => f.write_str("the key was not touched (user presence missing)"),
            Self::UserNotVerified => {
                f.write_str("user verification (PIN or biometric) is required but missing")
            }
            Self::BackupFlagsInconsistent => {
                f.write_str("backup state set on a key that cannot be backed up")
            }
            Self::SignCountNotIncreased { stored, received } => write!(
                f,
                "signature counter did not increase (stored {stored}, received {received}): \
                 possibly a cloned key"
            ),
            Self::AttestationFormatInvalid => f.write_str("attestation format name is invalid"),
            Self::AttestationMalformed => f.write_str("attestation statement is malformed"),
            Self::AttestationAlgorithmMismatch => {
                f.write_str("attestation algorithm does not match its key")
            }
            Self::AttestationCertificateInvalid => {
                f.write_str("attestation certificate is unusable")
            }
            Self::AttestationAaguidMismatch => {
                f.write_str("attestation certificate names another authenticator model")
            }
            Self::AttestationSignatureInvalid => {
                f.write_str("attestation signature does not verify")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<AuthDataError> for VerifyError {
    fn from(error: AuthDataError) -> Self {
        Self::AuthenticatorData(error)
    }
}

/// Checks a getAssertion answer against the enrolled credential.
///
/// `client_data_hash` is the 32 bytes the caller generated and sent in the
/// request; the authenticator signed authenticatorData || client_data_hash.
pub fn verify_assertion(
    stored: &StoredCredential<'_>,
    rp_id: &str,
    client_data_hash: &[u8; 32],
    user_verification_required: bool,
    answer: &AssertionAnswer<'_>,
) -> Result<VerifiedAssertion, VerifyError> {
    if answer.credential_id != stored.credential_id {
        return Err(VerifyError::CredentialIdMismatch);
    }
    let key = CredentialKey::from_cose(stored.public_key).map_err(VerifyError::StoredKey)?;
    let auth_data = AuthenticatorData::parse(answer.authenticator_data)?;
    if auth_data.attested_credential.is_some() {
        return Err(VerifyError::UnexpectedAttestedCredential);
    }
    key.verify(
        &signed_message(answer.authenticator_data, client_data_hash),
        answer.signature,
    )
    .map_err(|_| VerifyError::SignatureInvalid)?;

    check_rp_and_flags(&auth_data, rp_id, user_verification_required)?;
    check_sign_count(stored.sign_count, auth_data.sign_count)?;
    Ok(VerifiedAssertion {
        sign_count: auth_data.sign_count,
        user_verified: auth_data.flags.user_verified(),
    })
}

/// What authenticators sign for both assertions and packed attestation.
pub(crate) fn signed_message(authenticator_data: &[u8], client_data_hash: &[u8; 32]) -> Vec<u8> {
    [authenticator_data, client_data_hash].concat()
}

/// rpIdHash, UP, UV when required, and the backup flags' consistency:
/// the checks registrations and assertions share.
pub(crate) fn check_rp_and_flags(
    auth_data: &AuthenticatorData<'_>,
    rp_id: &str,
    user_verification_required: bool,
) -> Result<(), VerifyError> {
    // Not secret, so a plain comparison is fine.
    if auth_data.rp_id_hash != rp_id_hash(rp_id) {
        return Err(VerifyError::RpIdMismatch);
    }
    let flags: Flags = auth_data.flags;
    if !flags.user_present() {
        return Err(VerifyError::UserNotPresent);
    }
    if user_verification_required && !flags.user_verified() {
        return Err(VerifyError::UserNotVerified);
    }
    if flags.backed_up() && !flags.backup_eligible() {
        return Err(VerifyError::BackupFlagsInconsistent);
    }
    Ok(())
}

/// WebAuthn §7.2 step 22, made strict: an authenticator without a counter
/// reports 0 every time; any other must strictly increase, and anything
/// else may mean two copies of the key are in use.
pub(crate) fn check_sign_count(stored: u32, received: u32) -> Result<(), VerifyError> {
    if (stored == 0 && received == 0) || received > stored {
        Ok(())
    } else {
        Err(VerifyError::SignCountNotIncreased { stored, received })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::cose::Algorithm;
    use crate::keys::testkit::{auth_data, AuthDataSpec, TestKey};

    const RP_ID: &str = "pam://host.example";
    const CREDENTIAL_ID: &[u8] = &[0xc1; 48];
    const CLIENT_DATA_HASH: [u8; 32] = [0x5a; 32];

    /// An enrolled key, and a way to have it answer.
    struct Fixture {
        key: TestKey,
        cose: Vec<u8>,
        stored_count: u32,
    }

    struct Answer {
        credential_id: Vec<u8>,
        auth_data: Vec<u8>,
        signature: Vec<u8>,
    }

    impl Fixture {
        fn new(algorithm: Algorithm, stored_count: u32) -> Self {
            let key = TestKey::of(algorithm);
            let cose = key.cose();
            Self {
                key,
                cose,
                stored_count,
            }
        }

        /// The authenticator signs `spec` over CLIENT_DATA_HASH.
        fn answer(&self, spec: &AuthDataSpec<'_>) -> Answer {
            let auth_data = auth_data(spec);
            let signature = self
                .key
                .sign(&signed_message(&auth_data, &CLIENT_DATA_HASH));
            Answer {
                credential_id: CREDENTIAL_ID.to_vec(),
                auth_data,
                signature,
            }
        }

        fn verify(
            &self,
            answer: &Answer,
            uv_required: bool,
        ) -> Result<VerifiedAssertion, VerifyError> {
            self.verify_for(RP_ID, answer, uv_required)
        }

        fn verify_for(
            &self,
            rp_id: &str,
            answer: &Answer,
            uv_required: bool,
        ) -> Result<VerifiedAssertion, VerifyError> {
            let stored = StoredCredential {
                credential_id: CREDENTIAL_ID,
                public_key: &self.cose,
                sign_count: self.stored_count,
            };
            verify_assertion(
                &stored,
                rp_id,
                &CLIENT_DATA_HASH,
                uv_required,
                &AssertionAnswer {
                    credential_id: &answer.credential_id,
                    authenticator_data: &answer.auth_data,
                    signature: &answer.signature,
                },
            )
        }
    }

    const BOTH: [Algorithm; 2] = [Algorithm::Es256, Algorithm::EdDsa];

    #[test]
    fn accepts_a_good_assertion() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 41);
            let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 42));
            assert_eq!(
                fixture.verify(&answer, false),
                Ok(VerifiedAssertion {
                    sign_count: 42,
                    user_verified: false
                }),
                "{algorithm}"
            );
        }
    }

    #[test]
    fn accepts_user_verification_when_required_and_reports_it() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let mut spec = AuthDataSpec::assertion(RP_ID, 1);
            spec.flags |= Flags::USER_VERIFIED;
            let answer = fixture.answer(&spec);
            let verified = fixture.verify(&answer, true).unwrap();
            assert!(verified.user_verified);
            assert_eq!(verified.sign_count, 1);
        }
    }

    #[test]
    fn accepts_extensions_and_consistent_backup_flags() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let mut spec = AuthDataSpec::assertion(RP_ID, 0);
            spec.flags |= Flags::EXTENSIONS | Flags::BACKUP_ELIGIBLE | Flags::BACKED_UP;
            spec.extensions = Some(&[0xa1, 0x61, b'x', 0xf5]);
            assert!(fixture.verify(&fixture.answer(&spec), false).is_ok());
        }
    }

    #[test]
    fn authenticator_without_counter_is_accepted() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 0));
            assert_eq!(fixture.verify(&answer, false).unwrap().sign_count, 0);
        }
    }

    #[test]
    fn refuses_a_wrong_rp_id() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let answer = fixture.answer(&AuthDataSpec::assertion("pam://elsewhere", 1));
            assert_eq!(
                fixture.verify(&answer, false),
                Err(VerifyError::RpIdMismatch)
            );
            // And the same answer checked against another expected rp id.
            let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 1));
            assert_eq!(
                fixture.verify_for("pam://host.example.", &answer, false),
                Err(VerifyError::RpIdMismatch)
            );
        }
    }

    #[test]
    fn refuses_missing_user_presence() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let mut spec = AuthDataSpec::assertion(RP_ID, 1);
            spec.flags = Flags::USER_VERIFIED;
            let answer = fixture.answer(&spec);
            assert_eq!(
                fixture.verify(&answer, false),
                Err(VerifyError::UserNotPresent)
            );
            assert_eq!(
                fixture.verify(&answer, true),
                Err(VerifyError::UserNotPresent)
            );
        }
    }

    #[test]
    fn refuses_missing_user_verification_only_when_required() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 1));
            assert_eq!(
                fixture.verify(&answer, true),
                Err(VerifyError::UserNotVerified)
            );
            assert!(fixture.verify(&answer, false).is_ok());
        }
    }

    #[test]
    fn refuses_backed_up_without_backup_eligible() {
        let fixture = Fixture::new(Algorithm::Es256, 0);
        let mut spec = AuthDataSpec::assertion(RP_ID, 1);
        spec.flags |= Flags::BACKED_UP;
        let answer = fixture.answer(&spec);
        assert_eq!(
            fixture.verify(&answer, false),
            Err(VerifyError::BackupFlagsInconsistent)
        );
    }

    #[test]
    fn refuses_a_bit_flip_in_every_byte_of_authenticator_data() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 7);
            let good = fixture.answer(&AuthDataSpec::assertion(RP_ID, 8));
            // One bit per byte, a different bit in successive bytes: every
            // field and every flag is hit, at a fraction of the
            // (debug-build) cost of all bits.
            for bit in (0..good.auth_data.len()).map(|byte| byte * 8 + byte % 8) {
                let mut tampered = Answer {
                    credential_id: good.credential_id.clone(),
                    auth_data: good.auth_data.clone(),
                    signature: good.signature.clone(),
                };
                tampered.auth_data[bit / 8] ^= 1 << (bit % 8);
                let result = fixture.verify(&tampered, false);
                assert!(
                    matches!(
                        result,
                        Err(VerifyError::SignatureInvalid | VerifyError::AuthenticatorData(_))
                    ),
                    "{algorithm} bit {bit}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn refuses_tampered_signatures() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let good = fixture.answer(&AuthDataSpec::assertion(RP_ID, 1));
            for bit in (0..good.signature.len()).map(|byte| byte * 8 + (byte * 3) % 8) {
                let mut signature = good.signature.clone();
                signature[bit / 8] ^= 1 << (bit % 8);
                let tampered = Answer {
                    credential_id: good.credential_id.clone(),
                    auth_data: good.auth_data.clone(),
                    signature,
                };
                assert_eq!(
                    fixture.verify(&tampered, false),
                    Err(VerifyError::SignatureInvalid),
                    "{algorithm} bit {bit}"
                );
            }
            for signature in [
                vec![],
                good.signature[1..].to_vec(),
                [&good.signature[..], &[0]].concat(),
            ] {
                let tampered = Answer {
                    credential_id: good.credential_id.clone(),
                    auth_data: good.auth_data.clone(),
                    signature,
                };
                assert_eq!(
                    fixture.verify(&tampered, false),
                    Err(VerifyError::SignatureInvalid)
                );
            }
        }
    }

    #[test]
    fn refuses_a_signature_over_another_challenge_or_by_another_key() {
        for algorithm in BOTH {
            let fixture = Fixture::new(algorithm, 0);
            let auth_data = auth_data(&AuthDataSpec::assertion(RP_ID, 1));
            let replayed = Answer {
                credential_id: CREDENTIAL_ID.to_vec(),
                signature: fixture.key.sign(&signed_message(&auth_data, &[0; 32])),
                auth_data: auth_data.clone(),
            };
            assert_eq!(
                fixture.verify(&replayed, false),
                Err(VerifyError::SignatureInvalid)
            );
            let other_key = TestKey::of(algorithm);
            let forged = Answer {
                credential_id: CREDENTIAL_ID.to_vec(),
                signature: other_key.sign(&signed_message(&auth_data, &CLIENT_DATA_HASH)),
                auth_data,
            };
            assert_eq!(
                fixture.verify(&forged, false),
                Err(VerifyError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn refuses_a_wrong_credential_id() {
        let fixture = Fixture::new(Algorithm::EdDsa, 0);
        let mut answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 1));
        answer.credential_id[0] ^= 1;
        assert_eq!(
            fixture.verify(&answer, false),
            Err(VerifyError::CredentialIdMismatch)
        );
        answer.credential_id = vec![];
        assert_eq!(
            fixture.verify(&answer, false),
            Err(VerifyError::CredentialIdMismatch)
        );
    }

    #[test]
    fn refuses_counter_regression_and_equal_counter() {
        for algorithm in BOTH {
            for (stored, received) in [(10, 9), (10, 10), (10, 0), (u32::MAX, u32::MAX), (1, 1)] {
                let fixture = Fixture::new(algorithm, stored);
                let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, received));
                let error = fixture.verify(&answer, false).unwrap_err();
                assert_eq!(
                    error,
                    VerifyError::SignCountNotIncreased { stored, received }
                );
                assert!(error.is_possible_clone());
                assert_eq!(error.code(), "sign_count_not_increased");
            }
        }
    }

    #[test]
    fn counter_rules() {
        assert!(check_sign_count(0, 0).is_ok());
        assert!(check_sign_count(0, 1).is_ok());
        assert!(check_sign_count(5, 6).is_ok());
        assert!(check_sign_count(5, u32::MAX).is_ok());
        assert!(check_sign_count(1, 0).is_err());
        assert!(check_sign_count(6, 5).is_err());
        assert!(check_sign_count(6, 6).is_err());
    }

    #[test]
    fn refuses_an_assertion_carrying_a_credential() {
        let fixture = Fixture::new(Algorithm::Es256, 0);
        let cose = fixture.cose.clone();
        let answer = fixture.answer(&AuthDataSpec::registration(RP_ID, CREDENTIAL_ID, &cose));
        assert_eq!(
            fixture.verify(&answer, false),
            Err(VerifyError::UnexpectedAttestedCredential)
        );
    }

    #[test]
    fn refuses_truncated_authenticator_data_at_every_length() {
        let fixture = Fixture::new(Algorithm::Es256, 0);
        let mut spec = AuthDataSpec::assertion(RP_ID, 1);
        spec.flags |= Flags::EXTENSIONS;
        spec.extensions = Some(&[0xa1, 0x01, 0x02]);
        let good = fixture.answer(&spec);
        assert!(fixture.verify(&good, false).is_ok());
        for len in 0..good.auth_data.len() {
            let auth_data = good.auth_data[..len].to_vec();
            // Even correctly signed, a short authenticatorData is refused.
            let truncated = Answer {
                credential_id: CREDENTIAL_ID.to_vec(),
                signature: fixture
                    .key
                    .sign(&signed_message(&auth_data, &CLIENT_DATA_HASH)),
                auth_data,
            };
            assert!(
                matches!(
                    fixture.verify(&truncated, false),
                    Err(VerifyError::AuthenticatorData(_))
                ),
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_an_unusable_stored_key() {
        let mut fixture = Fixture::new(Algorithm::Es256, 0);
        let answer = fixture.answer(&AuthDataSpec::assertion(RP_ID, 1));
        fixture.cose.truncate(10);
        assert!(matches!(
            fixture.verify(&answer, false),
            Err(VerifyError::StoredKey(_))
        ));
    }

    #[test]
    fn messages_are_short_and_codes_distinct() {
        let all = [
            VerifyError::AuthenticatorData(AuthDataError::Truncated),
            VerifyError::StoredKey(KeyError::InvalidPoint),
            VerifyError::CredentialKey(KeyError::UnsupportedAlgorithm),
            VerifyError::CredentialIdMismatch,
            VerifyError::UnexpectedAttestedCredential,
            VerifyError::MissingAttestedCredential,
            VerifyError::EmptyCredentialId,
            VerifyError::SignatureInvalid,
            VerifyError::RpIdMismatch,
            VerifyError::UserNotPresent,
            VerifyError::UserNotVerified,
            VerifyError::BackupFlagsInconsistent,
            VerifyError::SignCountNotIncreased {
                stored: 2,
                received: 1,
            },
            VerifyError::AttestationFormatInvalid,
            VerifyError::AttestationMalformed,
            VerifyError::AttestationAlgorithmMismatch,
            VerifyError::AttestationCertificateInvalid,
            VerifyError::AttestationAaguidMismatch,
            VerifyError::AttestationSignatureInvalid,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(VerifyError::code).collect();
        assert_eq!(codes.len(), all.len());
        for error in all {
            let text = error.to_string();
            assert!(!text.is_empty() && text.len() < 100, "{text}");
        }
    }
}
