//! Key handles through the provider's Rust API (the functions the C entry
//! points wrap): a handle only works on the device that made it, for the
//! application and algorithm it was made for, and cannot be edited.

use pam_tap_sk_provider::api::{
    ALG_ECDSA, ALG_ED25519, ERR_DEVICE_NOT_FOUND, ERR_GENERAL, ERR_UNSUPPORTED, RESIDENT_KEY,
    USER_PRESENCE_REQD, USER_VERIFICATION_REQD,
};
use pam_tap_sk_provider::{enroll, sign, EnrollRequest, SignRequest, SkOption};

fn enroll_key(alg: u32, flags: u8) -> Vec<u8> {
    enroll(&EnrollRequest {
        alg,
        challenge: b"challenge",
        application: "ssh:",
        flags,
        pin: None,
        options: Vec::new(),
    })
    .expect("enroll")
    .key_handle
}

fn sign_with(alg: u32, application: &str, handle: &[u8], flags: u8) -> Result<u32, i32> {
    sign(&SignRequest {
        alg,
        data: b"message",
        application,
        key_handle: handle,
        flags,
        pin: None,
        options: Vec::new(),
    })
    .map(|response| response.counter)
    .map_err(|error| error.code())
}

// One test: the state file is named by the process environment.
#[test]
fn handles_are_bound_to_device_application_and_algorithm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    std::env::set_var("PAM_TAP_SK_STATE", &state);

    let ed = enroll_key(ALG_ED25519, USER_PRESENCE_REQD);
    let ec = enroll_key(ALG_ECDSA, USER_PRESENCE_REQD);
    assert_eq!(
        sign_with(ALG_ED25519, "ssh:", &ed, USER_PRESENCE_REQD),
        Ok(3)
    );
    assert_eq!(sign_with(ALG_ECDSA, "ssh:", &ec, USER_PRESENCE_REQD), Ok(4));

    // Another application, another algorithm, a flipped bit, a short handle.
    let not_found = Err(ERR_DEVICE_NOT_FOUND);
    assert_eq!(sign_with(ALG_ED25519, "ssh:x", &ed, 1), not_found);
    assert_eq!(sign_with(ALG_ECDSA, "ssh:", &ed, 1), not_found);
    for index in [0, 1, 2, 10, 40, 66] {
        let mut bad = ed.clone();
        bad[index] ^= 0x01;
        assert_eq!(
            sign_with(ALG_ED25519, "ssh:", &bad, 1),
            not_found,
            "byte {index}"
        );
    }
    assert_eq!(sign_with(ALG_ED25519, "ssh:", &ed[..66], 1), not_found);
    assert_eq!(sign_with(ALG_ED25519, "ssh:", &[], 1), not_found);

    // A verify-required credential: its handle records credProtect 3, and
    // clearing that byte breaks the MAC rather than lifting the protection.
    let protected = enroll_key(ALG_ED25519, USER_PRESENCE_REQD | USER_VERIFICATION_REQD);
    assert_eq!(protected[2], 3);
    assert_eq!(
        sign_with(ALG_ED25519, "ssh:", &protected, USER_PRESENCE_REQD),
        not_found
    );
    let mut downgraded = protected.clone();
    downgraded[2] = 0;
    assert_eq!(
        sign_with(ALG_ED25519, "ssh:", &downgraded, USER_PRESENCE_REQD),
        not_found
    );
    assert!(sign_with(
        ALG_ED25519,
        "ssh:",
        &protected,
        USER_PRESENCE_REQD | USER_VERIFICATION_REQD
    )
    .is_ok());

    // Another device (state file) knows none of them.
    std::env::set_var("PAM_TAP_SK_STATE", dir.path().join("other.json"));
    assert_eq!(sign_with(ALG_ED25519, "ssh:", &ed, 1), not_found);
    assert_eq!(sign_with(ALG_ECDSA, "ssh:", &ec, 1), not_found);
    std::env::set_var("PAM_TAP_SK_STATE", &state);

    // Options as sk-usbhid treats them; resident keys refused.
    let with_option = |required: bool, flags: u8| {
        enroll(&EnrollRequest {
            alg: ALG_ED25519,
            challenge: b"c",
            application: "ssh:",
            flags,
            pin: None,
            options: vec![SkOption {
                name: "frobnicate".into(),
                value: "yes".into(),
                required,
            }],
        })
        .map(|_| ())
        .map_err(|error| error.code())
    };
    assert_eq!(with_option(false, USER_PRESENCE_REQD), Ok(()));
    assert_eq!(with_option(true, USER_PRESENCE_REQD), Err(ERR_GENERAL));
    assert_eq!(with_option(false, RESIDENT_KEY), Err(ERR_UNSUPPORTED));
    assert_eq!(sign_with(7, "ssh:", &ed, 1), Err(ERR_UNSUPPORTED));
}
