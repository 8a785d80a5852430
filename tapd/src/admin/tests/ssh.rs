//! SSH keys: who may add, list and remove them, what an attestation must
//! hold, what sshd is served, and the use the PAM session reports.

use super::*;
use tap_core::keys::authdata::Flags;
use tap_core::keys::cose::Algorithm;
use tap_core::keys::testkit::AAGUID;
use tap_core::policy::format_aaguid;
use tap_core::ssh::testkit::SkEnrollment;
use tap_core::ssh::SshPublicKey;
use tap_protocol::admin::SshKeyInfo;

/// sshd's AuthorizedKeysCommandUser, as `[ssh] command_user` names it.
const SSHD: u32 = 1004;

fn enable(w: &mut World, change: impl FnOnce(&mut Policy)) {
    let mut policy = (*w.policy).clone();
    policy.ssh.enabled = true;
    change(&mut policy);
    w.policy = Arc::new(policy);
}

fn challenge(w: &mut World, uid: u32) -> String {
    match w.ok(uid, AdminRequest::SshChallenge {}) {
        AdminReply::SshChallenge {
            challenge,
            application,
            ..
        } => {
            assert_eq!(application, "ssh:");
            challenge
        }
        other => panic!("{other:?}"),
    }
}

fn add(user: Option<&str>, line: &str, attestation: Option<&[u8]>) -> AdminRequest {
    AdminRequest::AddSshKey {
        user: user.map(str::to_string),
        key: line.into(),
        label: Some("laptop".into()),
        attestation: attestation.map(|a| Bytes(a.to_vec())),
    }
}

fn enrolled(w: &mut World, uid: u32, user: &str) -> Vec<SshKeyInfo> {
    match w.ok(
        uid,
        AdminRequest::SshKeys {
            user: Some(user.into()),
        },
    ) {
        AdminReply::SshKeys { keys, .. } => keys,
        other => panic!("{other:?}"),
    }
}

fn attested(w: &mut World, uid: u32) -> SkEnrollment {
    let text = challenge(w, uid);
    SkEnrollment::new(Algorithm::EdDsa, text.as_bytes(), "ssh:", AAGUID)
}

fn plain_key() -> String {
    // ssh-ed25519 with a valid point: the sk testkit's key, re-typed.
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"x", "ssh:", AAGUID);
    let mut blob = Vec::new();
    for field in [&b"ssh-ed25519"[..], &sk.credential.ed_public()] {
        blob.extend_from_slice(&u32::try_from(field.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(field);
    }
    SshPublicKey::from_blob(&blob).unwrap().to_line()
}

fn events(w: &World, name: &str) -> usize {
    w.audit().iter().filter(|r| r.event == name).count()
}

#[test]
fn nothing_ssh_while_the_policy_has_it_off() {
    let mut w = World::new();
    w.open_window("alice");
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    for request in [AdminRequest::SshChallenge {}, add(None, &sk.line, None)] {
        let (kind, message) = w.refused(ALICE, request);
        assert_eq!(kind, ErrorKind::NotPermitted);
        assert!(message.contains("[ssh] enabled = false"), "{message}");
    }
}

#[test]
fn adding_needs_the_window_and_an_attestation_that_holds() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    // No window: no challenge, no key, and nothing audited.
    let before = w.audit().len();
    for request in [AdminRequest::SshChallenge {}, add(None, &sk.line, None)] {
        let (kind, message) = w.refused(ALICE, request);
        assert_eq!(kind, ErrorKind::NotPermitted);
        assert!(message.contains("no enrollment window"), "{message}");
    }
    assert_eq!(w.audit().len(), before);

    w.open_window("alice");
    let good = attested(&mut w, ALICE);
    let reply = w.ok(ALICE, add(None, &good.line, Some(&good.attestation)));
    let AdminReply::SshKeyAdded { user, key } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!((user.as_str(), key.label.as_str()), ("alice", "laptop"));
    assert_eq!(key.model, format_aaguid(&AAGUID));
    assert!(key.attestation.contains("verified"), "{}", key.attestation);
    assert_eq!(enrolled(&mut w, ALICE, "alice"), vec![key]);
    assert_eq!(events(&w, "ssh_key.added"), 1);

    // Its challenge is used up: the same answer again (for a new key) fails.
    let replay = SkEnrollment::new(Algorithm::Es256, b"c", "ssh:", AAGUID);
    let (kind, _) = w.refused(ALICE, add(None, &replay.line, Some(&good.attestation)));
    assert_eq!(kind, ErrorKind::NotPermitted);

    // A challenge file saved with its newline is the same challenge.
    let text = challenge(&mut w, ALICE);
    let newline = format!("{text}\n");
    let ecdsa = SkEnrollment::new(Algorithm::Es256, newline.as_bytes(), "ssh:", AAGUID);
    w.ok(ALICE, add(None, &ecdsa.line, Some(&ecdsa.attestation)));

    // Made for a challenge tapd never issued, or another model, or without
    // UV under require_verify: refused, audited, nothing stored.
    let refused_before = events(&w, "ssh_key.refused");
    challenge(&mut w, ALICE);
    let forged = SkEnrollment::new(Algorithm::EdDsa, b"made up", "ssh:", AAGUID);
    let (_, message) = w.refused(ALICE, add(None, &forged.line, Some(&forged.attestation)));
    assert!(message.contains("does not verify"), "{message}");
    enable(&mut w, |p| {
        p.keys.allowed_aaguids = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()]
    });
    let model = attested(&mut w, ALICE);
    let (_, message) = w.refused(ALICE, add(None, &model.line, Some(&model.attestation)));
    assert!(message.contains("allowed_aaguids"), "{message}");
    enable(&mut w, |p| {
        p.keys.allowed_aaguids.clear();
        p.ssh.require_verify = true;
    });
    let no_uv = attested(&mut w, ALICE);
    let (_, message) = w.refused(ALICE, add(None, &no_uv.line, Some(&no_uv.attestation)));
    assert!(message.contains("does not verify"), "{message}");
    let text = challenge(&mut w, ALICE);
    let uv = SkEnrollment::with_flags(
        Algorithm::EdDsa,
        text.as_bytes(),
        "ssh:",
        AAGUID,
        Flags::USER_PRESENT | Flags::USER_VERIFIED,
    );
    w.ok(ALICE, add(None, &uv.line, Some(&uv.attestation)));
    // Without an attestation, under require_attestation.
    enable(&mut w, |p| p.ssh.require_attestation = true);
    let bare = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    let (_, message) = w.refused(ALICE, add(None, &bare.line, None));
    assert!(message.contains("requires an attestation"), "{message}");
    assert_eq!(events(&w, "ssh_key.refused"), refused_before + 4);
    assert_eq!(enrolled(&mut w, ALICE, "alice").len(), 3);
}

#[test]
fn lines_types_and_applications_are_checked_with_nothing_stored() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    w.open_window("alice");
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    let other_app = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:other", AAGUID);
    let plain = plain_key();
    for (line, kind, words) in [
        (
            plain.as_str(),
            ErrorKind::NotPermitted,
            "not allowed by the policy",
        ),
        (&other_app.line, ErrorKind::NotPermitted, "application"),
        (
            &format!("command=\"/bin/sh\" {}", sk.line),
            ErrorKind::BadRequest,
            "option",
        ),
        ("", ErrorKind::BadRequest, "the public key"),
        (
            &format!("{}\n{}", sk.line, sk.line),
            ErrorKind::BadRequest,
            "the public key",
        ),
    ] {
        let (k, message) = w.refused(ALICE, add(None, line, None));
        assert_eq!(k, kind, "{line:?}: {message}");
        assert!(message.contains(words), "{line:?}: {message}");
    }
    // A plain key has no attestation to give.
    enable(&mut w, |p| p.ssh.key_types.push("ssh-ed25519".into()));
    let (k, message) = w.refused(ALICE, add(None, &plain, Some(b"x")));
    assert_eq!(k, ErrorKind::BadRequest, "{message}");
    assert!(enrolled(&mut w, ALICE, "alice").is_empty());
    w.ok(ALICE, add(None, &plain, None));
    assert_eq!(enrolled(&mut w, ALICE, "alice")[0].key_type, "ssh-ed25519");
}

#[test]
fn admins_add_for_others_root_alone_for_the_protected_and_one_key_has_one_user() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    // bob for alice: not his to do, and the same refusal whoever it names.
    for user in ["alice", "nobody"] {
        let (kind, _) = w.refused(BOB, add(Some(user), &sk.line, None));
        assert_eq!(kind, ErrorKind::NotPermitted);
    }
    // An admin, outside any window; not for a protected user; root is.
    w.ok(ADA, add(Some("bob"), &sk.line, None));
    let other = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    let (kind, message) = w.refused(ADA, add(Some("sam"), &other.line, None));
    assert_eq!(kind, ErrorKind::NotPermitted);
    assert!(message.contains("protected group"), "{message}");
    w.ok(ROOT, add(Some("sam"), &other.line, None));
    // bob's key, for alice too: one key, one user.
    let (kind, message) = w.refused(ROOT, add(Some("alice"), &sk.line, None));
    assert_eq!(kind, ErrorKind::NotPermitted);
    assert!(message.contains("enrolled already"), "{message}");
    // Lists: one's own and an admin's view only.
    assert_eq!(enrolled(&mut w, BOB, "bob").len(), 1);
    let (kind, _) = w.refused(
        ALICE,
        AdminRequest::SshKeys {
            user: Some("bob".into()),
        },
    );
    assert_eq!(kind, ErrorKind::NotPermitted);
    // The policy's max_keys.
    enable(&mut w, |p| p.ssh.max_keys = 1);
    let third = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    let (_, message) = w.refused(ROOT, add(Some("bob"), &third.line, None));
    assert!(message.contains("the most the policy allows"), "{message}");
}

#[test]
fn removing_follows_the_rules_of_keys_remove() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    w.ok(ROOT, add(Some("alice"), &sk.line, None));
    let fingerprint = enrolled(&mut w, ROOT, "alice")[0].fingerprint.clone();
    let remove = |user: Option<&str>, id: &str| AdminRequest::RemoveSshKey {
        user: user.map(str::to_string),
        id: id.into(),
        proof: None,
    };
    let (kind, _) = w.refused(BOB, remove(Some("alice"), &fingerprint));
    assert_eq!(kind, ErrorKind::NotPermitted);
    // Her own, outside a window and with no security key to prove: no.
    let (_, message) = w.refused(ALICE, remove(None, &fingerprint));
    assert!(message.contains("no enrollment window"), "{message}");
    let (kind, _) = w.refused(ALICE, remove(None, "SHA256:"));
    assert_eq!(
        kind,
        ErrorKind::NotFound,
        "too short a prefix names nothing"
    );
    w.open_window("alice");
    let prefix = &fingerprint[..15];
    let reply = w.ok(ALICE, remove(None, prefix));
    assert!(
        matches!(reply, AdminReply::SshKeyRemoved { .. }),
        "{reply:?}"
    );
    assert!(enrolled(&mut w, ALICE, "alice").is_empty());
    assert_eq!(events(&w, "ssh_key.removed"), 1);
}

fn served(w: &mut World, uid: u32, user: &str) -> Vec<String> {
    match w.ok(uid, AdminRequest::AuthorizedKeys { user: user.into() }) {
        AdminReply::AuthorizedKeys { lines } => lines,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sshd_is_served_lines_made_from_the_blob_and_nothing_out_of_scope() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    w.ok(ROOT, add(Some("alice"), &sk.line, None));
    let bare = SshPublicKey::parse_line(&sk.line).unwrap().to_line();
    let expected = vec![format!("{bare} pam_tap")];
    for asker in [ROOT, SSHD, ALICE] {
        assert_eq!(served(&mut w, asker, "alice"), expected, "asked by {asker}");
    }
    for asker in [BOB, ADA] {
        let (kind, message) = w.refused(
            asker,
            AdminRequest::AuthorizedKeys {
                user: "alice".into(),
            },
        );
        assert_eq!(kind, ErrorKind::NotPermitted);
        assert!(message.contains("AuthorizedKeysCommandUser"), "{message}");
    }
    enable(&mut w, |p| p.ssh.require_verify = true);
    assert_eq!(
        served(&mut w, SSHD, "alice"),
        vec![format!("verify-required {bare} pam_tap")]
    );
    for user in ["nobody", "bob", "root"] {
        assert!(served(&mut w, SSHD, user).is_empty(), "{user}");
    }
    let (kind, _) = w.refused(
        SSHD,
        AdminRequest::AuthorizedKeys {
            user: "broken".into(),
        },
    );
    assert_eq!(
        kind,
        ErrorKind::Internal,
        "NSS down is an error, not 'no keys'"
    );
    enable(&mut w, |p| p.scope.exclude_users = vec!["alice".into()]);
    assert!(served(&mut w, SSHD, "alice").is_empty());
    enable(&mut w, |p| {
        p.ssh.key_types = vec!["sk-ecdsa-sha2-nistp256@openssh.com".into()]
    });
    assert!(
        served(&mut w, SSHD, "alice").is_empty(),
        "a type no longer allowed"
    );
    enable(&mut w, |p| p.enabled = false);
    assert!(served(&mut w, SSHD, "alice").is_empty());
}

#[test]
fn the_session_reports_the_key_sshd_accepted() {
    let mut w = World::new();
    enable(&mut w, |_| {});
    let sk = SkEnrollment::new(Algorithm::EdDsa, b"c", "ssh:", AAGUID);
    w.ok(ROOT, add(Some("alice"), &sk.line, None));
    let bare = SshPublicKey::parse_line(&sk.line).unwrap().to_line();
    let used = |user: &str, info: String| AdminRequest::SshKeyUsed {
        user: user.into(),
        auth_info: info,
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    };
    let info = format!("publickey {bare} signature count = 7\n");
    let (kind, _) = w.refused(ALICE, used("alice", info.clone()));
    assert_eq!(kind, ErrorKind::NotPermitted, "root (the PAM session) only");
    for (user, text, recorded) in [
        ("bob", info.clone(), false),
        ("alice", "keyboard-interactive/pam\n".to_string(), false),
        ("alice", format!("password\n{info}"), true),
    ] {
        let reply = w.ok(ROOT, used(user, text));
        assert_eq!(reply, AdminReply::SshKeyUsed { recorded }, "{user}");
    }
    let key = &enrolled(&mut w, ROOT, "alice")[0];
    assert_eq!(key.last_used, Some(NOW));
    // and her own status shows it
    let AdminReply::Status { ssh_keys, .. } = w.ok(ALICE, AdminRequest::Status {}) else {
        panic!()
    };
    assert_eq!(ssh_keys.as_slice(), std::slice::from_ref(key));
    let records: Vec<_> = w
        .audit()
        .into_iter()
        .filter(|r| r.event == "signin.ssh_key.success")
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].rhost.as_str(), records[0].service.as_str()),
        ("192.0.2.7", "sshd")
    );
}
