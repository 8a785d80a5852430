//! The client's side: run the key helper for a request the daemon made,
//! asking for the PIN once if the key wants one (the one PIN loop), and
//! turn its answer into what the daemon expects back.

use crate::helper::runner::HelperFailure;
use crate::signin::{Authenticator, Prompt};

pub const PIN_PROMPT: &str = "Security key PIN: ";
use tap_protocol::admin::{KeyProof, Registration};
use tap_protocol::helper::{HelperError, Pin, Request, Response};

/// Why the helper gave nothing the daemon could use.
#[derive(Debug)]
pub enum KeyFailure {
    /// The helper could not run, or gave no valid answer.
    Helper(HelperFailure),
    /// The authenticator (or its absence) refused.
    Refused { error: HelperError, message: String },
    /// The key wants a PIN and what was typed cannot be one (nothing, or
    /// not text): never sent to the key, whose PIN retries are few.
    NoPin,
    /// The PIN could not be asked for: the conversation failed or gave no
    /// answer at all.
    Conversation,
    /// An answer of the wrong kind for the request.
    Unexpected(Box<Response>),
}

impl std::fmt::Display for KeyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyFailure::Helper(failure) => write!(f, "{failure}"),
            KeyFailure::Refused { error, message } => match error {
                HelperError::NoDevice => {
                    f.write_str("no security key found: plug one in and try again")
                }
                HelperError::AlreadyEnrolled => {
                    f.write_str("this security key is already registered for you")
                }
                HelperError::NoCredentials => {
                    f.write_str("this security key is not one you have enrolled")
                }
                HelperError::PinInvalid => f.write_str("wrong PIN"),
                HelperError::PinBlocked => {
                    f.write_str("the key's PIN is blocked; reset the key with its maker's tool")
                }
                HelperError::NotConfirmed => f.write_str("the key was not touched in time"),
                other => write!(f, "the security key refused: {other:?}: {message}"),
            },
            KeyFailure::NoPin => f.write_str("no usable PIN given"),
            KeyFailure::Conversation => f.write_str("no PIN given (nothing could be read)"),
            KeyFailure::Unexpected(what) => {
                write!(f, "unexpected answer from the key helper: {what:?}")
            }
        }
    }
}

impl std::error::Error for KeyFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFailure::Helper(e) => Some(e),
            _ => None,
        }
    }
}

/// Calls the helper; when the key asks for a PIN, prompts once and calls
/// again with it. Any other failure ends the call.
pub fn call_with_pin(
    authenticator: &dyn Authenticator,
    mut request: Request,
    prompt: &mut dyn Prompt,
) -> Result<Response, KeyFailure> {
    loop {
        match authenticator.call(&request).map_err(KeyFailure::Helper)? {
            Response::Failed {
                error: HelperError::PinRequired,
                ..
            } if pin_slot(&mut request).is_some_and(|pin| pin.is_none()) => {
                let typed = prompt
                    .secret(PIN_PROMPT)
                    .ok()
                    .flatten()
                    .ok_or(KeyFailure::Conversation)?;
                let pin = Pin::from_typed(&typed).ok_or(KeyFailure::NoPin)?;
                if let Some(slot) = pin_slot(&mut request) {
                    *slot = Some(pin);
                }
            }
            Response::Failed { error, message } => {
                return Err(KeyFailure::Refused { error, message })
            }
            answer => return Ok(answer),
        }
    }
}

fn pin_slot(request: &mut Request) -> Option<&mut Option<Pin>> {
    match request {
        Request::Register(r) => Some(&mut r.pin),
        Request::Assert(a) => Some(&mut a.pin),
        Request::Probe => None,
    }
}

/// A registration answer, for `EnrollFinish`.
pub fn registration(answer: Response) -> Result<Registration, KeyFailure> {
    match answer {
        Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        } => Ok(Registration {
            authenticator_data,
            attestation_format,
            attestation_statement,
        }),
        other => Err(KeyFailure::Unexpected(Box::new(other))),
    }
}

/// An assertion answer to `challenge`, as a proof of an enrolled key.
pub fn proof(challenge: &[u8], answer: Response) -> Result<KeyProof, KeyFailure> {
    match answer {
        Response::Asserted {
            credential_id,
            authenticator_data,
            signature,
        } => Ok(KeyProof {
            challenge: tap_protocol::helper::Bytes(challenge.to_vec()),
            credential_id,
            authenticator_data,
            signature,
        }),
        other => Err(KeyFailure::Unexpected(Box::new(other))),
    }
}
