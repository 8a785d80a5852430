//! The provider under the real OpenSSH 9.2p1 tools: ssh-keygen enrolls
//! through it (via ssh-sk-helper, which dlopen()s it), `ssh-keygen -Y sign`
//! signs through it, and `ssh-keygen -Y verify` checks those signatures
//! with OpenSSH's own sk verification code.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{read_private_sk, read_signature, Device, Via};

const UP: u8 = 0x01;
const UV: u8 = 0x04;

fn enroll_sign_verify(key_type: &str, via: Via) {
    let dev = Device::new();
    dev.enroll(via, key_type, "id", b"a challenge", &[])
        .assert_ok("enroll");
    let (key_flags, handle) = read_private_sk(&dev, "id");
    assert_eq!(key_flags, UP, "the key's sk_flags are the requested ones");
    assert_eq!(handle.len(), 67);

    dev.write("msg", b"sign me\n");
    dev.sign(via, "id", "msg", b"").assert_ok("sign");
    let (flags, counter) = read_signature(&dev, "msg.sig");
    assert_eq!(flags, UP, "touched, not verified");
    assert_eq!(counter, 2, "enroll counted 1, this signature 2");
    dev.verify("id", "msg").assert_ok("verify");

    // One byte more and OpenSSH's verification refuses it.
    dev.write("msg", b"sign me!\n");
    dev.verify("id", "msg").assert_fails_with(
        "verify of a tampered message",
        &["Signature verification failed"],
    );
}

#[test]
fn ed25519_sk_with_flag() {
    enroll_sign_verify("ed25519-sk", Via::Flag);
}

#[test]
fn ed25519_sk_with_env() {
    enroll_sign_verify("ed25519-sk", Via::Env);
}

#[test]
fn ecdsa_sk_with_flag() {
    enroll_sign_verify("ecdsa-sk", Via::Flag);
}

#[test]
fn ecdsa_sk_with_env() {
    enroll_sign_verify("ecdsa-sk", Via::Env);
}

#[test]
fn state_file_is_created_private() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &[])
        .assert_ok("enroll");
    let mode = std::fs::metadata(&dev.state)
        .expect("state")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let state = dev.state_json();
    assert_eq!(state["counter"], 1);
    assert_eq!(state["uv"], true);
}

#[test]
fn another_device_does_not_know_the_key() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ecdsa-sk", "id", b"c", &[])
        .assert_ok("enroll");
    // The same key file, signed with another device's state: the key
    // handle's MAC does not match that device's secret.
    let other = Device::new();
    std::fs::copy(dev.path("id"), other.path("id")).expect("copy");
    other.write("msg", b"m");
    other.sign(Via::Flag, "id", "msg", b"").assert_fails_with(
        "sign on another device",
        &["device not found", "no credential"],
    );
    assert!(!other.path("msg.sig").exists());
}

#[test]
fn openssh_refuses_another_api_version() {
    let dev = Device::new();
    // 9.2p1's ssh-sk.c compares the major half with SSH_SK_VERSION_MAJOR.
    let run = dev.keygen(
        Via::Flag,
        &["-t", "ed25519-sk", "-N", "", "-f", "id"],
        b"",
        &[("PAM_TAP_SK_API_VERSION", "00090000")],
    );
    run.assert_fails_with(
        "enroll with API version 9",
        &["implements unsupported version 0x00090000 (supported: 0x000a0000)"],
    );
    // A different minor version is accepted: only the major half counts.
    dev.keygen(
        Via::Flag,
        &["-t", "ed25519-sk", "-N", "", "-f", "id"],
        b"",
        &[("PAM_TAP_SK_API_VERSION", "000a0007")],
    )
    .assert_ok("enroll with API version 0x000a0007");
}

#[test]
fn no_state_variable_is_refused_clearly() {
    let dev = Device::new();
    let run = dev.keygen(
        Via::Flag,
        &["-t", "ed25519-sk", "-N", "", "-f", "id"],
        b"",
        &[("PAM_TAP_SK_STATE", "")],
    );
    run.assert_fails_with("enroll without state", &["PAM_TAP_SK_STATE is not set"]);
    assert!(!dev.path("id").exists());
}

#[test]
fn verify_required_on_a_device_without_uv_fails_to_enroll() {
    let dev = Device::new().with_env("PAM_TAP_SK_NO_UV", "1");
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &["verify-required"])
        .assert_fails_with(
            "verify-required enroll without UV",
            &["cannot verify the user", "Key enrollment failed"],
        );
    assert!(!dev.path("id").exists());
}

#[test]
fn verify_required_signs_with_uv_and_not_without() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ecdsa-sk", "id", b"c", &["verify-required"])
        .assert_ok("enroll");
    let (key_flags, _) = read_private_sk(&dev, "id");
    assert_eq!(key_flags, UP | UV);
    dev.write("msg", b"m");
    // ssh-keygen asks for a PIN for a verify-required key; an empty answer
    // leaves the device's built-in UV to do it.
    dev.sign(Via::Flag, "id", "msg", b"\n")
        .assert_ok("sign with UV");
    let (flags, _) = read_signature(&dev, "msg.sig");
    assert_eq!(flags, UP | UV);
    dev.verify("id", "msg").assert_ok("verify");

    std::fs::remove_file(dev.path("msg.sig")).expect("rm");
    let no_uv = Device {
        dir: tempfile::tempdir().expect("tempdir"),
        state: dev.state.clone(),
        env: vec![("PAM_TAP_SK_NO_UV".into(), "1".into())],
    };
    std::fs::copy(dev.path("id"), no_uv.path("id")).expect("copy");
    no_uv.write("msg", b"m");
    no_uv.sign(Via::Flag, "id", "msg", b"\n").assert_fails_with(
        "sign without UV",
        &["cannot verify the user", "Signing msg failed"],
    );
    assert!(!no_uv.path("msg.sig").exists());
}

#[test]
fn pin_device_needs_the_pin() {
    let dev = Device::new().with_env("PAM_TAP_SK_PIN", "4321");
    // ssh-keygen tries without a PIN, gets "PIN required" and reads one
    // from stdin (no tty).
    let challenge = dev.write("c", b"c");
    let challenge = format!("challenge={}", challenge.display());
    dev.keygen(
        Via::Flag,
        &[
            "-t",
            "ed25519-sk",
            "-O",
            "verify-required",
            "-O",
            &challenge,
            "-N",
            "",
            "-f",
            "id",
        ],
        b"4321\n",
        &[],
    )
    .assert_ok("enroll with the PIN");
    assert_eq!(dev.state_json()["pin"], "4321");

    dev.write("msg", b"m");
    dev.sign(Via::Flag, "id", "msg", b"0000\n")
        .assert_fails_with("sign with a wrong PIN", &["wrong PIN"]);
    dev.sign(Via::Flag, "id", "msg", b"\n")
        .assert_fails_with("sign without the PIN", &["needs this device's PIN"]);
    dev.sign(Via::Flag, "id", "msg", b"4321\n")
        .assert_ok("sign with the PIN");
    let (flags, _) = read_signature(&dev, "msg.sig");
    assert_eq!(flags, UP | UV);
    dev.verify("id", "msg").assert_ok("verify");
}

#[test]
fn no_touch_required_and_no_up() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &["no-touch-required"])
        .assert_ok("enroll");
    let (key_flags, _) = read_private_sk(&dev, "id");
    assert_eq!(key_flags, 0);
    dev.write("msg", b"m");
    dev.sign(Via::Flag, "id", "msg", b"").assert_ok("sign");
    assert_eq!(read_signature(&dev, "msg.sig").0, 0, "presence not asked");

    // A key that wants touch, on a device that reports none.
    dev.enroll(Via::Flag, "ed25519-sk", "touch", b"c", &[])
        .assert_ok("enroll");
    std::fs::remove_file(dev.path("msg.sig")).expect("rm");
    dev.keygen(
        Via::Flag,
        &["-Y", "sign", "-f", "touch", "-n", "file", "msg"],
        b"",
        &[("PAM_TAP_SK_NO_UP", "1")],
    )
    .assert_ok("sign");
    assert_eq!(read_signature(&dev, "msg.sig").0, 0, "UP left out");
}

#[test]
fn resident_keys_are_unsupported() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ed25519-sk", "id", b"c", &["resident"])
        .assert_fails_with("resident enroll", &["no resident", "feature not supported"]);
    dev.keygen(Via::Flag, &["-K"], b"\n", &[])
        .assert_fails_with(
            "ssh-keygen -K",
            &["returned failure -2", "feature not supported"],
        );
}

#[test]
fn processes_sharing_a_device_get_distinct_counters() {
    let dev = Device::new();
    dev.enroll(Via::Flag, "ecdsa-sk", "id", b"c", &[])
        .assert_ok("enroll");
    const N: usize = 6;
    for i in 0..N {
        dev.write(&format!("msg{i}"), format!("message {i}").as_bytes());
    }
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let dev = &dev;
                scope.spawn(move || dev.sign(Via::Flag, "id", &format!("msg{i}"), b""))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut counters = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        run.assert_ok("concurrent sign");
        counters.push(read_signature(&dev, &format!("msg{i}.sig")).1);
        dev.verify("id", &format!("msg{i}")).assert_ok("verify");
    }
    counters.sort_unstable();
    assert_eq!(counters, (2..2 + N as u32).collect::<Vec<_>>());
    assert_eq!(dev.state_json()["counter"], 1 + N as u64);
}
