//! Why the key helper gave no usable response. The messages carry no
//! secrets (a request may hold a PIN; none of these hold a request).

use crate::keys::protocol::{MessageError, MAX_MESSAGE_BYTES};
use crate::policy::PolicyError;
use crate::trust::TrustError;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;

#[derive(Debug)]
pub enum HelperFailure {
    /// The helper could not be started (missing, not executable, ...).
    Spawn(SpawnError),
    /// No complete response before the deadline; the helper was killed.
    Timeout,
    /// The helper exited or was killed without writing a response.
    Died(Death),
    /// The response was not a valid protocol message, or was too large.
    Garbage(Garbage),
}

impl std::fmt::Display for HelperFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelperFailure::Spawn(why) => write!(f, "key helper could not be started: {why}"),
            HelperFailure::Timeout => f.write_str("key helper did not answer in time"),
            HelperFailure::Died(why) => write!(f, "key helper gave no answer: {why}"),
            HelperFailure::Garbage(why) => write!(f, "key helper answered garbage: {why}"),
        }
    }
}

impl std::error::Error for HelperFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HelperFailure::Spawn(e) => Some(e),
            HelperFailure::Timeout => None,
            HelperFailure::Died(e) => Some(e),
            HelperFailure::Garbage(e) => Some(e),
        }
    }
}

/// Why the helper was not started.
#[derive(Debug)]
pub enum SpawnError {
    /// The policy that names the helper is unusable (the PAM module reads
    /// it only when a key sign-in needs the helper).
    Policy(PolicyError),
    /// The helper, or a directory on its way, is not root's alone.
    Untrusted(TrustError),
    /// Opening or starting the program failed.
    Program {
        path: PathBuf,
        source: io::Error,
    },
    /// The request could not be serialized.
    Encode(serde_json::Error),
    NoStdout,
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Policy(e) => write!(f, "{e}"),
            SpawnError::Untrusted(e) => write!(f, "{e}"),
            SpawnError::Program { path, source } => write!(f, "{}: {source}", path.display()),
            SpawnError::Encode(_) => f.write_str("request could not be encoded"),
            SpawnError::NoStdout => f.write_str("no stdout pipe"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Policy(e) => Some(e),
            SpawnError::Untrusted(e) => Some(e),
            SpawnError::Program { source, .. } => Some(source),
            SpawnError::Encode(e) => Some(e),
            SpawnError::NoStdout => None,
        }
    }
}

/// How a helper ended without an answer.
#[derive(Debug)]
pub enum Death {
    /// It exited; `None` when its status could not be had.
    Exited(Option<ExitStatus>),
    /// Reading its stdout failed.
    Unread(io::Error),
}

impl Death {
    /// The exit code, for a helper that exited normally.
    pub fn code(&self) -> Option<i32> {
        match self {
            Death::Exited(Some(status)) => status.code(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Death {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Death::Exited(None) => f.write_str("exited (status not available)"),
            Death::Exited(Some(status)) => match (status.code(), status.signal()) {
                (Some(code), _) => write!(f, "exited with status {code}"),
                (None, Some(signal)) => write!(f, "killed by signal {signal}"),
                (None, None) => write!(f, "ended: {status}"),
            },
            Death::Unread(e) => write!(f, "reading its answer failed: {e}"),
        }
    }
}

impl std::error::Error for Death {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Death::Exited(_) => None,
            Death::Unread(e) => Some(e),
        }
    }
}

/// An answer that is no response.
#[derive(Debug)]
pub enum Garbage {
    Unreadable(MessageError),
    /// More than [`MAX_MESSAGE_BYTES`]; not read past that.
    TooLarge,
}

impl std::fmt::Display for Garbage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Garbage::Unreadable(e) => write!(f, "{e}"),
            Garbage::TooLarge => write!(f, "response is larger than {MAX_MESSAGE_BYTES} bytes"),
        }
    }
}

impl std::error::Error for Garbage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Garbage::Unreadable(e) => Some(e),
            Garbage::TooLarge => None,
        }
    }
}
