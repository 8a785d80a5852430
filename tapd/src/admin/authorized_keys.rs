//! What sshd asks: a user's keys as authorized_keys lines (through
//! `tapctl authorized-keys`), and, after it accepted one, that it did
//! (through the PAM session's `SSH_AUTH_INFO_0`).

use super::caller::admitted;
use super::record::store_failed;
use super::Ask;
use crate::context::KeyCopy;
use tap_core::audit::{AuditRecord, Event, Severity};
use tap_core::ssh::keyline::SshPublicKey;
use tap_protocol::admin::AdminReply;
use tap_protocol::{ErrorKind, Refusal};

/// The lines for `user`: none when SSH keys are off, or the user is
/// unknown or out of scope. Each line is written from the stored blob,
/// never from text a user gave, so no option can ride along.
pub fn lines(ask: &mut Ask<'_, '_>, user: &str) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let caller = &ask.caller;
    if !(caller.is_root() || caller.name == policy.ssh.command_user || caller.name == user) {
        return Err(Refusal::new(
            ErrorKind::NotPermitted,
            format!(
                "only root and the AuthorizedKeysCommandUser ([ssh] command_user = {:?}) may ask for another user's keys",
                policy.ssh.command_user
            ),
        ));
    }
    let none = Ok(AdminReply::AuthorizedKeys { lines: Vec::new() });
    if !policy.enabled || !policy.ssh.enabled {
        return none;
    }
    match admitted(&policy, ask.users, user) {
        Ok(true) => {}
        Ok(false) => return none,
        Err(refusal) if refusal.kind == ErrorKind::UnknownUser => return none,
        Err(refusal) => return Err(refusal),
    }
    let keys = ask.ctx.store.ssh_keys(user).map_err(store_failed)?;
    if let KeyCopy::Update { copy, path } = ask.ctx.key_copy {
        copy.remember_ssh_keys(path, user, &keys);
    }
    let lines = keys
        .iter()
        // A type the policy no longer lists is no longer served.
        .filter(|key| policy.ssh.allows_type(&key.key_type))
        .filter_map(|key| SshPublicKey::from_blob(&key.blob).ok())
        .map(|key| {
            let verify = policy.ssh.require_verify && key.key_type.is_security_key();
            format!(
                "{}{} pam_tap",
                if verify { "verify-required " } else { "" },
                key.to_line()
            )
        })
        .collect();
    Ok(AdminReply::AuthorizedKeys { lines })
}

/// sshd's `SSH_AUTH_INFO_0` names the methods and keys that signed `user`
/// in, one per line (`publickey TYPE BASE64`). Each enrolled key named
/// there gets its last use set and an audit record.
pub fn used(
    ask: &mut Ask<'_, '_>,
    user: &str,
    auth_info: &str,
    origin: [&str; 3],
) -> Result<AdminReply, Refusal> {
    ask.caller
        .require_root("report an SSH sign-in (the PAM session does)")?;
    let mut recorded = false;
    for line in auth_info.lines() {
        let Some(key_text) = line.strip_prefix("publickey ") else {
            continue;
        };
        let Ok(key) = SshPublicKey::parse_line(key_text) else {
            continue;
        };
        let fingerprint = key.fingerprint();
        let [service, rhost, tty] = origin;
        let mut audit = AuditRecord::new(ask.ctx.now, Event::SshKeySignIn, user, user)
            .detail(format!("ssh key {fingerprint}"));
        audit.service = service.into();
        audit.rhost = rhost.into();
        audit.tty = tty.into();
        audit.peer = ask.ctx.peer.describe();
        let now = ask.ctx.now;
        if ask
            .ctx
            .store
            .record_ssh_key_use(user, &fingerprint, now, &audit)
            .map_err(store_failed)?
        {
            crate::log::log(Severity::Info, &format!("sshd: {}", audit.log_line()));
            recorded = true;
        }
    }
    Ok(AdminReply::SshKeyUsed { recorded })
}
