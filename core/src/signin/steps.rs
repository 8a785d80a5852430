//! The daemon's half of a sign-in: each step re-checks the policy's scope
//! and reads the store afresh, so a client that skips or repeats a step
//! gains nothing. No step waits on anyone: the person types and touches
//! between steps, not during one.

use super::{Error, Failure, NothingReason, Outcome, Unavailable};
use crate::accounts::Directory;
use crate::audit::{AuditRecord, Event};
use crate::hashing::{self, HashError, PassProof};
use crate::keys::credential::KeyCredential;
use crate::keys::protocol::UserVerification;
use crate::keys::verify::{verify_assertion, AssertionAnswer, StoredCredential, VerifyError};
use crate::pass::PassRecord;
use crate::passcode;
use crate::policy::Policy;
use crate::store::Store;
use crate::timefmt::{self, Timestamp};
use tap_protocol::signin::{KeyAnswer, KeyChallenge, Mode, Origin, PassState, Plan, Verdict};

/// Who asks, for whom, from where, and when: what every audit record of
/// the step carries.
pub struct Requester<'a> {
    pub user: &'a str,
    pub origin: &'a Origin,
    /// The peer as the socket names it (`pid=… uid=…`); empty in process.
    pub peer: &'a str,
    pub now: Timestamp,
}

impl<'a> Requester<'a> {
    pub fn new(user: &'a str, origin: &'a Origin, peer: &'a str, now: Timestamp) -> Self {
        Requester {
            user,
            origin,
            peer,
            now,
        }
    }

    fn record(&self, event: Event, detail: String) -> AuditRecord {
        let mut audit = AuditRecord::new(self.now, event, self.user, self.user).detail(detail);
        audit.service = self.origin.service.clone();
        audit.rhost = self.origin.rhost.clone();
        audit.tty = self.origin.tty.clone();
        audit.peer = self.peer.to_string();
        audit
    }
}

/// The Argon2 check, so the daemon can bound how many run at once.
pub trait PassVerifier {
    /// `Some(proof)` for a right pass.
    fn verify(&self, canonical: &str, phc: &str) -> Result<Option<PassProof>, HashError>;
}

/// Hashes right here, with no bound.
pub struct DirectVerifier;

impl PassVerifier for DirectVerifier {
    fn verify(&self, canonical: &str, phc: &str) -> Result<Option<PassProof>, HashError> {
        hashing::verify_in(canonical, phc, &mut hashing::HashMemory::default())
    }
}

/// `Some(reason)` when the sign-in ends before the store: the policy is
/// off or does not cover the user. An unknown user is an error.
pub fn admit(
    policy: &Policy,
    directory: &dyn Directory,
    user: &str,
) -> Result<Option<NothingReason>, Error> {
    if !policy.enabled {
        return Ok(Some(NothingReason::PolicyDisabled));
    }
    let account = directory
        .user(user)
        .map_err(|e| Error::Unavailable(Unavailable::Directory(e)))?
        .ok_or(Error::UnknownUser)?;
    let admitted = policy
        .scope
        .admits(user, || directory.groups(&account))
        .map_err(|e| Error::Unavailable(Unavailable::Directory(e)))?;
    Ok((!admitted).then_some(NothingReason::OutOfScope))
}

/// A decision with nothing to show the person.
fn decided(outcome: Outcome) -> Verdict {
    Verdict {
        outcome,
        info: None,
    }
}

fn nothing_plan(reason: NothingReason) -> Plan {
    Plan {
        nothing: Some(reason),
        key: None,
        prompt: String::new(),
        pass: None,
        offline: false,
    }
}

/// Step 1's result for the caller.
pub struct Planned {
    pub plan: Plan,
    /// The challenge issued for the user's keys: the caller keeps it as
    /// pending and accepts one answer to it.
    pub challenge: Option<[u8; 32]>,
    /// The user's keys as the store gave them; None when the sign-in ended
    /// before the store was read.
    pub keys: Option<Vec<KeyCredential>>,
}

/// Step 1. With keys enrolled it issues a fresh challenge.
pub fn plan(
    policy: &Policy,
    directory: &dyn Directory,
    store: &mut dyn Store,
    requester: &Requester<'_>,
    mode: Mode,
) -> Result<Planned, Error> {
    if let Some(reason) = admit(policy, directory, requester.user)? {
        return Ok(Planned {
            plan: nothing_plan(reason),
            challenge: None,
            keys: None,
        });
    }
    let (keys, pass) = store.keys_and_pass(requester.user)?;
    let mut issued = None;
    let key = if keys.is_empty() {
        None
    } else {
        let mut challenge = [0u8; 32];
        crate::keys::random_bytes(&mut challenge)
            .map_err(|e| Error::Unavailable(Unavailable::Random(e)))?;
        issued = Some(challenge);
        // The same assertion request as a key proof: one challenge for
        // the user's enrolled keys.
        Some(KeyChallenge {
            request: crate::enroll::proof::proof_request(policy, &keys, challenge),
        })
    };
    let pass = pass.map(|pass| PassState {
        reason: pass.usability(true, requester.now),
        length: pass.length,
    });
    let prompt = match mode {
        Mode::PasswordOrPass => policy.pass.prompt.clone(),
        Mode::PassOnly => policy.pass.pass_only_prompt.clone(),
    };
    Ok(Planned {
        plan: Plan {
            nothing: None,
            key,
            prompt,
            pass,
            offline: false,
        },
        challenge: issued,
        keys: Some(keys),
    })
}

/// Step 2: the helper's answer to `challenge`, which the caller has taken
/// from its pending challenges for this user (each is answered once).
pub fn key_answer(
    policy: &Policy,
    directory: &dyn Directory,
    store: &mut dyn Store,
    requester: &Requester<'_>,
    challenge: &[u8; 32],
    answer: KeyAnswer,
) -> Result<Verdict, Error> {
    if let Some(reason) = admit(policy, directory, requester.user)? {
        return Ok(decided(Outcome::Nothing(reason)));
    }
    let refuse = |store: &mut dyn Store, event: Event, detail: String| -> Result<Verdict, Error> {
        store.append_audit(&requester.record(event, detail.clone()))?;
        Ok(decided(Outcome::Failed(Failure::KeyRefused(detail))))
    };
    let (credential_id, authenticator_data, signature) = match answer {
        KeyAnswer::Failed { why } => return refuse(store, Event::KeySignInFailed, why),
        KeyAnswer::Asserted {
            credential_id,
            authenticator_data,
            signature,
        } => (credential_id, authenticator_data, signature),
    };
    let keys = store.keys(requester.user)?;
    let Some(key) = keys.iter().find(|k| k.credential_id == credential_id.0) else {
        return refuse(
            store,
            Event::KeySignInFailed,
            "a key that is not enrolled for this user answered".into(),
        );
    };
    let stored = StoredCredential {
        credential_id: &key.credential_id,
        public_key: &key.public_key,
        sign_count: key.sign_count,
    };
    let answer = AssertionAnswer {
        credential_id: &credential_id.0,
        authenticator_data: &authenticator_data.0,
        signature: &signature.0,
    };
    let uv_required = policy.keys.user_verification == UserVerification::Required;
    match verify_assertion(
        &stored,
        policy.keys.rp_id(),
        challenge,
        uv_required,
        &answer,
    ) {
        Ok(verified) => {
            let audit = requester.record(Event::KeySignIn, format!("key {}", key.label));
            if store.record_key_use(key, verified.sign_count, requester.now, &audit)? {
                Ok(decided(Outcome::KeySuccess {
                    label: key.label.clone(),
                }))
            } else {
                refuse(
                    store,
                    Event::KeyCounterRaced,
                    "another sign-in used this key's counter value first".into(),
                )
            }
        }
        Err(error @ VerifyError::SignCountNotIncreased { .. }) => refuse(
            store,
            Event::KeyCounterRegressed,
            format!("possible cloned key {}: {error}", key.label),
        ),
        Err(error) => refuse(
            store,
            Event::KeySignInFailed,
            format!("{}: {error}", error.code()),
        ),
    }
}

/// Step 3: an answer the client found pass-shaped. Checked again here
/// against the pass as it is now.
pub fn check_pass(
    policy: &Policy,
    directory: &dyn Directory,
    store: &mut dyn Store,
    verifier: &dyn PassVerifier,
    requester: &Requester<'_>,
    typed: &[u8],
) -> Result<Verdict, Error> {
    if let Some(reason) = admit(policy, directory, requester.user)? {
        return Ok(decided(Outcome::Nothing(reason)));
    }
    let Some(pass) = store.pass(requester.user)? else {
        return Ok(decided(Outcome::Nothing(NothingReason::NoPass)));
    };
    // Only an answer that could be this pass is a guess at it: anything
    // else is a password, never hashed here and never counted.
    let Ok(canonical) = passcode::shaped(typed, pass.length) else {
        return Ok(decided(Outcome::Nothing(NothingReason::NotAPass)));
    };
    let reason = pass.usability(true, requester.now);
    if !reason.usable() {
        return spent_pass(store, verifier, requester, &pass, reason, &canonical).map(decided);
    }

    if let Some(proof) = verifier
        .verify(&canonical, &pass.phc)
        .map_err(|e| Error::Unavailable(Unavailable::Hash(e)))?
    {
        let enroll_until = pass.enroll_window_end(requester.now, policy.pass.enroll_window);
        let detail = format!(
            "{}enrollment window open until {}",
            if pass.one_time {
                "one-time pass used; "
            } else {
                ""
            },
            timefmt::to_rfc3339(enroll_until)
        );
        let audit = requester.record(Event::PassSignIn, detail);
        if !store.record_success(&pass, &proof, requester.now, enroll_until, &audit)? {
            store.append_audit(&requester.record(
                Event::PassSignInFailed,
                "right pass, but no longer usable".into(),
            ))?;
            return Ok(decided(Outcome::Failed(Failure::NoLongerUsable)));
        }
        return Ok(Verdict {
            outcome: Outcome::PassSuccess {
                expires: pass.expires,
                one_time: pass.one_time,
            },
            info: Some(welcome(&pass, enroll_until)),
        });
    }
    let max = policy.pass.max_failures;
    let count = store.record_failure(requester.user, pass.id, requester.now, max, &|count| {
        let failure = requester.record(
            Event::PassSignInFailed,
            format!("wrong pass, failure {} of {max}", count.failures),
        );
        let locked = count.locked_now.then(|| {
            requester.record(
                Event::PassLocked,
                format!("locked after {} wrong tries", count.failures),
            )
        });
        std::iter::once(failure).chain(locked).collect()
    })?;
    Ok(decided(Outcome::Failed(Failure::WrongPass {
        failures: count.failures,
        locked: count.locked_now,
    })))
}

/// A pass-shaped answer for a pass that is not usable now. A pass that can
/// never be used again is checked, so the audit can tell an administrator
/// that the person typed their used, locked, expired or revoked pass; no
/// guess at such a pass can sign anyone in, so nothing is counted. A pass
/// not valid yet is never checked: it will become usable, and an uncounted
/// check would let its guesses start early.
fn spent_pass(
    store: &mut dyn Store,
    verifier: &dyn PassVerifier,
    requester: &Requester<'_>,
    pass: &PassRecord,
    reason: crate::pass::Reason,
    canonical: &str,
) -> Result<Outcome, Error> {
    if !reason.is_final()
        || verifier
            .verify(canonical, &pass.phc)
            .map_err(|e| Error::Unavailable(Unavailable::Hash(e)))?
            .is_none()
    {
        return Ok(Outcome::Nothing(NothingReason::Unusable(reason)));
    }
    store.append_audit(&requester.record(
        Event::PassSignInFailed,
        format!("right pass, but {}", reason.cause()),
    ))?;
    Ok(Outcome::Failed(Failure::SpentPass(reason)))
}

/// Short and plain: some clients show it beside the next prompt, some not
/// at all, and none renders markup.
fn welcome(pass: &PassRecord, enroll_until: Timestamp) -> String {
    if pass.one_time {
        format!(
            "Signed in with a one-time Temporary Access Pass. To register a security key before {}, run: tapctl enroll",
            timefmt::to_human(enroll_until)
        )
    } else {
        format!(
            "Signed in with a Temporary Access Pass, valid until {}. To register a security key, run: tapctl enroll",
            timefmt::to_human(pass.expires)
        )
    }
}
