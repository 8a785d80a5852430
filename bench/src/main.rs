//! Benchmark harness for pam_tap: the module (a client) and tapd (the
//! daemon that owns the store), through real libpam, each case printed
//! beside its baseline measured in the same run. Every sign-in is a whole
//! login's PAM life: pam_start, pam_authenticate, pam_end. Run as root:
//!
//!     cargo build --release --workspace && target/release/tap-bench --runs 5
//!     target/release/tap-bench --callgrind     # instructions per sign-in
//!
//! Cases (issue 12): (a) a user with no pass, against pam_permit alone
//! (and pam_google_authenticator nullok printed as the peer's figure);
//! (b) a pass sign-in, against one raw Argon2id hash at the same cost;
//! (c) case (a) with 100,000 other users' passes in the store; (d) a key
//! sign-in beside the helper round trip; (e) 64 clients signing in at
//! once; (f) 300 at once, against tapd's peak memory. Issue 13: (g)
//! `tapctl authorized-keys USER` as sshd runs it, against `cat` of the same
//! authorized_keys file, and with 100,000 other users' keys in the store.
//! Issue 14, with `--postgres`: cases (a), (b) and (e) again with a
//! PostgreSQL store (fleet.rs), the SQLite figures beside them.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod callgrind;
mod cases;
mod cleanup;
mod daemon;
mod fleet;
mod keys;
mod pam;
mod ssh;
mod workspace;

use cases::{flood, flood_over, interleaved, pairs, settle_log, Flood, Login};
use daemon::Tapd;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tap_core::policy::Policy;
use workspace::Workspace;

pub const NO_PASS_USER: &str = "nobody";
pub const PASS_USER: &str = "daemon";
pub const PASS: &str = "K7QM9XRT4D";
const OTHER_PASSES: usize = 100_000;
const AT_ONCE: usize = 64;
const FLOOD: usize = 300;
const READY: Duration = Duration::from_secs(30);
const STOP: Duration = Duration::from_secs(30);

/// Where Debian's libpam looks for modules named without a path.
const GOOGLE_AUTHENTICATOR: &[&str] = &[
    "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so",
    "/usr/lib/x86_64-linux-gnu/security/pam_google_authenticator.so",
    "/lib/security/pam_google_authenticator.so",
    "/usr/lib/security/pam_google_authenticator.so",
];

const USAGE: &str =
    "usage: tap-bench [--module PATH] [--tapd PATH] [--tapctl PATH] [--softkey PATH] [--runs N]
                 [--check] [--postgres] [--tapd-env NAME=VALUE]...
       tap-bench --callgrind [--module PATH] [--tapd PATH] [--tapctl PATH] [--profiles DIR] [--check]";

struct Args {
    module: PathBuf,
    tapd: PathBuf,
    tapctl: PathBuf,
    softkey: PathBuf,
    runs: usize,
    check: bool,
    callgrind: bool,
    /// Issue 14's cases against a PostgreSQL store too (fleet.rs).
    postgres: bool,
    /// Where --callgrind copies its callgrind.out files (for callgrind_annotate).
    profiles: Option<PathBuf>,
    /// For experiments only, e.g. GLIBC_TUNABLES=...: printed with the figures.
    tapd_env: Vec<(String, String)>,
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    // The pieces --callgrind runs under valgrind, by themselves.
    if let Some(code) = callgrind::child_mode(&raw) {
        std::process::exit(code);
    }
    let args = parse(&raw);
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        fail("run as root: the module needs root-owned files, and tapd accepts sign-ins from root only");
    }
    let mut work = Workspace::new(&args.module, &args.tapd);
    work.tapd_env = args.tapd_env.clone();
    if args.callgrind {
        let missed = callgrind::run(&work, &args.tapctl, args.profiles.as_deref());
        drop(work);
        if args.check && missed {
            std::process::exit(1);
        }
        return;
    }
    let missed = measure(&work, &args);
    drop(work);
    if args.check && !missed.is_empty() {
        eprintln!("targets missed: {}", missed.join(", "));
        std::process::exit(1);
    }
}

fn parse(raw: &[String]) -> Args {
    let mut args = Args {
        module: PathBuf::from("target/release/libpam_tap.so"),
        tapd: PathBuf::from("target/release/tapd"),
        tapctl: PathBuf::from("target/release/tapctl"),
        softkey: PathBuf::from("target/release/pam_tap-softkey"),
        runs: 1,
        check: false,
        callgrind: false,
        postgres: false,
        tapd_env: Vec::new(),
        profiles: None,
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--module" => args.module = PathBuf::from(value()),
            "--tapd" => args.tapd = PathBuf::from(value()),
            "--tapctl" => args.tapctl = PathBuf::from(value()),
            "--softkey" => args.softkey = PathBuf::from(value()),
            "--runs" => {
                args.runs = value()
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .unwrap_or_else(|| fail(USAGE))
            }
            "--check" => args.check = true,
            "--tapd-env" => {
                let pair = value();
                let (k, v) = pair.split_once('=').unwrap_or_else(|| fail(USAGE));
                args.tapd_env.push((k.to_string(), v.to_string()));
            }
            "--callgrind" => args.callgrind = true,
            "--postgres" => args.postgres = true,
            "--profiles" => args.profiles = Some(PathBuf::from(value())),
            _ => fail(USAGE),
        }
    }
    for path in [
        &mut args.module,
        &mut args.tapd,
        &mut args.tapctl,
        &mut args.softkey,
    ] {
        *path = std::fs::canonicalize(&*path).unwrap_or_else(|e| {
            fail(&format!(
                "{}: {e} (cargo build --release --workspace first)",
                path.display()
            ))
        });
    }
    args
}

/// Everything one run measures.
struct Run {
    permit: Duration,
    tap: Duration,
    google: Option<Duration>,
    raw: Duration,
    signin: Duration,
    small: Duration,
    big: Duration,
    helper: Duration,
    key: Duration,
    /// (d), where the own time goes: CPU per login and per helper trip.
    key_cpu: keys::KeyCpu,
    at_once: Flood,
    flood: Flood,
    flood_peak_kib: u64,
    flood_idle_kib: u64,
    /// (g): one whole process each.
    keys_cat: Duration,
    keys_one: Duration,
    keys_big: Duration,
    /// What the daemons logged about failed logins in (e) and (f).
    complaints: Vec<String>,
    /// With --postgres.
    fleet: Option<FleetRun>,
}

/// Issue 14's cases with the PostgreSQL store, and what (e) adds for the
/// SQLite twin.
struct FleetRun {
    permit: Duration,
    tap: Duration,
    raw: Duration,
    signin: Duration,
    flood: Flood,
    during: fleet::Connections,
    after: fleet::Connections,
    /// (e) against the SQLite daemon: its store connections.
    sqlite_during: fleet::Connections,
    sqlite_after: fleet::Connections,
}

impl FleetRun {
    fn added_a_ms(&self) -> f64 {
        ms(self.tap) - ms(self.permit)
    }
    fn ratio_b(&self) -> f64 {
        self.signin.as_secs_f64() / self.raw.as_secs_f64()
    }
}

fn per_second(f: &Flood) -> f64 {
    f.succeeded() as f64 / f.wall.as_secs_f64()
}

impl Run {
    fn added_a_ms(&self) -> f64 {
        ms(self.tap) - ms(self.permit)
    }
    fn ratio_b(&self) -> f64 {
        self.signin.as_secs_f64() / self.raw.as_secs_f64()
    }
    fn ratio_c(&self) -> f64 {
        self.big.as_secs_f64() / self.small.as_secs_f64()
    }
    fn own_d_ms(&self) -> f64 {
        ms(self.key) - ms(self.helper)
    }
    fn ratio_g_cat(&self) -> f64 {
        self.keys_one.as_secs_f64() / self.keys_cat.as_secs_f64()
    }
    fn ratio_g_big(&self) -> f64 {
        self.keys_big.as_secs_f64() / self.keys_one.as_secs_f64()
    }
}

fn measure(work: &Workspace, args: &Args) -> Vec<String> {
    let policy = Policy::default();
    let cost = policy.pass.hash;
    let bound_kib = (policy.daemon.max_concurrent_hashes as u64 + 2) * u64::from(cost.memory_kib);

    // Stores written before their daemons start: tapd alone opens them after.
    let small = work.policy("small", "");
    work.issue(&small);
    let big = work.policy("big", "");
    work.issue(&big);
    work.fill(&big, OTHER_PASSES);
    let flood_policy = work.policy("flood", "");
    work.issue(&flood_policy);
    let keys = keys::KeySetup::new(work, &args.softkey);
    let ssh_keys = ssh::SshSetup::new(work, &args.tapctl);

    work.plain_service("permit", "auth required pam_permit.so\n");
    let google = GOOGLE_AUTHENTICATOR.iter().find(|p| Path::new(p).exists());
    if let Some(google) = google {
        work.plain_service(
            "google",
            &format!("auth required {google} nullok\nauth required pam_permit.so\n"),
        );
    }
    work.tap_service("tap", "small", "auth required pam_permit.so");
    work.tap_service("tap-big", "big", "auth required pam_permit.so");
    work.tap_service("tap-flood", "flood", "auth required pam_permit.so");
    work.tap_service("tap-key", "keys", "auth required pam_deny.so");

    let daemons: Vec<Tapd> = ["small", "big", "keys", ssh::SMALL, ssh::BIG]
        .iter()
        .map(|name| work.start(name, &[], READY))
        .collect();
    let pg = args.postgres.then(|| fleet::Fleet::start(work));
    let pg_services: Vec<String> = (0..fleet::HOSTS).map(fleet::service).collect();

    println!(
        "pam_tap benchmark: {} with {} (one tapd per policy, each on its own socket in {}); every sign-in a whole PAM login\n",
        args.module.display(),
        args.tapd.display(),
        work.dir.display()
    );
    for (k, v) in &args.tapd_env {
        println!(
            "every tapd started with {k}={v} (--tapd-env: an experiment, not the shipped daemon)"
        );
    }
    let login = |service, user| Login {
        confdir: &work.confdir,
        service,
        user,
    };

    // Both stores' logs half-way through their cycle, as on a live host.
    let mut cycle = 0;
    for (service, store) in [("tap", "small"), ("tap-big", "big")] {
        let wal = work.dir.join(store).join("tap.db-wal");
        match settle_log(login(service, PASS_USER), &wal) {
            Some((length, bytes)) => {
                println!(
                    "{service:<8} store: log emptied every {length} pass sign-ins; measured from {:.0} KiB",
                    bytes as f64 / 1024.0
                );
                cycle = cycle.max(length);
            }
            None => {
                println!("{service:<8} store: log not emptied within 1,000 sign-ins; not settled")
            }
        }
    }
    if let Some(pg) = &pg {
        println!("{}", pg.describe());
        // Every host's connections open, as on a live fleet.
        for service in &pg_services {
            login(service, PASS_USER).ok();
        }
    }
    if google.is_none() {
        println!("(a) pam_google_authenticator.so not installed (tests/install-deps.sh installs libpam-google-authenticator): peer line skipped");
    }
    println!();

    let mut runs = Vec::new();
    for n in 1..=args.runs {
        println!("run {n} of {}", args.runs);
        let ssh = SshDaemons {
            setup: &ssh_keys,
            one: &daemons[3],
            big: &daemons[4],
        };
        let mut run = one_run(
            work,
            &login,
            &keys,
            &ssh,
            &daemons[0],
            &daemons[2],
            google.is_some(),
            cycle,
            &cost,
            pg.is_some(),
        );
        if let Some(pg) = &pg {
            let logins = fleet::host_logins(&work.confdir, &pg_services, PASS_USER);
            fleet_run(pg, &logins, &login, cycle, &cost, &mut run);
        }
        print_run(&run, bound_kib);
        runs.push(run);
        println!();
    }
    for tapd in daemons {
        tapd.stop(STOP);
    }
    if let Some(pg) = pg {
        pg.stop();
    }
    summary(&runs, bound_kib)
}

/// Issue 14's cases on the PostgreSQL store, after the SQLite ones of the
/// same run: (a) and (b) against host 0's daemon, (e) over every host.
fn fleet_run<'a>(
    pg: &fleet::Fleet,
    hosts: &[Login<'a>],
    login: &dyn Fn(&'a str, &'a str) -> Login<'a>,
    cycle: u32,
    cost: &tap_core::hashing::HashCost,
    run: &mut Run,
) {
    let a = interleaved(
        20,
        50,
        &[
            login("permit", NO_PASS_USER),
            Login {
                user: NO_PASS_USER,
                ..hosts[0]
            },
        ],
    );
    let (raw, signin) = pairs(3 * cycle.max(20), cost, hosts[0]);
    let mut counter = pg.counter();
    let marks: Vec<usize> = pg.daemons.iter().map(Tapd::log_len).collect();
    let (flooded, during) = fleet::sampled(
        || counter.count(),
        || flood_over(fleet::HOSTS * fleet::PER_HOST, hosts),
    );
    let after = counter.count();
    if flooded.errors() > 0 {
        for (host, (tapd, mark)) in pg.daemons.iter().zip(marks).enumerate() {
            run.complaints
                .extend(explain(&format!("(e) pg host {host}"), tapd, mark));
        }
    }
    let (sqlite_during, sqlite_after) = run
        .fleet
        .as_ref()
        .map(|f| (f.sqlite_during, f.sqlite_after))
        .unwrap_or_default();
    run.fleet = Some(FleetRun {
        permit: a[0],
        tap: a[1],
        raw,
        signin,
        flood: flooded,
        during,
        after,
        sqlite_during,
        sqlite_after,
    });
}

/// Case (g)'s file and its two daemons: SSH_USER's keys alone, and with
/// 100,000 other users' keys.
struct SshDaemons<'a> {
    setup: &'a ssh::SshSetup,
    one: &'a Tapd,
    big: &'a Tapd,
}

#[allow(clippy::too_many_arguments)]
fn one_run<'a>(
    work: &'a Workspace,
    login: &dyn Fn(&'a str, &'a str) -> Login<'a>,
    keys: &keys::KeySetup,
    ssh: &SshDaemons<'_>,
    small_tapd: &Tapd,
    keys_tapd: &Tapd,
    google: bool,
    cycle: u32,
    cost: &tap_core::hashing::HashCost,
    postgres: bool,
) -> Run {
    // (a) No pass: the module's and daemon's whole cost for a user they have
    // nothing for, per login. Each stack ends in pam_permit.
    let mut a = vec![login("permit", NO_PASS_USER), login("tap", NO_PASS_USER)];
    if google {
        a.push(login("google", NO_PASS_USER));
    }
    let a = interleaved(20, 50, &a);

    // (b) Pass sign-in against the hash it cannot avoid. Whole log cycles,
    // so the sign-ins pay their share of emptying the log.
    let rounds = 3 * cycle.max(20);
    let (raw, signin) = pairs(rounds, cost, login("tap", PASS_USER));

    // (c) Case (a) with a big store.
    let c = interleaved(
        20,
        50,
        &[login("tap", NO_PASS_USER), login("tap-big", NO_PASS_USER)],
    );

    // (d) Key sign-in: the module's and daemon's work beside the helper.
    let (helper, key, key_cpu) = key_case(keys, login("tap-key", keys::KEY_USER), keys_tapd);

    // (g) What sshd runs for a publickey attempt, beside cat of the same
    // lines, and with a big store; each a whole process.
    let g = ssh::interleaved(
        20,
        50,
        &[
            ssh.setup.cat(),
            ssh.setup.tapctl(ssh.one),
            ssh.setup.tapctl(ssh.big),
        ],
    );

    // (e) 64 at once against one daemon.
    let mark = small_tapd.log_len();
    // With --postgres, the store's connections are counted meanwhile (the
    // twin of the PostgreSQL flood's pg_stat_activity).
    let store = fleet::sqlite_store(work, "small");
    let (at_once, sqlite) = if postgres {
        let (f, during) = fleet::sampled(
            || fleet::sqlite_connections(small_tapd, &store),
            || flood(AT_ONCE, login("tap", PASS_USER)),
        );
        let after = fleet::sqlite_connections(small_tapd, &store);
        (f, Some((during, after)))
    } else {
        (flood(AT_ONCE, login("tap", PASS_USER)), None)
    };
    let mut complaints = Vec::new();
    if at_once.errors() > 0 {
        complaints.extend(explain("(e)", small_tapd, mark));
    }

    // (f) 300 at once against a fresh daemon, whose peak memory is then all
    // the flood's.
    let tapd = work.start("flood", &[], READY);
    login("tap-flood", PASS_USER).ok();
    let idle = tapd.memory();
    let mark = tapd.log_len();
    let flooded = flood(FLOOD, login("tap-flood", PASS_USER));
    let peak = tapd.memory();
    if flooded.errors() > 0 {
        complaints.extend(explain("(f)", &tapd, mark));
    }
    tapd.stop(STOP);

    Run {
        permit: a[0],
        tap: a[1],
        google: a.get(2).copied(),
        raw,
        signin,
        small: c[0],
        big: c[1],
        helper,
        key,
        key_cpu,
        at_once,
        flood: flooded,
        flood_peak_kib: peak.peak_kib,
        flood_idle_kib: idle.peak_kib,
        keys_cat: g[0],
        keys_one: g[1],
        keys_big: g[2],
        complaints,
        fleet: sqlite.map(|(during, after)| FleetRun {
            permit: Duration::ZERO,
            tap: Duration::ZERO,
            raw: Duration::ZERO,
            signin: Duration::ZERO,
            flood: Flood {
                clients: 0,
                codes: Default::default(),
                wall: Duration::ZERO,
            },
            during: Default::default(),
            after: Default::default(),
            sqlite_during: during,
            sqlite_after: after,
        }),
    }
}

/// What the daemon logged about failed logins.
fn explain(case: &str, tapd: &Tapd, mark: usize) -> Vec<String> {
    let lines = tapd.complaints_since(mark, 4);
    if lines.is_empty() {
        return vec![format!(
            "{case} tapd logged no complaint: the clients gave up (module timeout) or failed themselves"
        )];
    }
    lines
        .into_iter()
        .map(|line| format!("{case} tapd logged {line}"))
        .collect()
}

/// Helper round trips and key logins in turn; the mean of each, and the
/// CPU each took in this process and (logins) in the key daemon.
fn key_case(
    keys: &keys::KeySetup,
    key_login: Login<'_>,
    tapd: &Tapd,
) -> (Duration, Duration, keys::KeyCpu) {
    let rounds = 30;
    key_login.ok();
    keys.helper_round_trip();
    let (mut helper, mut signin) = (Duration::ZERO, Duration::ZERO);
    let mut cpu = keys::KeyCpu::default();
    let me = std::process::id();
    for _ in 0..rounds {
        // Each phase between two readings of this process alone, so both
        // hold the same share of the readings' own cost.
        let start = daemon::process_cpu(me);
        helper += cases::time(|| keys.helper_round_trip());
        let helper_done = daemon::process_cpu(me);
        let theirs = tapd.cpu();
        let login_start = daemon::process_cpu(me);
        signin += cases::time(|| key_login.ok());
        let login_done = daemon::process_cpu(me);
        cpu.login_tapd += tapd.cpu() - theirs;
        cpu.helper_client += helper_done - start;
        cpu.login_client += login_done - login_start;
    }
    (helper / rounds, signin / rounds, cpu / rounds)
}

fn print_run(r: &Run, bound_kib: u64) {
    println!(
        "(a) user without a pass   pam_permit alone {:>9}   pam_tap + pam_permit {:>9}   added {:.3} ms/login",
        micros(r.permit),
        micros(r.tap),
        r.added_a_ms()
    );
    if let Some(google) = r.google {
        println!(
            "    peer                  pam_google_authenticator nullok + pam_permit {:>9}   added {:.3} ms/login",
            micros(google),
            ms(google) - ms(r.permit)
        );
    }
    println!(
        "(b) pass sign-in          raw Argon2id      {:>9}   pam_tap login        {:>9}   ratio {:.3}x",
        millis(r.raw),
        millis(r.signin),
        r.ratio_b()
    );
    println!(
        "(c) {OTHER_PASSES} other passes   store of 1 pass  {:>9}   store of {OTHER_PASSES}  {:>9}   ratio {:.3}x",
        micros(r.small),
        micros(r.big),
        r.ratio_c()
    );
    println!(
        "(d) key sign-in           helper round trip {:>9}   pam_tap key login    {:>9}   own {:.2} ms",
        millis(r.helper),
        millis(r.key),
        r.own_d_ms()
    );
    let cpu = &r.key_cpu;
    println!(
        "    where (d) goes        CPU per login: this process {:.2} ms beyond its {:.2} ms per helper trip, tapd {:.2} ms; the rest, {:.2} ms, on no CPU (waiting to be woken, the disk)",
        cpu.client_own_ms(),
        ms(cpu.helper_client),
        ms(cpu.login_tapd),
        r.own_d_ms() - cpu.client_own_ms() - ms(cpu.login_tapd)
    );
    println!("(e) {AT_ONCE} at once           {}", r.at_once.describe());
    println!(
        "(f) {FLOOD} at once          {}; tapd peak RSS {:.1} MiB (after one sign-in {:.1} MiB), bound {:.1} MiB",
        r.flood.describe(),
        kib_mib(r.flood_peak_kib),
        kib_mib(r.flood_idle_kib),
        kib_mib(bound_kib)
    );
    println!(
        "(g) authorized-keys       cat of the file   {:>9}   tapctl, 1-user store {:>9}   ratio {:.3}x",
        micros(r.keys_cat),
        micros(r.keys_one),
        r.ratio_g_cat()
    );
    println!(
        "    {} other users' keys   1-user store      {:>9}   store of {}  {:>9}   ratio {:.3}x",
        ssh::OTHER_USERS,
        micros(r.keys_one),
        ssh::OTHER_USERS + 1,
        micros(r.keys_big),
        r.ratio_g_big()
    );
    if let Some(f) = &r.fleet {
        print_fleet_run(r, f);
    }
    for line in &r.complaints {
        println!("    {line}");
    }
}

fn print_fleet_run(r: &Run, f: &FleetRun) {
    println!(
        "(a) PostgreSQL no pass    pam_permit alone {:>9}   pam_tap + pam_permit {:>9}   added {:.3} ms/login",
        micros(f.permit),
        micros(f.tap),
        f.added_a_ms()
    );
    println!(
        "(b) PostgreSQL pass       raw Argon2id      {:>9}   pam_tap login        {:>9}   ratio {:.3}x",
        millis(f.raw),
        millis(f.signin),
        f.ratio_b()
    );
    println!(
        "(e) SQLite, 1 tapd        {:.1} sign-ins/s; store connections {} at most during, {} after",
        per_second(&r.at_once),
        f.sqlite_during.open,
        f.sqlite_after.open
    );
    println!(
        "(e) PostgreSQL, {} tapd x {} {}; {:.1} sign-ins/s; connections {} at most during ({} at most active), {} after",
        fleet::HOSTS,
        fleet::PER_HOST,
        f.flood.describe(),
        per_second(&f.flood),
        f.during.open,
        f.during.active,
        f.after.open
    );
}

/// Prints each target against the median over the runs; returns the
/// targets missed.
fn summary(runs: &[Run], bound_kib: u64) -> Vec<String> {
    let mut missed = Vec::new();
    let mut verdict = |name: &str, ok: bool| {
        if !ok {
            missed.push(name.to_string());
        }
        if ok {
            "met"
        } else {
            "MISSED"
        }
    };
    let all = |f: &dyn Fn(&Run) -> f64| -> (f64, String) {
        let values: Vec<f64> = runs.iter().map(f).collect();
        let shown: Vec<String> = values.iter().map(|v| format!("{v:.3}")).collect();
        (median(values), shown.join(" "))
    };
    println!(
        "median of {} run(s) (each run's figure in brackets)",
        runs.len()
    );
    let (a, each) = all(&|r| r.added_a_ms());
    println!(
        "(a) added per login       {a:.3} ms [{each}]   target <= 0.100 ms: {}",
        verdict("a", a <= 0.1)
    );
    if runs.iter().all(|r| r.google.is_some()) {
        let (g, each) = all(&|r| r.google.map_or(0.0, |g| ms(g) - ms(r.permit)));
        println!("    peer: pam_google_authenticator nullok added {g:.3} ms [{each}]");
    }
    let (b, each) = all(&|r| r.ratio_b());
    println!(
        "(b) pass sign-in ratio    {b:.3}x [{each}]   target <= 1.04x: {}",
        verdict("b", b <= 1.04)
    );
    let (c, each) = all(&|r| r.ratio_c());
    println!(
        "(c) big/small store       {c:.3}x [{each}]   target <= 1.2x: {}",
        verdict("c", c <= 1.2)
    );
    let (d, each) = all(&|r| r.own_d_ms());
    println!(
        "(d) key sign-in, own      {d:.3} ms [{each}]   target <= 1 ms: {}",
        verdict("d", d <= 1.0)
    );
    let (client, each_client) = all(&|r| r.key_cpu.client_own_ms());
    let (tapd, each_tapd) = all(&|r| ms(r.key_cpu.login_tapd));
    println!(
        "    CPU per key login     this process beyond the helper trip {client:.3} ms [{each_client}], tapd {tapd:.3} ms [{each_tapd}]"
    );
    // Errors are judged on every run, not the median: one is one too many.
    let errors: usize = runs.iter().map(|r| r.at_once.errors()).sum();
    let (e, each) = all(&|r| r.at_once.wall.as_secs_f64());
    println!(
        "(e) {AT_ONCE} at once           {errors} errors in {} logins; wall {e:.2} s [{each}]   target 0 errors: {}",
        AT_ONCE * runs.len(),
        verdict("e", errors == 0)
    );
    let (f, each) = all(&|r| kib_mib(r.flood_peak_kib));
    let worst = runs.iter().map(|r| r.flood_peak_kib).max().unwrap_or(0);
    let flood_errors: usize = runs.iter().map(|r| r.flood.errors()).sum();
    println!(
        "(f) {FLOOD} at once          tapd peak RSS {f:.1} MiB [{each}] (worst {:.1}), {flood_errors} failed logins of {}   target <= {:.1} MiB: {}",
        kib_mib(worst),
        FLOOD * runs.len(),
        kib_mib(bound_kib),
        verdict("f", f <= kib_mib(bound_kib))
    );
    let (cat, each_cat) = all(&|r| ms(r.keys_cat));
    let (one, each_one) = all(&|r| ms(r.keys_one));
    let (big, each_big) = all(&|r| ms(r.keys_big));
    println!(
        "(g) authorized-keys       cat {cat:.3} ms [{each_cat}], tapctl 1-user {one:.3} ms [{each_one}], tapctl {}-user {big:.3} ms [{each_big}]",
        ssh::OTHER_USERS + 1
    );
    let (g, each) = all(&|r| r.ratio_g_cat());
    println!(
        "(g) tapctl/cat            {g:.3}x [{each}]   target <= 3x: {}",
        verdict("g", g <= 3.0)
    );
    let (g, each) = all(&|r| r.ratio_g_big());
    println!(
        "(g) big/1-user store      {g:.3}x [{each}]   target <= 1.2x: {}",
        verdict("g-big", g <= 1.2)
    );
    missed.extend(fleet_summary(runs));
    missed
}

/// Issue 14's table: each case with SQLite and with PostgreSQL, judged on
/// the median of the runs (errors on every run).
fn fleet_summary(runs: &[Run]) -> Vec<String> {
    let fleet: Vec<&FleetRun> = runs.iter().filter_map(|r| r.fleet.as_ref()).collect();
    if fleet.is_empty() || fleet.len() != runs.len() {
        return Vec::new();
    }
    let mut missed = Vec::new();
    let mut verdict = |name: &str, ok: bool| {
        if !ok {
            missed.push(name.to_string());
        }
        if ok {
            "met"
        } else {
            "MISSED"
        }
    };
    let each = |values: Vec<f64>, digits: usize| -> (f64, String) {
        let shown: Vec<String> = values.iter().map(|v| format!("{v:.digits$}")).collect();
        (median(values), shown.join(" "))
    };
    println!(
        "fleet (issue 14), SQLite and PostgreSQL side by side, median of {} run(s)",
        runs.len()
    );
    let (s, s_each) = each(runs.iter().map(Run::added_a_ms).collect(), 3);
    let (p, p_each) = each(fleet.iter().map(|f| f.added_a_ms()).collect(), 3);
    println!(
        "no pass, added over pam_permit   SQLite {s:.3} ms [{s_each}] {}   PostgreSQL {p:.3} ms [{p_each}] {}   target <= 0.5 ms",
        verdict("fleet-a-sqlite", s <= 0.5),
        verdict("fleet-a-postgres", p <= 0.5)
    );
    let (s, s_each) = each(runs.iter().map(Run::ratio_b).collect(), 3);
    let (p, p_each) = each(fleet.iter().map(|f| f.ratio_b()).collect(), 3);
    println!(
        "pass sign-in / raw Argon2id      SQLite {s:.3}x [{s_each}] {}   PostgreSQL {p:.3}x [{p_each}] {}   target <= 1.10x",
        verdict("fleet-b-sqlite", s <= 1.10),
        verdict("fleet-b-postgres", p <= 1.10)
    );
    let s_errors: usize = runs.iter().map(|r| r.at_once.errors()).sum();
    let (s_rate, s_each) = each(runs.iter().map(|r| per_second(&r.at_once)).collect(), 1);
    let s_during = runs
        .iter()
        .filter_map(|r| r.fleet.as_ref())
        .map(|f| f.sqlite_during.open)
        .max()
        .unwrap_or(0);
    let s_after = runs
        .iter()
        .filter_map(|r| r.fleet.as_ref())
        .map(|f| f.sqlite_after.open)
        .max()
        .unwrap_or(0);
    println!(
        "{AT_ONCE} at once, SQLite (1 tapd)       {s_errors} errors in {} logins {}; {s_rate:.1} sign-ins/s [{s_each}]; store connections at most {s_during} during, {s_after} after",
        AT_ONCE * runs.len(),
        verdict("fleet-e-sqlite", s_errors == 0)
    );
    let clients = fleet::HOSTS * fleet::PER_HOST;
    let p_errors: usize = fleet.iter().map(|f| f.flood.errors()).sum();
    let (p_rate, p_each) = each(fleet.iter().map(|f| per_second(&f.flood)).collect(), 1);
    let during: Vec<String> = fleet
        .iter()
        .map(|f| format!("{}/{}", f.during.open, f.during.active))
        .collect();
    let after: Vec<String> = fleet.iter().map(|f| f.after.open.to_string()).collect();
    println!(
        "{clients} at once, PostgreSQL ({} tapd x {}) {p_errors} errors in {} logins {}; {p_rate:.1} sign-ins/s [{p_each}]; pg_stat_activity connections during open/active peak [{}], after [{}]",
        fleet::HOSTS,
        fleet::PER_HOST,
        clients * runs.len(),
        verdict("fleet-e-postgres", p_errors == 0),
        during.join(" "),
        after.join(" ")
    );
    missed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn kib_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn fail(message: &str) -> ! {
    eprintln!("tap-bench: {message}");
    cleanup::now();
    std::process::exit(1);
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}
