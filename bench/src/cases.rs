//! The measurements, each a whole login's PAM life per sign-in (pam_start,
//! pam_authenticate, pam_end) and each beside its baseline in the same run.

use crate::pam::{code_name, login, PAM_SUCCESS};
use crate::{fail, PASS};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use tap_core::hashing::HashCost;

/// One service and user, logged in again and again.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    pub confdir: &'a Path,
    pub service: &'a str,
    pub user: &'a str,
}

impl Login<'_> {
    pub fn once(&self) -> i32 {
        login(self.confdir, self.service, self.user, PASS)
    }

    /// One login that must end in PAM_SUCCESS.
    pub fn ok(&self) {
        let code = self.once();
        if code != PAM_SUCCESS {
            fail(&format!(
                "login to service {} as {}: pam_authenticate returned {}",
                self.service,
                self.user,
                code_name(code)
            ));
        }
    }
}

/// Alternates blocks of logins on each of `logins` so drift hits all
/// alike; returns the mean time per login of each.
pub fn interleaved(blocks: u32, per_block: u32, logins: &[Login<'_>]) -> Vec<Duration> {
    // Warm caches, the page cache and each daemon's store connections.
    for l in logins {
        (0..per_block).for_each(|_| l.ok());
    }
    let mut totals = vec![Duration::ZERO; logins.len()];
    for _ in 0..blocks {
        for (l, total) in logins.iter().zip(totals.iter_mut()) {
            *total += time(|| (0..per_block).for_each(|_| l.ok()));
        }
    }
    totals
        .into_iter()
        .map(|t| t / (blocks * per_block))
        .collect()
}

/// (b): one raw hash, one pass login, in turn (this machine's speed drifts
/// within a second; pairs cancel that far better than blocks). Returns the
/// mean of each.
pub fn pairs(rounds: u32, cost: &HashCost, pass_login: Login<'_>) -> (Duration, Duration) {
    let mut hash = RawHash::new(cost);
    let (mut raw, mut signin) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        raw += time(|| hash.once());
        signin += time(|| pass_login.ok());
    }
    (raw / rounds, signin / rounds)
}

/// One Argon2id hash at a cost, computed as the daemon computes it: in
/// working memory allocated once and kept (`tap_core::hashing::verify_in`,
/// tapd's hash slots), so neither hash pays for allocating and zeroing its
/// 19 MiB but the first.
pub struct RawHash {
    params: Params,
    blocks: Vec<Block>,
}

impl RawHash {
    pub fn new(cost: &HashCost) -> RawHash {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
            .unwrap_or_else(|e| fail(&format!("Argon2 params: {e}")));
        let blocks = vec![Block::default(); params.block_count()];
        RawHash { params, blocks }
    }

    pub fn once(&mut self) {
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_into_with_memory(
                PASS.as_bytes(),
                b"sixteen byte salt",
                &mut out,
                &mut self.blocks,
            )
            .unwrap_or_else(|e| fail(&format!("Argon2: {e}")));
        std::hint::black_box(out);
    }
}

/// Logins started at once from `clients` threads.
pub struct Flood {
    pub clients: usize,
    /// pam_authenticate's codes, by name, with their counts.
    pub codes: BTreeMap<String, usize>,
    pub wall: Duration,
}

impl Flood {
    pub fn succeeded(&self) -> usize {
        self.codes
            .get(&code_name(PAM_SUCCESS))
            .copied()
            .unwrap_or(0)
    }

    pub fn errors(&self) -> usize {
        self.clients - self.succeeded()
    }

    pub fn describe(&self) -> String {
        let codes: Vec<String> = self
            .codes
            .iter()
            .map(|(code, n)| format!("{n} x {code}"))
            .collect();
        format!(
            "{} clients in {:.2} s: {}",
            self.clients,
            self.wall.as_secs_f64(),
            codes.join(", ")
        )
    }
}

/// (e) and (f): `clients` threads, each one whole login, released together.
pub fn flood(clients: usize, l: Login<'_>) -> Flood {
    flood_over(clients, &[l])
}

/// `clients` threads released together, client i logging in with
/// `logins[i % n]` (one service per daemon: many hosts at once).
pub fn flood_over(clients: usize, logins: &[Login<'_>]) -> Flood {
    let start = Barrier::new(clients + 1);
    let (codes, wall) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                let l = logins[i % logins.len()];
                let start = &start;
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        start.wait();
                        let began = Instant::now();
                        let code = l.once();
                        (code, began, Instant::now())
                    })
                    .unwrap_or_else(|e| fail(&format!("cannot start a client thread: {e}")))
            })
            .collect();
        start.wait();
        let fallback = Instant::now();
        let ends: Vec<(i32, Instant, Instant)> = threads
            .into_iter()
            .map(|t| t.join().unwrap_or((-1, fallback, fallback)))
            .collect();
        // From the first client's start to the last one's return, as the
        // clients saw them: this thread may wake from the barrier late on a
        // busy host, after most logins are done.
        let first = ends.iter().map(|e| e.1).min().unwrap_or(fallback);
        let last = ends.iter().map(|e| e.2).max().unwrap_or(fallback);
        let codes: Vec<i32> = ends.iter().map(|e| e.0).collect();
        (codes, last.saturating_duration_since(first))
    });
    let mut counted = BTreeMap::new();
    for code in codes {
        let name = if code == -1 {
            "client thread panicked".to_string()
        } else {
            code_name(code)
        };
        *counted.entry(name).or_insert(0) += 1;
    }
    Flood {
        clients,
        codes: counted,
        wall,
    }
}

/// A live store's write-ahead log holds the sign-ins since it was last
/// emptied, and the daemon's connections read it. Signs in until the log
/// is emptied, counts the sign-ins to the next emptying (the cycle), then
/// stops half a cycle in, as on a live host. Returns the cycle's length
/// and the log's size, or None when the log was not emptied within a
/// bound (then nothing is settled).
pub fn settle_log(pass_login: Login<'_>, wal: &Path) -> Option<(u32, u64)> {
    const LIMIT: u32 = 1_000;
    let size = || std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    let sign_in_empties = || {
        let before = size();
        pass_login.ok();
        size() < before
    };
    let find_emptying = || (1..=LIMIT).find(|_| sign_in_empties());
    find_emptying()?;
    let cycle = find_emptying()?;
    for _ in 0..cycle / 2 {
        pass_login.ok();
    }
    Some((cycle, size()))
}

pub fn time(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}
