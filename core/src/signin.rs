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
mod error;
mod local;
mod remote;
pub mod steps;

pub use crate::helper::{Authenticator, HelperProcess};
pub use driver::{drive, SignInService, PIN_PROMPT, TOUCH_CUE};
pub use error::{BadArgument, DaemonError, Error, Unavailable};
pub use remote::Remote;
pub use steps::{DirectVerifier, PassVerifier, Requester};
