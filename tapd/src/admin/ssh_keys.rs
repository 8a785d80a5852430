//! `ssh-keys`: list, add (with or without an attestation for a challenge
//! the daemon issued) and remove a user's OpenSSH keys. sshd is served them
//! by `authorized_keys`.

use super::caller::{admitted, existing_user, groups_of};
use super::info::ssh_key_info;
use super::keys::{may_remove_own, named, no_window, window_open, KeyNames};
use super::record::{record, store_failed};
use super::Ask;
use crate::context::{ChallengePurpose, PendingChallenge};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tap_core::audit::Event;
use tap_core::enroll::check_label;
use tap_core::policy::{format_aaguid, Policy};
use tap_core::ssh::attestation::{self, SshAttestation, SshAttestationCheck};
use tap_core::ssh::keyline::SshPublicKey;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::AddKey;
use tap_protocol::admin::{AdminReply, KeyProof};
use tap_protocol::{ErrorKind, Refusal};

const CHALLENGE_PURPOSE: &str = "ssh-enroll";
const SSH_KEY_NAMES: KeyNames = KeyNames {
    noun: "SSH key",
    id: "fingerprint",
    list: "tapctl ssh-keys",
};
/// Printed before the random part, so a challenge file says what it is.
const CHALLENGE_PREFIX: &str = "pam_tap-ssh-enroll:";

fn refusal(kind: ErrorKind, message: impl Into<String>) -> Refusal {
    Refusal::new(kind, message)
}

fn require_enabled(policy: &Policy) -> Result<(), Refusal> {
    if policy.enabled && policy.ssh.enabled {
        return Ok(());
    }
    Err(refusal(
        ErrorKind::NotPermitted,
        "SSH keys are not enabled by the policy ([ssh] enabled = false)",
    ))
}

fn purpose() -> ChallengePurpose {
    ChallengePurpose::SelfService(CHALLENGE_PURPOSE.into())
}

pub fn list(ask: &mut Ask<'_, '_>, user: Option<&str>) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = user.unwrap_or(&ask.caller.name).to_string();
    ask.caller
        .require_self_or_admin(&policy, &user, "list another user's SSH keys")?;
    existing_user(ask.users, &user)?;
    let keys = ask.ctx.store.ssh_keys(&user).map_err(store_failed)?;
    Ok(AdminReply::SshKeys {
        keys: keys.iter().map(ssh_key_info).collect(),
        user,
    })
}

/// Who may add a key for `user`: the user themselves inside their window
/// (admins also outside it); another user's only an admin, and root alone
/// for a member of a protected group. The user must be one the policy
/// covers, or the key would never be served.
fn may_add(ask: &mut Ask<'_, '_>, policy: &Policy, user: &str) -> Result<(), Refusal> {
    require_enabled(policy)?;
    if user != ask.caller.name {
        ask.caller
            .require_admin(policy, "add an SSH key for another user")?;
        let groups = groups_of(ask.users, user)?;
        if let Some(group) = groups
            .iter()
            .find(|g| policy.admins.protected_groups.contains(g))
        {
            ask.caller.require_root(&format!(
                "add an SSH key for {user}, a member of the protected group {group:?}"
            ))?;
        }
    }
    if !admitted(policy, ask.users, user)? {
        return Err(refusal(
            ErrorKind::NotPermitted,
            format!("the policy does not cover {user}"),
        ));
    }
    if !ask.caller.is_admin(policy) && !window_open(ask, user)? {
        return Err(no_window(ask, user));
    }
    Ok(())
}

/// A challenge for `ssh-keygen -O challenge=FILE`, for the caller.
pub fn challenge(ask: &mut Ask<'_, '_>) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = ask.caller.name.clone();
    may_add(ask, &policy, &user)?;
    let mut random = [0u8; 32];
    tap_core::keys::random_bytes(&mut random)
        .map_err(|e| refusal(ErrorKind::Internal, e.to_string()))?;
    let text = format!("{CHALLENGE_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let expires = ask
        .ctx
        .now
        .saturating_add(policy.pass.enroll_window.as_secs_i64());
    let pending = PendingChallenge {
        user: user.clone(),
        uid: ask.caller.uid,
        expires,
        purpose: purpose(),
        offline: false,
    };
    if !ask
        .ctx
        .challenges
        .insert(text.clone().into_bytes(), pending, ask.ctx.now)
    {
        return Err(refusal(
            ErrorKind::Busy,
            "too many key challenges are outstanding; try again in a minute",
        ));
    }
    Ok(AdminReply::SshChallenge {
        challenge: text,
        application: policy.ssh.application.clone(),
        key_types: policy.ssh.key_types.clone(),
        require_verify: policy.ssh.require_verify,
        require_attestation: policy.ssh.require_attestation,
        expires,
    })
}

pub fn add(
    ask: &mut Ask<'_, '_>,
    user: Option<&str>,
    line: &str,
    label: Option<&str>,
    attestation: Option<&[u8]>,
) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = user.unwrap_or(&ask.caller.name).to_string();
    may_add(ask, &policy, &user)?;
    // From here the caller may add: every refusal is audited.
    let checked = check_key(ask, &policy, line, label, attestation);
    let key = match checked {
        Ok(key) => key,
        Err(refused) => return Err(audit_refusal(ask, &user, refused)),
    };
    let mut key = key;
    key.user = user.clone();
    let detail = format!(
        "ssh key {} ({}, {}), {}",
        key.label, key.fingerprint, key.key_type, key.attestation
    );
    let audit = record(ask, Event::SshKeyAdded, &user, detail);
    match ask
        .ctx
        .store
        .add_ssh_key(&key, policy.ssh.max_keys, &audit)
        .map_err(store_failed)?
    {
        AddKey::Added => Ok(AdminReply::SshKeyAdded {
            key: ssh_key_info(&key),
            user,
        }),
        AddKey::TooMany => Err(audit_refusal(
            ask,
            &user,
            refusal(
                ErrorKind::NotPermitted,
                format!(
                    "{user} has {} SSH keys, the most the policy allows; remove one first (tapctl ssh-keys remove ID)",
                    policy.ssh.max_keys
                ),
            ),
        )),
        AddKey::Duplicate => Err(audit_refusal(
            ask,
            &user,
            refusal(
                ErrorKind::NotPermitted,
                format!("the key {} is enrolled already", key.fingerprint),
            ),
        )),
        AddKey::WindowClosed => Err(audit_refusal(
            ask,
            &user,
            refusal(
                ErrorKind::NotPermitted,
                super::keys::WINDOW_CLOSED_IN_STORE.to_string(),
            ),
        )),
    }
}

fn audit_refusal(ask: &mut Ask<'_, '_>, user: &str, refused: Refusal) -> Refusal {
    let audit = record(ask, Event::SshKeyRefused, user, refused.message.clone());
    match ask.ctx.store.append_audit(&audit) {
        Ok(()) => refused,
        Err(e) => store_failed(e),
    }
}

/// The key as it will be stored (its user filled in by the caller), after
/// every check of the line, the policy and the attestation.
fn check_key(
    ask: &mut Ask<'_, '_>,
    policy: &Policy,
    line: &str,
    label: Option<&str>,
    attestation: Option<&[u8]>,
) -> Result<SshKeyRecord, Refusal> {
    let bad = |message: String| refusal(ErrorKind::BadRequest, message);
    let not_permitted = |message: String| refusal(ErrorKind::NotPermitted, message);
    check_label(label).map_err(|e| bad(e.to_string()))?;
    let key = SshPublicKey::parse_line(line).map_err(|e| bad(format!("the public key: {e}")))?;
    let type_name = key.key_type.name();
    if !policy.ssh.allows_type(type_name) {
        return Err(not_permitted(format!(
            "{type_name} keys are not allowed by the policy; allowed: {} ([ssh] key_types)",
            policy.ssh.key_types.join(", ")
        )));
    }
    let application = key.application.clone().unwrap_or_default();
    if key.key_type.is_security_key() && application != policy.ssh.application {
        return Err(not_permitted(format!(
            "the key was made for the application {application:?}; the policy wants {:?} \
             (ssh-keygen -O application={})",
            policy.ssh.application, policy.ssh.application
        )));
    }
    let (aaguid, described) = match attestation {
        Some(blob) => {
            if !key.key_type.is_security_key() {
                return Err(bad(format!(
                    "{type_name} is not a security key: it has no attestation"
                )));
            }
            let verified = verify_attestation(ask, policy, &key, blob)?;
            (Some(verified.0), verified.1)
        }
        None if policy.ssh.require_attestation => {
            return Err(not_permitted(
                "the policy requires an attestation ([ssh] require_attestation): enroll with \
                 tapctl ssh-enroll, or give --attestation for a challenge from tapctl ssh-keys challenge"
                    .into(),
            ))
        }
        None => (None, "no attestation".to_string()),
    };
    let label = label
        .map(str::to_string)
        .or_else(|| (!key.comment.is_empty()).then(|| key.comment.clone()))
        .unwrap_or_else(|| "ssh key".into());
    check_label(Some(&label)).map_err(|e| bad(format!("the key's comment as label: {e}")))?;
    Ok(SshKeyRecord {
        user: String::new(),
        fingerprint: key.fingerprint(),
        key_type: type_name.to_string(),
        blob: key.blob.clone(),
        label,
        application,
        aaguid,
        attestation: described,
        created: ask.ctx.now,
        last_used: None,
    })
}

/// Verifies the attestation against the caller's outstanding challenges
/// (the answer does not name its own: OpenSSH keeps only its hash), and
/// takes the one it was made for. Returns the AAGUID and what was checked.
fn verify_attestation(
    ask: &mut Ask<'_, '_>,
    policy: &Policy,
    key: &SshPublicKey,
    blob: &[u8],
) -> Result<([u8; 16], String), Refusal> {
    let not_permitted = |message: String| refusal(ErrorKind::NotPermitted, message);
    let parsed = SshAttestation::parse(blob)
        .map_err(|e| refusal(ErrorKind::BadRequest, format!("the attestation: {e}")))?;
    let caller = ask.caller.name.clone();
    let outstanding = ask
        .ctx
        .challenges
        .pending(ask.caller.uid, &caller, &purpose(), ask.ctx.now);
    if outstanding.is_empty() {
        return Err(not_permitted(
            "no SSH key challenge of yours is outstanding (they last the enrollment window): \
             run tapctl ssh-keys challenge, and ssh-keygen with it, again"
                .into(),
        ));
    }
    let mut last_error = None;
    for challenge in &outstanding {
        // A challenge file saved from a terminal ends with a newline.
        let with_newline = [challenge.as_slice(), b"\n"].concat();
        for candidate in [challenge.as_slice(), with_newline.as_slice()] {
            let check = SshAttestationCheck {
                challenge: candidate,
                key,
                user_verification_required: policy.ssh.require_verify,
            };
            match attestation::verify(&parsed, &check) {
                Ok(verified) => {
                    ask.ctx.challenges.take(challenge, ask.ctx.now);
                    if !policy.keys.allows_aaguid(&verified.aaguid) {
                        return Err(not_permitted(format!(
                            "this authenticator model ({}) is not in the policy's [keys] allowed_aaguids",
                            format_aaguid(&verified.aaguid)
                        )));
                    }
                    return Ok((verified.aaguid, verified.attestation.describe().to_string()));
                }
                Err(e) => last_error = Some(e),
            }
        }
    }
    Err(not_permitted(format!(
        "the attestation does not verify for any challenge tapd issued you{}",
        last_error.map(|e| format!(": {e}")).unwrap_or_default()
    )))
}

/// Removes `user`'s SSH key named by `id`, by the rules of `keys remove`.
pub fn remove(
    ask: &mut Ask<'_, '_>,
    user: Option<&str>,
    id: &str,
    given: Option<&KeyProof>,
) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = user.unwrap_or(&ask.caller.name).to_string();
    ask.caller
        .require_self_or_admin(&policy, &user, "remove another user's SSH key")?;
    existing_user(ask.users, &user)?;
    let keys = ask.ctx.store.ssh_keys(&user).map_err(store_failed)?;
    let key = named(&keys, id, SshKeyRecord::answers_to, &user, &SSH_KEY_NAMES)?.clone();
    let security_keys = ask.ctx.store.keys(&user).map_err(store_failed)?;
    let purpose = format!("remove {}", key.fingerprint);
    if let Some(ask_for_proof) = may_remove_own(ask, &user, &security_keys, &purpose, given)? {
        return Ok(ask_for_proof);
    }
    let audit = record(
        ask,
        Event::SshKeyRemoved,
        &user,
        format!("ssh key {} ({})", key.label, key.fingerprint),
    );
    if !ask
        .ctx
        .store
        .remove_ssh_key(&user, &key.fingerprint, &audit)
        .map_err(store_failed)?
    {
        return Err(refusal(
            ErrorKind::NotFound,
            "the SSH key was removed meanwhile",
        ));
    }
    Ok(AdminReply::SshKeyRemoved {
        user,
        label: key.label,
        fingerprint: key.fingerprint,
    })
}
