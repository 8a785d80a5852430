//! Connection threads, kept for the next connection. Starting a thread per
//! connection (clone, a stack mapped, then unmapped at its exit, which
//! stops every CPU running the daemon to flush its TLB) cost more than a
//! sign-in's own work. A connection goes to a spare thread when one waits,
//! else to a new one: there is never a connection waiting for a thread, so
//! a client that stalls holds its own thread only, as before. At most
//! `SPARE` threads wait between connections; the others exit.

use crate::connection;
use crate::limits::Admission;
use crate::peer::Peer;
use crate::worker::Pool;
use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};

/// A connection thread runs its request's handler too (in a worker place:
/// SQLite, PostgreSQL's client, TOML, signature checks): the stack a
/// worker thread had, Rust's default. Only the pages used are memory.
const CONNECTION_STACK: usize = 2 * 1024 * 1024;
/// Threads kept waiting for the next connection.
pub const SPARE: usize = 8;

/// One admitted connection, for a thread to serve.
pub struct Connection {
    pub stream: UnixStream,
    pub peer: Peer,
    pub admission: Admission,
}

#[derive(Default)]
struct Spares {
    /// Threads waiting for a connection.
    waiting: usize,
    /// Connections handed over and not taken yet: never more than `waiting`.
    handed: VecDeque<Connection>,
}

pub struct Threads {
    spares: Mutex<Spares>,
    handed: Condvar,
    pool: Arc<Pool>,
}

impl Threads {
    pub fn new(pool: Arc<Pool>) -> Arc<Threads> {
        Arc::new(Threads {
            spares: Mutex::new(Spares::default()),
            handed: Condvar::new(),
            pool,
        })
    }

    /// Serves `connection` on a spare thread, or on a new one.
    pub fn serve(self: &Arc<Self>, connection: Connection) -> std::io::Result<()> {
        let connection = match self.spares.lock() {
            Ok(mut spares) if spares.waiting > spares.handed.len() => {
                spares.handed.push_back(connection);
                drop(spares);
                self.handed.notify_one();
                return Ok(());
            }
            _ => connection,
        };
        let threads = self.clone();
        std::thread::Builder::new()
            .name("connection".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || threads.run(connection))
            .map(drop)
    }

    fn run(&self, first: Connection) {
        let mut next = Some(first);
        while let Some(Connection {
            stream,
            peer,
            admission,
        }) = next
        {
            connection::serve(stream, peer, &self.pool, admission);
            next = self.wait();
        }
    }

    /// The next connection handed to this thread; None when enough others
    /// wait already (this one exits).
    fn wait(&self) -> Option<Connection> {
        let mut spares = self.spares.lock().ok()?;
        if spares.waiting >= SPARE {
            return None;
        }
        spares.waiting += 1;
        loop {
            if let Some(connection) = spares.handed.pop_front() {
                spares.waiting -= 1;
                return Some(connection);
            }
            spares = self.handed.wait(spares).ok()?;
        }
    }
}
