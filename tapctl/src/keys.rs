//! Security-key commands: enroll, list, remove, and the caller's status.

use crate::caller::existing_user;
use crate::commands::{admitted, open_store, record, Context};
use crate::failure::{Exit, Failure, Result};
use crate::output::{message, out, outln};
use crate::terminal::Terminal;
use crate::view::{describe, print_json, table, PassView};
use serde::Serialize;
use tap_core::helper::runner::HelperFailure;
use tap_core::keys::credential::KeyCredential;
use tap_core::keys::protocol::{
    Bytes, HelperError, Pin, RegisterRequest, Request, Response, UserVerification,
};
use tap_core::keys::{verify_registration, Algorithm, RegistrationAnswer};
use tap_core::policy::format_aaguid;
use tap_core::signin::{
    sign_in_with_key, Attempt, Authenticator, FirstPass, HelperProcess, KeyResult, Mode, Outcome,
    Prompt,
};
use tap_core::store::{AddKey, Store};
use tap_core::timefmt::{to_human, to_rfc3339};

const MAX_LABEL_CHARS: usize = 64;

#[derive(Debug, Serialize)]
pub struct KeyView {
    pub id: String,
    pub label: String,
    /// The authenticator model (AAGUID).
    pub model: String,
    pub algorithm: String,
    pub sign_count: u32,
    pub attestation: String,
    pub created: String,
    pub last_used: Option<String>,
}

impl KeyView {
    fn new(key: &KeyCredential) -> Self {
        KeyView {
            id: key.id_text(),
            label: key.label.clone(),
            model: format_aaguid(&key.aaguid),
            algorithm: Algorithm::from_cose_id(key.algorithm)
                .map_or("unknown", |a| a.name())
                .to_string(),
            sign_count: key.sign_count,
            attestation: key.attestation.clone(),
            created: to_rfc3339(key.created),
            last_used: key.last_used.map(to_rfc3339),
        }
    }
}

fn key_table(keys: &[KeyCredential]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let id = k.id_text();
            vec![
                id.chars().take(12).collect(),
                k.label.clone(),
                format_aaguid(&k.aaguid),
                to_human(k.created),
                k.last_used.map_or("never".into(), to_human),
            ]
        })
        .collect();
    table(
        &["ID", "LABEL", "MODEL (AAGUID)", "CREATED", "LAST USED"],
        &rows,
    )
}

pub fn list(ctx: &Context, user: Option<&str>, json: bool) -> Result<()> {
    let user = user.unwrap_or(&ctx.caller.name);
    ctx.caller
        .require_self_or_admin(&ctx.policy, user, "list another user's keys")?;
    existing_user(user)?;
    let keys = open_store(ctx)?.keys(user)?;
    if json {
        print_json(&keys.iter().map(KeyView::new).collect::<Vec<_>>())?;
    } else if keys.is_empty() {
        outln(&format!("{user} has no security keys."))?;
    } else {
        out(&key_table(&keys))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Status {
    user: String,
    pass: Option<PassView>,
    enroll_window_until: Option<String>,
    keys: Vec<KeyView>,
}

pub fn status(ctx: &Context, json: bool) -> Result<()> {
    let user = ctx.caller.name.clone();
    let in_scope = admitted(ctx, &user)?;
    let store = open_store(ctx)?;
    let pass = store.pass(&user)?;
    let keys = store.keys(&user)?;
    let window = pass
        .as_ref()
        .filter(|p| p.enroll_window_open(ctx.now))
        .and_then(|p| p.enroll_until);
    if json {
        print_json(&Status {
            user: user.clone(),
            pass: pass
                .as_ref()
                .map(|p| PassView::new(p, &ctx.policy, in_scope, ctx.now)),
            enroll_window_until: window.map(to_rfc3339),
            keys: keys.iter().map(KeyView::new).collect(),
        })?;
        return Ok(());
    }
    match &pass {
        Some(p) => out(&describe(
            &PassView::new(p, &ctx.policy, in_scope, ctx.now),
            p,
        ))?,
        None => outln(&format!("{user} has no Temporary Access Pass."))?,
    }
    if let Some(until) = window {
        outln(&format!(
            "You may enroll a security key until {} (tapctl enroll).",
            to_human(until)
        ))?;
    }
    if keys.is_empty() {
        outln("No security keys.")?;
    } else {
        outln("Security keys:")?;
        out(&key_table(&keys))?;
    }
    Ok(())
}

/// Removes `user`'s key named by `id`.
pub fn remove(ctx: &Context, user: &str, id: &str) -> Result<()> {
    let user = user.to_string();
    // Permission before the store: what another user's keys are is not the
    // caller's to learn, so the refusal is the same whether a key matches.
    ctx.caller
        .require_self_or_admin(&ctx.policy, &user, "remove another user's key")?;
    existing_user(&user)?;
    let mut store = open_store(ctx)?;
    let keys = store.keys(&user)?;
    let matching: Vec<&KeyCredential> = keys.iter().filter(|k| k.answers_to(id)).collect();
    let key = match matching.as_slice() {
        [key] => *key,
        [] => return Err(Failure::new(Exit::NotFound, format!("{user} has no key whose id starts with {id:?} (at least 6 characters; see tapctl keys)"))),
        _ => return Err(Failure::new(Exit::Usage, format!("{id:?} names more than one of {user}'s keys; give more of the id"))),
    };
    if !ctx.caller.is_admin(&ctx.policy) {
        // Yourself: inside an enrollment window, or after proving another key.
        if !window_open(ctx, &store, &user)? {
            let others: Vec<KeyCredential> = keys
                .iter()
                .filter(|k| k.credential_id != key.credential_id)
                .cloned()
                .collect();
            if others.is_empty() {
                return Err(no_window(ctx, &user));
            }
            prove_key(ctx, &mut store, &others)?;
        }
    }
    let audit = record(
        ctx,
        "key.removed",
        &user,
        format!("key {} ({})", key.label, key.id_text()),
    );
    if !store.remove_key(&user, &key.credential_id, &audit)? {
        return Err(Failure::new(
            Exit::NotFound,
            "the key was removed meanwhile",
        ));
    }
    outln(&format!("Removed {user}'s security key {:?}.", key.label))?;
    Ok(())
}

fn window_open(ctx: &Context, store: &dyn Store, user: &str) -> Result<bool> {
    Ok(store
        .pass(user)?
        .is_some_and(|p| p.enroll_window_open(ctx.now)))
}

fn no_window(ctx: &Context, user: &str) -> Failure {
    Failure::new(
        Exit::NotPermitted,
        format!(
            "no enrollment window is open for {user}. Sign in with a Temporary Access Pass first \
             (an administrator issues one: tapctl issue {user}); then run this within {} of that sign-in.",
            ctx.policy.pass.enroll_window
        ),
    )
}

/// A key sign-in, in tapctl: the caller touches a key they already have.
fn prove_key(ctx: &Context, store: &mut dyn Store, keys: &[KeyCredential]) -> Result<()> {
    let attempt = Attempt {
        user: &ctx.caller.name,
        service: "tapctl",
        rhost: "",
        tty: "",
        now: ctx.now,
        first_pass: FirstPass::Prompt,
        mode: Mode::PassOnly,
        earlier_token: None,
        silent: false,
    };
    let helper = HelperProcess::for_policy(&ctx.policy);
    match sign_in_with_key(&ctx.policy, store, keys, &helper, &mut Terminal, &attempt) {
        Ok(KeyResult::Decided(Outcome::KeySuccess { .. })) => Ok(()),
        Ok(KeyResult::Decided(outcome)) => Err(Failure::new(
            Exit::NotPermitted,
            format!("your security key was not accepted: {outcome:?}"),
        )),
        Ok(KeyResult::NoDevice) => Err(Failure::new(
            Exit::NotPermitted,
            "plug in a security key you have already enrolled, or sign in with a pass first",
        )),
        Err(e) => Err(Failure::new(Exit::Internal, format!("{e:?}"))),
    }
}

pub fn enroll(ctx: &Context, for_user: Option<&str>, label: Option<String>) -> Result<()> {
    let user = ctx.caller.name.clone();
    if let Some(other) = for_user.filter(|u| *u != user) {
        // The key must be in the holder's hand: nobody, root included,
        // enrolls a key for someone else.
        return Err(Failure::new(
            Exit::NotPermitted,
            format!("you can enroll a security key only for yourself; {other} runs `tapctl enroll` after signing in with a pass"),
        ));
    }
    let policy = &ctx.policy;
    if !policy.enabled || !admitted(ctx, &user)? {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!("the policy does not cover {user}"),
        ));
    }
    let label = check_label(label)?;
    let mut store = open_store(ctx)?;
    let keys = store.keys(&user)?;
    if keys.len() >= policy.keys.max_keys {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!("{user} has {} keys, the most the policy allows; remove one first (tapctl keys remove ID)", keys.len()),
        ));
    }
    if !window_open(ctx, &store, &user)? {
        if keys.is_empty() {
            return Err(no_window(ctx, &user));
        }
        message("No enrollment window is open: prove a key you already have first.");
        prove_key(ctx, &mut store, &keys)?;
    }

    let mut challenge = [0u8; 32];
    tap_core::keys::random_bytes(&mut challenge).map_err(|e| Failure::new(Exit::Internal, e))?;
    let mut user_handle = [0u8; 16];
    tap_core::keys::random_bytes(&mut user_handle).map_err(|e| Failure::new(Exit::Internal, e))?;
    let request = RegisterRequest {
        rp_id: policy.keys.rp_id().to_string(),
        client_data_hash: Bytes(challenge.to_vec()),
        user_id: Bytes(user_handle.to_vec()),
        user_name: user.clone(),
        exclude: keys
            .iter()
            .map(|k| Bytes(k.credential_id.clone()))
            .collect(),
        algorithms: vec![Algorithm::Es256.cose_id(), Algorithm::EdDsa.cose_id()],
        user_verification: policy.keys.user_verification,
        pin: None,
    };
    let helper = HelperProcess::for_policy(policy);
    message("Touch your security key to register it.");
    let (authenticator_data, format, statement) =
        register_with_key(&helper, request).inspect_err(|failure| {
            // Refusals before any answer could be verified are audited too.
            let _ = store.append_audit(&record(
                ctx,
                "key.enroll_failed",
                &user,
                failure.message.clone(),
            ));
        })?;
    let uv_required = policy.keys.user_verification == UserVerification::Required;
    let answer = RegistrationAnswer {
        authenticator_data: &authenticator_data.0,
        attestation_format: &format,
        attestation_statement: &statement.0,
    };
    let verified = verify_registration(policy.keys.rp_id(), &challenge, uv_required, &answer)
        .map_err(|e| {
            let _ = store.append_audit(&record(
                ctx,
                "key.enroll_refused",
                &user,
                e.code().to_string(),
            ));
            Failure::new(
                Exit::NotPermitted,
                format!("the security key's answer was refused: {e}"),
            )
        })?;
    if !policy.keys.allows_aaguid(&verified.aaguid) {
        let model = format_aaguid(&verified.aaguid);
        let _ = store.append_audit(&record(
            ctx,
            "key.enroll_refused",
            &user,
            format!("model {model} not allowed"),
        ));
        return Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "this key model ({model}) is not allowed by the policy's [keys] allowed_aaguids"
            ),
        ));
    }
    let key = KeyCredential {
        user: user.clone(),
        credential_id: verified.credential_id.clone(),
        public_key: verified.public_key.clone(),
        algorithm: verified.algorithm.cose_id(),
        aaguid: verified.aaguid,
        sign_count: verified.sign_count,
        label: label.unwrap_or_else(|| format!("key {}", keys.len() + 1)),
        attestation: format!(
            "{}: {}",
            verified.attestation_format,
            verified.attestation.describe()
        ),
        created: ctx.now,
        last_used: None,
    };
    let detail = format!(
        "key {} ({}), model {}, {}",
        key.label,
        key.id_text(),
        format_aaguid(&key.aaguid),
        key.attestation
    );
    match store.add_key(
        &key,
        policy.keys.max_keys,
        &record(ctx, "key.enrolled", &user, detail),
    )? {
        AddKey::Added => {
            outln(&format!(
                "Registered security key {:?} for {user}. From now on, touch it to sign in.",
                key.label
            ))?;
            Ok(())
        }
        AddKey::TooMany => Err(Failure::new(
            Exit::NotPermitted,
            "you reached the policy's max_keys meanwhile",
        )),
        AddKey::Duplicate => Err(Failure::new(
            Exit::Usage,
            "this security key is already registered",
        )),
    }
}

/// makeCredential through the helper, asking for the PIN once if the key
/// wants one. Returns the authenticator data, attestation format and statement.
fn register_with_key(
    helper: &HelperProcess<'_>,
    mut request: RegisterRequest,
) -> Result<(Bytes, String, Bytes)> {
    loop {
        let answer = helper
            .call(&Request::Register(request.clone()))
            .map_err(|failure| match failure {
                HelperFailure::Spawn(_) => Failure::new(Exit::Internal, failure.to_string()),
                _ => Failure::new(Exit::NotPermitted, failure.to_string()),
            })?;
        match answer {
            Response::Registered {
                authenticator_data,
                attestation_format,
                attestation_statement,
            } => {
                return Ok((
                    authenticator_data,
                    attestation_format,
                    attestation_statement,
                ))
            }
            Response::Failed {
                error: HelperError::PinRequired,
                ..
            } if request.pin.is_none() => {
                let typed = Terminal.secret(tap_core::signin::PIN_PROMPT).ok().flatten();
                let pin = typed.as_deref().and_then(|t| Pin::from_typed(t));
                request.pin = Some(pin.ok_or_else(|| Failure::new(Exit::Usage, "no PIN given"))?);
            }
            Response::Failed { error, message } => return Err(helper_refusal(error, &message)),
            other => {
                return Err(Failure::new(
                    Exit::NotPermitted,
                    format!("unexpected answer from the key helper: {other:?}"),
                ))
            }
        }
    }
}

fn helper_refusal(error: HelperError, message: &str) -> Failure {
    let text = match error {
        HelperError::NoDevice => "no security key found: plug one in and try again".to_string(),
        HelperError::AlreadyEnrolled => {
            "this security key is already registered for you".to_string()
        }
        HelperError::PinInvalid => "wrong PIN".to_string(),
        HelperError::PinBlocked => {
            "the key's PIN is blocked; reset the key with its maker's tool".to_string()
        }
        HelperError::NotConfirmed => "the key was not touched in time".to_string(),
        other => format!("the security key refused: {other:?}: {message}"),
    };
    Failure::new(Exit::NotPermitted, text)
}

/// A label is shown in tables and logs: short, printable, one line.
fn check_label(label: Option<String>) -> Result<Option<String>> {
    match label {
        Some(text)
            if text.is_empty()
                || text.chars().count() > MAX_LABEL_CHARS
                || text.chars().any(char::is_control) =>
        {
            Err(Failure::new(
                Exit::Usage,
                format!("--label must be 1 to {MAX_LABEL_CHARS} printable characters"),
            ))
        }
        other => Ok(other),
    }
}
