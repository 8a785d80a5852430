//! The sign-in decision, independent of libpam: given a policy, a store, a
//! user directory and a way to prompt, decide one `Outcome` or an `Error`.

use crate::accounts::Directory;
use crate::audit::AuditRecord;
use crate::hashing;
use crate::pass::{PassRecord, Reason};
use crate::passcode;
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use crate::timefmt::{self, Timestamp};
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

/// One sign-in's decision, and the answer the next module should check as a
/// password (PAM_AUTHTOK): what the person typed at this module's prompt,
/// unless it signed them in here.
pub struct SignIn {
    pub result: Result<Outcome, Error>,
    pub hand_on: Option<Zeroizing<Vec<u8>>>,
}

/// Decides one sign-in. `open_store` is called only for users the policy
/// covers; any backend of core's store trait will do.
pub fn authenticate<S: Store>(
    policy: &Policy,
    directory: &dyn Directory,
    open_store: impl FnOnce() -> Result<S, StoreError>,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: Attempt<'_>,
) -> SignIn {
    let mut typed_here = None;
    let result = decide(
        policy,
        directory,
        open_store,
        authenticator,
        prompt,
        &attempt,
        &mut typed_here,
    );
    let signed_in = matches!(
        result,
        Ok(Outcome::PassSuccess { .. } | Outcome::KeySuccess { .. })
    );
    SignIn {
        result,
        hand_on: if signed_in { None } else { typed_here },
    }
}

fn decide<S: Store>(
    policy: &Policy,
    directory: &dyn Directory,
    open_store: impl FnOnce() -> Result<S, StoreError>,
    authenticator: &dyn Authenticator,
    prompt: &mut dyn Prompt,
    attempt: &Attempt<'_>,
    typed_here: &mut Option<Zeroizing<Vec<u8>>>,
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
        match key::sign_in(policy, &mut store, &keys, authenticator, prompt, attempt)? {
            key::KeyResult::Decided(outcome) => return Ok(outcome),
            key::KeyResult::NoDevice => {}
        }
    }
    let pass = store.pass(attempt.user)?;
    let usability = pass.as_ref().map(|pass| pass.usability(true, attempt.now));
    let nothing = Outcome::Nothing(match usability {
        None => NothingReason::NoPass,
        Some(reason) => NothingReason::Unusable(reason),
    });
    let usable = usability.is_some_and(Reason::usable);
    if attempt.mode == Mode::PassOnly && !usable {
        return Ok(nothing);
    }

    let answer = match (attempt.first_pass, &attempt.earlier_token) {
        (FirstPass::Use | FirstPass::Try, Some(token)) => token.clone(),
        (FirstPass::Use, None) if usable => return Ok(Outcome::Failed(Failure::NoEarlierToken)),
        (FirstPass::Use, None) => return Ok(nothing),
        _ => {
            let text = match attempt.mode {
                Mode::PasswordOrPass => &policy.pass.prompt,
                Mode::PassOnly => &policy.pass.pass_only_prompt,
            };
            let answer = prompt
                .secret(text)
                .map_err(|_| Error::Conversation)?
                .ok_or(Error::Conversation)?;
            *typed_here = Some(answer.clone());
            answer
        }
    };
    let Some((pass, reason)) = pass.zip(usability) else {
        return Ok(nothing);
    };
    // Only an answer that could be this pass is a guess at it: anything
    // else is a password, never hashed here and never counted.
    let Ok(canonical) = passcode::shaped(&answer, pass.length) else {
        return Ok(Outcome::Nothing(NothingReason::NotAPass));
    };
    if !reason.usable() {
        return spent_pass(&mut store, attempt, &pass, reason, &canonical);
    }

    if hashing::verify(&canonical, &pass.phc).map_err(Error::Unavailable)? {
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
        let audit = record(attempt, "signin.pass.success", detail);
        if !store.record_success(&pass, attempt.now, enroll_until, &audit)? {
            store.append_audit(&record(
                attempt,
                "signin.pass.failure",
                "right pass, but no longer usable".into(),
            ))?;
            return Ok(Outcome::Failed(Failure::NoLongerUsable));
        }
        if !attempt.silent {
            // The pass is spent either way; a client that cannot show text
            // does not undo the sign-in.
            let _ = prompt.info(&welcome(&pass, enroll_until));
        }
        return Ok(Outcome::PassSuccess {
            expires: pass.expires,
            one_time: pass.one_time,
        });
    }
    let max = policy.pass.max_failures;
    let count = store.record_failure(attempt.user, pass.id, attempt.now, max, &|count| {
        let failure = record(
            attempt,
            "signin.pass.failure",
            format!("wrong pass, failure {} of {max}", count.failures),
        );
        let locked = count.locked_now.then(|| {
            record(
                attempt,
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

/// A pass-shaped answer for a pass that is not usable now (only asked at the
/// one password-or-pass prompt). A pass that can never be used again is
/// checked, so the audit can tell an administrator that the person typed
/// their used, locked, expired or revoked pass; no guess at such a pass can
/// sign anyone in, so nothing is counted. A pass not valid yet is never
/// checked: it will become usable, and an uncounted check would let its
/// guesses start early.
fn spent_pass(
    store: &mut dyn Store,
    attempt: &Attempt<'_>,
    pass: &PassRecord,
    reason: Reason,
    canonical: &str,
) -> Result<Outcome, Error> {
    if !reason.is_final() || !hashing::verify(canonical, &pass.phc).map_err(Error::Unavailable)? {
        return Ok(Outcome::Nothing(NothingReason::Unusable(reason)));
    }
    store.append_audit(&record(
        attempt,
        "signin.pass.failure",
        format!("right pass, but {}", reason.cause()),
    ))?;
    Ok(Outcome::Failed(Failure::SpentPass(reason)))
}

/// An audit record of this attempt.
fn record(attempt: &Attempt<'_>, event: &str, detail: String) -> AuditRecord {
    let mut audit = AuditRecord::new(attempt.now, event, attempt.user, attempt.user).detail(detail);
    audit.service = attempt.service.into();
    audit.rhost = attempt.rhost.into();
    audit.tty = attempt.tty.into();
    audit
}

/// Short and plain: some clients show it beside the next prompt, some not
/// at all, and none renders markup.
fn welcome(pass: &PassRecord, enroll_until: Timestamp) -> String {
    if pass.one_time {
        format!(
            "Signed in with a one-time Temporary Access Pass. To register a security key before {}, run: tapctl enroll",
            timefmt::to_human(enroll_until)
        )
    } else {
        format!(
            "Signed in with a Temporary Access Pass, valid until {}. To register a security key, run: tapctl enroll",
            timefmt::to_human(pass.expires)
        )
    }
}

mod key;

pub use key::{
    sign_in as sign_in_with_key, Authenticator, HelperProcess, KeyResult, PIN_PROMPT, TOUCH_CUE,
};
