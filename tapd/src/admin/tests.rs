//! The admin handlers' rules, against a real SQLite store: who may do what
//! is decided by the peer's uid alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::caller::Users;
use super::handle_with;
use crate::context::{Challenges, Context, HashGate, KeyCopy};
use crate::peer::Peer;
use std::sync::Arc;
use tap_core::accounts::{Account, DirectoryError, NameKind};
use tap_core::audit::AuditRecord;
use tap_core::hashing::{HashCost, PassProof};
use tap_core::keys::testkit::{assertion, packed_registration, TestKey};
use tap_core::policy::Policy;
use tap_core::store::Store;
use tap_core::timefmt::Timestamp;
use tap_protocol::admin::{AdminReply, AdminRequest, KeyProof, Registration};
use tap_protocol::helper::Bytes;
use tap_protocol::{ErrorKind, Response};
use tap_store::{OpenOptions, SqliteStore};

const NOW: Timestamp = 1_795_881_600;
const ROOT: u32 = 0;
const ALICE: u32 = 1000;
const BOB: u32 = 1001;
/// In `[admins] groups`.
const ADA: u32 = 1002;
/// In a protected group.
const SAM: u32 = 1003;
/// A uid with no name.
const GHOST: u32 = 4242;

struct FixedUsers;

const TABLE: &[(u32, &str, &str)] = &[
    (ROOT, "root", "root"),
    (ALICE, "alice", "staff"),
    (BOB, "bob", "staff"),
    (ADA, "ada", "tap-admins"),
    (SAM, "sam", "sudo"),
    (1004, "pam-tap-ssh", "pam-tap-ssh"),
];

impl Users for FixedUsers {
    fn name_of(&self, uid: u32) -> Option<String> {
        TABLE.iter().find(|u| u.0 == uid).map(|u| u.1.to_string())
    }
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        if name == "broken" {
            return Err(DirectoryError::Lookup {
                kind: NameKind::User,
                name: name.into(),
                source: std::io::Error::other("NSS is down"),
            });
        }
        Ok(TABLE.iter().find(|u| u.1 == name).map(|u| Account {
            name: name.into(),
            uid: u.0,
            gid: u.0,
        }))
    }
    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError> {
        Ok(TABLE
            .iter()
            .filter(|u| u.1 == account.name)
            .map(|u| u.2.to_string())
            .collect())
    }
}

struct Unbounded;

impl HashGate for Unbounded {
    fn run(&self, hash: &mut dyn FnMut(&mut tap_core::hashing::HashMemory)) {
        hash(&mut tap_core::hashing::HashMemory::default())
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    policy: Arc<Policy>,
    challenges: Challenges,
    now: Timestamp,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tap.db");
        let store = SqliteStore::open(
            &path,
            OpenOptions {
                create: true,
                check_trust: false,
            },
        )
        .unwrap();
        let mut policy = Policy {
            store: tap_core::policy::StorePolicy::sqlite(path),
            ..Policy::default()
        };
        policy.pass.hash = HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        World {
            _dir: dir,
            store,
            policy: Arc::new(policy),
            challenges: Challenges::default(),
            now: NOW,
        }
    }

    fn ask(&mut self, uid: u32, request: AdminRequest) -> Response {
        let peer = Peer {
            pid: 77,
            uid,
            gid: uid,
            privileged: uid == 0,
        };
        let mut ctx = Context {
            peer: &peer,
            policy: self.policy.clone(),
            store: &mut self.store,
            key_copy: KeyCopy::None,
            challenges: &self.challenges,
            hashes: &Unbounded,
            now: self.now,
        };
        handle_with(&mut ctx, &FixedUsers, request)
    }

    fn ok(&mut self, uid: u32, request: AdminRequest) -> AdminReply {
        match self.ask(uid, request.clone()) {
            Response::Admin(reply) => reply,
            other => panic!("{request:?} by uid {uid}: {other:?}"),
        }
    }

    fn refused(&mut self, uid: u32, request: AdminRequest) -> (ErrorKind, String) {
        match self.ask(uid, request.clone()) {
            Response::Refused(r) => (r.kind, r.message),
            other => panic!("{request:?} by uid {uid} was not refused: {other:?}"),
        }
    }

    fn issue(&mut self, uid: u32, user: &str) -> Response {
        self.ask(uid, issue(user))
    }

    fn audit(&self) -> Vec<AuditRecord> {
        self.store.audit(None, 1000).unwrap()
    }

    /// Opens `user`'s enrollment window, as a pass sign-in does.
    fn open_window(&mut self, user: &str) {
        if self.store.pass(user).unwrap().is_none() {
            self.ok(ROOT, issue(user));
        }
        let pass = self.store.pass(user).unwrap().unwrap();
        let audit = AuditRecord::new(self.now, tap_core::audit::Event::PassSignIn, user, user);
        assert!(self
            .store
            .record_success(
                &pass,
                &PassProof::from_phc(&pass.phc),
                self.now,
                self.now + 600,
                &audit
            )
            .unwrap());
    }
}

fn issue(user: &str) -> AdminRequest {
    AdminRequest::Issue {
        user: user.into(),
        lifetime: None,
        start: None,
        one_time: false,
    }
}

fn kind(response: &Response) -> Option<ErrorKind> {
    match response {
        Response::Refused(r) => Some(r.kind),
        _ => None,
    }
}

#[test]
fn issuing_is_for_root_and_admins_and_protected_groups_for_root_alone() {
    let mut w = World::new();
    // A plain user, for anyone, themselves included.
    assert_eq!(kind(&w.issue(ALICE, "bob")), Some(ErrorKind::NotPermitted));
    assert_eq!(
        kind(&w.issue(ALICE, "alice")),
        Some(ErrorKind::NotPermitted)
    );
    // Permission first: a plain user learns nothing of who exists.
    assert_eq!(
        kind(&w.issue(ALICE, "nobody")),
        Some(ErrorKind::NotPermitted)
    );
    // An admin-group member: for plain users, not for protected ones.
    let reply = w.ok(ADA, issue("alice"));
    let AdminReply::Issued {
        pass,
        info,
        replaced,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(pass.expose().chars().filter(|c| *c != '-').count(), 10);
    assert_eq!(
        (info.user.as_str(), info.issued_by.as_str()),
        ("alice", "ada")
    );
    assert!(info.reason.usable() && !replaced);
    let (k, message) = w.refused(ADA, issue("sam"));
    assert_eq!(k, ErrorKind::NotPermitted);
    assert!(message.contains("protected group \"sudo\""), "{message}");
    // Root: everyone.
    assert!(matches!(
        w.ok(ROOT, issue("sam")),
        AdminReply::Issued { .. }
    ));
    assert!(matches!(
        w.ok(ROOT, issue("alice")),
        AdminReply::Issued { replaced: true, .. }
    ));
    // Unknown users, for those who may ask.
    assert_eq!(kind(&w.issue(ADA, "nobody")), Some(ErrorKind::UnknownUser));
    assert_eq!(kind(&w.issue(ROOT, "broken")), Some(ErrorKind::Internal));
    // A uid with no name is nobody's admin.
    assert_eq!(
        kind(&w.issue(GHOST, "alice")),
        Some(ErrorKind::NotPermitted)
    );

    let events: Vec<(String, String, String, String)> = w
        .audit()
        .into_iter()
        .map(|a| (a.event, a.user, a.actor, a.service))
        .collect();
    let t = |e: &str, u: &str, a: &str| (e.into(), u.into(), a.into(), "tapctl".to_string());
    assert_eq!(
        events,
        vec![
            t("pass.issued", "alice", "ada"),
            t("pass.issued", "sam", "root"),
            t("pass.replaced", "alice", "root"),
        ]
    );
}

#[test]
fn issue_input_is_checked_by_the_daemon() {
    let mut w = World::new();
    let with = |lifetime: Option<&str>, start: Option<&str>| AdminRequest::Issue {
        user: "alice".into(),
        lifetime: lifetime.map(Into::into),
        start: start.map(Into::into),
        one_time: true,
    };
    for (lifetime, start) in [
        (Some("1s"), None),
        (Some("99h"), None),
        (Some("soon"), None),
        (None, Some("2001-01-01T00:00:00Z")),
        (None, Some("+90d")),
        (None, Some("tomorrow")),
    ] {
        assert_eq!(
            w.refused(ROOT, with(lifetime, start)).0,
            ErrorKind::BadRequest,
            "{lifetime:?} {start:?}"
        );
    }
    let AdminReply::Issued { info, .. } = w.ok(ROOT, with(Some("30m"), Some("+1h"))) else {
        panic!()
    };
    assert_eq!((info.start, info.expires), (NOW + 3600, NOW + 5400));
    assert!(info.one_time);
}

#[test]
fn reading_passes_is_for_admins_and_for_oneself() {
    let mut w = World::new();
    w.ok(ROOT, issue("alice"));
    w.ok(ROOT, issue("bob"));
    let show = |u: &str| AdminRequest::Show { user: u.into() };
    assert!(matches!(
        w.ok(ALICE, show("alice")),
        AdminReply::Pass { .. }
    ));
    assert_eq!(w.refused(ALICE, show("bob")).0, ErrorKind::NotPermitted);
    assert!(matches!(w.ok(ADA, show("bob")), AdminReply::Pass { .. }));
    assert_eq!(w.refused(ADA, show("sam")).0, ErrorKind::NotFound);
    assert_eq!(w.refused(ADA, show("nobody")).0, ErrorKind::UnknownUser);

    assert_eq!(
        w.refused(BOB, AdminRequest::List {}).0,
        ErrorKind::NotPermitted
    );
    let AdminReply::Passes { passes, .. } = w.ok(ADA, AdminRequest::List {}) else {
        panic!()
    };
    assert_eq!(passes.len(), 2);

    let audit = |user: Option<&str>| AdminRequest::Audit {
        user: user.map(Into::into),
        host: None,
        limit: 10,
    };
    assert_eq!(w.refused(ALICE, audit(None)).0, ErrorKind::NotPermitted);
    assert_eq!(
        w.refused(ALICE, audit(Some("bob"))).0,
        ErrorKind::NotPermitted
    );
    let AdminReply::Audit { records } = w.ok(ALICE, audit(Some("alice"))) else {
        panic!()
    };
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event, "pass.issued");
    assert_eq!(
        w.refused(ADA, audit(Some("nobody"))).0,
        ErrorKind::UnknownUser
    );
    let AdminReply::Audit { records } = w.ok(ADA, audit(None)) else {
        panic!()
    };
    assert_eq!(records.len(), 2);

    // by host: a SQLite store's records are this host's, and say so
    let here = tap_core::sys::host_name().unwrap();
    assert!(records.iter().all(|r| r.host == here), "{records:?}");
    let on = |user: Option<&str>, host: &str| AdminRequest::Audit {
        user: user.map(Into::into),
        host: Some(host.into()),
        limit: 10,
    };
    let AdminReply::Audit { records } = w.ok(ADA, on(None, &here)) else {
        panic!()
    };
    assert_eq!(records.len(), 2);
    let AdminReply::Audit { records } = w.ok(ADA, on(None, "not-this-host")) else {
        panic!()
    };
    assert!(records.is_empty(), "{records:?}");
    let AdminReply::Audit { records } = w.ok(ALICE, on(Some("alice"), &here)) else {
        panic!()
    };
    assert_eq!(records.len(), 1);
    // a host's whole trail is an admin's to read
    assert_eq!(w.refused(ALICE, on(None, &here)).0, ErrorKind::NotPermitted);
}

#[test]
fn revoking_is_for_admins() {
    let mut w = World::new();
    w.ok(ROOT, issue("bob"));
    let revoke = |u: &str| AdminRequest::Revoke { user: u.into() };
    assert_eq!(w.refused(BOB, revoke("bob")).0, ErrorKind::NotPermitted);
    assert_eq!(w.refused(ALICE, revoke("bob")).0, ErrorKind::NotPermitted);
    assert!(matches!(
        w.ok(ADA, revoke("bob")),
        AdminReply::Revoked { .. }
    ));
    assert_eq!(w.refused(ADA, revoke("bob")).0, ErrorKind::NotFound);
    assert_eq!(w.refused(ADA, revoke("nobody")).0, ErrorKind::UnknownUser);
    let last = w.audit().pop().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor.as_str()),
        ("pass.revoked", "ada")
    );
}

#[test]
fn init_is_for_root() {
    let mut w = World::new();
    assert_eq!(
        w.refused(ADA, AdminRequest::Init {}).0,
        ErrorKind::NotPermitted
    );
    assert!(matches!(
        w.ok(ROOT, AdminRequest::Init {}),
        AdminReply::StoreReady { .. }
    ));
}

const CRED_A: &[u8] = &[0xa1; 32];
const CRED_B: &[u8] = &[0xb2; 32];

/// Enrolls a key for `uid` inside a window, the way tapctl does it.
fn enroll(w: &mut World, uid: u32, key: &TestKey, credential_id: &[u8], label: &str) {
    let AdminReply::Register { request, .. } = w.ok(
        uid,
        AdminRequest::EnrollBegin {
            label: Some(label.into()),
            proof: None,
        },
    ) else {
        panic!("no registration request")
    };
    let reply = w.ok(
        uid,
        finish(&request.client_data_hash.0, key, credential_id, label),
    );
    assert!(matches!(reply, AdminReply::Enrolled { .. }), "{reply:?}");
}

fn finish(challenge: &[u8], key: &TestKey, credential_id: &[u8], label: &str) -> AdminRequest {
    let hash: [u8; 32] = challenge.try_into().unwrap();
    let (data, statement) =
        packed_registration(key, Policy::default().keys.rp_id(), credential_id, &hash);
    AdminRequest::EnrollFinish {
        challenge: Bytes(challenge.to_vec()),
        label: Some(label.into()),
        answer: Registration {
            authenticator_data: Bytes(data),
            attestation_format: "packed".into(),
            attestation_statement: Bytes(statement),
        },
    }
}

fn prove(challenge: &[u8], key: &TestKey, credential_id: &[u8], count: u32) -> KeyProof {
    let hash: [u8; 32] = challenge.try_into().unwrap();
    let (data, signature) = assertion(key, Policy::default().keys.rp_id(), &hash, count);
    KeyProof {
        challenge: Bytes(challenge.to_vec()),
        credential_id: Bytes(credential_id.to_vec()),
        authenticator_data: Bytes(data),
        signature: Bytes(signature),
    }
}

#[test]
fn enrolling_needs_a_window_or_a_proven_key() {
    let mut w = World::new();
    let begin = |proof| AdminRequest::EnrollBegin { label: None, proof };
    // No pass, no key: nothing to prove with.
    let (k, message) = w.refused(ALICE, begin(None));
    assert_eq!(k, ErrorKind::NotPermitted);
    assert!(message.contains("no enrollment window"), "{message}");

    let key_a = TestKey::es256();
    w.open_window("alice");
    enroll(&mut w, ALICE, &key_a, CRED_A, "blue");
    let stored = w.store.keys("alice").unwrap();
    assert_eq!(stored.len(), 1);
    let enrolled = w.audit().pop().unwrap();
    assert_eq!(
        (
            enrolled.event.as_str(),
            enrolled.actor.as_str(),
            enrolled.service.as_str()
        ),
        ("key.enrolled", "alice", "tapctl")
    );
    assert!(enrolled.detail.starts_with("key blue ("), "{enrolled:?}");

    // The window closes; a second key needs a touch of the first.
    w.now += 3600;
    let AdminReply::ProveKey { request, .. } = w.ok(ALICE, begin(None)) else {
        panic!("no proof asked")
    };
    assert_eq!(request.allow, vec![Bytes(CRED_A.to_vec())]);
    let challenge = request.client_data_hash.0;
    // bob, with no window and no key, gets nowhere with alice's proof.
    let proof = prove(&challenge, &key_a, CRED_A, 5);
    assert_eq!(
        w.refused(BOB, begin(Some(proof.clone()))).0,
        ErrorKind::NotPermitted
    );
    // A proof signed by a key alice does not have is refused and audited,
    // and spends the challenge.
    let wrong = prove(&challenge, &TestKey::es256(), CRED_A, 5);
    assert_eq!(
        w.refused(ALICE, begin(Some(wrong))).0,
        ErrorKind::NotPermitted
    );
    assert_eq!(w.audit().pop().unwrap().event, "signin.key.failure");
    assert_eq!(w.refused(ALICE, begin(Some(proof))).0, ErrorKind::NotFound);

    let AdminReply::ProveKey { request, .. } = w.ok(ALICE, begin(None)) else {
        panic!()
    };
    let proof = prove(&request.client_data_hash.0, &key_a, CRED_A, 5);
    let AdminReply::Register { request, .. } = w.ok(ALICE, begin(Some(proof.clone()))) else {
        panic!("no registration after the proof")
    };
    // A proof is good once.
    assert_eq!(w.refused(ALICE, begin(Some(proof))).0, ErrorKind::NotFound);
    let proven = w
        .audit()
        .into_iter()
        .rev()
        .find(|a| a.event.starts_with("signin.key"))
        .unwrap();
    assert_eq!(
        (proven.event.as_str(), proven.service.as_str()),
        ("signin.key.success", "tapctl")
    );
    assert_eq!(w.store.keys("alice").unwrap()[0].sign_count, 5);
    assert_eq!(request.exclude, vec![Bytes(CRED_A.to_vec())]);

    // The registration challenge is alice's alone, and answered once.
    let key_b = TestKey::eddsa();
    let answer = finish(&request.client_data_hash.0, &key_b, CRED_B, "green");
    assert_eq!(w.refused(BOB, answer.clone()).0, ErrorKind::NotFound);
    // (bob's try spent it.)
    assert_eq!(w.refused(ALICE, answer).0, ErrorKind::NotFound);
    assert_eq!(w.store.keys("alice").unwrap().len(), 1);
}

#[test]
fn a_bad_registration_is_refused_and_audited() {
    let mut w = World::new();
    w.open_window("alice");
    let AdminReply::Register { request, .. } = w.ok(
        ALICE,
        AdminRequest::EnrollBegin {
            label: None,
            proof: None,
        },
    ) else {
        panic!()
    };
    // Signed over another challenge than the daemon's.
    let AdminRequest::EnrollFinish { answer, .. } =
        finish(&[9; 32], &TestKey::es256(), CRED_A, "x")
    else {
        panic!()
    };
    let (k, message) = w.refused(
        ALICE,
        AdminRequest::EnrollFinish {
            challenge: request.client_data_hash.clone(),
            label: None,
            answer,
        },
    );
    assert_eq!(k, ErrorKind::NotPermitted);
    assert!(message.contains("refused"), "{message}");
    let last = w.audit().pop().unwrap();
    assert_eq!(
        (last.event.as_str(), last.detail.as_str()),
        ("key.enroll_refused", "attestation_signature_invalid")
    );
    assert!(w.store.keys("alice").unwrap().is_empty());
    // A label with a control character is refused before anything else.
    let (k, _) = w.refused(
        ALICE,
        AdminRequest::EnrollBegin {
            label: Some("a\x1b[2J".into()),
            proof: None,
        },
    );
    assert_eq!(k, ErrorKind::BadRequest);
}

#[test]
fn nobody_enrolls_outside_the_policy() {
    let mut w = World::new();
    Arc::make_mut(&mut w.policy).scope.exclude_users = vec!["alice".into()];
    let (k, message) = w.refused(
        ALICE,
        AdminRequest::EnrollBegin {
            label: None,
            proof: None,
        },
    );
    assert_eq!(k, ErrorKind::NotPermitted);
    assert!(message.contains("does not cover alice"), "{message}");
}

#[test]
fn removing_another_users_key_is_refused_the_same_whether_it_exists() {
    let mut w = World::new();
    w.open_window("bob");
    enroll(&mut w, BOB, &TestKey::es256(), CRED_A, "bob's");
    let id = tap_core::keys::credential::KeyCredential {
        credential_id: CRED_A.to_vec(),
        ..w.store.keys("bob").unwrap()[0].clone()
    }
    .id_text();
    let remove = |id: &str| AdminRequest::RemoveKey {
        user: Some("bob".into()),
        id: id.into(),
        proof: None,
    };
    let existing = w.ask(ALICE, remove(&id[..8]));
    let missing = w.ask(ALICE, remove("zzzzzzzz"));
    assert_eq!(kind(&existing), Some(ErrorKind::NotPermitted));
    assert_eq!(existing, missing);
    let unknown_user = w.ask(
        ALICE,
        AdminRequest::RemoveKey {
            user: Some("nobody".into()),
            id: "zzzzzzzz".into(),
            proof: None,
        },
    );
    assert_eq!(existing, unknown_user);
    // Listing too.
    let list = |u: &str| AdminRequest::Keys {
        user: Some(u.into()),
    };
    assert_eq!(w.refused(ALICE, list("bob")).0, ErrorKind::NotPermitted);
    let AdminReply::Keys { keys, .. } = w.ok(ADA, list("bob")) else {
        panic!()
    };
    assert_eq!(keys.len(), 1);
    // An admin removes it.
    assert_eq!(w.refused(ADA, remove("zzzzzzzz")).0, ErrorKind::NotFound);
    assert!(matches!(
        w.ok(ADA, remove(&id[..8])),
        AdminReply::KeyRemoved { .. }
    ));
    let last = w.audit().pop().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor.as_str()),
        ("key.removed", "ada")
    );
    assert!(w.store.keys("bob").unwrap().is_empty());
}

#[test]
fn removing_ones_own_key_needs_a_window_or_another_key() {
    let mut w = World::new();
    let key_a = TestKey::es256();
    let key_b = TestKey::eddsa();
    w.open_window("alice");
    enroll(&mut w, ALICE, &key_a, CRED_A, "a");
    enroll(&mut w, ALICE, &key_b, CRED_B, "b");
    w.now += 3600;
    let ids: Vec<String> = w
        .store
        .keys("alice")
        .unwrap()
        .iter()
        .map(|k| k.id_text())
        .collect();
    let remove = |id: &str, proof| AdminRequest::RemoveKey {
        user: None,
        id: id.into(),
        proof,
    };
    // Removing A: prove B (and only B).
    let AdminReply::ProveKey { request, .. } = w.ok(ALICE, remove(&ids[0], None)) else {
        panic!()
    };
    assert_eq!(request.allow, vec![Bytes(CRED_B.to_vec())]);
    // A proof made for removing A does not remove B.
    let proof = prove(&request.client_data_hash.0, &key_b, CRED_B, 3);
    assert_eq!(
        w.refused(ALICE, remove(&ids[1], Some(proof.clone()))).0,
        ErrorKind::NotFound
    );
    let AdminReply::ProveKey { request, .. } = w.ok(ALICE, remove(&ids[0], None)) else {
        panic!()
    };
    let proof = prove(&request.client_data_hash.0, &key_b, CRED_B, 3);
    assert!(matches!(
        w.ok(ALICE, remove(&ids[0], Some(proof))),
        AdminReply::KeyRemoved { .. }
    ));
    // The last key, outside a window: nothing else to prove with.
    let (k, message) = w.refused(ALICE, remove(&ids[1], None));
    assert_eq!(k, ErrorKind::NotPermitted);
    assert!(message.contains("no enrollment window"), "{message}");
}

#[test]
fn status_is_the_callers_own() {
    let mut w = World::new();
    w.open_window("alice");
    let reply = w.ok(ALICE, AdminRequest::Status {});
    let AdminReply::Status {
        user,
        pass,
        enroll_window_until,
        keys,
        ssh_keys,
    } = reply
    else {
        panic!()
    };
    assert_eq!(user, "alice");
    assert!(pass.is_some() && keys.is_empty() && ssh_keys.is_empty());
    assert_eq!(enroll_window_until, Some(NOW + 600));
    let AdminReply::Status { user, pass, .. } = w.ok(BOB, AdminRequest::Status {}) else {
        panic!()
    };
    assert_eq!((user.as_str(), pass), ("bob", None));
    assert_eq!(
        w.refused(GHOST, AdminRequest::Status {}).0,
        ErrorKind::NotPermitted
    );
}

mod ssh;
