//! The daemon's door: the listening socket, who may come in, and when to
//! stop. Connection threads (`threads`) wait at the door themselves; the
//! one a new connection wakes takes it, learns its peer from the kernel,
//! applies the limits and serves it. The main thread only watches for
//! SIGTERM or SIGINT, or the idle period with nothing in flight, and then
//! closes the door and lets the requests in flight finish.

use crate::connection;
use crate::limits::{Admission, Limits, RefusalLog};
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::threads::Threads;
use crate::uid_cache::UidCache;
use crate::worker::Pool;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tap_protocol::ErrorKind;

/// On shutdown, how long requests in flight may take to finish.
const DRAIN: Duration = Duration::from_secs(5);

pub struct Server {
    pub listener: UnixListener,
    pub signals: OwnedFd,
    pub pool: Arc<Pool>,
    pub policy: Arc<PolicyCache>,
    pub idle_exit: Option<Duration>,
    /// Whose connections count as root's besides root's: `[ssh] command_user`.
    pub sshd_command_user: UidCache,
}

/// Why the server stopped.
pub enum Stop {
    Signal(i32),
    Idle,
}

/// What the connection threads share: the listening socket (None once the
/// daemon stops), the stop flag, and what admission needs.
pub struct Door {
    listener: RwLock<Option<UnixListener>>,
    stop: OwnedFd,
    limits: Arc<Limits>,
    refusals: Mutex<RefusalLog>,
    pool: Arc<Pool>,
    policy: Arc<PolicyCache>,
    sshd_command_user: UidCache,
}

/// What one try at the door gave.
pub enum Taken {
    Connection(UnixStream),
    /// Another thread took it first, or the peer was gone.
    Nothing,
    /// The daemon is stopping.
    Closed,
}

/// An admitted connection, for a thread to serve.
pub struct Connection {
    stream: UnixStream,
    pub peer: Peer,
    admission: Admission,
}

impl Server {
    pub fn run(self) -> io::Result<Stop> {
        self.listener.set_nonblocking(true)?;
        let limits = Limits::new();
        let door = Arc::new(Door {
            listener: RwLock::new(Some(self.listener)),
            stop: crate::sys::stop_flag()?,
            limits: limits.clone(),
            refusals: Mutex::new(RefusalLog::default()),
            pool: self.pool,
            policy: self.policy,
            sshd_command_user: self.sshd_command_user,
        });
        Threads::start(door.clone())?;
        let stop = loop {
            let timeout = self.idle_exit.map(|idle| {
                match limits.in_flight() {
                    (0, Some(since)) => idle.saturating_sub(since.elapsed()),
                    // Busy: look again in a while.
                    _ => idle,
                }
            });
            let [signalled] = crate::sys::poll_readable([self.signals.as_fd()], timeout)?;
            if signalled {
                if let Some(signal) = crate::sys::read_signal(self.signals.as_fd()) {
                    break Stop::Signal(signal);
                }
            }
            if let (Some(idle), (0, Some(since))) = (self.idle_exit, limits.in_flight()) {
                if since.elapsed() >= idle {
                    break Stop::Idle;
                }
            }
        };
        door.close();
        // Requests in flight finish, briefly; new ones find no listener.
        let give_up = Instant::now() + DRAIN;
        while limits.in_flight().0 > 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(stop)
    }
}

impl Door {
    /// A connection thread's wait at the door, once the daemon is up.
    pub fn waiting(&self) -> io::Result<crate::sys::Waiting> {
        let listener = self
            .listener
            .read()
            .map_err(|_| io::Error::other("poisoned"))?;
        let Some(listener) = listener.as_ref() else {
            return Err(io::Error::other("the daemon is stopping"));
        };
        crate::sys::Waiting::new(listener.as_fd(), self.stop.as_fd())
    }

    /// Takes one waiting connection, if any. Never blocks.
    pub fn take(&self) -> Taken {
        let Ok(listener) = self.listener.read() else {
            return Taken::Closed;
        };
        let Some(listener) = listener.as_ref() else {
            return Taken::Closed;
        };
        match listener.accept() {
            Ok((stream, _)) => Taken::Connection(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Taken::Nothing
            }
            Err(e) => {
                // Out of descriptors, say: log, and let the next wait retry.
                crate::log::error(&format!("accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                Taken::Nothing
            }
        }
    }

    /// Closes the door: waiting threads stop, and the listening socket is
    /// closed (new connections are refused, or wait in systemd's socket
    /// for the next tapd).
    fn close(&self) {
        crate::sys::raise(self.stop.as_fd());
        if let Ok(mut listener) = self.listener.write() {
            listener.take();
        }
    }

    /// The peer from the kernel, then the limits; a connection turned away
    /// is answered at once, without waiting on it.
    pub fn admit(&self, stream: UnixStream) -> Option<Connection> {
        // No credential, no service: identity comes from the kernel only.
        let (pid, uid, gid) = crate::sys::peer_cred(stream.as_fd()).ok()?;
        let policy = self.policy.current().ok();
        let cap = match &policy {
            Some(policy) => policy.daemon.max_connections_per_uid,
            // The worker refuses the request with the reason; the cap is
            // the default meanwhile.
            None => tap_core::policy::DaemonPolicy::default().max_connections_per_uid,
        };
        let privileged = uid == 0
            || policy.is_some_and(|p| {
                p.ssh.enabled && self.sshd_command_user.uid_of(&p.ssh.command_user) == Some(uid)
            });
        let peer = Peer {
            pid,
            uid,
            gid,
            privileged,
        };
        let now = Instant::now();
        match self.limits.admit(uid, privileged, cap, now) {
            Ok(admission) => Some(Connection {
                stream,
                peer,
                admission,
            }),
            Err(why) => {
                if let Ok(mut refusals) = self.refusals.lock() {
                    refusals.refused(uid, &why, now);
                }
                connection::turn_away(&stream, ErrorKind::Busy, &why.to_string());
                None
            }
        }
    }

    pub fn serve(&self, connection: Connection) {
        connection::serve(
            connection.stream,
            connection.peer,
            &self.pool,
            connection.admission,
        );
    }
}
