//! Sign-in steps, for euid-0 peers only.

use crate::context::Context;
use crate::dispatch::refused;
use tap_protocol::signin::SignInRequest;
use tap_protocol::{ErrorKind, Response};

pub fn handle(ctx: &mut Context<'_>, _request: SignInRequest) -> Response {
    if !ctx.peer.is_root() {
        return refused(
            ErrorKind::NotPermitted,
            "sign-in requests are accepted from root (the PAM module) only",
        );
    }
    refused(ErrorKind::Internal, "not yet")
}
