//! `keys`: list a user's security keys, and remove one.

use super::caller::existing_user;
use super::info::key_info;
use super::proof;
use super::record::{record, store_failed};
use super::Ask;
use tap_core::audit::Event;
use tap_core::keys::credential::KeyCredential;
use tap_protocol::admin::{AdminReply, KeyProof};
use tap_protocol::{ErrorKind, Refusal};

pub fn list(ask: &mut Ask<'_, '_>, user: Option<&str>) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = user.unwrap_or(&ask.caller.name).to_string();
    ask.caller
        .require_self_or_admin(&policy, &user, "list another user's keys")?;
    existing_user(ask.users, &user)?;
    let keys = ask.ctx.store.keys(&user).map_err(store_failed)?;
    Ok(AdminReply::Keys {
        keys: keys.iter().map(key_info).collect(),
        user,
    })
}

/// Removes `user`'s key named by `id`: admins any key; a user their own,
/// inside an enrollment window or after proving another of their keys.
pub fn remove(
    ask: &mut Ask<'_, '_>,
    user: Option<&str>,
    id: &str,
    given: Option<&KeyProof>,
) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let user = user.unwrap_or(&ask.caller.name).to_string();
    // Permission before the store: what another user's keys are is not the
    // caller's to learn, so the refusal is the same whether a key matches.
    ask.caller
        .require_self_or_admin(&policy, &user, "remove another user's key")?;
    existing_user(ask.users, &user)?;
    let keys = ask.ctx.store.keys(&user).map_err(store_failed)?;
    let key = named(&keys, id, KeyCredential::answers_to, &user, &KEY_NAMES)?.clone();
    let others: Vec<KeyCredential> = keys
        .iter()
        .filter(|k| k.credential_id != key.credential_id)
        .cloned()
        .collect();
    let purpose = format!("remove {}", key.id_text());
    if let Some(ask_for_proof) = may_remove_own(ask, &user, &others, &purpose, given)? {
        return Ok(ask_for_proof);
    }
    let audit = record(
        ask,
        Event::KeyRemoved,
        &user,
        format!("key {} ({})", key.label, key.id_text()),
    );
    if !ask
        .ctx
        .store
        .remove_key(&user, &key.credential_id, &audit)
        .map_err(store_failed)?
    {
        return Err(Refusal::new(
            ErrorKind::NotFound,
            "the key was removed meanwhile",
        ));
    }
    Ok(AdminReply::KeyRemoved {
        user,
        label: key.label,
    })
}

/// How messages name one kind of key.
pub struct KeyNames {
    /// "key", "SSH key".
    pub noun: &'static str,
    /// What ID is: "id", "fingerprint".
    pub id: &'static str,
    /// The command that lists them.
    pub list: &'static str,
}

const KEY_NAMES: KeyNames = KeyNames {
    noun: "key",
    id: "id",
    list: "tapctl keys",
};

/// The one key of `user`'s that `id` names, or why there is not one.
pub fn named<'k, K>(
    keys: &'k [K],
    id: &str,
    answers_to: impl Fn(&K, &str) -> bool,
    user: &str,
    names: &KeyNames,
) -> Result<&'k K, Refusal> {
    let matching: Vec<&K> = keys.iter().filter(|k| answers_to(k, id)).collect();
    let KeyNames {
        noun,
        id: what,
        list,
    } = names;
    match matching.as_slice() {
        [key] => Ok(key),
        [] => Err(Refusal::new(
            ErrorKind::NotFound,
            format!("{user} has no {noun} whose {what} starts with {id:?} (at least 6 characters; see {list})"),
        )),
        _ => Err(Refusal::new(
            ErrorKind::BadRequest,
            format!("{id:?} names more than one of {user}'s {noun}s; give more of the {what}"),
        )),
    }
}

/// Whether the caller may remove one of `user`'s keys: admins may; a user
/// inside an enrollment window may; outside one, after touching one of
/// `provable` (their security keys but the one going). `Ok(Some(reply))`
/// asks for that touch first.
pub fn may_remove_own(
    ask: &mut Ask<'_, '_>,
    user: &str,
    provable: &[KeyCredential],
    purpose: &str,
    given: Option<&KeyProof>,
) -> Result<Option<AdminReply>, Refusal> {
    let policy = ask.ctx.policy.clone();
    if ask.caller.is_admin(&policy) || window_open(ask, user)? {
        return Ok(None);
    }
    if provable.is_empty() {
        return Err(no_window(ask, user));
    }
    proof::require(ask, user, provable, purpose, given)
}

pub fn window_open(ask: &mut Ask<'_, '_>, user: &str) -> Result<bool, Refusal> {
    Ok(ask
        .ctx
        .store
        .pass(user)
        .map_err(store_failed)?
        .is_some_and(|p| p.enroll_window_open(ask.ctx.now)))
}

pub fn no_window(ask: &Ask<'_, '_>, user: &str) -> Refusal {
    Refusal::new(
        ErrorKind::NotPermitted,
        format!(
            "no enrollment window is open for {user}. Sign in with a Temporary Access Pass first \
             (an administrator issues one: tapctl issue {user}); then run this within {} of that sign-in.",
            ask.ctx.policy.pass.enroll_window
        ),
    )
}

/// The store refused a key because it found the window closed: a fleet
/// store re-checks it, by the database's clock, for a host that is no
/// administrator there.
pub const WINDOW_CLOSED_IN_STORE: &str = "the store found the enrollment window closed (a fleet \
     database checks it by its own clock; this host's store role adds keys only in an open \
     window: sign in with a pass again, or have an administrator add the key through a tapd \
     connected as pam_tap_admin)";
