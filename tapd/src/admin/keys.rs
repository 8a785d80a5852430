//! `keys`: list a user's security keys, and remove one.

use super::caller::existing_user;
use super::info::key_info;
use super::proof;
use super::record::{record, store_failed};
use super::Ask;
use tap_core::audit::Event;
use tap_core::keys::credential::KeyCredential;
use tap_core::store::Store;
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
    let matching: Vec<&KeyCredential> = keys.iter().filter(|k| k.answers_to(id)).collect();
    let key = match matching.as_slice() {
        [key] => (*key).clone(),
        [] => {
            return Err(Refusal::new(
                ErrorKind::NotFound,
                format!("{user} has no key whose id starts with {id:?} (at least 6 characters; see tapctl keys)"),
            ))
        }
        _ => {
            return Err(Refusal::new(
                ErrorKind::BadRequest,
                format!("{id:?} names more than one of {user}'s keys; give more of the id"),
            ))
        }
    };
    if !ask.caller.is_admin(&policy) && !window_open(ask, &user)? {
        let others: Vec<KeyCredential> = keys
            .iter()
            .filter(|k| k.credential_id != key.credential_id)
            .cloned()
            .collect();
        if others.is_empty() {
            return Err(no_window(ask, &user));
        }
        let purpose = format!("remove {}", key.id_text());
        if let Some(ask_for_proof) = proof::require(ask, &user, &others, &purpose, given)? {
            return Ok(ask_for_proof);
        }
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
