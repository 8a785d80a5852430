//! Who may open another connection: per-uid caps on open connections and on
//! the request rate (a token bucket), and a cap on all non-root
//! connections. None of them applies to an exempt peer (root, and sshd's
//! AuthorizedKeysCommandUser: see `server`), which always gets through.
//! Also counts every connection in flight, for idle exit and shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per second one non-root uid may keep up.
pub const RATE_PER_SEC: f64 = 20.0;
/// Requests one non-root uid may make at once after a quiet spell.
pub const BURST: f64 = 40.0;
/// Connections open at once from all non-root uids together.
pub const MAX_USER_CONNECTIONS: usize = 256;
/// Buckets kept before full (idle) ones are forgotten.
const MAX_BUCKETS: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// This uid holds its cap of open connections.
    Connections { cap: usize },
    /// This uid is over its request rate.
    Rate,
    /// All non-root connections together are at their cap.
    Total,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Connections { cap } => write!(
                f,
                "too many connections from this user ({cap} open at most); try again"
            ),
            Refused::Rate => write!(
                f,
                "too many requests from this user (at most {RATE_PER_SEC} a second); try again"
            ),
            Refused::Total => f.write_str("the daemon is busy with other users; try again"),
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct State {
    open: HashMap<u32, usize>,
    users_open: usize,
    all_open: usize,
    buckets: HashMap<u32, Bucket>,
    /// When the last connection ended (or the daemon started).
    quiet_since: Option<Instant>,
}

#[derive(Default)]
pub struct Limits {
    state: Mutex<State>,
}

/// One admitted connection; dropping it frees its place.
pub struct Admission {
    limits: Arc<Limits>,
    uid: u32,
    /// Counted against the per-uid and all-users caps (not exempt).
    counted: bool,
}

impl Limits {
    pub fn new() -> Arc<Limits> {
        let limits = Arc::new(Limits::default());
        if let Ok(mut state) = limits.state.lock() {
            state.quiet_since = Some(Instant::now());
        }
        limits
    }

    /// Admits a connection from `uid`, or says why not.
    pub fn admit(
        self: &Arc<Self>,
        uid: u32,
        exempt: bool,
        per_uid_cap: usize,
        now: Instant,
    ) -> Result<Admission, Refused> {
        let Ok(mut state) = self.state.lock() else {
            return Err(Refused::Total);
        };
        if !exempt {
            let open = state.open.get(&uid).copied().unwrap_or(0);
            if open >= per_uid_cap {
                return Err(Refused::Connections { cap: per_uid_cap });
            }
            if state.users_open >= MAX_USER_CONNECTIONS {
                return Err(Refused::Total);
            }
            if state.buckets.len() >= MAX_BUCKETS {
                state
                    .buckets
                    .retain(|_, b| refill(b.tokens, b.at, now) < BURST);
            }
            let bucket = state.buckets.entry(uid).or_insert(Bucket {
                tokens: BURST,
                at: now,
            });
            let tokens = refill(bucket.tokens, bucket.at, now);
            if tokens < 1.0 {
                bucket.tokens = tokens;
                bucket.at = now;
                return Err(Refused::Rate);
            }
            bucket.tokens = tokens - 1.0;
            bucket.at = now;
            *state.open.entry(uid).or_insert(0) += 1;
            state.users_open += 1;
        }
        state.all_open += 1;
        state.quiet_since = None;
        Ok(Admission {
            limits: self.clone(),
            uid,
            counted: !exempt,
        })
    }

    /// Connections in flight, and since when there have been none.
    pub fn in_flight(&self) -> (usize, Option<Instant>) {
        self.state
            .lock()
            .map(|s| (s.all_open, s.quiet_since))
            .unwrap_or((1, None))
    }
}

fn refill(tokens: f64, at: Instant, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(at).as_secs_f64();
    (tokens + elapsed * RATE_PER_SEC).min(BURST)
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut state) = self.limits.state.lock() {
            if self.counted {
                if let Some(open) = state.open.get_mut(&self.uid) {
                    *open = open.saturating_sub(1);
                    if *open == 0 {
                        state.open.remove(&self.uid);
                    }
                }
                state.users_open = state.users_open.saturating_sub(1);
            }
            state.all_open = state.all_open.saturating_sub(1);
            if state.all_open == 0 {
                state.quiet_since = Some(Instant::now());
            }
        }
    }
}

/// At most one line a second about refused connections, with a count of
/// those not logged, so a flood cannot flood the log.
#[derive(Default)]
pub struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    pub fn refused(&mut self, uid: u32, why: &Refused, now: Instant) {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        let more = match self.unlogged {
            0 => String::new(),
            n => format!(" ({n} more refused in the last second, not logged)"),
        };
        crate::log::warning(&format!("refused a connection from uid {uid}: {why}{more}"));
        self.last = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_uid_cap_rate_and_root() {
        let limits = Limits::new();
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| limits.admit(1000, false, 3, now).unwrap())
            .collect();
        assert_eq!(
            limits.admit(1000, false, 3, now).err(),
            Some(Refused::Connections { cap: 3 })
        );
        assert!(
            limits.admit(1001, false, 3, now).is_ok(),
            "another user is not held up"
        );
        let roots: Vec<_> = (0..500)
            .map(|_| limits.admit(0, true, 3, now).unwrap())
            .collect();
        assert_eq!(limits.in_flight().0, 503);
        drop(held);
        drop(roots);
        assert_eq!(limits.in_flight().0, 0);
        assert!(limits.in_flight().1.is_some());

        // The bucket: a burst, then the rate.
        let limits = Limits::new();
        let mut admitted = 0;
        for _ in 0..100 {
            if limits.admit(1000, false, 8, now).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, BURST as usize);
        assert_eq!(limits.admit(1000, false, 8, now).err(), Some(Refused::Rate));
        let later = now + Duration::from_millis(100);
        assert!(limits.admit(1000, false, 8, later).is_ok(), "2 tokens back");
        assert!(limits.admit(0, true, 8, now).is_ok(), "root has no bucket");
    }

    #[test]
    fn all_users_together_are_capped_but_not_root() {
        let limits = Limits::new();
        let now = Instant::now();
        let held: Vec<_> = (0..MAX_USER_CONNECTIONS as u32)
            .map(|uid| limits.admit(1000 + uid, false, 8, now).unwrap())
            .collect();
        assert_eq!(
            limits.admit(99_999, false, 8, now).err(),
            Some(Refused::Total)
        );
        assert!(limits.admit(0, true, 8, now).is_ok());
        assert!(
            limits.admit(4242, true, 8, now).is_ok(),
            "an exempt uid, too"
        );
        drop(held);
    }
}
