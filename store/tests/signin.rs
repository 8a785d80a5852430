//! The sign-in decision (core's `signin`) against the real SQLite store.

use std::collections::VecDeque;
use tap_core::accounts::{Account, Directory, DirectoryError, NameKind};
use tap_core::audit::{AuditRecord, Event};
use tap_core::hashing::{self, HashCost};
use tap_core::pass::{NewPass, PassRecord, Reason};
use tap_core::policy::Policy;
use tap_core::signin::*;
use tap_core::store::{Store, StoreError};
use tap_core::timefmt::Timestamp;
use tap_store::{OpenOptions, SqliteStore};
use zeroize::Zeroizing;

const NOW: Timestamp = 1_795_881_600;
const PASS: &str = "K7QM9XRT4D";
const CHEAP: HashCost = HashCost {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// What the prompt is expected to see, in order; anything else fails the test.
#[derive(Debug)]
enum Expect {
    Secret(Result<Option<&'static str>, ConversationFailed>),
    Pin(&'static str),
    Info(&'static str),
}

struct Scripted(VecDeque<Expect>, Mode);

impl Scripted {
    fn new(events: Vec<Expect>) -> Self {
        Scripted(events.into(), Mode::PasswordOrPass)
    }
    fn expected_prompt(&self) -> String {
        let pass = Policy::default().pass;
        match self.1 {
            Mode::PasswordOrPass => pass.prompt,
            Mode::PassOnly => pass.pass_only_prompt,
        }
    }
    fn finished(&self) {
        assert!(
            self.0.is_empty(),
            "prompts expected but not shown: {:?}",
            self.0
        );
    }
}

impl Prompt for Scripted {
    fn secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed> {
        let bytes = |s: &str| Zeroizing::new(s.as_bytes().to_vec());
        match self.0.pop_front() {
            Some(Expect::Secret(answer)) if prompt == self.expected_prompt() => {
                answer.map(|a| a.map(bytes))
            }
            Some(Expect::Pin(pin)) if prompt == PIN_PROMPT => Ok(Some(bytes(pin))),
            other => panic!("unexpected secret prompt {prompt:?}; expected {other:?}"),
        }
    }
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        match self.0.pop_front() {
            Some(Expect::Info(fragment)) => {
                assert!(text.contains(fragment), "{text:?} lacks {fragment:?}");
                Ok(())
            }
            other => panic!("unexpected info {text:?}; expected {other:?}"),
        }
    }
}

struct Users;

impl Directory for Users {
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        match name {
            "alice" | "bob" | "carol" => Ok(Some(Account {
                name: name.into(),
                uid: 1000,
                gid: 1000,
            })),
            "broken" => Err(DirectoryError::Lookup {
                kind: NameKind::User,
                name: name.into(),
                source: std::io::Error::other("NSS is down"),
            }),
            _ => Ok(None),
        }
    }
    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError> {
        Ok(if account.name == "carol" {
            vec!["contractors".into()]
        } else {
            vec!["staff".into()]
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    policy: Policy,
    authenticator: FakeKey,
    mode: Mode,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tap.db");
        let mut policy = Policy {
            store: tap_core::policy::StorePolicy::sqlite(path.clone()),
            ..Policy::default()
        };
        policy.pass.max_failures = 3;
        Fixture {
            _dir: dir,
            path,
            policy,
            authenticator: FakeKey::new(),
            mode: Mode::PasswordOrPass,
        }
    }

    fn store(&self) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(
            &self.path,
            OpenOptions {
                create: true,
                check_trust: false,
            },
        )
    }

    fn issue(&self, user: &str, one_time: bool) -> PassRecord {
        let pass = PassRecord::issue(NewPass {
            user,
            id: 42,
            phc: hashing::hash(PASS, &CHEAP).unwrap_or_default(),
            issued_by: "root",
            created: NOW,
            start: NOW,
            expires: NOW + 3_600,
            one_time,
            length: PASS.len(),
        });
        let mut store = self.store().unwrap_or_else(|e| panic!("{e}"));
        store
            .put_pass(
                &pass,
                &AuditRecord::new(NOW, Event::PassIssued, user, "root"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        pass
    }

    fn run(&self, user: &str, at: Timestamp, script: Vec<Expect>) -> Result<Outcome, Error> {
        self.run_with(user, at, FirstPass::Prompt, None, script)
    }

    fn run_with(
        &self,
        user: &str,
        at: Timestamp,
        first_pass: FirstPass,
        token: Option<&str>,
        script: Vec<Expect>,
    ) -> Result<Outcome, Error> {
        self.sign_in(user, at, first_pass, token, script).result
    }

    fn sign_in(
        &self,
        user: &str,
        at: Timestamp,
        first_pass: FirstPass,
        token: Option<&str>,
        script: Vec<Expect>,
    ) -> SignIn {
        let mut prompt = Scripted(script.into(), self.mode);
        let attempt = Attempt {
            user,
            service: "test",
            rhost: "",
            tty: "pts/0",
            now: at,
            first_pass,
            mode: self.mode,
            earlier_token: token.map(|t| Zeroizing::new(t.as_bytes().to_vec())),
            silent: false,
        };
        let outcome = authenticate(
            &self.policy,
            &Users,
            || self.store(),
            &self.authenticator,
            &mut prompt,
            attempt,
        );
        prompt.finished();
        outcome
    }
}

fn typed(answer: &'static str) -> Expect {
    Expect::Secret(Ok(Some(answer)))
}

#[test]
fn right_pass_signs_in_and_says_until_when() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let outcome = fx.run(
        "alice",
        NOW + 10,
        vec![typed("k7qm-9xrt 4d"), Expect::Info("2026-11-28 17:00 UTC")],
    );
    assert_eq!(
        outcome,
        Ok(Outcome::PassSuccess {
            expires: NOW + 3_600,
            one_time: false
        })
    );
}

#[test]
fn wrong_pass_is_counted_and_locks_at_the_limit() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    for failures in 1..=2 {
        let outcome = fx.run("alice", NOW, vec![typed("AAAAAAAAAA")]);
        assert_eq!(
            outcome,
            Ok(Outcome::Failed(Failure::WrongPass {
                failures,
                locked: false
            }))
        );
    }
    let outcome = fx.run("alice", NOW, vec![typed("zzzz-zzzz-zz")]);
    assert_eq!(
        outcome,
        Ok(Outcome::Failed(Failure::WrongPass {
            failures: 3,
            locked: true
        }))
    );
    // Locked: a pass-only service does not even ask for the pass.
    let mut fx = fx;
    fx.mode = Mode::PassOnly;
    assert_eq!(
        fx.run("alice", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::Unusable(Reason::Locked)))
    );
    let events: Vec<String> = fx
        .store()
        .map(|s| s.audit(Some("alice"), 10).unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.event)
        .collect();
    assert_eq!(events.last().map(String::as_str), Some("pass.locked"));
}

/// Another sign-in's wrong pass lands while this one waits for input.
struct RacedByAnotherFailure<'a>(&'a Fixture);

impl Prompt for RacedByAnotherFailure<'_> {
    fn secret(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed> {
        let mut other = self.0.store().unwrap_or_else(|e| panic!("{e}"));
        other
            .record_failure("alice", 42, NOW, 3, &|_| Vec::new())
            .unwrap_or_else(|e| panic!("{e}"));
        Ok(Some(Zeroizing::new(b"AAAAAAAAAA".to_vec())))
    }

    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        panic!("unexpected info {text:?}")
    }
}

#[test]
fn concurrent_failures_each_audit_their_own_count() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let attempt = Attempt {
        user: "alice",
        service: "test",
        rhost: "",
        tty: "pts/0",
        now: NOW,
        first_pass: FirstPass::Prompt,
        mode: Mode::PasswordOrPass,
        earlier_token: None,
        silent: false,
    };
    let outcome = authenticate(
        &fx.policy,
        &Users,
        || fx.store(),
        &fx.authenticator,
        &mut RacedByAnotherFailure(&fx),
        attempt,
    );
    assert_eq!(
        outcome.result,
        Ok(Outcome::Failed(Failure::WrongPass {
            failures: 2,
            locked: false
        }))
    );
    let details: Vec<String> = fx
        .store()
        .and_then(|s| s.audit(Some("alice"), 10))
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.event == "signin.pass.failure")
        .map(|a| a.detail)
        .collect();
    assert_eq!(details, ["wrong pass, failure 2 of 3"]);
}

#[test]
fn one_time_pass_works_once() {
    // A pass-only service: nobody without a usable pass is asked.
    let mut fx = Fixture::new();
    fx.mode = Mode::PassOnly;
    fx.issue("alice", true);
    let first = fx.run(
        "alice",
        NOW,
        vec![
            typed(PASS),
            Expect::Info("one-time Temporary Access Pass. To register a security key before"),
        ],
    );
    assert_eq!(
        first,
        Ok(Outcome::PassSuccess {
            expires: NOW + 3_600,
            one_time: true
        })
    );
    assert_eq!(
        fx.run("alice", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::Unusable(
            Reason::OneTimeUsed
        )))
    );
}

#[test]
fn time_window_is_respected() {
    // A pass-only service: nobody without a usable pass is asked.
    let mut fx = Fixture::new();
    fx.mode = Mode::PassOnly;
    fx.issue("alice", false);
    assert_eq!(
        fx.run("alice", NOW - 1, vec![]),
        Ok(Outcome::Nothing(NothingReason::Unusable(
            Reason::NotYetValid
        )))
    );
    assert_eq!(
        fx.run("alice", NOW + 3_600, vec![]),
        Ok(Outcome::Nothing(NothingReason::Unusable(Reason::Expired)))
    );
}

#[test]
fn nothing_for_users_without_a_pass_or_out_of_scope() {
    let mut fx = Fixture::new();
    assert_eq!(
        fx.run("bob", NOW, vec![typed("bobs password")]),
        Ok(Outcome::Nothing(NothingReason::NoPass))
    );
    fx.policy.scope.exclude_groups = vec!["contractors".into()];
    fx.issue("carol", false);
    assert_eq!(
        fx.run("carol", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::OutOfScope))
    );
    fx.policy.enabled = false;
    assert_eq!(
        fx.run("alice", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::PolicyDisabled))
    );
}

#[test]
fn errors_fail_closed() {
    let fx = Fixture::new();
    assert_eq!(fx.run("mallory", NOW, vec![]), Err(Error::UnknownUser));
    assert!(matches!(
        fx.run("broken", NOW, vec![]),
        Err(Error::Unavailable(_))
    ));
    fx.issue("alice", false);
    assert_eq!(
        fx.run("alice", NOW, vec![Expect::Secret(Err(ConversationFailed))]),
        Err(Error::Conversation)
    );
    assert_eq!(
        fx.run("alice", NOW, vec![Expect::Secret(Ok(None))]),
        Err(Error::Conversation)
    );
}

#[test]
fn corrupt_store_is_unavailable() {
    let fx = Fixture::new();
    std::fs::write(
        &fx.path,
        b"this is not a database, just some bytes that go on for a while.....",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        fx.run("alice", NOW, vec![]),
        Err(Error::Unavailable(_))
    ));
}

#[test]
fn tampered_hash_is_unavailable_not_a_failure() {
    let fx = Fixture::new();
    let mut pass = fx.issue("alice", false);
    pass.id = 43;
    pass.phc =
        "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A".into();
    let mut store = fx.store().unwrap_or_else(|e| panic!("{e}"));
    store
        .put_pass(&pass, &AuditRecord::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        fx.run("alice", NOW, vec![typed(PASS)]),
        Err(Error::Unavailable(_))
    ));
}

fn failures(fx: &Fixture, user: &str) -> Option<u32> {
    fx.store()
        .ok()
        .and_then(|s| s.pass(user).ok().flatten())
        .map(|p| p.failures)
}

fn handed_on(signin: &SignIn) -> Option<&[u8]> {
    signin.hand_on.as_deref().map(Vec::as_slice)
}

#[test]
fn answers_no_pass_could_be_are_handed_on_never_counted() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let huge: &'static str = Box::leak("A".repeat(513).into_boxed_str());
    for answer in [
        "",
        "   ",
        "hunter2!",        // a symbol no pass has
        "Summer2024",      // U is not in the alphabet
        "K7QM9XRT4",       // one symbol short
        "K7QM9XRT4DA",     // one too many
        "\u{e4}bcdefghjk", // not ASCII
        huge,
    ] {
        let signin = fx.sign_in("alice", NOW, FirstPass::Prompt, None, vec![typed(answer)]);
        assert_eq!(
            signin.result,
            Ok(Outcome::Nothing(NothingReason::NotAPass)),
            "{answer:?}"
        );
        assert_eq!(handed_on(&signin), Some(answer.as_bytes()), "{answer:?}");
    }
    assert_eq!(failures(&fx, "alice"), Some(0));
    // still usable: the right pass signs in afterwards
    assert!(matches!(
        fx.run("alice", NOW, vec![typed(PASS), Expect::Info("valid until")]),
        Ok(Outcome::PassSuccess { .. })
    ));
}

#[test]
fn a_pass_shaped_wrong_answer_is_counted_and_handed_on() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let signin = fx.sign_in(
        "alice",
        NOW,
        FirstPass::Prompt,
        None,
        vec![typed("password12")],
    );
    assert_eq!(
        signin.result,
        Ok(Outcome::Failed(Failure::WrongPass {
            failures: 1,
            locked: false
        }))
    );
    assert_eq!(handed_on(&signin), Some(&b"password12"[..]));
}

#[test]
fn the_right_pass_is_not_handed_on() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let signin = fx.sign_in(
        "alice",
        NOW,
        FirstPass::Prompt,
        None,
        vec![typed(PASS), Expect::Info("valid until")],
    );
    assert!(matches!(signin.result, Ok(Outcome::PassSuccess { .. })));
    assert!(signin.hand_on.is_none());
}

#[test]
fn everyone_in_scope_gets_the_one_prompt_and_their_answer_handed_on() {
    let fx = Fixture::new();
    // no pass at all: asked once, the answer goes to the password module
    let signin = fx.sign_in(
        "bob",
        NOW,
        FirstPass::Prompt,
        None,
        vec![typed("s3cret pw")],
    );
    assert_eq!(signin.result, Ok(Outcome::Nothing(NothingReason::NoPass)));
    assert_eq!(handed_on(&signin), Some(&b"s3cret pw"[..]));
    // out of scope: not asked, nothing handed on
    let mut fx = Fixture::new();
    fx.policy.scope.exclude_users = vec!["bob".into()];
    let signin = fx.sign_in("bob", NOW, FirstPass::Prompt, None, vec![]);
    assert_eq!(
        signin.result,
        Ok(Outcome::Nothing(NothingReason::OutOfScope))
    );
    assert!(signin.hand_on.is_none());
}

#[test]
fn pass_only_asks_only_holders_of_a_usable_pass() {
    let mut fx = Fixture::new();
    fx.mode = Mode::PassOnly;
    assert_eq!(
        fx.run("bob", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::NoPass))
    );
    fx.issue("alice", true);
    assert!(matches!(
        fx.run("alice", NOW, vec![typed(PASS), Expect::Info("one-time")]),
        Ok(Outcome::PassSuccess { .. })
    ));
    assert_eq!(
        fx.run("alice", NOW, vec![]),
        Ok(Outcome::Nothing(NothingReason::Unusable(
            Reason::OneTimeUsed
        )))
    );
    // an answer that is not pass-shaped is not a guess here either
    fx.issue("bob", false);
    let signin = fx.sign_in("bob", NOW, FirstPass::Prompt, None, vec![typed("")]);
    assert_eq!(signin.result, Ok(Outcome::Nothing(NothingReason::NotAPass)));
    assert_eq!(failures(&fx, "bob"), Some(0));
}

fn last_audit(fx: &Fixture, user: &str) -> String {
    fx.store()
        .and_then(|s| s.audit(Some(user), 1))
        .unwrap_or_default()
        .pop()
        .map(|a| format!("{} {}", a.event, a.detail))
        .unwrap_or_default()
}

#[test]
fn a_used_one_time_pass_typed_again_is_refused_with_its_cause() {
    let fx = Fixture::new();
    fx.issue("alice", true);
    assert!(matches!(
        fx.run("alice", NOW, vec![typed(PASS), Expect::Info("one-time")]),
        Ok(Outcome::PassSuccess { .. })
    ));
    let again = fx.sign_in("alice", NOW + 5, FirstPass::Prompt, None, vec![typed(PASS)]);
    assert_eq!(
        again.result,
        Ok(Outcome::Failed(Failure::SpentPass(Reason::OneTimeUsed)))
    );
    // handed on: the password module refuses it without asking again
    assert!(again.hand_on.is_some());
    assert_eq!(
        last_audit(&fx, "alice"),
        "signin.pass.failure right pass, but one-time pass already used"
    );
    // a password typed by the same user: no audit, nothing counted
    let password = fx.sign_in(
        "alice",
        NOW + 6,
        FirstPass::Prompt,
        None,
        vec![typed("pw!")],
    );
    assert_eq!(
        password.result,
        Ok(Outcome::Nothing(NothingReason::NotAPass))
    );
    // a pass-shaped wrong answer for a spent pass: not counted either
    assert_eq!(
        fx.run("alice", NOW + 7, vec![typed("ZZZZZZZZZZ")]),
        Ok(Outcome::Nothing(NothingReason::Unusable(
            Reason::OneTimeUsed
        )))
    );
    assert_eq!(failures(&fx, "alice"), Some(0));
}

#[test]
fn expired_locked_and_revoked_passes_name_their_cause() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    assert_eq!(
        fx.run("alice", NOW + 3_600, vec![typed(PASS)]),
        Ok(Outcome::Failed(Failure::SpentPass(Reason::Expired)))
    );
    assert!(last_audit(&fx, "alice").ends_with("right pass, but pass expired"));
    for _ in 0..3 {
        let _ = fx.run("alice", NOW, vec![typed("ZZZZZZZZZZ")]);
    }
    assert_eq!(
        fx.run("alice", NOW, vec![typed(PASS)]),
        Ok(Outcome::Failed(Failure::SpentPass(Reason::Locked)))
    );
    fx.issue("bob", false);
    let mut store = fx.store().unwrap_or_else(|e| panic!("{e}"));
    store
        .revoke(
            "bob",
            NOW,
            &AuditRecord::new(NOW, Event::PassRevoked, "bob", "root"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fx.run("bob", NOW, vec![typed(PASS)]),
        Ok(Outcome::Failed(Failure::SpentPass(Reason::Revoked)))
    );
}

#[test]
fn a_pass_not_valid_yet_is_never_checked() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    // Before its start, even the right pass is no answer: checking it
    // uncounted would let guesses start early.
    assert_eq!(
        fx.run("alice", NOW - 60, vec![typed(PASS)]),
        Ok(Outcome::Nothing(NothingReason::Unusable(
            Reason::NotYetValid
        )))
    );
    assert_eq!(failures(&fx, "alice"), Some(0));
}

#[test]
fn first_pass_options() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let ok = Ok(Outcome::PassSuccess {
        expires: NOW + 3_600,
        one_time: false,
    });
    assert_eq!(
        fx.run_with(
            "alice",
            NOW,
            FirstPass::Use,
            Some(PASS),
            vec![Expect::Info("valid until")]
        ),
        ok
    );
    assert_eq!(
        fx.run_with("alice", NOW, FirstPass::Use, None, vec![]),
        Ok(Outcome::Failed(Failure::NoEarlierToken))
    );
    assert_eq!(
        fx.run_with("alice", NOW, FirstPass::Use, Some("WRONGPASS0"), vec![]),
        Ok(Outcome::Failed(Failure::WrongPass {
            failures: 1,
            locked: false
        }))
    );
    // try_first_pass: an earlier password is no pass: not counted, and not
    // asked for again (one prompt per sign-in); PAM_AUTHTOK already holds it.
    let earlier = fx.sign_in("alice", NOW, FirstPass::Try, Some("unix-password"), vec![]);
    assert_eq!(
        earlier.result,
        Ok(Outcome::Nothing(NothingReason::NotAPass))
    );
    assert!(earlier.hand_on.is_none());
    // a pass-shaped earlier token the person typed is a counted guess
    assert_eq!(
        fx.run_with("alice", NOW, FirstPass::Try, Some("WRONGPASS1"), vec![]),
        Ok(Outcome::Failed(Failure::WrongPass {
            failures: 2,
            locked: false
        }))
    );
    assert_eq!(
        fx.run_with(
            "alice",
            NOW,
            FirstPass::Try,
            Some(PASS),
            vec![Expect::Info("valid")]
        ),
        ok
    );
    // no earlier token: try_first_pass asks
    assert_eq!(
        fx.run_with(
            "alice",
            NOW,
            FirstPass::Try,
            None,
            vec![typed(PASS), Expect::Info("valid")]
        ),
        ok
    );
    assert_eq!(failures(&fx, "alice"), Some(2));
}

#[test]
fn silent_shows_nothing() {
    let fx = Fixture::new();
    fx.issue("alice", false);
    let mut prompt = Scripted::new(vec![typed(PASS)]);
    let attempt = Attempt {
        user: "alice",
        service: "test",
        rhost: "",
        tty: "",
        now: NOW,
        first_pass: FirstPass::Prompt,
        mode: Mode::PasswordOrPass,
        earlier_token: None,
        silent: true,
    };
    let outcome = authenticate(
        &fx.policy,
        &Users,
        || fx.store(),
        &fx.authenticator,
        &mut prompt,
        attempt,
    );
    assert!(matches!(outcome.result, Ok(Outcome::PassSuccess { .. })));
    prompt.finished();
}

// ---- security keys ----------------------------------------------------

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use tap_core::helper::runner::{Death, HelperFailure, SpawnError};
use tap_core::keys::credential::KeyCredential;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, Request, Response, UserVerification,
};
use tap_core::keys::testkit::{auth_data, AuthDataSpec, TestKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    Absent,
    WrongRpId,
    NoTouch,
    CounterRegress,
    Timeout,
    Crash,
    NotInstalled,
}

/// An authenticator in the test process, behind the same trait as the helper.
struct FakeKey {
    key: TestKey,
    credential_id: Vec<u8>,
    counter: Cell<u32>,
    behaviour: Cell<Behaviour>,
    pin: Option<&'static str>,
}

impl FakeKey {
    fn new() -> Self {
        FakeKey {
            key: TestKey::es256(),
            credential_id: vec![0xc1; 24],
            counter: Cell::new(5),
            behaviour: Cell::new(Behaviour::Honest),
            pin: None,
        }
    }

    fn answer(&self, request: &AssertRequest) -> Response {
        let failed = |error| Response::Failed {
            error,
            message: String::new(),
        };
        if !request.allow.contains(&Bytes(self.credential_id.clone())) {
            return failed(HelperError::NoCredentials);
        }
        let verified = match (self.pin, &request.pin) {
            (None, _) => false,
            (Some(_), None) => return failed(HelperError::PinRequired),
            (Some(pin), Some(given)) if given.0.as_str() == pin => true,
            (Some(_), Some(_)) => return failed(HelperError::PinInvalid),
        };
        let behaviour = self.behaviour.get();
        let rp_id = if behaviour == Behaviour::WrongRpId {
            "pam://elsewhere"
        } else {
            request.rp_id.as_str()
        };
        let count = if behaviour == Behaviour::CounterRegress {
            self.counter.get() - 1
        } else {
            self.counter.get() + 1
        };
        self.counter.set(count);
        let mut spec = AuthDataSpec::assertion(rp_id, count);
        if behaviour == Behaviour::NoTouch {
            spec.flags = 0;
        }
        if verified {
            spec.flags |= 0x04;
        }
        let data = auth_data(&spec);
        let signature = self
            .key
            .sign(&[data.as_slice(), &request.client_data_hash.0].concat());
        Response::Asserted {
            credential_id: Bytes(self.credential_id.clone()),
            authenticator_data: Bytes(data),
            signature: Bytes(signature),
        }
    }
}

impl Authenticator for FakeKey {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure> {
        match (self.behaviour.get(), request) {
            (Behaviour::Absent, _) => Ok(Response::Failed {
                error: HelperError::NoDevice,
                message: String::new(),
            }),
            (Behaviour::Timeout, _) => Err(HelperFailure::Timeout),
            (Behaviour::Crash, _) => Err(HelperFailure::Died(Death::Exited(Some(
                std::process::ExitStatus::from_raw(3 << 8),
            )))),
            (Behaviour::NotInstalled, _) => Err(HelperFailure::Spawn(SpawnError::Program {
                path: "/usr/libexec/pam_tap/pam_tap-keyhelper".into(),
                source: std::io::ErrorKind::NotFound.into(),
            })),
            (_, Request::Assert(assert)) => Ok(self.answer(assert)),
            (_, other) => panic!("unexpected request {other:?}"),
        }
    }
}

impl Fixture {
    fn enroll(&self, user: &str) {
        let key = KeyCredential {
            user: user.into(),
            credential_id: self.authenticator.credential_id.clone(),
            public_key: self.authenticator.key.cose(),
            algorithm: -7,
            aaguid: [0; 16],
            sign_count: self.authenticator.counter.get(),
            label: "blue key".into(),
            attestation: "none".into(),
            created: NOW,
            last_used: None,
        };
        let mut store = self.store().unwrap_or_else(|e| panic!("{e}"));
        store
            .add_key(&key, 5, &AuditRecord::default())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn events(&self, user: &str) -> Vec<String> {
        let store = self.store().unwrap_or_else(|e| panic!("{e}"));
        store
            .audit(Some(user), 100)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.event)
            .collect()
    }

    fn key_refused(&self, user: &str) -> bool {
        matches!(
            self.run(user, NOW, vec![Expect::Info(TOUCH_CUE)]),
            Ok(Outcome::Failed(Failure::KeyRefused(_)))
        )
    }
}

#[test]
fn key_signs_in_and_moves_the_counter() {
    let fx = Fixture::new();
    fx.enroll("alice");
    let outcome = fx.run("alice", NOW, vec![Expect::Info(TOUCH_CUE)]);
    assert_eq!(
        outcome,
        Ok(Outcome::KeySuccess {
            label: "blue key".into()
        })
    );
    let stored = fx
        .store()
        .map(|s| s.keys("alice").unwrap_or_default())
        .unwrap_or_default();
    assert_eq!((stored[0].sign_count, stored[0].last_used), (6, Some(NOW)));
    assert_eq!(
        fx.events("alice").last().map(String::as_str),
        Some("signin.key.success")
    );
}

#[test]
fn no_key_plugged_in_falls_through_to_the_pass_or_nothing() {
    let fx = Fixture::new();
    fx.enroll("alice");
    fx.authenticator.behaviour.set(Behaviour::Absent);
    // no pass: the one prompt, for the password module
    assert_eq!(
        fx.run(
            "alice",
            NOW,
            vec![Expect::Info(TOUCH_CUE), typed("alices password")]
        ),
        Ok(Outcome::Nothing(NothingReason::NoPass))
    );
    fx.issue("alice", false);
    let outcome = fx.run(
        "alice",
        NOW,
        vec![
            Expect::Info(TOUCH_CUE),
            typed(PASS),
            Expect::Info("valid until"),
        ],
    );
    assert!(
        matches!(outcome, Ok(Outcome::PassSuccess { .. })),
        "{outcome:?}"
    );
}

#[test]
fn helper_trouble_is_a_failed_sign_in_and_a_missing_helper_fails_closed() {
    let fx = Fixture::new();
    fx.enroll("alice");
    fx.issue("alice", false);
    for behaviour in [Behaviour::Timeout, Behaviour::Crash] {
        fx.authenticator.behaviour.set(behaviour);
        assert!(fx.key_refused("alice"), "{behaviour:?}");
    }
    fx.authenticator.behaviour.set(Behaviour::NotInstalled);
    let outcome = fx.run("alice", NOW, vec![Expect::Info(TOUCH_CUE)]);
    assert!(matches!(outcome, Err(Error::Unavailable(_))), "{outcome:?}");
}

#[test]
fn bad_answers_are_refused_and_a_regressed_counter_is_audited() {
    let fx = Fixture::new();
    fx.enroll("alice");
    for behaviour in [Behaviour::WrongRpId, Behaviour::NoTouch] {
        fx.authenticator.behaviour.set(behaviour);
        assert!(fx.key_refused("alice"), "{behaviour:?}");
    }
    fx.authenticator.counter.set(5);
    fx.authenticator.behaviour.set(Behaviour::CounterRegress);
    assert!(fx.key_refused("alice"));
    assert_eq!(
        fx.events("alice").last().map(String::as_str),
        Some("key.counter_regressed")
    );
}

#[test]
fn a_key_that_is_not_enrolled_is_refused() {
    let mut fx = Fixture::new();
    fx.enroll("alice");
    fx.authenticator.credential_id = vec![0xee; 24];
    assert!(fx.key_refused("alice"));
}

#[test]
fn pin_is_asked_when_the_key_wants_one_and_uv_is_enforced() {
    let mut fx = Fixture::new();
    fx.authenticator.pin = Some("4321");
    fx.enroll("alice");
    let outcome = fx.run(
        "alice",
        NOW,
        vec![Expect::Info(TOUCH_CUE), Expect::Pin("4321")],
    );
    assert!(
        matches!(outcome, Ok(Outcome::KeySuccess { .. })),
        "{outcome:?}"
    );
    let wrong = fx.run(
        "alice",
        NOW,
        vec![Expect::Info(TOUCH_CUE), Expect::Pin("0000")],
    );
    assert!(
        matches!(wrong, Ok(Outcome::Failed(Failure::KeyRefused(_)))),
        "{wrong:?}"
    );

    // UV required, and a key that verifies nobody: refused.
    let mut strict = Fixture::new();
    strict.policy.keys.user_verification = UserVerification::Required;
    strict.enroll("alice");
    assert!(strict.key_refused("alice"));
}
