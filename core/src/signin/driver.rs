//! The client's half of a sign-in (inside the PAM module): ask, run the key
//! helper, tell a password from a pass, and leave every decision to a
//! `SignInService` (tapd over its socket; in process for tests).

use super::{
    Attempt, Error, Failure, FirstPass, Mode, NothingReason, Outcome, Prompt, SignIn, Unavailable,
};
use crate::enroll::client::{call_with_pin, KeyFailure};
use crate::helper::Authenticator;
use crate::helper::HelperFailure;
use crate::keys::protocol::{Bytes, HelperError, Request, Response};
use crate::pass::Reason;
use crate::passcode;
use crate::store::StoreError;
use tap_protocol::secret::Secret;
use tap_protocol::signin::{KeyAnswer, KeyChallenge, Origin, Plan, Verdict};
use zeroize::Zeroizing;

pub use crate::enroll::client::PIN_PROMPT;
pub const TOUCH_CUE: &str = "Touch your security key.";

/// The daemon's three sign-in steps (see `tap_protocol::signin`).
pub trait SignInService {
    fn plan(&mut self, user: &str, mode: Mode, origin: &Origin) -> Result<Plan, Error>;
    fn key_answer(
        &mut self,
        user: &str,
        challenge: &Bytes,
        answer: KeyAnswer,
        origin: &Origin,
    ) -> Result<Verdict, Error>;
    fn check_pass(&mut self, user: &str, pass: Secret, origin: &Origin) -> Result<Verdict, Error>;
}

/// One sign-in, driven against `service`.
pub fn drive(
    service: &mut dyn SignInService,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: Attempt<'_>,
) -> SignIn {
    let mut typed_here = None;
    let result = decide(service, authenticator, prompt, &attempt, &mut typed_here);
    let signed_in = matches!(
        result,
        Ok(Outcome::PassSuccess { .. } | Outcome::KeySuccess { .. })
    );
    SignIn {
        result,
        hand_on: if signed_in { None } else { typed_here },
    }
}

fn decide(
    service: &mut dyn SignInService,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: &Attempt<'_>,
    typed_here: &mut Option<Zeroizing<Vec<u8>>>,
) -> Result<Outcome, Error> {
    let origin = Origin {
        service: attempt.service.to_string(),
        rhost: attempt.rhost.to_string(),
        tty: attempt.tty.to_string(),
    };
    let plan = service.plan(attempt.user, attempt.mode, &origin)?;
    if let Some(reason) = plan.nothing {
        return Ok(Outcome::Nothing(reason));
    }
    // Keys first: a user who has one signs in by touch; without the key
    // plugged in, the pass (if any) is still there.
    if let Some(challenge) = plan.key {
        let answer = ask_key(authenticator, prompt, attempt, challenge.clone())?;
        if let Some(answer) = answer {
            let verdict = service.key_answer(
                attempt.user,
                &challenge.request.client_data_hash,
                answer,
                &origin,
            )?;
            return Ok(verdict.outcome);
        }
    }
    if plan.offline {
        // No pass can be checked without the store, and "nothing here"
        // would let the stack go on as if there were none.
        return Err(StoreError::unreachable(
            "the store is unreachable; until it is back only a security key signs in \
             (offline_keys), and none is plugged in",
        )
        .into());
    }
    let reason = plan.pass.map(|state| state.reason);
    let nothing = Outcome::Nothing(match reason {
        None => NothingReason::NoPass,
        Some(reason) => NothingReason::Unusable(reason),
    });
    let usable = reason.is_some_and(Reason::usable);
    if attempt.mode == Mode::PassOnly && !usable {
        return Ok(nothing);
    }

    let answer = match (attempt.first_pass, &attempt.earlier_token) {
        (FirstPass::Use | FirstPass::Try, Some(token)) => token.clone(),
        (FirstPass::Use, None) if usable => return Ok(Outcome::Failed(Failure::NoEarlierToken)),
        (FirstPass::Use, None) => return Ok(nothing),
        _ => {
            let answer = prompt
                .secret(&plan.prompt)
                .map_err(|_| Error::Conversation)?
                .ok_or(Error::Conversation)?;
            *typed_here = Some(answer.clone());
            answer
        }
    };
    let Some(state) = plan.pass else {
        return Ok(nothing);
    };
    // Only an answer that could be this pass leaves this process: anything
    // else is a password for the next module, never sent to the daemon.
    let Ok(canonical) = passcode::shaped(&answer, state.length) else {
        return Ok(Outcome::Nothing(NothingReason::NotAPass));
    };
    // A pass not valid yet is never checked (see `steps::check_pass`).
    if !state.reason.usable() && !state.reason.is_final() {
        return Ok(nothing);
    }
    let verdict = service.check_pass(attempt.user, Secret(canonical), &origin)?;
    if matches!(verdict.outcome, Outcome::PassSuccess { .. }) && !attempt.silent {
        if let Some(info) = &verdict.info {
            // The pass is spent either way; a client that cannot show text
            // does not undo the sign-in.
            let _ = prompt.info(info);
        }
    }
    Ok(verdict.outcome)
}

/// Runs the helper against the daemon's challenge (asking for the PIN when
/// the key wants one: the one PIN loop, `enroll::client`). `None`: no key
/// is plugged in, so the pass path goes on.
fn ask_key(
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: &Attempt<'_>,
    challenge: KeyChallenge,
) -> Result<Option<KeyAnswer>, Error> {
    if !attempt.silent {
        // Shown before the helper blocks waiting for the touch.
        let _ = prompt.info(TOUCH_CUE);
    }
    let why = match call_with_pin(authenticator, Request::Assert(challenge.request), prompt) {
        Ok(Response::Asserted {
            credential_id,
            authenticator_data,
            signature,
        }) => {
            return Ok(Some(KeyAnswer::Asserted {
                credential_id,
                authenticator_data,
                signature,
            }))
        }
        Ok(other) => format!("unexpected helper answer {other:?}"),
        Err(KeyFailure::Refused {
            error: HelperError::NoDevice,
            ..
        }) => return Ok(None),
        Err(KeyFailure::Helper(HelperFailure::Spawn(why))) => {
            return Err(Error::Unavailable(Unavailable::Helper(why)))
        }
        Err(KeyFailure::Conversation) => return Err(Error::Conversation),
        Err(KeyFailure::Refused { error, message }) => format!("{error:?}: {message}"),
        Err(failure) => failure.to_string(),
    };
    Ok(Some(KeyAnswer::Failed { why }))
}
