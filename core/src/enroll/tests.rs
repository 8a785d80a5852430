use super::client::{call_with_pin, proof, registration, KeyFailure};
use super::*;
use crate::audit::Event;
use crate::helper::runner::HelperFailure;
use crate::keys::credential::KeyCredential;
use crate::keys::testkit::{assertion, packed_registration, TestKey, AAGUID};
use crate::keys::VerifyError;
use crate::policy::{format_aaguid, Policy};
use crate::signin::{Authenticator, ConversationFailed, Prompt, PIN_PROMPT};
use std::cell::RefCell;
use tap_protocol::admin::Registration;
use tap_protocol::helper::{AssertRequest, Bytes, HelperError, Request, Response};
use zeroize::Zeroizing;

const CHALLENGE: [u8; 32] = [0x5a; 32];
const CREDENTIAL_ID: &[u8] = &[0x1d; 48];

fn policy() -> Policy {
    Policy::default()
}

fn registered(key: &TestKey, challenge: &[u8; 32], rp_id: &str) -> Registration {
    let (data, statement) = packed_registration(key, rp_id, CREDENTIAL_ID, challenge);
    Registration {
        authenticator_data: Bytes(data),
        attestation_format: "packed".into(),
        attestation_statement: Bytes(statement),
    }
}

fn enrolled(key: &TestKey, sign_count: u32) -> KeyCredential {
    KeyCredential {
        user: "alice".into(),
        credential_id: CREDENTIAL_ID.to_vec(),
        public_key: key.cose(),
        algorithm: key.algorithm().cose_id(),
        aaguid: AAGUID,
        sign_count,
        label: "blue".into(),
        attestation: "none: unattested".into(),
        created: 1,
        last_used: None,
    }
}

fn asserted(policy: &Policy, key: &TestKey, challenge: &[u8; 32], count: u32) -> Response {
    let (data, signature) = assertion(key, policy.keys.rp_id(), challenge, count);
    Response::Asserted {
        credential_id: Bytes(CREDENTIAL_ID.to_vec()),
        authenticator_data: Bytes(data),
        signature: Bytes(signature),
    }
}

#[test]
fn labels_are_short_printable_single_lines() {
    assert_eq!(check_label(None), Ok(()));
    assert_eq!(check_label(Some("blue YubiKey")), Ok(()));
    assert_eq!(check_label(Some("")), Err(BadLabel));
    assert_eq!(check_label(Some("a\nb")), Err(BadLabel));
    assert_eq!(check_label(Some(&"x".repeat(65))), Err(BadLabel));
    assert_eq!(check_label(Some(&"é".repeat(64))), Ok(()));
}

#[test]
fn the_registration_request_excludes_enrolled_keys() {
    let policy = policy();
    let key = TestKey::es256();
    let request = registration_request(&policy, "alice", &[enrolled(&key, 0)], CHALLENGE, [7; 16]);
    assert_eq!(request.rp_id, policy.keys.rp_id());
    assert_eq!(request.client_data_hash.0, CHALLENGE);
    assert_eq!(request.exclude, vec![Bytes(CREDENTIAL_ID.to_vec())]);
    assert_eq!(request.algorithms, vec![-7, -8]);
    assert!(request.pin.is_none());
}

#[test]
fn a_good_registration_makes_the_key_to_store() {
    let policy = policy();
    for key in [TestKey::es256(), TestKey::eddsa()] {
        let answer = registered(&key, &CHALLENGE, policy.keys.rp_id());
        let stored = verified_key(&policy, "alice", &CHALLENGE, &answer, None, 2, 9).unwrap();
        assert_eq!(stored.user, "alice");
        assert_eq!(stored.credential_id, CREDENTIAL_ID);
        assert_eq!(stored.public_key, key.cose());
        assert_eq!(stored.label, "key 3");
        assert_eq!(stored.sign_count, 1);
        assert_eq!(stored.created, 9);
        assert!(
            stored.attestation.starts_with("packed: "),
            "{}",
            stored.attestation
        );
        assert!(enrolled_detail(&stored).starts_with("key key 3 ("));
        let named = verified_key(&policy, "alice", &CHALLENGE, &answer, Some("blue"), 0, 9);
        assert_eq!(named.map(|k| k.label), Ok("blue".to_string()));
    }
}

#[test]
fn a_registration_for_another_challenge_or_party_is_refused() {
    let policy = policy();
    let key = TestKey::es256();
    let other_challenge = registered(&key, &[1; 32], policy.keys.rp_id());
    let refused = verified_key(&policy, "alice", &CHALLENGE, &other_challenge, None, 0, 9);
    assert_eq!(
        refused,
        Err(EnrollRefusal::Verify(
            VerifyError::AttestationSignatureInvalid
        ))
    );
    let other_party = registered(&key, &CHALLENGE, "pam://elsewhere");
    let refused = verified_key(&policy, "alice", &CHALLENGE, &other_party, None, 0, 9).unwrap_err();
    assert_eq!(refused.audit_detail(), "rp_id_mismatch");
    assert!(
        refused.to_string().contains("another relying party"),
        "{refused}"
    );
}

#[test]
fn a_model_the_policy_does_not_list_is_refused() {
    let mut policy = policy();
    policy.keys.allowed_aaguids = vec!["00000000-0000-0000-0000-000000000001".into()];
    let key = TestKey::es256();
    let answer = registered(&key, &CHALLENGE, policy.keys.rp_id());
    let refused = verified_key(&policy, "alice", &CHALLENGE, &answer, None, 0, 9).unwrap_err();
    let model = format_aaguid(&AAGUID);
    assert_eq!(refused, EnrollRefusal::ModelNotAllowed(model.clone()));
    assert_eq!(refused.audit_detail(), format!("model {model} not allowed"));
    policy.keys.allowed_aaguids.push(model);
    assert!(verified_key(&policy, "alice", &CHALLENGE, &answer, None, 0, 9).is_ok());
}

#[test]
fn a_proof_is_a_fresh_assertion_by_an_allowed_key() {
    let policy = policy();
    let key = TestKey::es256();
    let keys = [enrolled(&key, 4)];
    let request = proof_request(&policy, &keys, CHALLENGE);
    assert_eq!(request.allow, vec![Bytes(CREDENTIAL_ID.to_vec())]);

    let good = proof(&CHALLENGE, asserted(&policy, &key, &CHALLENGE, 5)).unwrap();
    let proven = verify_proof(&policy, &keys, &CHALLENGE, &good).unwrap();
    assert_eq!((proven.key.label.as_str(), proven.sign_count), ("blue", 5));

    // Signed over another challenge.
    let stale = proof(&CHALLENGE, asserted(&policy, &key, &[2; 32], 5)).unwrap();
    let refused = verify_proof(&policy, &keys, &CHALLENGE, &stale).unwrap_err();
    assert_eq!(refused.event(), Event::KeySignInFailed);
    assert!(
        refused.audit_detail().starts_with("signature_invalid"),
        "{refused:?}"
    );

    // A counter that did not move: a possible clone.
    let replay = proof(&CHALLENGE, asserted(&policy, &key, &CHALLENGE, 4)).unwrap();
    let refused = verify_proof(&policy, &keys, &CHALLENGE, &replay).unwrap_err();
    assert_eq!(refused.event(), Event::KeyCounterRegressed);
    assert!(refused.audit_detail().contains("possible cloned key blue"));

    // Signed by a key that is not among the allowed ones.
    let mut stranger = good.clone();
    stranger.credential_id = Bytes(vec![9; 16]);
    assert_eq!(
        verify_proof(&policy, &keys, &CHALLENGE, &stranger).unwrap_err(),
        ProofRefusal::NotEnrolled
    );
    assert!(verify_proof(&policy, &[], &CHALLENGE, &good).is_err());
}

/// A helper that answers from a script and records what it was asked.
struct Scripted {
    answers: RefCell<Vec<Result<Response, HelperFailure>>>,
    asked: RefCell<Vec<Request>>,
}

impl Scripted {
    fn new(mut answers: Vec<Result<Response, HelperFailure>>) -> Self {
        answers.reverse();
        Scripted {
            answers: RefCell::new(answers),
            asked: RefCell::new(Vec::new()),
        }
    }
}

impl Authenticator for Scripted {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure> {
        self.asked.borrow_mut().push(request.clone());
        self.answers
            .borrow_mut()
            .pop()
            .expect("more calls than scripted")
    }
}

struct Typed(Vec<Option<&'static str>>, usize);

impl Prompt for Typed {
    fn secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed> {
        assert_eq!(prompt, PIN_PROMPT);
        self.1 += 1;
        let answer = self.0.remove(0);
        Ok(answer.map(|a| Zeroizing::new(a.as_bytes().to_vec())))
    }
    fn info(&mut self, _: &str) -> Result<(), ConversationFailed> {
        Ok(())
    }
}

fn pin_required() -> Result<Response, HelperFailure> {
    Ok(Response::Failed {
        error: HelperError::PinRequired,
        message: "PIN".into(),
    })
}

fn assert_request() -> Request {
    Request::Assert(AssertRequest {
        rp_id: "pam://h".into(),
        client_data_hash: Bytes(CHALLENGE.to_vec()),
        allow: vec![],
        user_verification: Default::default(),
        pin: None,
    })
}

#[test]
fn the_pin_is_asked_once_and_sent_with_the_second_call() {
    let policy = policy();
    let key = TestKey::es256();
    let helper = Scripted::new(vec![
        pin_required(),
        Ok(asserted(&policy, &key, &CHALLENGE, 1)),
    ]);
    let mut typed = Typed(vec![Some("1234")], 0);
    let answer = call_with_pin(&helper, assert_request(), &mut typed).unwrap();
    assert!(matches!(answer, Response::Asserted { .. }));
    assert_eq!(typed.1, 1);
    let asked = helper.asked.borrow();
    match &asked[..] {
        [Request::Assert(first), Request::Assert(second)] => {
            assert!(first.pin.is_none());
            assert_eq!(second.pin.as_ref().map(|p| p.0.as_str()), Some("1234"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_second_pin_request_ends_the_call_and_no_pin_is_not_sent() {
    // The key asks again (the PIN was not taken): no second prompt, no loop.
    let helper = Scripted::new(vec![pin_required(), pin_required()]);
    let mut typed = Typed(vec![Some("1234")], 0);
    let failed = call_with_pin(&helper, assert_request(), &mut typed).unwrap_err();
    assert!(matches!(
        failed,
        KeyFailure::Refused {
            error: HelperError::PinRequired,
            ..
        }
    ));
    assert_eq!(typed.1, 1);

    let helper = Scripted::new(vec![pin_required()]);
    let mut nothing = Typed(vec![Some("")], 0);
    assert!(matches!(
        call_with_pin(&helper, assert_request(), &mut nothing).unwrap_err(),
        KeyFailure::NoPin
    ));
    assert_eq!(helper.asked.borrow().len(), 1);
}

#[test]
fn helper_failures_and_wrong_answers_are_typed() {
    let helper = Scripted::new(vec![Err(HelperFailure::Timeout)]);
    let failed = call_with_pin(&helper, assert_request(), &mut Typed(vec![], 0)).unwrap_err();
    assert!(matches!(failed, KeyFailure::Helper(HelperFailure::Timeout)));
    assert!(failed.to_string().contains("did not answer in time"));

    let helper = Scripted::new(vec![Ok(Response::Failed {
        error: HelperError::NoDevice,
        message: String::new(),
    })]);
    let failed = call_with_pin(&helper, assert_request(), &mut Typed(vec![], 0)).unwrap_err();
    assert!(failed.to_string().contains("plug one in"), "{failed}");

    let present = Response::Present { pin_set: false };
    assert!(matches!(
        registration(present.clone()),
        Err(KeyFailure::Unexpected(_))
    ));
    assert!(matches!(
        proof(&CHALLENGE, present),
        Err(KeyFailure::Unexpected(_))
    ));
}
