//! The worker pool: a fixed number of threads, each with its own store
//! connection kept open across requests. A worker only ever gets a whole
//! request and produces a response; it never reads from or writes to a
//! client, so no client can hold one. Root's requests go first, and one
//! worker is always left for root.

use crate::context::{Challenges, Context};
use crate::hash_gate::HashSlots;
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::store_slot::StoreSlot;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tap_protocol::{ErrorKind, Refusal, Request, Response};

/// How long a request may wait for a worker before it is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

enum SlotState {
    Queued,
    Running,
    Done(Box<Response>),
    /// The connection gave up waiting; a worker skips it.
    Abandoned,
}

/// Where a job's response is handed from the worker to its connection.
struct JobSlot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

impl JobSlot {
    /// Claims a queued job for a worker; false when it was abandoned.
    fn start(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if matches!(*state, SlotState::Queued) {
            *state = SlotState::Running;
            true
        } else {
            false
        }
    }

    fn finish(&self, response: Response) {
        if let Ok(mut state) = self.state.lock() {
            *state = SlotState::Done(Box::new(response));
            self.changed.notify_all();
        }
    }
}

struct Job {
    peer: Peer,
    request: Request,
    slot: Arc<JobSlot>,
}

#[derive(Default)]
struct Queues {
    root: VecDeque<Job>,
    users: VecDeque<Job>,
    users_running: usize,
}

/// What every worker shares.
pub struct Shared {
    pub policy: Arc<PolicyCache>,
    pub challenges: Challenges,
    pub hashes: HashSlots,
}

pub struct Pool {
    queues: Mutex<Queues>,
    ready: Condvar,
    workers: usize,
}

impl Pool {
    /// Starts `workers` threads (at least 2: one is kept for root).
    pub fn start(workers: usize, shared: Arc<Shared>) -> std::io::Result<Arc<Pool>> {
        let pool = Arc::new(Pool {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            workers: workers.max(2),
        });
        for n in 0..pool.workers {
            let (pool, shared) = (pool.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || pool.work(&shared))?;
        }
        Ok(pool)
    }

    /// Runs one request on a worker and returns its response. Waits at most
    /// `QUEUE_WAIT` for a worker to take it (then it is refused as busy,
    /// and never run); once taken, until the worker is done.
    pub fn run(&self, peer: Peer, request: Request) -> Response {
        let slot = Arc::new(JobSlot {
            state: Mutex::new(SlotState::Queued),
            changed: Condvar::new(),
        });
        let job = Job {
            peer,
            request,
            slot: slot.clone(),
        };
        match self.queues.lock() {
            Ok(mut queues) if peer.privileged => queues.root.push_back(job),
            Ok(mut queues) => queues.users.push_back(job),
            Err(_) => return internal(),
        }
        // One job, one worker: any idle worker can take it (they are all
        // alike), so waking all of them only makes them race for the lock.
        self.ready.notify_one();
        let Ok(mut state) = slot.state.lock() else {
            return internal();
        };
        let give_up = Instant::now() + QUEUE_WAIT;
        loop {
            match &*state {
                SlotState::Done(_) => break,
                SlotState::Queued if Instant::now() >= give_up => {
                    *state = SlotState::Abandoned;
                    crate::log::warning(&format!(
                        "a request from {} waited {} s for a worker and was refused as busy",
                        peer.describe(),
                        QUEUE_WAIT.as_secs()
                    ));
                    return Response::Refused(Refusal::new(
                        ErrorKind::Busy,
                        "the daemon is busy; try again",
                    ));
                }
                _ => {}
            }
            let wait = give_up.saturating_duration_since(Instant::now());
            // Once running, the worker always finishes; wait in steps.
            let wait = if wait.is_zero() {
                Duration::from_secs(1)
            } else {
                wait
            };
            state = match slot.changed.wait_timeout(state, wait) {
                Ok((s, _)) => s,
                Err(_) => return internal(),
            };
        }
        match std::mem::replace(&mut *state, SlotState::Abandoned) {
            SlotState::Done(response) => *response,
            _ => internal(),
        }
    }

    /// The next job for a worker: root's first; users' only while another
    /// worker stays free for root.
    fn next(&self) -> Option<(Job, bool)> {
        let mut queues = self.queues.lock().ok()?;
        loop {
            if let Some(job) = queues.root.pop_front() {
                return Some((job, false));
            }
            if queues.users_running + 1 < self.workers {
                if let Some(job) = queues.users.pop_front() {
                    queues.users_running += 1;
                    return Some((job, true));
                }
            }
            queues = self.ready.wait(queues).ok()?;
        }
    }

    fn work(&self, shared: &Shared) {
        let mut store = StoreSlot::default();
        while let Some((job, user)) = self.next() {
            if job.slot.start() {
                let response = serve(shared, &mut store, &job.peer, job.request);
                job.slot.finish(response);
            }
            if user {
                if let Ok(mut queues) = self.queues.lock() {
                    queues.users_running -= 1;
                }
                self.ready.notify_all();
            }
        }
    }
}

fn internal() -> Response {
    Response::Refused(Refusal::new(
        ErrorKind::Internal,
        "internal error in tapd; see its log",
    ))
}

/// One request on this worker: the policy as the file is now, this
/// worker's store, then the handler.
fn serve(shared: &Shared, store: &mut StoreSlot, peer: &Peer, request: Request) -> Response {
    let policy = match shared.policy.current() {
        Ok(policy) => policy,
        Err(why) => {
            return Response::Refused(Refusal::new(
                ErrorKind::Policy,
                format!("policy not usable: {why}"),
            ))
        }
    };
    shared
        .hashes
        .set_capacity(policy.daemon.max_concurrent_hashes);
    let open = match store.get(&policy) {
        Ok(open) => open,
        Err(e) => {
            crate::log::error(&format!("store not usable: {}", e.0));
            return Response::Refused(Refusal::new(ErrorKind::Store, e.0));
        }
    };
    let gate = shared.hashes.for_peer(peer.is_root());
    let mut ctx = Context {
        peer,
        policy,
        store: open,
        challenges: &shared.challenges,
        hashes: &gate,
        now: now(),
    };
    let what = crate::dispatch::describe(&request);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::dispatch::handle(&mut ctx, request)
    }));
    match outcome {
        Ok(response) => {
            crate::dispatch::log_refusal(peer, &what, &response);
            response
        }
        Err(_) => {
            // Whatever the handler left half done is rolled back with the
            // connection; the next request opens a fresh one.
            store.close();
            crate::log::error(&format!("a handler panicked serving {}", peer.describe()));
            internal()
        }
    }
}

fn now() -> tap_core::timefmt::Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
