//! The message a client sends and the one it gets back.

use crate::admin::{AdminReply, AdminRequest};
use crate::signin::{Plan, SignInRequest, Verdict};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is the daemon up? Anyone may ask.
    Ping,
    SignIn(SignInRequest),
    Admin(AdminRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Pong { version: String },
    Plan(Plan),
    Verdict(Verdict),
    Admin(AdminReply),
    Refused(Refusal),
}

/// Why a request was not carried out. The message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was malformed, too large, of another version, or its
    /// input is invalid (a lifetime out of bounds, a bad label).
    BadRequest,
    NotPermitted,
    /// No such user on the system.
    UnknownUser,
    /// No such pass, key or challenge.
    NotFound,
    /// The policy is missing, unsafe or invalid.
    Policy,
    /// The store cannot be read or written.
    Store,
    /// Too many connections or requests from this uid; try again.
    Busy,
    Internal,
}

impl Refusal {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }
}
