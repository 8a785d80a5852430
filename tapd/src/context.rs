//! What a handler gets for one request: who asks (from the socket, never
//! from the request), the policy in force, this worker's store, and the
//! daemon's shared state.

use crate::offline::OfflineKeys;
use crate::peer::Peer;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tap_core::hashing::HashMemory;
use tap_core::policy::Policy;
use tap_core::store::Store;
use tap_core::timefmt::Timestamp;

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
    /// Issued from the offline copy of the keys: the answer is checked
    /// against the copy too, without trying the database again.
    pub offline: bool,
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
    /// Most outstanding for one user: a user who starts many sign-ins of
    /// their own (su, sudo: root's processes, so no per-uid cap applies)
    /// replaces their own oldest challenges and cannot fill the table
    /// against everyone else.
    pub const PER_USER: usize = 16;

    pub fn insert(&self, challenge: Vec<u8>, pending: PendingChallenge, now: Timestamp) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        map.retain(|_, p| p.expires >= now);
        let mut theirs: Vec<(Timestamp, Vec<u8>)> = map
            .iter()
            .filter(|(_, p)| p.user == pending.user)
            .map(|(c, p)| (p.expires, c.clone()))
            .collect();
        if theirs.len() >= Self::PER_USER {
            theirs.sort();
            for (_, oldest) in theirs.iter().take(theirs.len() + 1 - Self::PER_USER) {
                map.remove(oldest);
            }
        }
        if map.len() >= Self::MAX {
            return false;
        }
        map.insert(challenge, pending);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The unexpired challenges issued to `uid` for `user` and `purpose`
    /// (at most `PER_USER`), for an answer that does not name its own.
    pub fn pending(
        &self,
        uid: u32,
        user: &str,
        purpose: &ChallengePurpose,
        now: Timestamp,
    ) -> Vec<Vec<u8>> {
        let Ok(map) = self.0.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(_, p)| {
                p.uid == uid && p.user == user && &p.purpose == purpose && p.expires >= now
            })
            .map(|(challenge, _)| challenge.clone())
            .collect()
    }

    /// Whether `challenge` is pending and was issued offline.
    pub fn issued_offline(&self, challenge: &[u8]) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|map| map.get(challenge).map(|p| p.offline))
            .unwrap_or(false)
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

/// What a request has to do with the offline copy of the keys
/// (`[store] offline_keys`, `crate::offline`).
#[derive(Clone, Copy)]
pub enum KeyCopy<'a> {
    /// None is kept (SQLite, or offline_keys off).
    None,
    /// The database answered: keys read from it are copied.
    Update {
        copy: &'a OfflineKeys,
        path: &'a Path,
    },
    /// The database is unreachable: `store` is the copy.
    Serving,
}

/// One request's world.
pub struct Context<'a> {
    pub peer: &'a Peer,
    pub policy: Arc<Policy>,
    pub store: &'a mut dyn Store,
    pub key_copy: KeyCopy<'a>,
    pub challenges: &'a Challenges,
    pub hashes: &'a dyn HashGate,
    pub now: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(user: &str, expires: Timestamp) -> PendingChallenge {
        PendingChallenge {
            user: user.into(),
            uid: 0,
            expires,
            purpose: ChallengePurpose::SignIn,
            offline: false,
        }
    }

    #[test]
    fn one_user_cannot_fill_the_table() {
        let challenges = Challenges::default();
        for i in 0..1000u32 {
            let id = i.to_be_bytes().to_vec();
            assert!(challenges.insert(id, pending("mallory", 100 + i64::from(i)), 0));
        }
        assert_eq!(challenges.len(), Challenges::PER_USER);
        // The newest of mallory's are the ones kept.
        assert!(challenges.take(&999u32.to_be_bytes(), 0).is_some());
        assert!(challenges.take(&0u32.to_be_bytes(), 0).is_none());
        assert!(challenges.insert(b"alice".to_vec(), pending("alice", 50), 0));
        assert!(challenges.take(b"alice", 0).is_some());
        // Expired ones are refused and dropped.
        assert!(challenges.insert(b"old".to_vec(), pending("bob", 5), 0));
        assert!(challenges.take(b"old", 6).is_none());
    }
}
