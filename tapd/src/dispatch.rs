//! One request to one handler. Permission is each handler's first step.

use crate::context::Context;
use tap_protocol::{ErrorKind, Refusal, Request, Response};

pub fn handle(ctx: &mut Context<'_>, request: Request) -> Response {
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
