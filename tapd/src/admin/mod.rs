//! tapctl's requests. (Filled in with tapctl's move to the daemon.)

use crate::context::Context;
use crate::dispatch::refused;
use tap_protocol::admin::AdminRequest;
use tap_protocol::{ErrorKind, Response};

pub fn handle(ctx: &mut Context<'_>, request: AdminRequest) -> Response {
    match request {
        AdminRequest::Init if ctx.peer.is_root() => refused(ErrorKind::Internal, "not yet"),
        AdminRequest::Init => refused(
            ErrorKind::NotPermitted,
            "only root may initialise the store",
        ),
    }
}
