//! Security-key commands: enroll, list, remove, and the caller's status.
//! The key helper runs here, as the user, between requests to tapd.

use crate::client::Client;
use crate::commands::out_of_turn;
use crate::failure::{Exit, Failure, Result};
use crate::output::{message, out, outln};
use crate::terminal::Terminal;
use crate::view::{describe, print_json, table, PassView};
use serde::Serialize;
use std::path::Path;
use tap_core::enroll::check_label;
use tap_core::enroll::client::{call_with_pin, proof, registration, KeyFailure};
use tap_core::helper::runner::HelperFailure;
use tap_core::signin::HelperProcess;
use tap_core::timefmt::{to_human, to_rfc3339};
use tap_protocol::admin::{AdminReply, AdminRequest, KeyHelper, KeyInfo, KeyProof};
use tap_protocol::helper::{AssertRequest, HelperError, Request};

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
    fn new(key: &KeyInfo) -> Self {
        KeyView {
            id: key.id.clone(),
            label: key.label.clone(),
            model: key.model.clone(),
            algorithm: key.algorithm.clone(),
            sign_count: key.sign_count,
            attestation: key.attestation.clone(),
            created: to_rfc3339(key.created),
            last_used: key.last_used.map(to_rfc3339),
        }
    }
}

fn key_table(keys: &[KeyInfo]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.chars().take(12).collect(),
                k.label.clone(),
                k.model.clone(),
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

pub fn list(client: &Client, user: Option<String>, json: bool) -> Result<()> {
    let reply = client.admin(AdminRequest::Keys { user })?;
    let AdminReply::Keys { user, keys } = reply else {
        return Err(out_of_turn(reply));
    };
    if json {
        print_json(&keys.iter().map(KeyView::new).collect::<Vec<_>>())
    } else if keys.is_empty() {
        outln(&format!("{user} has no security keys."))
    } else {
        out(&key_table(&keys))
    }
}

#[derive(Serialize)]
struct Status {
    user: String,
    pass: Option<PassView>,
    enroll_window_until: Option<String>,
    keys: Vec<KeyView>,
    ssh_keys: Vec<crate::ssh_keys::SshKeyView>,
}

pub fn status(client: &Client, json: bool) -> Result<()> {
    let reply = client.admin(AdminRequest::Status {})?;
    let AdminReply::Status {
        user,
        pass,
        enroll_window_until,
        keys,
        ssh_keys,
    } = reply
    else {
        return Err(out_of_turn(reply));
    };
    if json {
        return print_json(&Status {
            user,
            pass: pass.as_ref().map(PassView::new),
            enroll_window_until: enroll_window_until.map(to_rfc3339),
            keys: keys.iter().map(KeyView::new).collect(),
            ssh_keys: ssh_keys
                .iter()
                .map(crate::ssh_keys::SshKeyView::new)
                .collect(),
        });
    }
    match &pass {
        Some(p) => out(&describe(&PassView::new(p), p))?,
        None => outln(&format!("{user} has no Temporary Access Pass."))?,
    }
    if let Some(until) = enroll_window_until {
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
    if !ssh_keys.is_empty() {
        outln("SSH keys:")?;
        out(&crate::ssh_keys::ssh_key_table(&ssh_keys))?;
    }
    Ok(())
}

/// Removes a key: `user` None is yourself.
pub fn remove(client: &Client, user: Option<String>, id: String) -> Result<()> {
    let request = |proof| AdminRequest::RemoveKey {
        user: user.clone(),
        id: id.clone(),
        proof,
    };
    match with_proof(client, request)? {
        AdminReply::KeyRemoved { user, label } => {
            outln(&format!("Removed {user}'s security key {label:?}."))
        }
        other => Err(out_of_turn(other)),
    }
}

pub fn enroll(client: &Client, for_user: Option<&str>, label: Option<String>) -> Result<()> {
    let me = crate::caller::own_name()?;
    if let Some(other) = for_user.filter(|u| *u != me) {
        // The key must be in the holder's hand: nobody, root included,
        // enrolls a key for someone else.
        return Err(Failure::new(
            Exit::NotPermitted,
            format!("you can enroll a security key only for yourself; {other} runs `tapctl enroll` after signing in with a pass"),
        ));
    }
    check_label(label.as_deref()).map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    let begin = |proof| AdminRequest::EnrollBegin {
        label: label.clone(),
        proof,
    };
    let mut reply = client.admin(begin(None))?;
    if let AdminReply::ProveKey { request, helper } = reply {
        message("No enrollment window is open: prove a key you already have first.");
        let proof = prove_key(&helper, request)?;
        reply = client.admin(begin(Some(proof)))?;
    }
    let AdminReply::Register { request, helper } = reply else {
        return Err(out_of_turn(reply));
    };
    let challenge = request.client_data_hash.clone();
    message("Touch your security key to register it.");
    let answer = with_helper(&helper, |process| {
        call_with_pin(process, Request::Register(request), &mut Terminal)
    })
    .and_then(registration)
    .map_err(key_failure)?;
    match client.admin(AdminRequest::EnrollFinish {
        challenge,
        label,
        answer,
    })? {
        AdminReply::Enrolled { user, label } => outln(&format!(
            "Registered security key {label:?} for {user}. From now on, touch it to sign in."
        )),
        other => Err(out_of_turn(other)),
    }
}

/// Sends `request`; when tapd asks to touch a key first, does so and sends
/// it again with the proof.
pub(crate) fn with_proof(
    client: &Client,
    request: impl Fn(Option<KeyProof>) -> AdminRequest,
) -> Result<AdminReply> {
    let reply = client.admin(request(None))?;
    let AdminReply::ProveKey {
        request: ask,
        helper,
    } = reply
    else {
        return Ok(reply);
    };
    let proof = prove_key(&helper, ask)?;
    client.admin(request(Some(proof)))
}

/// Touch a key you already have: the helper answers tapd's challenge.
fn prove_key(helper: &KeyHelper, request: AssertRequest) -> Result<KeyProof> {
    let challenge = request.client_data_hash.0.clone();
    message(tap_core::signin::TOUCH_CUE);
    with_helper(helper, |process| {
        call_with_pin(process, Request::Assert(request), &mut Terminal)
    })
    .and_then(|answer| proof(&challenge, answer))
    .map_err(|failure| match failure {
        KeyFailure::Refused {
            error: HelperError::NoDevice,
            ..
        } => Failure::new(
            Exit::NotPermitted,
            "plug in a security key you have already enrolled, or sign in with a pass first",
        ),
        other => key_failure(other),
    })
}

fn with_helper<T>(
    helper: &KeyHelper,
    call: impl FnOnce(&HelperProcess<'_>) -> std::result::Result<T, KeyFailure>,
) -> std::result::Result<T, KeyFailure> {
    let process = HelperProcess {
        program: Path::new(&helper.program),
        timeout: std::time::Duration::from_secs(helper.touch_timeout_secs),
    };
    call(&process)
}

fn key_failure(failure: KeyFailure) -> Failure {
    let exit = match failure {
        KeyFailure::Helper(HelperFailure::Spawn(_)) => Exit::Internal,
        KeyFailure::NoPin | KeyFailure::Conversation => Exit::Usage,
        _ => Exit::NotPermitted,
    };
    Failure::new(exit, failure.to_string())
}
