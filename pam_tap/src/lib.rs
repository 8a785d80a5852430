//! pam_tap.so: a thin adapter from libpam to `tap_core::signin`. Parse the
//! arguments, gather the items, call core once, map the result once.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod args;
mod conversation;
mod session;
mod sys;

use args::ModuleArgs;
use conversation::PamPrompt;
use pam::constants::{PamFlag, PamResultCode, PAM_SILENT};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, Service, Tty};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;
use tap_core::audit::{free_text, log_field, syslog, Severity};
use tap_core::helper::runner::{HelperFailure, SpawnError};
use tap_core::keys::protocol::{Request as HelperRequest, Response as HelperResponse};
use tap_core::policy::Policy;
use tap_core::signin::{
    self, Attempt, Authenticator, BadArgument, Error, Failure, FirstPass, HelperProcess,
    NothingReason, Outcome, Remote, SignIn, Unavailable,
};
use zeroize::Zeroizing;

/// Delay on failure, as pam_unix: slows guessing, and libpam takes the
/// longest delay any module asked for.
const FAIL_DELAY_USEC: libc::c_uint = 2_000_000;

struct PamTap;
pam::pam_hooks!(PamTap);

impl PamHooks for PamTap {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        guarded(|| authenticate(pamh, args, flags))
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // It records, it never decides: even a panic leaves the session be.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let args = ModuleArgs::parse(args.iter().filter_map(|a| a.to_str().ok()));
            session::open(pamh, &args)
        }))
        .unwrap_or_else(|_| {
            syslog(
                Severity::Error,
                "pam_tap(session)",
                "internal error (panic); the SSH key's use is not recorded",
            );
            PamResultCode::PAM_IGNORE
        })
    }

    fn sm_close_session(
        _pamh: &mut PamHandle,
        _args: Vec<&CStr>,
        _flags: PamFlag,
    ) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }
}

/// A panic is a bug, never a decision: it fails the sign-in with
/// PAM_SERVICE_ERR (pam-bindings' own catch would give PAM_ABORT, which
/// ends the whole stack), and says so in the log.
fn guarded(hook: impl FnOnce() -> PamResultCode) -> PamResultCode {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)).unwrap_or_else(|_| {
        syslog(
            Severity::Error,
            "pam_tap(auth)",
            "internal error (panic); failing with PAM_SERVICE_ERR",
        );
        PamResultCode::PAM_SERVICE_ERR
    })
}

fn authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
    let args = ModuleArgs::parse(args.iter().filter_map(|a| a.to_str().ok()));
    let log = Logger::new(pamh, args.debug);
    for unknown in &args.unknown {
        log.say(
            Severity::Error,
            &format!("unknown module argument {unknown:?} ignored"),
        );
    }
    if !args.nodelay {
        sys::fail_delay(pamh, FAIL_DELAY_USEC);
    }
    let user = match pamh.get_user(None) {
        Ok(user) if !user.is_empty() => user,
        Ok(_) => return PamResultCode::PAM_USER_UNKNOWN,
        Err(PamResultCode::PAM_CONV_ERR) => return PamResultCode::PAM_CONV_ERR,
        Err(code) => {
            log.say(
                Severity::Error,
                &format!("cannot get the user name: {code:?}"),
            );
            return PamResultCode::PAM_SERVICE_ERR;
        }
    };
    let SignIn { result, hand_on } = run(pamh, &args, &user, flags & PAM_SILENT != 0);
    log.report(&user, &result);
    // What the person typed at the one prompt and did not sign in with
    // here: the next module (pam_unix try_first_pass) checks it as their
    // password instead of asking again.
    if let Some(token) = hand_on {
        if !sys::set_authtok(pamh, &token) {
            log.say(
                Severity::Error,
                "could not hand the answer on as PAM_AUTHTOK",
            );
        }
    }
    match result {
        Ok(Outcome::Nothing(_)) => PamResultCode::PAM_IGNORE,
        Ok(Outcome::PassSuccess { .. } | Outcome::KeySuccess { .. }) => PamResultCode::PAM_SUCCESS,
        Ok(Outcome::Failed(_)) => PamResultCode::PAM_AUTH_ERR,
        Err(Error::Unavailable(_)) => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        Err(Error::UnknownUser) => PamResultCode::PAM_USER_UNKNOWN,
        Err(Error::Conversation) => PamResultCode::PAM_CONV_ERR,
    }
}

fn run(pamh: &mut PamHandle, args: &ModuleArgs, user: &str, silent: bool) -> SignIn {
    let refused = |error| SignIn {
        result: Err(error),
        hand_on: None,
    };
    if let Some(bad) = &args.bad_policy {
        return refused(Error::Unavailable(Unavailable::Arguments(BadArgument(
            bad.clone(),
        ))));
    }
    let earlier_token = match args.first_pass {
        FirstPass::Prompt => None,
        FirstPass::Use | FirstPass::Try => pamh
            .get_item::<AuthTok>()
            .ok()
            .flatten()
            .map(|token| Zeroizing::new(token.as_bytes().to_vec())),
    };
    let Some(conv) = pamh.get_item::<Conv>().ok().flatten() else {
        return refused(Error::Conversation);
    };
    let (service, rhost, tty) = (
        item::<Service>(pamh),
        item::<RHost>(pamh),
        item::<Tty>(pamh),
    );
    let attempt = Attempt {
        user,
        service: &service,
        rhost: &rhost,
        tty: &tty,
        now: 0,
        first_pass: args.first_pass,
        mode: args.mode,
        earlier_token,
        silent,
    };
    let mut tapd = Remote {
        socket: &args.socket,
        timeout: tap_core::daemon::SIGN_IN_WAIT,
    };
    signin::drive(
        &mut tapd,
        &KeyHelper(&args.policy),
        &mut PamPrompt(conv),
        attempt,
    )
}

/// The key helper, as the policy names it: the policy is read only when
/// the user has keys, so a sign-in without them parses no TOML.
struct KeyHelper<'a>(&'a std::path::Path);

impl Authenticator for KeyHelper<'_> {
    fn call(&self, request: &HelperRequest) -> Result<HelperResponse, HelperFailure> {
        let policy =
            Policy::load(self.0).map_err(|e| HelperFailure::Spawn(SpawnError::Policy(e)))?;
        HelperProcess::for_policy(&policy).call(request)
    }
}

pub(crate) fn item<'a, T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>>(
    pamh: &'a PamHandle,
) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(value)) => value.to_string_lossy().into_owned(),
        _ => String::new(),
    }
}

/// Syslog lines prefixed like pam_syslog's: `pam_tap(sshd:auth): ...`.
struct Logger {
    prefix: String,
    context: String,
    debug: bool,
}

impl Logger {
    fn new(pamh: &PamHandle, debug: bool) -> Self {
        let service = item::<Service>(pamh);
        let mut context = String::new();
        for (key, value) in [("rhost", item::<RHost>(pamh)), ("tty", item::<Tty>(pamh))] {
            if !value.is_empty() {
                // Quoted when needed: a remote host or tty cannot forge a field.
                context.push(' ');
                context.push_str(&log_field(key, &value));
            }
        }
        Logger {
            prefix: format!("pam_tap({service}:auth)"),
            context,
            debug,
        }
    }

    fn say(&self, severity: Severity, message: &str) {
        if severity != Severity::Debug || self.debug {
            syslog(severity, &self.prefix, message);
        }
    }

    fn report(&self, user: &str, result: &Result<Outcome, Error>) {
        let who = format!("{}{}", log_field("user", user), self.context);
        let (severity, what) = match result {
            Ok(Outcome::KeySuccess { label }) => (
                Severity::Info,
                format!("signed in with security key {label:?}"),
            ),
            Ok(Outcome::PassSuccess { one_time, .. }) => (
                Severity::Info,
                format!(
                    "signed in with a {}pass",
                    if *one_time { "one-time " } else { "" }
                ),
            ),
            Ok(Outcome::Failed(Failure::WrongPass {
                failures,
                locked: true,
            })) => (
                Severity::Warning,
                format!("wrong pass; pass locked after {failures} failures"),
            ),
            Ok(Outcome::Failed(Failure::WrongPass { failures, .. })) => {
                (Severity::Notice, format!("wrong pass (failure {failures})"))
            }
            Ok(Outcome::Failed(Failure::KeyRefused(why))) => {
                (Severity::Warning, format!("security key refused: {why}"))
            }
            Ok(Outcome::Failed(Failure::SpentPass(reason))) => (
                Severity::Notice,
                format!("right pass refused: {}", reason.cause()),
            ),
            Ok(Outcome::Failed(other)) => (Severity::Notice, format!("sign-in failed: {other:?}")),
            Ok(Outcome::Nothing(NothingReason::Unusable(reason))) => (
                Severity::Info,
                format!("pass not offered: {}", reason.explain()),
            ),
            Ok(Outcome::Nothing(NothingReason::NotAPass)) => (
                Severity::Debug,
                "the answer cannot be a pass: handed on, not counted".to_string(),
            ),
            Ok(Outcome::Nothing(reason)) => (Severity::Debug, format!("nothing to do: {reason:?}")),
            Err(Error::Unavailable(why)) => (Severity::Error, format!("failing closed: {why}")),
            Err(Error::UnknownUser) => (Severity::Notice, "no such user".to_string()),
            Err(Error::Conversation) => (
                Severity::Error,
                "conversation failed or gave no answer".to_string(),
            ),
        };
        // The text may quote a user's key label: only the fields hold `=`.
        self.say(severity, &format!("{} {who}", free_text(&what)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)]
    fn a_panic_is_a_service_error() {
        let code = guarded(|| panic!("a bug"));
        assert_eq!(code, PamResultCode::PAM_SERVICE_ERR);
        assert_eq!(
            guarded(|| PamResultCode::PAM_IGNORE),
            PamResultCode::PAM_IGNORE
        );
    }
}
