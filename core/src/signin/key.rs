//! Sign-in by security key: ask the authenticator (through the helper),
//! verify its answer ourselves, move the counter.

use super::{record, Attempt, Error, Failure, Outcome, Prompt};
use crate::keys::credential::KeyCredential;
use crate::keys::protocol::{
    AssertRequest, Bytes, HelperError, Pin, Request, Response, UserVerification,
};
use crate::keys::runner::{run_program, HelperFailure, Program};
use crate::keys::verify::{verify_assertion, AssertionAnswer, StoredCredential, VerifyError};
use crate::policy::Policy;
use crate::store::Store;
use std::path::Path;

pub const TOUCH_CUE: &str = "Touch your security key.";
pub const PIN_PROMPT: &str = "Security key PIN: ";

/// How sign-in reaches an authenticator: the helper process in production,
/// a scripted one in unit tests.
pub trait Authenticator {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure>;
}

/// The helper program named by the policy, killed at the touch timeout.
pub struct HelperProcess<'a> {
    pub program: &'a Path,
    pub timeout: std::time::Duration,
}

impl HelperProcess<'_> {
    pub fn for_policy(policy: &Policy) -> HelperProcess<'_> {
        HelperProcess {
            program: &policy.keys.helper,
            timeout: std::time::Duration::from_secs(policy.keys.touch_timeout.as_secs()),
        }
    }
}

impl Authenticator for HelperProcess<'_> {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure> {
        // Run as root (the module), the helper must be as trusted as the
        // policy: anyone who could rewrite or replace it, or a directory on
        // its way, would run code as root. The file checked is the file run.
        // SAFETY: geteuid cannot fail.
        let program = if unsafe { libc::geteuid() } == 0 {
            crate::trust::open_program(self.program).map_err(HelperFailure::Spawn)?
        } else {
            Program::open(self.program)
                .map_err(|e| HelperFailure::Spawn(format!("{}: {e}", self.program.display())))?
        };
        run_program(&program, request, self.timeout)
    }
}

/// What the key path decided.
pub enum KeyResult {
    /// Signed in, or refused: the sign-in ends here.
    Decided(Outcome),
    /// No authenticator is plugged in: the pass path may go on.
    NoDevice,
}

pub fn sign_in(
    policy: &Policy,
    store: &mut dyn Store,
    keys: &[KeyCredential],
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: &Attempt<'_>,
) -> Result<KeyResult, Error> {
    let uv_required = policy.keys.user_verification == UserVerification::Required;
    let rp_id = policy.keys.rp_id();
    let mut challenge = [0u8; 32];
    crate::keys::random_bytes(&mut challenge).map_err(Error::Unavailable)?;
    let mut request = AssertRequest {
        rp_id: rp_id.to_string(),
        client_data_hash: Bytes(challenge.to_vec()),
        allow: keys
            .iter()
            .map(|k| Bytes(k.credential_id.clone()))
            .collect(),
        user_verification: policy.keys.user_verification,
        pin: None,
    };
    let refuse = |store: &mut dyn Store, event: &str, detail: &str| -> Result<KeyResult, Error> {
        store.append_audit(&record(attempt, event, detail.to_string()))?;
        Ok(KeyResult::Decided(Outcome::Failed(Failure::KeyRefused(
            detail.to_string(),
        ))))
    };
    if !attempt.silent {
        // Shown before the helper blocks waiting for the touch.
        let _ = prompt.info(TOUCH_CUE);
    }
    loop {
        let answer = match authenticator.call(&Request::Assert(request.clone())) {
            Ok(answer) => answer,
            Err(HelperFailure::Spawn(why)) => {
                return Err(Error::Unavailable(format!("key helper: {why}")))
            }
            Err(failure) => return refuse(store, "signin.key.failure", &failure.to_string()),
        };
        let (credential_id, authenticator_data, signature) = match answer {
            Response::Asserted {
                credential_id,
                authenticator_data,
                signature,
            } => (credential_id, authenticator_data, signature),
            Response::Failed {
                error: HelperError::NoDevice,
                ..
            } => return Ok(KeyResult::NoDevice),
            Response::Failed {
                error: HelperError::PinRequired,
                ..
            } if request.pin.is_none() => {
                let typed = prompt
                    .secret(PIN_PROMPT)
                    .map_err(|_| Error::Conversation)?
                    .ok_or(Error::Conversation)?;
                match Pin::from_typed(&typed) {
                    Some(pin) => request.pin = Some(pin),
                    None => return refuse(store, "signin.key.failure", "no usable PIN given"),
                }
                continue;
            }
            Response::Failed { error, message } => {
                return refuse(
                    store,
                    "signin.key.failure",
                    &format!("{error:?}: {message}"),
                );
            }
            other => {
                return refuse(
                    store,
                    "signin.key.failure",
                    &format!("unexpected helper answer {other:?}"),
                )
            }
        };
        let Some(key) = keys.iter().find(|k| k.credential_id == credential_id.0) else {
            return refuse(
                store,
                "signin.key.failure",
                "a key that is not enrolled for this user answered",
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
        return match verify_assertion(&stored, rp_id, &challenge, uv_required, &answer) {
            Ok(verified) => {
                let audit = record(attempt, "signin.key.success", format!("key {}", key.label));
                if store.record_key_use(key, verified.sign_count, attempt.now, &audit)? {
                    Ok(KeyResult::Decided(Outcome::KeySuccess {
                        label: key.label.clone(),
                    }))
                } else {
                    refuse(
                        store,
                        "key.counter_raced",
                        "another sign-in used this key's counter value first",
                    )
                }
            }
            Err(error @ VerifyError::SignCountNotIncreased { .. }) => refuse(
                store,
                "key.counter_regressed",
                &format!("possible cloned key {}: {error}", key.label),
            ),
            Err(error) => refuse(
                store,
                "signin.key.failure",
                &format!("{}: {error}", error.code()),
            ),
        };
    }
}
