//! The sign-in decision, independent of libpam: given a policy, a store, a
//! user directory and a way to prompt, decide one `Outcome` or an `Error`.

use crate::accounts::Directory;
use crate::audit::AuditRecord;
use crate::hashing;
use crate::pass::{PassRecord, Reason};
use crate::passcode::{self, InputError};
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use crate::timefmt::{self, Timestamp};
use zeroize::Zeroizing;

pub const PASS_PROMPT: &str = "Temporary Access Pass: ";

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

/// Where the typed pass comes from (module arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstPass {
    /// Always prompt.
    #[default]
    Prompt,
    /// Use the token an earlier module collected; never prompt.
    Use,
    /// Try that token; prompt if it is absent or not the pass.
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
    /// PAM_AUTHTOK, read only for `Use` and `Try`.
    pub earlier_token: Option<Zeroizing<Vec<u8>>>,
    pub silent: bool,
}

/// Why there is nothing for this user (the PAM_IGNORE paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingReason {
    PolicyDisabled,
    OutOfScope,
    NoPass,
    Unusable(Reason),
}

/// Why a sign-in failed (the PAM_AUTH_ERR paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Wrong pass, counted; `locked` when this try reached the limit.
    WrongPass { failures: u32, locked: bool },
    /// Nothing typed; not counted as a guess.
    Empty,
    /// `use_first_pass` but no earlier module collected a token.
    NoEarlierToken,
    /// A security key's answer was refused, or the helper failed (timeout,
    /// crash, garbage, no touch). The text says which, for the log.
    KeyRefused(String),
    /// Right pass, but it stopped being usable meanwhile (another sign-in
    /// used the one-time pass, or it was revoked, locked or replaced).
    NoLongerUsable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Nothing(NothingReason),
    PassSuccess { expires: Timestamp, one_time: bool },
    KeySuccess { label: String },
    Failed(Failure),
}

/// Errors: the fail-closed paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Policy or store unusable, NSS broken, stored hash unreadable.
    Unavailable(String),
    UnknownUser,
    Conversation,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Unavailable(e.0)
    }
}

/// Decides one sign-in. `open_store` is called only for users the policy covers.
pub fn authenticate(
    policy: &Policy,
    directory: &dyn Directory,
    open_store: impl FnOnce() -> Result<Store, StoreError>,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: Attempt<'_>,
) -> Result<Outcome, Error> {
    if !policy.enabled {
        return Ok(Outcome::Nothing(NothingReason::PolicyDisabled));
    }
    let account = directory
        .user(attempt.user)
        .map_err(Error::Unavailable)?
        .ok_or(Error::UnknownUser)?;
    if !policy
        .scope
        .admits(attempt.user, || directory.groups(&account))
        .map_err(Error::Unavailable)?
    {
        return Ok(Outcome::Nothing(NothingReason::OutOfScope));
    }
    let mut store = open_store()?;
    // Keys first: a user who has one signs in by touch; without the key
    // plugged in, the pass (if any) is still there.
    let keys = store.keys(attempt.user)?;
    if !keys.is_empty() {
        match key::sign_in(policy, &mut store, &keys, authenticator, prompt, &attempt)? {
            key::KeyResult::Decided(outcome) => return Ok(outcome),
            key::KeyResult::NoDevice => {}
        }
    }
    let Some(pass) = store.pass(attempt.user)? else {
        return Ok(Outcome::Nothing(NothingReason::NoPass));
    };
    let reason = pass.usability(true, attempt.now);
    if !reason.usable() {
        return Ok(Outcome::Nothing(NothingReason::Unusable(reason)));
    }

    let ask = |prompt: &mut dyn Prompt| -> Result<Zeroizing<Vec<u8>>, Error> {
        prompt
            .secret(PASS_PROMPT)
            .map_err(|_| Error::Conversation)?
            .ok_or(Error::Conversation)
    };
    let (typed, checked) = match (attempt.first_pass, &attempt.earlier_token) {
        (FirstPass::Use, None) => return Ok(Outcome::Failed(Failure::NoEarlierToken)),
        (FirstPass::Use, Some(token)) => (token.clone(), None),
        // A token meant for another module that does not match is no guess
        // at the pass: it is not counted, and the person is asked.
        (FirstPass::Try, Some(token)) if matches(&pass, token)? => (token.clone(), Some(true)),
        _ => (ask(prompt)?, None),
    };
    if typed.is_empty() {
        return Ok(Outcome::Failed(Failure::Empty));
    }
    let right = match checked {
        Some(verdict) => verdict,
        None => matches(&pass, &typed)?,
    };

    if right {
        let enroll_until = pass.enroll_window_end(attempt.now, policy.pass.enroll_window);
        let detail = format!(
            "{}enrollment window open until {}",
            if pass.one_time {
                "one-time pass used; "
            } else {
                ""
            },
            timefmt::to_rfc3339(enroll_until)
        );
        let audit = record(&attempt, "signin.pass.success", detail);
        if !store.record_success(&pass, attempt.now, enroll_until, &audit)? {
            store.append_audit(&record(
                &attempt,
                "signin.pass.failure",
                "right pass, but no longer usable".into(),
            ))?;
            return Ok(Outcome::Failed(Failure::NoLongerUsable));
        }
        if !attempt.silent {
            // The pass is spent either way; a client that cannot show text
            // does not undo the sign-in.
            let _ = prompt.info(&welcome(&pass));
        }
        return Ok(Outcome::PassSuccess {
            expires: pass.expires,
            one_time: pass.one_time,
        });
    }
    let max = policy.pass.max_failures;
    let count = store.record_failure(attempt.user, pass.id, attempt.now, max, |count| {
        let failure = record(
            &attempt,
            "signin.pass.failure",
            format!("wrong pass, failure {} of {max}", count.failures),
        );
        let locked = count.locked_now.then(|| {
            record(
                &attempt,
                "pass.locked",
                format!("locked after {} wrong tries", count.failures),
            )
        });
        std::iter::once(failure).chain(locked).collect()
    })?;
    Ok(Outcome::Failed(Failure::WrongPass {
        failures: count.failures,
        locked: count.locked_now,
    }))
}

/// Whether typed bytes are this pass. Input no pass could be (too long, not
/// text, foreign symbols) is refused before hashing.
fn matches(pass: &PassRecord, typed: &[u8]) -> Result<bool, Error> {
    match passcode::normalize(typed) {
        Ok(canonical) => hashing::verify(&canonical, &pass.phc).map_err(Error::Unavailable),
        Err(InputError::TooLong | InputError::NotText | InputError::ForeignSymbol) => Ok(false),
    }
}

/// An audit record of this attempt.
fn record(attempt: &Attempt<'_>, event: &str, detail: String) -> AuditRecord {
    let mut audit = AuditRecord::new(attempt.now, event, attempt.user, attempt.user).detail(detail);
    audit.service = attempt.service.into();
    audit.rhost = attempt.rhost.into();
    audit.tty = attempt.tty.into();
    audit
}

fn welcome(pass: &PassRecord) -> String {
    let validity = if pass.one_time {
        "This one-time pass is now used.".to_string()
    } else {
        format!(
            "Your pass is valid until {}.",
            timefmt::to_human(pass.expires)
        )
    };
    format!("Signed in with a Temporary Access Pass. {validity} Run `tapctl enroll` to register a security key.")
}

mod key;

pub use key::{
    sign_in as sign_in_with_key, Authenticator, HelperProcess, KeyResult, PIN_PROMPT, TOUCH_CUE,
};

#[cfg(test)]
mod tests;
