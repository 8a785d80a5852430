//! A sign-in, independent of libpam, in two halves:
//!
//! * `driver`: the client's half (inside the PAM module): prompt, run the
//!   key helper, tell a password from a pass, and ask a `SignInService` to
//!   decide each step.
//! * `steps`: the daemon's half (inside tapd): policy scope, the store, the
//!   Argon2 check, counting, the key verification.
//!
//! `authenticate` puts both in one process (`local`), for tests and the
//! benchmark; in production the service is tapd, over its socket.

use crate::accounts::Directory;
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use crate::timefmt::Timestamp;
use zeroize::Zeroizing;

/// The conversation failed outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFailed;

/// How the module talks to the person signing in.
pub trait Prompt {
    /// Asks with echo off. `Ok(None)` means the application gave no answer.
    fn secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed>;
    /// Shows information; never asked for under PAM_SILENT.
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed>;
}

/// Where the answer comes from (module arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstPass {
    /// Always prompt.
    #[default]
    Prompt,
    /// Use the token an earlier module collected; never prompt.
    Use,
    /// Use that token if there is one, otherwise prompt.
    Try,
}

/// One sign-in attempt, as the PAM application describes it.
pub struct Attempt<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub rhost: &'a str,
    pub tty: &'a str,
    pub now: Timestamp,
    pub first_pass: FirstPass,
    pub mode: Mode,
    /// PAM_AUTHTOK, read only for `Use` and `Try`.
    pub earlier_token: Option<Zeroizing<Vec<u8>>>,
    pub silent: bool,
}

pub use tap_protocol::signin::{Failure, Mode, NothingReason, Outcome};

/// Errors: the fail-closed paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Something the decision needs cannot be had: fail closed.
    Unavailable(Unavailable),
    UnknownUser,
    Conversation,
}

/// Why a sign-in could not be decided (PAM_AUTHINFO_UNAVAIL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// A module argument is unusable.
    Arguments(String),
    /// NSS could not answer for the user or their groups.
    Directory(String),
    Store(StoreError),
    /// The stored hash is unreadable, or hashing failed.
    Hash(String),
    /// The OS random source failed (a key challenge).
    Random(String),
    /// The key helper cannot be run (its policy or program is unusable).
    Helper(String),
    /// tapd is unreachable, did not answer in time, refused, or answered
    /// out of turn.
    Daemon(String),
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
            Unavailable::Daemon(why) => f.write_str(why),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Unavailable(Unavailable::Store(e))
    }
}

/// One sign-in's decision, and the answer the next module should check as a
/// password (PAM_AUTHTOK): what the person typed at this module's prompt,
/// unless it signed them in here.
pub struct SignIn {
    pub result: Result<Outcome, Error>,
    pub hand_on: Option<Zeroizing<Vec<u8>>>,
}

/// Decides one sign-in in this process: the driver against the daemon's
/// steps over `open_store`'s store, which is opened only for users the
/// policy covers.
pub fn authenticate<S: Store>(
    policy: &Policy,
    directory: &dyn Directory,
    open_store: impl FnOnce() -> Result<S, StoreError>,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: Attempt<'_>,
) -> SignIn {
    let mut service = local::Local::new(policy, directory, open_store, attempt.now);
    driver::drive(&mut service, authenticator, prompt, attempt)
}

mod driver;
mod local;
mod remote;
pub mod steps;

pub use crate::helper::{Authenticator, HelperProcess};
pub use driver::{drive, SignInService, PIN_PROMPT, TOUCH_CUE};
pub use remote::Remote;
pub use steps::{DirectVerifier, PassVerifier, Requester};
