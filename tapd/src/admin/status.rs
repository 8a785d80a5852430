//! `status`: the caller's own pass, enrollment window, security keys and
//! SSH keys.

use super::caller::admitted;
use super::info::{key_info, pass_info, ssh_key_info};
use super::record::store_failed;
use super::Ask;
use tap_protocol::admin::AdminReply;
use tap_protocol::Refusal;

pub fn status(ask: &mut Ask<'_, '_>) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let now = ask.ctx.now;
    let user = ask.caller.name.clone();
    let in_scope = admitted(&policy, ask.users, &user)?;
    let pass = ask.ctx.store.pass(&user).map_err(store_failed)?;
    let keys = ask.ctx.store.keys(&user).map_err(store_failed)?;
    let ssh_keys = ask.ctx.store.ssh_keys(&user).map_err(store_failed)?;
    let window = pass
        .as_ref()
        .filter(|p| p.enroll_window_open(now))
        .and_then(|p| p.enroll_until);
    Ok(AdminReply::Status {
        pass: pass.as_ref().map(|p| pass_info(p, &policy, in_scope, now)),
        enroll_window_until: window,
        keys: keys.iter().map(key_info).collect(),
        ssh_keys: ssh_keys.iter().map(ssh_key_info).collect(),
        user,
    })
}
