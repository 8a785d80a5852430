//! The accept loop: takes each connection, learns its peer from the
//! kernel, applies the limits, and gives it a thread of its own (a spare
//! one when one waits: `threads`). It never reads from a client itself, so
//! it never waits on one. Stops on SIGTERM
//! or SIGINT, or after the idle period with nothing in flight.

use crate::connection;
use crate::limits::{Limits, RefusalLog};
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::threads::{Connection, Threads};
use crate::uid_cache::UidCache;
use crate::worker::Pool;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
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

impl Server {
    pub fn run(self) -> io::Result<Stop> {
        self.listener.set_nonblocking(true)?;
        let limits = Limits::new();
        let threads = Threads::new(self.pool.clone());
        let mut refusals = RefusalLog::default();
        let stop = loop {
            let timeout = self.idle_exit.map(|idle| {
                match limits.in_flight() {
                    (0, Some(since)) => idle.saturating_sub(since.elapsed()),
                    // Busy: look again in a while.
                    _ => idle,
                }
            });
            let [incoming, signalled] =
                crate::sys::poll_readable([self.listener.as_fd(), self.signals.as_fd()], timeout)?;
            if signalled {
                if let Some(signal) = crate::sys::read_signal(self.signals.as_fd()) {
                    break Stop::Signal(signal);
                }
            }
            if incoming {
                self.accept_all(&limits, &threads, &mut refusals);
            }
            if let (Some(idle), (0, Some(since))) = (self.idle_exit, limits.in_flight()) {
                if since.elapsed() >= idle {
                    break Stop::Idle;
                }
            }
        };
        drop(self.listener);
        // Requests in flight finish, briefly; new ones find no listener.
        let give_up = Instant::now() + DRAIN;
        while limits.in_flight().0 > 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(stop)
    }

    fn accept_all(&self, limits: &Arc<Limits>, threads: &Arc<Threads>, refusals: &mut RefusalLog) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, say: log, and let poll retry.
                    crate::log::error(&format!("accept failed: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            };
            self.admit(stream, limits, threads, refusals);
        }
    }

    fn admit(
        &self,
        stream: UnixStream,
        limits: &Arc<Limits>,
        threads: &Arc<Threads>,
        refusals: &mut RefusalLog,
    ) {
        // No credential, no service: identity comes from the kernel only.
        let Ok((pid, uid, gid)) = crate::sys::peer_cred(stream.as_fd()) else {
            return;
        };
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
        let admission = match limits.admit(uid, privileged, cap, now) {
            Ok(admission) => admission,
            Err(why) => {
                refusals.refused(uid, &why, now);
                connection::turn_away(&stream, ErrorKind::Busy, &why.to_string());
                return;
            }
        };
        let served = threads.serve(Connection {
            stream,
            peer,
            admission,
        });
        if let Err(e) = served {
            crate::log::error(&format!(
                "cannot start a thread for {}: {e}",
                peer.describe()
            ));
        }
    }
}
