//! tapctl's connection to tapd: one request, one response, per connection,
//! with timeouts so tapctl never hangs on a daemon that does not answer.

use crate::failure::{Exit, Failure, Result};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tap_protocol::admin::{AdminReply, AdminRequest};
use tap_protocol::{read_message, write_message, ErrorKind, Request, Response, MAX_RESPONSE_BYTES};

pub const DEFAULT_SOCKET: &str = "/run/pam_tap/tapd.sock";
/// Every request is answered from the store alone (the key helper runs
/// in tapctl between requests), so this is ample even for an Argon2 hash.
const TIMEOUT: Duration = Duration::from_secs(5);

const START_IT: &str = "is tapd running? start it with `systemctl start pam-tap.socket`, \
    or run `tapd` in the foreground where there is no systemd";

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: Option<PathBuf>) -> Client {
        Client {
            socket: socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        }
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
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure::new(
                Exit::Store,
                format!(
                    "cannot reach tapd at {}: {e}; {START_IT}",
                    self.socket.display()
                ),
            )
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| unreachable(&e))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| unreachable(&e))?;
        write_message(&mut stream, request).map_err(|e| unreachable(&e))?;
        read_message(&mut stream, MAX_RESPONSE_BYTES).map_err(|e| unreachable(&e))
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
