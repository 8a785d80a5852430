//! Why a sign-in could not be decided: the fail-closed paths, each with
//! its cause as the part that failed reported it.

use crate::accounts::DirectoryError;
use crate::daemon::CallError;
use crate::hashing::HashError;
use crate::helper::SpawnError;
use crate::keys::RandomError;
use crate::store::StoreError;
use tap_protocol::{Refusal, Response};

/// Errors: the fail-closed paths.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// Something the decision needs cannot be had: fail closed.
    Unavailable(Unavailable),
    UnknownUser,
    Conversation,
}

/// Why a sign-in could not be decided (PAM_AUTHINFO_UNAVAIL).
#[derive(Debug)]
pub enum Unavailable {
    /// A module argument is unusable.
    Arguments(BadArgument),
    /// NSS could not answer for the user or their groups.
    Directory(DirectoryError),
    Store(StoreError),
    /// The stored hash is unreadable, or hashing failed.
    Hash(HashError),
    /// The OS random source failed (a key challenge).
    Random(RandomError),
    /// The key helper cannot be run (its policy or program is unusable).
    Helper(SpawnError),
    /// tapd is unreachable, did not answer in time, refused, or answered
    /// out of turn.
    Daemon(DaemonError),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Arguments(why) => write!(f, "module arguments: {why}"),
            Unavailable::Directory(why) => write!(f, "user directory (NSS): {why}"),
            Unavailable::Store(e) => write!(f, "store: {e}"),
            Unavailable::Hash(why) => write!(f, "pass hash: {why}"),
            Unavailable::Random(why) => write!(f, "{why}"),
            Unavailable::Helper(why) => write!(f, "key helper: {why}"),
            Unavailable::Daemon(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unavailable::Arguments(e) => Some(e),
            Unavailable::Directory(e) => Some(e),
            Unavailable::Store(e) => Some(e),
            Unavailable::Hash(e) => Some(e),
            Unavailable::Random(e) => Some(e),
            Unavailable::Helper(e) => Some(e),
            Unavailable::Daemon(e) => Some(e),
        }
    }
}

/// Causes compare by what they say: an I/O error, which several carry,
/// has no equality of its own. (Tests compare whole sign-in results.)
impl PartialEq for Unavailable {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for Unavailable {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Unavailable(Unavailable::Store(e))
    }
}

/// A `policy=` or `socket=` module argument that is not an absolute path,
/// as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadArgument(pub String);

impl std::fmt::Display for BadArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: the path must be absolute", self.0)
    }
}

impl std::error::Error for BadArgument {}

/// What went wrong between the client and tapd.
#[derive(Debug)]
pub enum DaemonError {
    /// No answer: unreachable, too slow, unreadable, or not tapd.
    Call(CallError),
    Refused(Refusal),
    /// An answer of the wrong kind for the step.
    OutOfTurn(Box<Response>),
    /// A key answer to a challenge this service did not issue.
    NoSuchChallenge,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Call(e) => write!(f, "{e}"),
            DaemonError::Refused(Refusal { kind, message }) => {
                write!(f, "tapd refused ({kind:?}): {message}")
            }
            DaemonError::OutOfTurn(response) => {
                write!(f, "tapd answered out of turn: {response:?}")
            }
            DaemonError::NoSuchChallenge => f.write_str("no such key challenge"),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DaemonError::Call(e) => Some(e),
            _ => None,
        }
    }
}
