//! tapctl's requests: one file per job. Each handler checks permission
//! first, from the peer's uid alone, then touches the store.

mod audit;
mod authorized_keys;
pub mod caller;
mod enroll;
mod info;
mod issue;
mod keys;
mod passes;
mod proof;
mod record;
mod ssh_keys;
mod status;

use crate::context::Context;
use caller::{Caller, SystemUsers, Users};
use tap_protocol::admin::{AdminReply, AdminRequest};
use tap_protocol::{Refusal, Response};

/// One request's world, with the caller named.
pub struct Ask<'r, 'a> {
    pub ctx: &'r mut Context<'a>,
    pub caller: Caller,
    pub users: &'r dyn Users,
}

pub fn handle(ctx: &mut Context<'_>, request: AdminRequest) -> Response {
    handle_with(ctx, &SystemUsers, request)
}

/// `handle`, asking `users` who is who.
pub fn handle_with(ctx: &mut Context<'_>, users: &dyn Users, request: AdminRequest) -> Response {
    let reply = Caller::identify(ctx.peer, users).and_then(|caller| {
        let mut ask = Ask { ctx, caller, users };
        dispatch(&mut ask, request)
    });
    match reply {
        Ok(reply) => Response::Admin(reply),
        Err(refusal) => Response::Refused(refusal),
    }
}

fn dispatch(ask: &mut Ask<'_, '_>, request: AdminRequest) -> Result<AdminReply, Refusal> {
    match request {
        AdminRequest::Init {} => passes::init(ask),
        AdminRequest::Issue {
            user,
            lifetime,
            start,
            one_time,
        } => issue::issue(ask, &user, lifetime.as_deref(), start.as_deref(), one_time),
        AdminRequest::Show { user } => passes::show(ask, &user),
        AdminRequest::List {} => passes::list(ask),
        AdminRequest::Revoke { user } => passes::revoke(ask, &user),
        AdminRequest::Audit { user, host, limit } => {
            audit::audit(ask, user.as_deref(), host.as_deref(), limit)
        }
        AdminRequest::Keys { user } => keys::list(ask, user.as_deref()),
        AdminRequest::RemoveKey { user, id, proof } => {
            keys::remove(ask, user.as_deref(), &id, proof.as_ref())
        }
        AdminRequest::Status {} => status::status(ask),
        AdminRequest::EnrollBegin { label, proof } => {
            enroll::begin(ask, label.as_deref(), proof.as_ref())
        }
        AdminRequest::EnrollFinish {
            challenge,
            label,
            answer,
        } => enroll::finish(ask, &challenge.0, label.as_deref(), &answer),
        AdminRequest::SshKeys { user } => ssh_keys::list(ask, user.as_deref()),
        AdminRequest::SshChallenge {} => ssh_keys::challenge(ask),
        AdminRequest::AddSshKey {
            user,
            key,
            label,
            attestation,
        } => ssh_keys::add(
            ask,
            user.as_deref(),
            &key,
            label.as_deref(),
            attestation.as_ref().map(|a| a.0.as_slice()),
        ),
        AdminRequest::RemoveSshKey { user, id, proof } => {
            ssh_keys::remove(ask, user.as_deref(), &id, proof.as_ref())
        }
        AdminRequest::AuthorizedKeys { user } => authorized_keys::lines(ask, &user),
        AdminRequest::SshKeyUsed {
            user,
            auth_info,
            service,
            rhost,
            tty,
        } => authorized_keys::used(ask, &user, &auth_info, [&service, &rhost, &tty]),
    }
}

#[cfg(test)]
mod tests;
