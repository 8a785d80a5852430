//! Sign-in steps, for euid-0 peers only (the PAM module inside login, sshd,
//! su, sudo). Each step is core's; this file adds who may ask, the pending
//! key challenges, and the bound on concurrent hashes.

use crate::context::{ChallengePurpose, Context, KeyCopy, PendingChallenge};
use crate::dispatch::refused;
use tap_core::accounts::SystemDirectory;
use tap_core::hashing::{HashError, PassProof};
use tap_core::signin::steps::{self, PassVerifier, Requester};
use tap_core::signin::{Error, Unavailable};
use tap_protocol::signin::SignInRequest;
use tap_protocol::{ErrorKind, Response};

/// A key challenge is answered within the touch timeout, plus the time the
/// client needs to start the helper and send the answer.
const CHALLENGE_SLACK_SECS: i64 = 30;

pub fn handle(ctx: &mut Context<'_>, request: SignInRequest) -> Response {
    if !ctx.peer.is_root() {
        return refused(
            ErrorKind::NotPermitted,
            "sign-in requests are accepted from root (the PAM module) only",
        );
    }
    let peer = ctx.peer.describe();
    let policy = ctx.policy.clone();
    let result = match request {
        SignInRequest::Plan { user, mode, origin } => {
            let requester = Requester::new(&user, &origin, &peer, ctx.now);
            steps::plan(&policy, &SystemDirectory, ctx.store, &requester, mode).map(|planned| {
                let mut plan = planned.plan;
                match (ctx.key_copy, &planned.keys) {
                    (KeyCopy::Update { copy, path }, Some(keys)) => {
                        copy.remember_keys(path, &user, keys)
                    }
                    (KeyCopy::Serving, _) if plan.nothing.is_none() => {
                        if plan.key.is_none() {
                            return refused(
                                ErrorKind::Store,
                                format!(
                                    "the store is unreachable, and this host's offline copy \
                                         has no security key of {user:?}"
                                ),
                            );
                        }
                        plan.offline = true;
                    }
                    _ => {}
                }
                if let Some(challenge) = planned.challenge {
                    let pending = PendingChallenge {
                        user: user.clone(),
                        uid: ctx.peer.uid,
                        expires: ctx.now
                            + policy.keys.touch_timeout.as_secs() as i64
                            + CHALLENGE_SLACK_SECS,
                        purpose: ChallengePurpose::SignIn,
                        offline: plan.offline,
                    };
                    if !ctx.challenges.insert(challenge.to_vec(), pending, ctx.now) {
                        return refused(
                            ErrorKind::Busy,
                            "too many key challenges outstanding; try again",
                        );
                    }
                }
                Response::Plan(plan)
            })
        }
        SignInRequest::KeyAnswer {
            user,
            challenge,
            answer,
            origin,
        } => {
            let taken = ctx
                .challenges
                .take(&challenge.0, ctx.now)
                .filter(|p| p.user == user && p.purpose == ChallengePurpose::SignIn);
            let issued: Option<[u8; 32]> = challenge.0.as_slice().try_into().ok();
            match (taken, issued) {
                (Some(_), Some(issued)) => {
                    let requester = Requester::new(&user, &origin, &peer, ctx.now);
                    steps::key_answer(
                        &policy,
                        &SystemDirectory,
                        ctx.store,
                        &requester,
                        &issued,
                        answer,
                    )
                    .map(Response::Verdict)
                }
                _ => {
                    return refused(
                        ErrorKind::NotFound,
                        "no such key challenge: it was answered already, expired, or issued for someone else",
                    )
                }
            }
        }
        SignInRequest::CheckPass { user, pass, origin } => {
            let requester = Requester::new(&user, &origin, &peer, ctx.now);
            let gated = Gated(ctx.hashes);
            steps::check_pass(
                &policy,
                &SystemDirectory,
                ctx.store,
                &gated,
                &requester,
                pass.expose().as_bytes(),
            )
            .map(Response::Verdict)
        }
    };
    match result {
        Ok(response) => response,
        Err(Error::UnknownUser) => refused(ErrorKind::UnknownUser, "no such user"),
        Err(Error::Unavailable(why @ Unavailable::Store(_))) => {
            refused(ErrorKind::Store, why.to_string())
        }
        Err(Error::Unavailable(why)) => refused(ErrorKind::Internal, why.to_string()),
        Err(Error::Conversation) => refused(ErrorKind::Internal, "conversation error in daemon"),
    }
}

/// Each hash waits for a slot of the daemon's bound.
struct Gated<'a>(&'a dyn crate::context::HashGate);

impl PassVerifier for Gated<'_> {
    fn verify(&self, canonical: &str, phc: &str) -> Result<Option<PassProof>, HashError> {
        let mut result = Err(HashError::NoSlot);
        self.0
            .run(&mut |memory| result = tap_core::hashing::verify_in(canonical, phc, memory));
        result
    }
}
