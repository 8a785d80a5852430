//! The worker places: a fixed number of requests run at once, each in a
//! place that keeps its own store connection open across requests. A
//! request runs on its connection's thread once it holds a place, and
//! only between reading the whole request and writing the response, so no
//! client can hold a place. (Handing each request to a worker thread and
//! its answer back cost two wake-ups per request, on cores shared with
//! everything else.) Root's requests go first, and one place is always
//! left for root. Idle places are taken in turn, so every one of them
//! keeps a live connection (a PostgreSQL session is opened by its first
//! request).

use crate::context::{Challenges, Context};
use crate::hash_gate::HashSlots;
use crate::peer::Peer;
use crate::policy_cache::PolicyCache;
use crate::store_slot::StoreSlot;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tap_protocol::{ErrorKind, Refusal, Request, Response};

/// How long a request may wait for a place before it is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// What every request shares.
pub struct Shared {
    pub policy: Arc<PolicyCache>,
    pub challenges: Challenges,
    pub hashes: HashSlots,
}

struct Places {
    /// Idle places, the longest idle first.
    free: VecDeque<StoreSlot>,
    users_running: usize,
    root_waiting: usize,
    users_waiting: usize,
}

pub struct Pool {
    shared: Arc<Shared>,
    places: Mutex<Places>,
    for_root: Condvar,
    for_users: Condvar,
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
                root_waiting: 0,
                users_waiting: 0,
            }),
            for_root: Condvar::new(),
            for_users: Condvar::new(),
            workers,
        })
    }

    /// Runs one request in a place, on the caller's thread, and returns its
    /// response. Waits at most `QUEUE_WAIT` for a place (then it is refused
    /// as busy, and never run).
    pub fn run(&self, peer: Peer, request: Request) -> Response {
        let mut held = match self.hold(peer.privileged) {
            Ok(held) => held,
            Err(Wait::TimedOut) => {
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
            Err(Wait::Poisoned) => return internal(),
        };
        let Some(store) = held.store.as_mut() else {
            return internal();
        };
        serve(&self.shared, store, &peer, request)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Places>, Wait> {
        self.places.lock().map_err(|_| Wait::Poisoned)
    }

    /// Whether a request may take a place now: root's whenever one is
    /// free; users' only with no root request waiting and another place
    /// left for root.
    fn may_take(&self, places: &Places, root: bool) -> bool {
        !places.free.is_empty()
            && (root || (places.root_waiting == 0 && places.users_running + 1 < self.workers))
    }

    fn hold(&self, root: bool) -> Result<Held<'_>, Wait> {
        let give_up = Instant::now() + QUEUE_WAIT;
        let mut places = self.lock()?;
        if self.may_take(&places, root) {
            return Ok(self.take(&mut places, root));
        }
        let ready = if root {
            &self.for_root
        } else {
            &self.for_users
        };
        *Self::waiting(&mut places, root) += 1;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                *Self::waiting(&mut places, root) -= 1;
                // Whoever this one's turn would have gone to.
                self.wake(&places);
                return Err(Wait::TimedOut);
            }
            places = ready
                .wait_timeout(places, left)
                .map_err(|_| Wait::Poisoned)?
                .0;
            if self.may_take(&places, root) {
                *Self::waiting(&mut places, root) -= 1;
                let held = self.take(&mut places, root);
                // More may be free: pass the turn on.
                self.wake(&places);
                return Ok(held);
            }
        }
    }

    fn waiting(places: &mut Places, root: bool) -> &mut usize {
        if root {
            &mut places.root_waiting
        } else {
            &mut places.users_waiting
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

    /// Wakes one waiting request that may now take a place: root's first.
    fn wake(&self, places: &Places) {
        if places.free.is_empty() {
            return;
        }
        if places.root_waiting > 0 {
            self.for_root.notify_one();
        } else if places.users_waiting > 0 && self.may_take(places, false) {
            self.for_users.notify_one();
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Ok(mut places) = self.pool.places.lock() else {
            return;
        };
        if let Some(store) = self.store.take() {
            places.free.push_back(store);
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

fn internal() -> Response {
    Response::Refused(Refusal::new(
        ErrorKind::Internal,
        "internal error in tapd; see its log",
    ))
}

/// One request in a place: the policy as the file is now, this place's
/// store, then the handler.
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
