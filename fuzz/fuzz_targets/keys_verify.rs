//! The security-key verifiers on hostile input: authenticatorData and
//! COSE_Key parsers on raw bytes, then verify_assertion and
//! verify_registration on structured cases (see `tap_fuzz::Case`).
//! Besides "never panics", it checks what an acceptance must imply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tap_core::keys::authdata::{AuthenticatorData, MAX_CREDENTIAL_ID_LEN};
use tap_core::keys::verify::rp_id_hash;
use tap_core::keys::{
    verify_assertion, verify_registration, AssertionAnswer, CredentialKey, RegistrationAnswer,
    StoredCredential,
};
use tap_fuzz::{Case, CLIENT_DATA_HASH, RP_ID};

fuzz_target!(|data: &[u8]| {
    // The parsers alone, on the raw input.
    if let Ok(parsed) = AuthenticatorData::parse(data) {
        let mut len = 37;
        if let Some(credential) = parsed.attested_credential {
            assert!(credential.credential_id.len() <= MAX_CREDENTIAL_ID_LEN);
            len += 18 + credential.credential_id.len() + credential.public_key.len();
        }
        len += parsed.extensions.map_or(0, <[u8]>::len);
        assert_eq!(len, data.len(), "every byte belongs to a field");
    }
    let _ = CredentialKey::from_cose(data);

    let case = Case::decode(data);
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
    if let Ok(verified) =
        verify_assertion(&stored, RP_ID, &CLIENT_DATA_HASH, case.uv_required, &answer)
    {
        let parsed =
            AuthenticatorData::parse(case.authenticator_data).expect("accepted data parses");
        assert_eq!(parsed.rp_id_hash, rp_id_hash(RP_ID));
        assert!(parsed.flags.user_present());
        assert!(!case.uv_required || verified.user_verified);
        assert!(
            verified.sign_count > case.stored_sign_count
                || (verified.sign_count == 0 && case.stored_sign_count == 0)
        );
    }

    let registration = RegistrationAnswer {
        authenticator_data: case.authenticator_data,
        attestation_format: case.format,
        attestation_statement: case.attestation_statement,
    };
    if let Ok(verified) =
        verify_registration(RP_ID, &CLIENT_DATA_HASH, case.uv_required, &registration)
    {
        let key = CredentialKey::from_cose(&verified.public_key).expect("stored key parses");
        assert_eq!(key.algorithm(), verified.algorithm);
        assert!(verified.credential_id.len() <= MAX_CREDENTIAL_ID_LEN);
        assert!(!case.uv_required || verified.user_verified);
    }
});
