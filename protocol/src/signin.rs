//! Sign-in between `pam_tap.so` (euid 0) and `tapd`: the vocabulary of
//! decisions (`Outcome` and its reasons) and the three steps of a sign-in.
//!
//! 1. `Plan`: what the daemon knows before anyone is asked: nothing to do
//!    (policy disabled, out of scope), a key challenge when the user has
//!    keys, and the prompt and the pass's state (its length, so the client
//!    can tell a password from a pass without sending it anywhere).
//! 2. `KeyAnswer`: the helper's answer to that challenge, verified by the
//!    daemon.
//! 3. `CheckPass`: a pass-shaped answer, hashed and counted by the daemon.
//!
//! No connection is held while the person types or touches: each step is a
//! request of its own, and the daemon re-checks everything at each.

use crate::helper::{AssertRequest, Bytes};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// Entra's `methodUsabilityReason`, plus Locked and Revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    EnabledByPolicy,
    DisabledByPolicy,
    Expired,
    NotYetValid,
    OneTimeUsed,
    Locked,
    Revoked,
}

impl Reason {
    pub fn usable(self) -> bool {
        self == Reason::EnabledByPolicy
    }

    /// True when nothing can make the pass usable again (a new pass is a
    /// new secret): only a pass not valid yet, or usable, has a future.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Reason::OneTimeUsed | Reason::Locked | Reason::Expired | Reason::Revoked
        )
    }

    /// The cause in a few words, for the audit and syslog.
    pub fn cause(self) -> &'static str {
        match self {
            Reason::EnabledByPolicy => "usable",
            Reason::DisabledByPolicy => "policy disabled or user out of scope",
            Reason::Expired => "pass expired",
            Reason::NotYetValid => "pass not valid yet",
            Reason::OneTimeUsed => "one-time pass already used",
            Reason::Locked => "pass locked after too many wrong tries",
            Reason::Revoked => "pass revoked",
        }
    }

    /// A sentence for people.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::EnabledByPolicy => "usable",
            Reason::DisabledByPolicy => {
                "not usable: the policy is disabled or does not cover this user"
            }
            Reason::Expired => "not usable: expired",
            Reason::NotYetValid => "not usable yet: its start time has not come",
            Reason::OneTimeUsed => "not usable: this one-time pass has been used",
            Reason::Locked => "not usable: locked after too many wrong tries",
            Reason::Revoked => "not usable: revoked by an administrator",
        }
    }
}

/// What the stack around the module does with a person who has no pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A password module follows (`pam_unix try_first_pass`): one prompt,
    /// `[pass] prompt`, for the password or the pass, asked of everyone the
    /// policy covers; an answer that is not the pass is handed on.
    #[default]
    PasswordOrPass,
    /// The pass is the only way in (`pass_only`): only a holder of a usable
    /// pass is asked, with `[pass] pass_only_prompt`.
    PassOnly,
}

/// Why there is nothing for this user (the PAM_IGNORE paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NothingReason {
    PolicyDisabled,
    OutOfScope,
    NoPass,
    Unusable(Reason),
    /// The answer cannot be a pass (its length after normalising, or a
    /// symbol no pass has): a password for the next module, not a guess.
    NotAPass,
}

/// Why a sign-in failed (the PAM_AUTH_ERR paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// Wrong pass, counted; `locked` when this try reached the limit.
    WrongPass { failures: u32, locked: bool },
    /// The right pass, but it can never be used again: a used one-time
    /// pass, or one that is locked, expired or revoked. Not counted.
    SpentPass(Reason),
    /// `use_first_pass` but no earlier module collected a token.
    NoEarlierToken,
    /// A security key's answer was refused, or the helper failed (timeout,
    /// crash, garbage, no touch). The text says which, for the log.
    KeyRefused(String),
    /// Right pass, but it stopped being usable meanwhile (another sign-in
    /// used the one-time pass, or it was revoked, locked or replaced).
    NoLongerUsable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Nothing(NothingReason),
    PassSuccess { expires: i64, one_time: bool },
    KeySuccess { label: String },
    Failed(Failure),
}

/// Where the attempt comes from, as the PAM application reports it. The
/// daemon records it as reported, beside the peer's own pid and uid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub service: String,
    pub rhost: String,
    pub tty: String,
}

/// The state of the user's pass, as far as the client needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassState {
    pub reason: Reason,
    /// Symbols in the clear pass; `None` for a pass from before the store
    /// kept it (any length of the pass alphabet is then a guess).
    pub length: Option<usize>,
}

/// The daemon's challenge for the user's enrolled keys. The client passes
/// `request` to its key helper and returns the answer with `KeyAnswer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyChallenge {
    pub request: AssertRequest,
}

/// Step 1's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Decided already: nobody is asked anything.
    pub nothing: Option<NothingReason>,
    pub key: Option<KeyChallenge>,
    /// The prompt for this mode, from the policy.
    pub prompt: String,
    pub pass: Option<PassState>,
    /// The store is unreachable and this plan comes from tapd's offline
    /// copy of the user's keys (`[store] offline_keys`): only a key can
    /// sign in, and anything else is "unavailable", never "nothing here".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offline: bool,
}

/// What the key helper said, as the client hands it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum KeyAnswer {
    Asserted {
        credential_id: Bytes,
        authenticator_data: Bytes,
        signature: Bytes,
    },
    /// The helper failed or the authenticator refused; the text is for the
    /// audit. (No device at all is not sent: the client goes on to the pass.)
    Failed { why: String },
}

/// A step of a sign-in; accepted only from euid-0 peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignInRequest {
    Plan {
        user: String,
        mode: Mode,
        origin: Origin,
    },
    KeyAnswer {
        user: String,
        /// The challenge's `client_data_hash`, naming it.
        challenge: Bytes,
        answer: KeyAnswer,
        origin: Origin,
    },
    CheckPass {
        user: String,
        /// The answer, normalised (`passcode::shaped`).
        pass: Secret,
        origin: Origin,
    },
}

/// A decision, and any text to show the person (the welcome after a pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub outcome: Outcome,
    pub info: Option<String>,
}
