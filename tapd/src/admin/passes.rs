//! Reading and revoking passes (issuing is `issue`), and `init`.

use super::caller::{admitted, existing_user};
use super::info::pass_info;
use super::record::{record, store_failed};
use super::Ask;
use tap_core::audit::Event;
use tap_protocol::admin::AdminReply;
use tap_protocol::{ErrorKind, Refusal};

/// The daemon opened (and created or migrated) the store when it started;
/// root learns where it is.
pub fn init(ask: &mut Ask<'_, '_>) -> Result<AdminReply, Refusal> {
    ask.caller.require_root("create the store")?;
    Ok(AdminReply::StoreReady {
        path: ask.ctx.policy.store.describe(),
    })
}

pub fn show(ask: &mut Ask<'_, '_>, user: &str) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    ask.caller
        .require_self_or_admin(&policy, user, "show another user's pass")?;
    let admitted = admitted(&policy, ask.users, user)?;
    let pass = ask.ctx.store.pass(user).map_err(store_failed)?.ok_or_else(|| {
        Refusal::new(
            ErrorKind::NotFound,
            format!("{user} has no Temporary Access Pass; an administrator issues one with `tapctl issue {user}`"),
        )
    })?;
    Ok(AdminReply::Pass {
        info: pass_info(&pass, &policy, admitted, ask.ctx.now),
    })
}

pub fn list(ask: &mut Ask<'_, '_>) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    ask.caller.require_admin(&policy, "list passes")?;
    let passes = ask.ctx.store.passes().map_err(store_failed)?;
    let passes = passes
        .iter()
        .map(|pass| {
            // A pass of a user deleted since is listed as out of scope.
            let admitted = admitted(&policy, ask.users, &pass.user).unwrap_or(false);
            pass_info(pass, &policy, admitted, ask.ctx.now)
        })
        .collect();
    Ok(AdminReply::Passes {
        passes,
        store: ask.ctx.policy.store.describe(),
    })
}

pub fn revoke(ask: &mut Ask<'_, '_>, user: &str) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    ask.caller.require_admin(&policy, "revoke passes")?;
    let audit = record(ask, Event::PassRevoked, user, String::new());
    let now = ask.ctx.now;
    if ask
        .ctx
        .store
        .revoke(user, now, &audit)
        .map_err(store_failed)?
    {
        return Ok(AdminReply::Revoked { user: user.into() });
    }
    // A removed account's leftover pass is still revoked above; with
    // nothing to revoke, an unknown name is reported as such.
    existing_user(ask.users, user)?;
    Err(Refusal::new(
        ErrorKind::NotFound,
        format!("{user} has no pass to revoke"),
    ))
}
