//! `enroll`: a security key for the caller, and only for the caller. The
//! daemon checks the window (or a proven key), issues the registration
//! challenge, and verifies and stores the answer tapctl's helper gives.

use super::caller::admitted;
use super::keys::{no_window, window_open, WINDOW_CLOSED_IN_STORE};
use super::proof;
use super::record::{record, store_failed};
use super::Ask;
use tap_core::audit::Event;
use tap_core::enroll::{check_label, enrolled_detail, registration_request, verified_key};
use tap_core::keys::credential::KeyCredential;
use tap_core::store::AddKey;
use tap_protocol::admin::{AdminReply, KeyProof, Registration};
use tap_protocol::{ErrorKind, Refusal};

const PROOF_PURPOSE: &str = "enroll";
const REGISTER_PURPOSE: &str = "register";

fn not_permitted(message: String) -> Refusal {
    Refusal::new(ErrorKind::NotPermitted, message)
}

/// The caller, if the policy covers them and their label is usable; and
/// their keys, if they may have one more.
fn preconditions(
    ask: &mut Ask<'_, '_>,
    label: Option<&str>,
) -> Result<(String, Vec<KeyCredential>), Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = ask.caller.name.clone();
    if !policy.enabled || !admitted(&policy, ask.users, &user)? {
        return Err(not_permitted(format!("the policy does not cover {user}")));
    }
    check_label(label).map_err(|e| Refusal::new(ErrorKind::BadRequest, e.to_string()))?;
    let keys = ask.ctx.store.keys(&user).map_err(store_failed)?;
    if keys.len() >= policy.keys.max_keys {
        return Err(not_permitted(format!(
            "{user} has {} keys, the most the policy allows; remove one first (tapctl keys remove ID)",
            keys.len()
        )));
    }
    Ok((user, keys))
}

pub fn begin(
    ask: &mut Ask<'_, '_>,
    label: Option<&str>,
    given: Option<&KeyProof>,
) -> Result<AdminReply, Refusal> {
    let (user, keys) = preconditions(ask, label)?;
    if !window_open(ask, &user)? {
        if keys.is_empty() {
            return Err(no_window(ask, &user));
        }
        if let Some(ask_for_proof) = proof::require(ask, &user, &keys, PROOF_PURPOSE, given)? {
            return Ok(ask_for_proof);
        }
    }
    let challenge = proof::new_challenge(ask, &user, REGISTER_PURPOSE)?;
    let mut user_handle = [0u8; 16];
    tap_core::keys::random_bytes(&mut user_handle)
        .map_err(|e| Refusal::new(ErrorKind::Internal, e.to_string()))?;
    Ok(AdminReply::Register {
        request: registration_request(&ask.ctx.policy, &user, &keys, challenge, user_handle),
        helper: proof::key_helper(&ask.ctx.policy),
    })
}

pub fn finish(
    ask: &mut Ask<'_, '_>,
    challenge: &[u8],
    label: Option<&str>,
    answer: &Registration,
) -> Result<AdminReply, Refusal> {
    let (user, keys) = preconditions(ask, label)?;
    let challenge = proof::take_challenge(ask, &user, challenge, REGISTER_PURPOSE)?;
    let policy = ask.ctx.policy.clone();
    let key = match verified_key(
        &policy,
        &user,
        &challenge,
        answer,
        label,
        keys.len(),
        ask.ctx.now,
    ) {
        Ok(key) => key,
        Err(refusal) => {
            let audit = record(ask, Event::KeyEnrollRefused, &user, refusal.audit_detail());
            ask.ctx.store.append_audit(&audit).map_err(store_failed)?;
            return Err(not_permitted(refusal.to_string()));
        }
    };
    let audit = record(ask, Event::KeyEnrolled, &user, enrolled_detail(&key));
    match ask
        .ctx
        .store
        .add_key(&key, policy.keys.max_keys, &audit)
        .map_err(store_failed)?
    {
        AddKey::Added => Ok(AdminReply::Enrolled {
            user,
            label: key.label,
        }),
        AddKey::TooMany => Err(not_permitted(
            "you reached the policy's max_keys meanwhile".into(),
        )),
        AddKey::Duplicate => Err(Refusal::new(
            ErrorKind::BadRequest,
            "this security key is already registered",
        )),
        AddKey::WindowClosed => Err(not_permitted(WINDOW_CLOSED_IN_STORE.into())),
    }
}
