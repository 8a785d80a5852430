//! Connection threads. Spare threads wait at the door themselves (each in
//! its own epoll on the listening socket, so a new connection wakes one of
//! them); the one woken takes the connection and serves it, then waits
//! again. A thread per connection (clone, a stack mapped, then unmapped
//! at its exit, which stops every CPU running the daemon to flush its TLB)
//! cost more than a sign-in's own work, and handing each connection from
//! an accept loop to another thread cost a wake-up more.
//!
//! A thread that takes a connection makes sure another still waits (it
//! starts one if none does) before it serves, so a connection never waits
//! for a thread: a client that stalls holds its own thread only, as
//! before. At most `SPARE` threads wait between connections; the others
//! exit.

use crate::server::{Door, Taken};
use crate::sys::Woken;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A connection thread runs its request's handler too (in a worker place:
/// SQLite, PostgreSQL's client, TOML, signature checks): the stack a
/// worker thread had, Rust's default. Only the pages used are memory.
const CONNECTION_STACK: usize = 2 * 1024 * 1024;
/// Threads kept waiting for the next connection.
pub const SPARE: usize = 8;
/// Waiting from the start: one to take a connection, one to wait meanwhile.
const FIRST: usize = 2;

pub struct Threads {
    door: Arc<Door>,
    /// Threads waiting at the door, or about to.
    spare: Mutex<usize>,
}

impl Threads {
    /// Starts the first waiting threads.
    pub fn start(door: Arc<Door>) -> std::io::Result<()> {
        let threads = Arc::new(Threads {
            door,
            spare: Mutex::new(0),
        });
        for _ in 0..FIRST {
            threads.spawn()?;
        }
        Ok(())
    }

    /// One more waiting thread.
    fn spawn(self: &Arc<Self>) -> std::io::Result<()> {
        if let Ok(mut spare) = self.spare.lock() {
            *spare += 1;
        }
        let threads = self.clone();
        let spawned = std::thread::Builder::new()
            .name("connection".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || threads.run());
        if spawned.is_err() {
            self.leave();
        }
        spawned.map(drop)
    }

    fn run(self: &Arc<Self>) {
        let waiting = match self.door.waiting() {
            Ok(waiting) => waiting,
            Err(e) => {
                crate::log::error(&format!("a connection thread cannot wait: {e}"));
                self.leave();
                return;
            }
        };
        loop {
            match waiting.wait() {
                Ok(Woken::Stop) => break,
                Ok(Woken::Incoming) => {}
                Err(e) => {
                    crate::log::error(&format!("waiting for connections failed: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            let stream = match self.door.take() {
                Taken::Connection(stream) => stream,
                Taken::Nothing => continue,
                Taken::Closed => break,
            };
            let Some(connection) = self.door.admit(stream) else {
                // Turned away at once: still waiting, in effect.
                continue;
            };
            // This thread is busy until its client is done: another must wait
            // at the door meanwhile.
            if let Err(e) = self.took() {
                crate::log::error(&format!(
                    "cannot start a thread for {}: {e}",
                    connection.peer.describe()
                ));
                // Dropped unanswered, as when a thread could not be started
                // for it: none waits behind a client this thread serves.
                drop(connection);
                if !self.back() {
                    return;
                }
                continue;
            }
            self.door.serve(connection);
            if !self.back() {
                return;
            }
        }
        self.leave();
    }

    /// This thread no longer waits; starts another if none does.
    fn took(self: &Arc<Self>) -> std::io::Result<()> {
        let none_left = match self.spare.lock() {
            Ok(mut spare) => {
                *spare = spare.saturating_sub(1);
                *spare == 0
            }
            Err(_) => true,
        };
        if none_left {
            self.spawn()?;
        }
        Ok(())
    }

    /// Back at the door after a connection; false when enough others wait
    /// already (this thread exits).
    fn back(&self) -> bool {
        let Ok(mut spare) = self.spare.lock() else {
            return false;
        };
        if *spare >= SPARE {
            return false;
        }
        *spare += 1;
        true
    }

    /// This waiting thread exits.
    fn leave(&self) {
        if let Ok(mut spare) = self.spare.lock() {
            *spare = spare.saturating_sub(1);
        }
    }
}
