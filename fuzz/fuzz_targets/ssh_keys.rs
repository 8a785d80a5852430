//! What a user hands `tapctl ssh-keys add`: a public-key line (or its blob)
//! and an `ssh-sk-attest-v01` file. Never panics; a line that parses prints
//! back (`to_line`) as a line that parses to the same key, with no option
//! and no comment; an attestation that parses goes through `verify`
//! against a key of its own and a fixed challenge without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tap_core::ssh::{verify, SshAttestation, SshAttestationCheck, SshPublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = SshPublicKey::parse_line(text) {
            check_key(&key);
        }
    }
    if let Ok(key) = SshPublicKey::from_blob(data) {
        check_key(&key);
    }
    // First byte: where the key blob ends inside the rest (a key, then an
    // attestation), so both halves can be valid at once.
    if let Some((&cut, rest)) = data.split_first() {
        let cut = usize::from(cut).min(rest.len());
        let (blob, attestation) = rest.split_at(cut);
        if let (Ok(key), Ok(parsed)) = (
            SshPublicKey::from_blob(blob),
            SshAttestation::parse(attestation),
        ) {
            for uv in [false, true] {
                let check = SshAttestationCheck {
                    challenge: b"pam_tap-ssh-enroll:fuzz",
                    key: &key,
                    user_verification_required: uv,
                };
                let _ = verify(&parsed, &check);
            }
        }
    }
});

fn check_key(key: &SshPublicKey) {
    let line = key.to_line();
    assert_eq!(line.split(' ').count(), 2, "{line}");
    let back = SshPublicKey::parse_line(&line).unwrap();
    assert_eq!(back.blob, key.blob);
    assert_eq!(back.fingerprint(), key.fingerprint());
    assert!(key.fingerprint().starts_with("SHA256:"));
}
