//! The bound on concurrent Argon2 hashes (`[daemon] max_concurrent_hashes`):
//! a counting semaphore. Non-root peers may hold all but one slot, so a
//! flood of users' hashes never makes root's wait for more than one hash.
//! Each slot's working memory is kept and handed to the next hash, so the
//! daemon's hash memory is at most slots x memory cost, whatever the
//! allocator would do with freed blocks on many threads.

use crate::context::HashGate;
use std::sync::{Condvar, Mutex};
use tap_core::hashing::HashMemory;

#[derive(Debug)]
struct Slots {
    capacity: usize,
    in_use: usize,
    users_in_use: usize,
}

pub struct HashSlots {
    slots: Mutex<Slots>,
    freed: Condvar,
    /// Memory of slots not in use.
    memory: Mutex<Vec<HashMemory>>,
}

impl HashSlots {
    pub fn new(capacity: usize) -> HashSlots {
        HashSlots {
            slots: Mutex::new(Slots {
                capacity: capacity.max(1),
                in_use: 0,
                users_in_use: 0,
            }),
            freed: Condvar::new(),
            memory: Mutex::new(Vec::new()),
        }
    }

    fn take_memory(&self) -> HashMemory {
        self.memory
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Keeps a slot's memory for the next hash, while the pool holds no
    /// more than the slots (a lowered capacity lets the rest go).
    fn keep_memory(&self, memory: HashMemory) {
        let capacity = self.slots.lock().map(|s| s.capacity).unwrap_or(1);
        if let Ok(mut free) = self.memory.lock() {
            if free.len() < capacity {
                free.push(memory);
            }
        }
    }

    /// Follows a policy change; hashes already running finish.
    pub fn set_capacity(&self, capacity: usize) {
        if let Ok(mut slots) = self.slots.lock() {
            if slots.capacity != capacity.max(1) {
                slots.capacity = capacity.max(1);
                self.freed.notify_all();
            }
        }
    }

    /// The gate for one request's peer.
    pub fn for_peer(&self, root: bool) -> PeerGate<'_> {
        PeerGate { slots: self, root }
    }

    fn acquire(&self, root: bool) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        loop {
            let users_cap = slots.capacity.saturating_sub(1).max(1);
            let free = slots.in_use < slots.capacity;
            if free && (root || slots.users_in_use < users_cap) {
                break;
            }
            slots = match self.freed.wait(slots) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        slots.in_use += 1;
        if !root {
            slots.users_in_use += 1;
        }
    }

    fn release(&self, root: bool) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.in_use = slots.in_use.saturating_sub(1);
            if !root {
                slots.users_in_use = slots.users_in_use.saturating_sub(1);
            }
            self.freed.notify_all();
        }
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.slots.lock().map(|s| s.in_use).unwrap_or(0)
    }
}

pub struct PeerGate<'a> {
    slots: &'a HashSlots,
    root: bool,
}

/// Gives the slot back even if the hash panics.
struct Held<'a>(&'a HashSlots, bool);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

impl HashGate for PeerGate<'_> {
    fn run(&self, hash: &mut dyn FnMut(&mut HashMemory)) {
        self.slots.acquire(self.root);
        let _held = Held(self.slots, self.root);
        let mut memory = self.slots.take_memory();
        hash(&mut memory);
        self.slots.keep_memory(memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn never_more_than_capacity_and_root_keeps_a_slot() {
        let slots = Arc::new(HashSlots::new(3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let (slots, running, peak) = (slots.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    slots.for_peer(i % 4 == 0).run(&mut |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(slots.in_use(), 0);

        // Users hold all they may (2 of 3); root still gets the third at once.
        let slots = Arc::new(HashSlots::new(3));
        let release = Arc::new(std::sync::Barrier::new(3));
        let users: Vec<_> = (0..2)
            .map(|_| {
                let (slots, release) = (slots.clone(), release.clone());
                std::thread::spawn(move || {
                    slots.for_peer(false).run(&mut |_| {
                        release.wait();
                    })
                })
            })
            .collect();
        while slots.in_use() < 2 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut ran = false;
        slots.for_peer(true).run(&mut |_| ran = true);
        assert!(ran);
        release.wait();
        for u in users {
            u.join().unwrap();
        }
    }
}
