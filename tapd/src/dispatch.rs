//! One request to one handler. Permission is each handler's first step.

use crate::context::Context;
use tap_protocol::{ErrorKind, Refusal, Request, Response};

pub fn handle(ctx: &mut Context<'_>, request: Request) -> Response {
    // No account name holds a NUL; NSS cannot even be asked about one.
    if named(&request).1.is_some_and(|user| user.contains('\0')) {
        return refused(ErrorKind::BadRequest, "a user name cannot contain NUL");
    }
    match request {
        Request::Ping => Response::Pong {
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        Request::SignIn(request) => crate::signin::handle(ctx, request),
        Request::Admin(request) => crate::admin::handle(ctx, request),
    }
}

/// The refusal for anything but root asking for a sign-in step.
pub fn refused(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Refused(Refusal::new(kind, message))
}

/// What a request asks, for the log: its kind and the user it names
/// (quoted, so a name cannot forge fields). Never a secret.
pub fn describe(request: &Request) -> String {
    match named(request) {
        (what, Some(user)) => format!("{what} request for user={user:?}"),
        (what, None) => format!("{what} request"),
    }
}

/// A request's kind, and the user it names if any.
fn named(request: &Request) -> (&'static str, Option<&str>) {
    use tap_protocol::admin::AdminRequest as A;
    use tap_protocol::signin::SignInRequest as S;
    match request {
        Request::Ping => ("ping", None),
        Request::SignIn(S::Plan { user, .. }) => ("sign-in plan", Some(user)),
        Request::SignIn(S::KeyAnswer { user, .. }) => ("sign-in key answer", Some(user)),
        Request::SignIn(S::CheckPass { user, .. }) => ("sign-in pass check", Some(user)),
        Request::Admin(admin) => match admin {
            A::Init {} => ("init", None),
            A::Issue { user, .. } => ("issue", Some(user)),
            A::Show { user } => ("show", Some(user)),
            A::List {} => ("list", None),
            A::Revoke { user } => ("revoke", Some(user)),
            A::Audit { user, .. } => ("audit", user.as_deref()),
            A::Keys { user } => ("keys", user.as_deref()),
            A::RemoveKey { user, .. } => ("keys remove", user.as_deref()),
            A::Status {} => ("status", None),
            A::EnrollBegin { .. } => ("enroll", None),
            A::EnrollFinish { .. } => ("enroll finish", None),
            A::SshKeys { user } => ("ssh-keys", user.as_deref()),
            A::SshChallenge {} => ("ssh-keys challenge", None),
            A::AddSshKey { user, .. } => ("ssh-keys add", user.as_deref()),
            A::RemoveSshKey { user, .. } => ("ssh-keys remove", user.as_deref()),
            A::AuthorizedKeys { user } => ("authorized-keys", Some(user)),
            A::SshKeyUsed { user, .. } => ("ssh key used", Some(user)),
        },
    }
}

/// Logs every refusal (but "busy", which the limits log at most once a
/// second): an attacker's probes leave a trace, and so does a store or
/// policy the daemon cannot use. The per-uid rate limit bounds how many
/// lines one user can cause.
pub fn log_refusal(peer: &crate::peer::Peer, what: &str, response: &Response) {
    if let Response::Refused(refusal) = response {
        if refusal.kind != ErrorKind::Busy {
            crate::log::notice(&format!(
                "refused {what} from {}: {:?}: {}",
                peer.describe(),
                refusal.kind,
                refusal.message
            ));
        }
    }
}
