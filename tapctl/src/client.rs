//! tapctl's connection to tapd: one request, one response, per connection,
//! with timeouts so tapctl never hangs on a daemon that does not answer.

use crate::failure::{Exit, Failure, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tap_protocol::admin::{AdminReply, AdminRequest};
use tap_protocol::{ErrorKind, Request, Response};

pub use tap_core::daemon::DEFAULT_SOCKET;
/// Every request is answered from the store alone (the key helper runs
/// in tapctl between requests), so this is ample even for an Argon2 hash.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: Option<PathBuf>) -> Client {
        Client {
            socket: socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
            timeout: TIMEOUT,
        }
    }

    /// The same client, giving up on tapd after `timeout` in all.
    pub fn with_timeout(self, timeout: Duration) -> Client {
        Client { timeout, ..self }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one admin request; a refusal becomes tapctl's failure.
    pub fn admin(&self, request: AdminRequest) -> Result<AdminReply> {
        match self.call(&Request::Admin(request))? {
            Response::Admin(reply) => Ok(reply),
            Response::Refused(refusal) => {
                Err(Failure::new(exit_for(refusal.kind), refusal.message))
            }
            other => Err(Failure::new(
                Exit::Internal,
                format!("tapd answered out of turn: {other:?}"),
            )),
        }
    }

    fn call(&self, request: &Request) -> Result<Response> {
        tap_core::daemon::call(&self.socket, request, self.timeout)
            .map_err(|e| Failure::new(Exit::Store, e.to_string()))
    }
}

/// The daemon's refusal kinds as tapctl's documented exit codes.
pub fn exit_for(kind: ErrorKind) -> Exit {
    match kind {
        ErrorKind::BadRequest => Exit::Usage,
        ErrorKind::NotPermitted => Exit::NotPermitted,
        ErrorKind::UnknownUser | ErrorKind::NotFound => Exit::NotFound,
        ErrorKind::Policy => Exit::Policy,
        ErrorKind::Store | ErrorKind::Busy => Exit::Store,
        ErrorKind::Internal => Exit::Internal,
    }
}
