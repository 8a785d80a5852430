//! One client connection, on its own thread: read the whole request
//! against a deadline, before any store work; run it in a worker place
//! (given back before the answer is written); write the response against
//! a deadline. Only this thread ever waits on the client, and never while
//! it holds a place.

use crate::deadline::Deadline;
use crate::limits::Admission;
use crate::peer::Peer;
use crate::worker::Pool;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use tap_protocol::{read_message, write_message, FrameError, Request, Response};
use tap_protocol::{ErrorKind, Refusal, MAX_REQUEST_BYTES};

/// The whole request must arrive within this, however it is sent.
pub const READ_DEADLINE: Duration = Duration::from_secs(2);
/// The whole response must be taken within this.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// A refusal is written best effort, briefly.
const REFUSAL_DEADLINE: Duration = Duration::from_millis(200);

pub fn serve(stream: UnixStream, peer: Peer, pool: &Pool, admission: Admission) {
    let request = match read_message::<Request>(
        &mut Deadline::new(&stream, Instant::now() + READ_DEADLINE),
        MAX_REQUEST_BYTES,
    ) {
        Ok(request) => request,
        // Connected and closed without a byte: a probe, nothing to answer.
        Err(FrameError::Truncated { closed: true }) => return,
        Err(e) => {
            let why = describe(&e);
            crate::log::warning(&format!("bad request from {}: {why}", peer.describe()));
            refuse(&stream, &why);
            return;
        }
    };
    let response = pool.run(peer, request);
    let written = write_message(
        &mut Deadline::new(&stream, Instant::now() + WRITE_DEADLINE),
        &response,
    );
    if let Err(e) = written {
        crate::log::notice(&format!(
            "response to {} not delivered: {e}",
            peer.describe()
        ));
    }
    drop(admission);
}

/// The refusal's text for a request that could not be read.
fn describe(e: &FrameError) -> String {
    match e {
        FrameError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!("no whole request within {} s", READ_DEADLINE.as_secs())
        }
        other => other.to_string(),
    }
}

/// Best effort: the client may be gone, or not reading.
fn refuse(stream: &UnixStream, why: &str) {
    let refusal = Response::Refused(Refusal::new(ErrorKind::BadRequest, why));
    let _ = write_message(
        &mut Deadline::new(stream, Instant::now() + REFUSAL_DEADLINE),
        &refusal,
    );
}

/// Refuses a connection at the door (caps), without blocking the caller:
/// the socket's buffer is empty, so a small write goes at once or not at all.
pub fn turn_away(stream: &UnixStream, kind: ErrorKind, why: &str) {
    if stream.set_nonblocking(true).is_ok() {
        let _ = write_message(&mut &*stream, &Response::Refused(Refusal::new(kind, why)));
    }
}
