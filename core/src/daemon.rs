//! Talking to tapd: one request, one response, one connection, each within
//! a deadline, so a client never hangs on a daemon that is slow or gone.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tap_protocol::frame::{read_message, write_message, FrameError, MAX_RESPONSE_BYTES};
use tap_protocol::{Request, Response};

/// Where tapd listens (the socket unit's path).
pub const DEFAULT_SOCKET: &str = "/run/pam_tap/tapd.sock";

/// The system user tapd runs as. A socket served by anyone else (or root:
/// systemd creates the socket-activated one) is not tapd's, whatever its
/// path: a client never takes a decision from it.
pub const DAEMON_USER: &str = "pam-tap";

/// How long the PAM module waits for tapd's answer to one sign-in step, a
/// free hash slot included: past it the sign-in fails closed instead of
/// hanging a login. A store call's worst case must fit inside it
/// (`policy::store`).
pub const SIGN_IN_WAIT: Duration = Duration::from_secs(10);

/// How to start the daemon, for messages.
pub const HOW_TO_START: &str =
    "start it with `systemctl start pam-tap.socket`, or run `tapd` where there is no systemd";

#[derive(Debug)]
pub enum CallError {
    /// No daemon listens there (or the socket cannot be reached at all).
    Unreachable { socket: PathBuf, why: io::Error },
    /// No whole answer before the deadline.
    Timeout { socket: PathBuf, after: Duration },
    /// The daemon answered something this client cannot read.
    Protocol(FrameError),
    /// Whoever listens there is neither root nor tapd's user.
    NotTapd { socket: PathBuf, uid: u32 },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable { socket, why } => write!(
                f,
                "tapd is not reachable at {} ({why}); {HOW_TO_START}",
                socket.display()
            ),
            CallError::Timeout { socket, after } => write!(
                f,
                "tapd at {} gave no answer within {} ms",
                socket.display(),
                after.as_millis()
            ),
            CallError::Protocol(e) => write!(f, "tapd's answer is unreadable: {e}"),
            CallError::NotTapd { socket, uid } => write!(
                f,
                "{} is served by uid {uid}, which is neither root nor {DAEMON_USER}: not asked",
                socket.display()
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// Sends `request` and reads the response, all within `timeout`.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, CallError> {
    let deadline = Instant::now() + timeout;
    let timed_out = || CallError::Timeout {
        socket: socket.to_path_buf(),
        after: timeout,
    };
    let mut stream = connect(socket, deadline).map_err(|why| match why.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        _ => CallError::Unreachable {
            socket: socket.to_path_buf(),
            why,
        },
    })?;
    check_server(&stream, socket)?;
    let remaining = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(timed_out)?;
    let io_error = |e: FrameError| match e {
        FrameError::Io(ref io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            timed_out()
        }
        other => CallError::Protocol(other),
    };
    stream
        .set_write_timeout(Some(remaining))
        .and_then(|()| stream.set_read_timeout(Some(remaining)))
        .map_err(|why| CallError::Unreachable {
            socket: socket.to_path_buf(),
            why,
        })?;
    write_message(&mut stream, request).map_err(io_error)?;
    // The read timeout is per read; the frame is small and the daemon
    // writes it in one go, so the deadline holds up to one extra slice.
    read_message(&mut stream, MAX_RESPONSE_BYTES).map_err(io_error)
}

/// The listening side must be root (systemd's socket) or tapd's user.
fn check_server(stream: &UnixStream, socket: &Path) -> Result<(), CallError> {
    use std::os::fd::AsFd;
    let uid = crate::sys::peer_uid(stream.as_fd()).map_err(|why| CallError::Unreachable {
        socket: socket.to_path_buf(),
        why,
    })?;
    // Only a non-root server costs a lookup (tapd in the foreground).
    let tapd = || crate::accounts::user_by_name(DAEMON_USER).ok().flatten();
    if uid == 0 || tapd().is_some_and(|account| account.uid == uid) {
        Ok(())
    } else {
        Err(CallError::NotTapd {
            socket: socket.to_path_buf(),
            uid,
        })
    }
}

fn connect(socket: &Path, deadline: Instant) -> io::Result<UnixStream> {
    loop {
        match crate::sys::connect_unix_nonblocking(socket) {
            Ok(fd) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}
