//! Self-service proof by touching an enrolled key: the daemon issues the
//! challenge (bound to the caller, the user and what it is for), tapctl's
//! helper answers, and the daemon verifies and moves the key's counter,
//! as a key sign-in does.

use super::record::{record, store_failed};
use super::Ask;
use crate::context::{ChallengePurpose, PendingChallenge};
use tap_core::audit::Event;
use tap_core::enroll::{proof_request, verify_proof};
use tap_core::keys::credential::KeyCredential;
use tap_core::policy::Policy;
use tap_protocol::admin::{AdminReply, KeyHelper, KeyProof};
use tap_protocol::{ErrorKind, Refusal};

/// Time to type a PIN and touch, beyond the helper's own touch timeout.
const SLACK_SECS: i64 = 120;

/// `Ok(Some(reply))`: ask the caller to prove a key first. `Ok(None)`: the
/// proof was given and holds.
pub fn require(
    ask: &mut Ask<'_, '_>,
    user: &str,
    keys: &[KeyCredential],
    purpose: &str,
    proof: Option<&KeyProof>,
) -> Result<Option<AdminReply>, Refusal> {
    let policy = ask.ctx.policy.clone();
    let Some(proof) = proof else {
        let challenge = new_challenge(ask, user, purpose)?;
        return Ok(Some(AdminReply::ProveKey {
            request: proof_request(&policy, keys, challenge),
            helper: key_helper(&policy),
        }));
    };
    let challenge = take_challenge(ask, user, &proof.challenge.0, purpose)?;
    match verify_proof(&policy, keys, &challenge, proof) {
        Ok(proven) => {
            let audit = record(
                ask,
                Event::KeySignIn,
                user,
                format!("key {}", proven.key.label),
            );
            let now = ask.ctx.now;
            if ask
                .ctx
                .store
                .record_key_use(proven.key, proven.sign_count, now, &audit)
                .map_err(store_failed)?
            {
                return Ok(None);
            }
            let audit = record(
                ask,
                Event::KeyCounterRaced,
                user,
                "another sign-in used this key's counter value first".into(),
            );
            ask.ctx.store.append_audit(&audit).map_err(store_failed)?;
            Err(Refusal::new(
                ErrorKind::NotPermitted,
                "your security key was not accepted: another sign-in used it at the same time",
            ))
        }
        Err(refusal) => {
            let audit = record(ask, refusal.event(), user, refusal.audit_detail());
            ask.ctx.store.append_audit(&audit).map_err(store_failed)?;
            Err(Refusal::new(ErrorKind::NotPermitted, refusal.to_string()))
        }
    }
}

/// The helper tapctl runs, as the daemon's policy names it.
pub fn key_helper(policy: &Policy) -> KeyHelper {
    KeyHelper {
        program: policy.keys.helper.display().to_string(),
        touch_timeout_secs: policy.keys.touch_timeout.as_secs(),
    }
}

/// 32 fresh bytes, remembered for this caller, user and purpose.
pub fn new_challenge(
    ask: &mut Ask<'_, '_>,
    user: &str,
    purpose: &str,
) -> Result<[u8; 32], Refusal> {
    let mut challenge = [0u8; 32];
    tap_core::keys::random_bytes(&mut challenge)
        .map_err(|e| Refusal::new(ErrorKind::Internal, e.to_string()))?;
    let timeout = i64::try_from(ask.ctx.policy.keys.touch_timeout.as_secs()).unwrap_or(i64::MAX);
    let pending = PendingChallenge {
        user: user.to_string(),
        uid: ask.caller.uid,
        expires: ask
            .ctx
            .now
            .saturating_add(timeout)
            .saturating_add(SLACK_SECS),
        purpose: ChallengePurpose::SelfService(purpose.to_string()),
        offline: false,
    };
    if !ask
        .ctx
        .challenges
        .insert(challenge.to_vec(), pending, ask.ctx.now)
    {
        return Err(Refusal::new(
            ErrorKind::Busy,
            "too many key challenges are outstanding; try again in a minute",
        ));
    }
    Ok(challenge)
}

/// Takes a challenge this caller got for this user and purpose. Any other
/// (unknown, expired, someone else's, for something else) is not found.
pub fn take_challenge(
    ask: &mut Ask<'_, '_>,
    user: &str,
    challenge: &[u8],
    purpose: &str,
) -> Result<[u8; 32], Refusal> {
    let not_found = || {
        Refusal::new(
            ErrorKind::NotFound,
            "that key challenge is unknown or has expired; run the command again",
        )
    };
    let pending = ask
        .ctx
        .challenges
        .take(challenge, ask.ctx.now)
        .ok_or_else(not_found)?;
    let expected = ChallengePurpose::SelfService(purpose.to_string());
    if pending.uid != ask.caller.uid || pending.user != user || pending.purpose != expected {
        return Err(not_found());
    }
    <[u8; 32]>::try_from(challenge).map_err(|_| not_found())
}
