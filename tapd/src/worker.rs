//! The worker places: a fixed number of requests run at once, each in a
//! place that keeps its own store connection open across requests. A
//! request runs on its connection's thread once it holds a place, and
//! only between reading the whole request and writing the response, so no
//! client can hold a place. (Handing each request to a worker thread and
//! its answer back cost two wake-ups per request, on cores shared with
//! everything else.) Root's requests go first, and one place is always
//! left for root; waiting requests are served first come, first served,
//! each woken alone when its turn comes. Idle PostgreSQL places are taken
//! in turn, so every one of them keeps a live session (opened by its first
//! request); an idle SQLite place, the one used last first (see `Held`'s
//! drop).

use crate::context::{Challenges, Context, KeyCopy};
use crate::hash_gate::HashSlots;
use crate::offline::OfflineKeys;
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::roster::Rosters;
use crate::store_slot::StoreSlot;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};
use tap_core::store::{StoreError, StoreErrorKind};
use tap_protocol::{ErrorKind, Refusal, Request, Response};

/// How long a request may wait for a place before it is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// What every request shares.
pub struct Shared {
    pub policy: Arc<PolicyCache>,
    pub challenges: Challenges,
    pub hashes: HashSlots,
    /// `[store] offline_keys`: this host's copy of the fleet's keys.
    pub offline: OfflineKeys,
    /// Who has a pass or key in a fleet's database (`roster.rs`).
    pub rosters: Rosters,
}

struct Places {
    /// Idle places: PostgreSQL's the longest idle first, SQLite's the
    /// latest first.
    free: VecDeque<StoreSlot>,
    users_running: usize,
    /// Requests waiting for a place, each queue first come, first served.
    root_queue: VecDeque<Waiter>,
    user_queue: VecDeque<Waiter>,
    next_ticket: u64,
}

/// A request waiting in a queue, woken (unparked) when its turn may have
/// come.
struct Waiter {
    ticket: u64,
    thread: Thread,
}

pub struct Pool {
    shared: Arc<Shared>,
    places: Mutex<Places>,
    workers: usize,
}

/// A place held by one request; dropping it gives the place back.
struct Held<'a> {
    pool: &'a Pool,
    store: Option<StoreSlot>,
    user: bool,
}

impl Pool {
    /// `workers` places (at least 2: one is kept for root).
    pub fn new(workers: usize, shared: Arc<Shared>) -> Arc<Pool> {
        let workers = workers.max(2);
        Arc::new(Pool {
            shared,
            places: Mutex::new(Places {
                free: (0..workers).map(|_| StoreSlot::default()).collect(),
                users_running: 0,
                root_queue: VecDeque::new(),
                user_queue: VecDeque::new(),
                next_ticket: 0,
            }),
            workers,
        })
    }

    /// Runs one request in a place, on the caller's thread, and returns its
    /// response. Waits at most `QUEUE_WAIT` for a place (then it is refused
    /// as busy, and never run).
    pub fn run(&self, peer: Peer, request: Request) -> Response {
        self.serve_in_place(peer, request).response()
    }

    fn serve_in_place(&self, peer: Peer, request: Request) -> Served {
        let mut held = match self.hold(peer.privileged) {
            Ok(held) => held,
            Err(Wait::TimedOut) => {
                crate::log::warning(&format!(
                    "a request from {} waited {} s for a worker and was refused as busy",
                    peer.describe(),
                    QUEUE_WAIT.as_secs()
                ));
                return Served::refused(Refusal::new(
                    ErrorKind::Busy,
                    "the daemon is busy; try again",
                ));
            }
            Err(Wait::Poisoned) => return Served::refused(internal_refusal()),
        };
        let Some(store) = held.store.as_mut() else {
            return Served::refused(internal_refusal());
        };
        serve(&self.shared, store, &peer, request)
    }

    /// Whether the first of a queue may take a place now: root's whenever
    /// one is free; users' only with no root request waiting and another
    /// place left for root.
    fn may_take(&self, places: &Places, root: bool) -> bool {
        !places.free.is_empty()
            && (root || (places.root_queue.is_empty() && places.users_running + 1 < self.workers))
    }

    fn hold(&self, root: bool) -> Result<Held<'_>, Wait> {
        let give_up = Instant::now() + QUEUE_WAIT;
        let mut places = self.places.lock().map_err(|_| Wait::Poisoned)?;
        if queue(&mut places, root).is_empty() && self.may_take(&places, root) {
            return Ok(self.take(&mut places, root));
        }
        let ticket = places.next_ticket;
        places.next_ticket += 1;
        queue(&mut places, root).push_back(Waiter {
            ticket,
            thread: std::thread::current(),
        });
        loop {
            let first = queue(&mut places, root).front().map(|w| w.ticket) == Some(ticket);
            if first && self.may_take(&places, root) {
                queue(&mut places, root).pop_front();
                let held = self.take(&mut places, root);
                // More may be free: the next in turn looks.
                self.wake(&places);
                return Ok(held);
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                queue(&mut places, root).retain(|w| w.ticket != ticket);
                // Its turn passes on.
                self.wake(&places);
                return Err(Wait::TimedOut);
            }
            drop(places);
            std::thread::park_timeout(left);
            places = self.places.lock().map_err(|_| Wait::Poisoned)?;
        }
    }

    fn take(&self, places: &mut Places, root: bool) -> Held<'_> {
        if !root {
            places.users_running += 1;
        }
        Held {
            pool: self,
            store: places.free.pop_front(),
            user: !root,
        }
    }

    /// Wakes the request whose turn it is, if it may take a place now:
    /// root's first.
    fn wake(&self, places: &Places) {
        if let Some(first) = places.root_queue.front() {
            if self.may_take(places, true) {
                first.thread.unpark();
            }
        } else if let Some(first) = places.user_queue.front() {
            if self.may_take(places, false) {
                first.thread.unpark();
            }
        }
    }
}

fn queue(places: &mut Places, root: bool) -> &mut VecDeque<Waiter> {
    if root {
        &mut places.root_queue
    } else {
        &mut places.user_queue
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Ok(mut places) = self.pool.places.lock() else {
            return;
        };
        if let Some(store) = self.store.take() {
            // A SQLite place goes back first in line: a write by another
            // connection empties each connection's page cache, so the
            // place used last has the only warm one.
            if store.is_sqlite() {
                places.free.push_front(store);
            } else {
                places.free.push_back(store);
            }
        }
        if self.user {
            places.users_running = places.users_running.saturating_sub(1);
        }
        self.pool.wake(&places);
    }
}

enum Wait {
    TimedOut,
    Poisoned,
}

fn internal_refusal() -> Refusal {
    Refusal::new(ErrorKind::Internal, "internal error in tapd; see its log")
}

/// One request in a place: the policy as the file is now, this place's
/// store (or, for a key sign-in while a fleet's database is unreachable,
/// the offline copy), then the handler.
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
        store.get(&policy, &shared.rosters)
    } else if crate::offline::answers_offline_challenge(&request, &shared.challenges) {
        Err(StoreError::unreachable(
            "the database did not answer this sign-in's plan",
        ))
    } else {
        let limit = crate::offline::reachable_limit(&request);
        store.get_answering(&policy, &shared.rosters, limit)
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
            if let Some(path) = path {
                shared.offline.reconcile(path, open);
            }
            Served {
                outcome: handle(shared, peer, policy, open, key_copy, request),
            }
        }
        // Only a database that does not answer: one that refuses this host
        // (its role's password changed, its rights taken) or that this
        // build cannot use is not served around.
        (Err(e), Some(path)) if offline_ok && e.kind() == StoreErrorKind::Unreachable => {
            crate::log::warning(&format!(
                "store not usable ({e}); serving {what} from the offline copy of the keys"
            ));
            let mut copy = match shared.offline.open(path) {
                Ok(copy) => copy,
                Err(copy_failed) => {
                    let why = format!("{e}; and the offline copy: {copy_failed}");
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
            }
        }
        (Err(e), _) => {
            crate::log::error(&format!("store not usable: {e}"));
            return Served::refused(Refusal::new(ErrorKind::Store, e.to_string()));
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
}

impl Served {
    fn refused(refusal: Refusal) -> Served {
        Served {
            outcome: Some(Response::Refused(refusal)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn pool(workers: usize) -> Arc<Pool> {
        let shared = Arc::new(Shared {
            policy: Arc::new(PolicyCache::new(std::path::Path::new("/nonexistent"))),
            challenges: Challenges::default(),
            hashes: HashSlots::new(1),
            offline: OfflineKeys::default(),
            rosters: Rosters::default(),
        });
        Pool::new(workers, shared)
    }

    fn waiting(pool: &Pool) -> (usize, usize) {
        let places = pool.places.lock().unwrap();
        (places.root_queue.len(), places.user_queue.len())
    }

    fn until(what: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(5);
        while !what() {
            assert!(Instant::now() < give_up, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A waiting request on its own thread: it says when it holds a place,
    /// and holds it until released.
    fn waiter(
        pool: &Arc<Pool>,
        root: bool,
        name: usize,
        served: &mpsc::Sender<usize>,
    ) -> (std::thread::JoinHandle<()>, mpsc::Sender<()>) {
        let (theirs, served) = (pool.clone(), served.clone());
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let held = theirs.hold(root).ok().unwrap();
            served.send(name).unwrap();
            released.recv().unwrap();
            drop(held);
        });
        (thread, release)
    }

    #[test]
    fn root_keeps_a_place_and_waiting_users_go_in_turn() {
        let pool = pool(3);
        // Users may hold all places but one.
        let first = pool.hold(false).ok().unwrap();
        let second = pool.hold(false).ok().unwrap();
        let (done, served) = mpsc::channel();
        let mut waiters = Vec::new();
        for n in 0..3 {
            waiters.push(waiter(&pool, false, n, &done));
            until(|| waiting(&pool).1 == n + 1);
        }
        // The last place is root's, at once, users waiting or not.
        let root = pool.hold(true).ok().unwrap();
        drop(root);
        assert_eq!(waiting(&pool), (0, 3), "a user took root's place");
        // Each place a user gives back goes to the longest waiting.
        drop(first);
        assert_eq!(served.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
        assert_eq!(waiting(&pool), (0, 2));
        waiters[0].1.send(()).unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        drop(second);
        assert_eq!(served.recv_timeout(Duration::from_secs(10)).unwrap(), 2);
        for (thread, release) in waiters {
            let _ = release.send(());
            thread.join().unwrap();
        }
        assert_eq!(pool.places.lock().unwrap().free.len(), 3);
    }

    #[test]
    fn the_sqlite_place_used_last_is_taken_next() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut policy = tap_core::policy::Policy::default();
        policy.store = tap_core::policy::StorePolicy::sqlite(dir.path().join("tap.db"));
        let pool = pool(3);
        let mut held = pool.hold(true).ok().unwrap();
        let slot = held.store.as_mut().unwrap();
        assert!(!slot.is_sqlite());
        slot.get(&policy, &pool.shared.rosters)
            .unwrap_or_else(|e| panic!("{e}"));
        drop(held);
        // Round robin would hand out one of the two never used.
        for _ in 0..3 {
            let held = pool.hold(false).ok().unwrap();
            assert!(
                held.store.as_ref().unwrap().is_sqlite(),
                "its page cache is the warm one"
            );
        }
        let places = pool.places.lock().unwrap();
        assert_eq!(places.free.iter().filter(|s| s.is_sqlite()).count(), 1);
    }

    #[test]
    fn a_waiting_root_request_goes_before_waiting_users() {
        let pool = pool(2);
        let user = pool.hold(false).ok().unwrap();
        let root = pool.hold(true).ok().unwrap();
        let (done, served) = mpsc::channel();
        let (waiting_user, release_user) = waiter(&pool, false, 0, &done);
        until(|| waiting(&pool) == (0, 1));
        let (waiting_root, release_root) = waiter(&pool, true, 1, &done);
        until(|| waiting(&pool) == (1, 1));
        // One place comes free: root's request, which came later, takes it.
        drop(user);
        assert_eq!(
            served.recv_timeout(Duration::from_secs(10)).unwrap(),
            1,
            "root's request first"
        );
        assert_eq!(waiting(&pool), (0, 1));
        drop(root);
        assert_eq!(served.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
        release_root.send(()).unwrap();
        release_user.send(()).unwrap();
        waiting_user.join().unwrap();
        waiting_root.join().unwrap();
    }
}
