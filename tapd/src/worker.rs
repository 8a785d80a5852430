//! The worker pool: a fixed number of threads, each with its own store
//! connection kept open across requests. A worker only ever gets a whole
//! request and produces a response; it never reads from or writes to a
//! client, so no client can hold one. Root's requests go first, and one
//! worker is always left for root.

use crate::context::{Challenges, Context, KeyCopy};
use crate::hash_gate::HashSlots;
use crate::offline::OfflineKeys;
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::store_slot::StoreSlot;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tap_core::store::StoreError;
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
    /// `[store] offline_keys`: this host's copy of the fleet's keys.
    pub offline: OfflineKeys,
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
                let mut served = serve(shared, &mut store, &job.peer, job.request);
                job.slot.finish(served.response());
                // After the answer, so no sign-in waits on it.
                if let Some((path, policy)) = served.reached_store {
                    if let Ok(database) = store.get(&policy) {
                        shared.offline.reconcile(&path, database);
                    }
                }
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
    Response::Refused(internal_refusal())
}

fn internal_refusal() -> Refusal {
    Refusal::new(ErrorKind::Internal, "internal error in tapd; see its log")
}

/// One request on this worker: the policy as the file is now, this
/// worker's store (or, for a key sign-in while a fleet's database is
/// unreachable, the offline copy), then the handler.
fn serve(shared: &Shared, store: &mut StoreSlot, peer: &Peer, request: Request) -> Served {
    let policy = match shared.policy.current() {
        Ok(policy) => policy,
        Err(why) => {
            return Served::refused(Refusal::new(
                ErrorKind::Policy,
                format!("policy not usable: {why}"),
            ))
        }
    };
    shared
        .hashes
        .set_capacity(policy.daemon.max_concurrent_hashes);
    let copy_path = crate::offline::cache_path(&policy);
    let offline_ok = copy_path.is_some() && crate::offline::servable(&request);
    let opened = if !offline_ok {
        store.get(&policy)
    } else if crate::offline::answers_offline_challenge(&request, &shared.challenges) {
        Err(StoreError(
            "the database did not answer this sign-in's plan".into(),
        ))
    } else {
        store.get_answering(&policy)
    };
    let what = crate::dispatch::describe(&request);
    let outcome = match (opened, copy_path.as_deref()) {
        (Ok(open), path) => {
            let key_copy = match path {
                Some(path) => KeyCopy::Update {
                    copy: &shared.offline,
                    path,
                },
                None => KeyCopy::None,
            };
            let outcome = handle(shared, peer, policy.clone(), open, key_copy, request);
            Served {
                outcome,
                reached_store: path.map(|path| (path.to_path_buf(), policy)),
            }
        }
        (Err(e), Some(path)) if offline_ok => {
            crate::log::warning(&format!(
                "store not usable ({}); serving {what} from the offline copy of the keys",
                e.0
            ));
            let mut copy = match shared.offline.open(path) {
                Ok(copy) => copy,
                Err(copy_failed) => {
                    let why = format!("{}; and the offline copy: {}", e.0, copy_failed.0);
                    crate::log::error(&format!("store not usable: {why}"));
                    return Served::refused(Refusal::new(ErrorKind::Store, why));
                }
            };
            let Some(open) = copy.as_mut() else {
                return Served::refused(internal_refusal());
            };
            shared.offline.served_offline();
            Served {
                outcome: handle(shared, peer, policy, open, KeyCopy::Serving, request),
                reached_store: None,
            }
        }
        (Err(e), _) => {
            crate::log::error(&format!("store not usable: {}", e.0));
            return Served::refused(Refusal::new(ErrorKind::Store, e.0));
        }
    };
    match &outcome.outcome {
        Some(response) => crate::dispatch::log_refusal(peer, &what, response),
        None => {
            // Whatever the handler left half done is rolled back with the
            // connection; the next request opens a fresh one.
            store.close();
            crate::log::error(&format!("a handler panicked serving {}", peer.describe()));
        }
    }
    outcome
}

/// What became of one request.
struct Served {
    /// None: the handler panicked.
    outcome: Option<Response>,
    /// The database answered this request, and the policy keeps an offline
    /// copy there: the copy's records may be reconciled now.
    reached_store: Option<(std::path::PathBuf, Arc<tap_core::policy::Policy>)>,
}

impl Served {
    fn refused(refusal: Refusal) -> Served {
        Served {
            outcome: Some(Response::Refused(refusal)),
            reached_store: None,
        }
    }

    fn response(&mut self) -> Response {
        self.outcome
            .take()
            .unwrap_or_else(|| Response::Refused(internal_refusal()))
    }
}

/// The handler on `open`, with panics caught (None).
fn handle(
    shared: &Shared,
    peer: &Peer,
    policy: Arc<tap_core::policy::Policy>,
    open: &mut dyn tap_core::store::Store,
    key_copy: KeyCopy<'_>,
    request: Request,
) -> Option<Response> {
    let gate = shared.hashes.for_peer(peer.is_root());
    let mut ctx = Context {
        peer,
        policy,
        store: open,
        key_copy,
        challenges: &shared.challenges,
        hashes: &gate,
        now: now(),
    };
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        crate::dispatch::handle(&mut ctx, request)
    }))
    .ok()
}

fn now() -> tap_core::timefmt::Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
