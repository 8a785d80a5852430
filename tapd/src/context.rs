//! What a handler gets for one request: who asks (from the socket, never
//! from the request), the policy in force, this worker's store, and the
//! daemon's shared state.

use crate::peer::Peer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tap_core::hashing::HashMemory;
use tap_core::policy::Policy;
use tap_core::timefmt::Timestamp;
use tap_store::SqliteStore;

/// A key challenge the daemon issued and has not seen answered yet.
#[derive(Clone, Debug)]
pub struct PendingChallenge {
    /// Whom it was issued for.
    pub user: String,
    /// The peer it was issued to.
    pub uid: u32,
    /// After this it is refused.
    pub expires: Timestamp,
    /// What it is for: a sign-in assertion, or an enrollment step (tapctl).
    pub purpose: ChallengePurpose,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengePurpose {
    SignIn,
    /// Proof of an enrolled key (tapctl's self-service), or a registration.
    SelfService(String),
}

/// Outstanding challenges, keyed by the 32 random bytes themselves. Shared
/// by all workers; held only for a map lookup, never across I/O.
#[derive(Default)]
pub struct Challenges(Mutex<HashMap<Vec<u8>, PendingChallenge>>);

impl Challenges {
    /// Most challenges outstanding at once; the oldest expire first anyway.
    pub const MAX: usize = 4096;

    pub fn insert(&self, challenge: Vec<u8>, pending: PendingChallenge, now: Timestamp) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        map.retain(|_, p| p.expires >= now);
        if map.len() >= Self::MAX {
            return false;
        }
        map.insert(challenge, pending);
        true
    }

    /// Takes a challenge (each is answered once), if it is still valid.
    pub fn take(&self, challenge: &[u8], now: Timestamp) -> Option<PendingChallenge> {
        let mut map = self.0.lock().ok()?;
        map.remove(challenge).filter(|p| p.expires >= now)
    }
}

/// A bound on concurrent Argon2 hashes (each uses the policy's memory
/// cost), so a flood of sign-ins cannot grow the daemon without bound.
pub trait HashGate: Send + Sync {
    /// Runs `hash` once a slot is free, in that slot's memory (kept from
    /// one hash to the next, so the daemon holds at most one hash's memory
    /// per slot).
    fn run(&self, hash: &mut dyn FnMut(&mut HashMemory));
}

/// One request's world.
pub struct Context<'a> {
    pub peer: &'a Peer,
    pub policy: Arc<Policy>,
    pub store: &'a mut SqliteStore,
    pub challenges: &'a Challenges,
    pub hashes: &'a dyn HashGate,
    pub now: Timestamp,
}
