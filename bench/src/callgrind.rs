//! `tap-bench --callgrind`: instructions per pass sign-in outside Argon2,
//! client and daemon, counted by `valgrind --tool=callgrind` (exact and
//! repeatable where wall-clock time on a shared machine is not).
//!
//! Method, every count a callgrind total (Ir) of a whole process:
//! - hash: `tap-bench --raw-hashes K` for K = 0 and K = 3; one Argon2id
//!   hash at the default cost is (I(3) - I(0)) / 3, computed as tapd
//!   computes it: in working memory allocated once (for K = 0 too) and
//!   kept, as tapd's hash slots keep theirs.
//! - daemon: tapd under callgrind, fresh store with one multi-use pass;
//!   WARM logins (not counted on the client side), then n counted logins,
//!   then SIGTERM. Done for n = A and n = B, each with its own daemon and
//!   fresh store; the daemon's share per sign-in is
//!   (D(B) - D(A)) / (B - A) - hash. Start-up, the policy's first parse and
//!   each worker's first store open cancel out.
//! - client: `tap-bench --logins ... n` under callgrind, n whole logins
//!   (pam_start, pam_authenticate, pam_end) of the pass user through
//!   pam_tap + pam_permit, against the same n of pam_permit alone; the
//!   client's share per sign-in is
//!   ((C_tap(B) - C_tap(A)) - (C_permit(B) - C_permit(A))) / (B - A).
//! - the same for a user without a pass (case (a)): nothing to subtract
//!   on the daemon's side.
//! - (g) `tapctl authorized-keys USER`: one whole tapctl process (loader
//!   included) against a plain tapd, beside one `cat` of the same file;
//!   and tapd's share per call, (D(B) - D(A)) / (B - A) with plain tapctl
//!   clients, for the 1-user store and the one with 100,000 other users.

use crate::cases::{Login, RawHash};
use crate::ssh::{self, Sample, SshSetup};
use crate::workspace::Workspace;
use crate::{fail, NO_PASS_USER, PASS_USER};
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tap_core::policy::Policy;

const WARM: u32 = 8;
const A: u32 = 4;
const B: u32 = 24;
const HASHES: u32 = 3;
const TARGET_M: f64 = 0.35;
/// Under valgrind everything is ~50 times slower.
const SLOW: Duration = Duration::from_secs(300);

/// The pieces run under valgrind: `--raw-hashes K` and
/// `--logins CONFDIR SERVICE USER N`. None when `raw` is neither.
pub fn child_mode(raw: &[String]) -> Option<i32> {
    match raw {
        [mode, k] if mode == "--raw-hashes" => {
            let k: u32 = k.parse().unwrap_or_else(|_| fail("--raw-hashes K"));
            // Allocated (and zeroed) for K = 0 too: I(K) - I(0) is K hashes.
            let mut hash = RawHash::new(&Policy::default().pass.hash);
            (0..k).for_each(|_| hash.once());
            Some(0)
        }
        [mode, confdir, service, user, n] if mode == "--logins" => {
            let n: u32 = n.parse().unwrap_or_else(|_| fail("--logins N"));
            let login = Login {
                confdir: Path::new(confdir),
                service,
                user,
            };
            (0..n).for_each(|_| login.ok());
            Some(0)
        }
        _ => None,
    }
}

/// Runs the whole method; prints each count. True when the target is missed.
pub fn run(work: &Workspace, tapctl: &Path, profiles: Option<&Path>) -> bool {
    if !Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        fail("valgrind is not installed (tests/install-deps.sh installs it)");
    }
    let me = std::env::current_exe().unwrap_or_else(|e| fail(&format!("current_exe: {e}")));
    println!(
        "pam_tap instructions per pass sign-in outside Argon2 (valgrind --tool=callgrind, totals Ir)\n"
    );
    work.plain_service("permit", "auth required pam_permit.so\n");

    let h0 = counted(work, &me, "hash-0", &["--raw-hashes".into(), "0".into()]);
    let hk = counted(
        work,
        &me,
        &format!("hash-{HASHES}"),
        &["--raw-hashes".into(), HASHES.to_string()],
    );
    let hash = (hk - h0) / f64::from(HASHES);
    println!("one raw Argon2id hash (m=19456, t=2, p=1): {hash:.0} Ir  [I({HASHES}) {hk:.0}, I(0) {h0:.0}]");

    let pass = per_login(work, &me, PASS_USER, "pass");
    let nopass = per_login(work, &me, NO_PASS_USER, "nopass");
    let daemon_per = pass.daemon - hash;
    let total_m = (daemon_per + pass.client) / 1e6;
    println!(
        "\n(b) pass sign-in, per login (marginal, over {B} - {A} logins): tapd {:.3} M outside Argon2, client {:.3} M beyond pam_permit's {:.3} M",
        daemon_per / 1e6,
        pass.client / 1e6,
        pass.permit / 1e6
    );
    println!(
        "(a) user without a pass, per login: tapd {:.3} M, client {:.3} M beyond pam_permit's {:.3} M; together {:.3} M",
        nopass.daemon / 1e6,
        nopass.client / 1e6,
        nopass.permit / 1e6,
        (nopass.daemon + nopass.client) / 1e6
    );
    authorized_keys(work, tapctl);
    if let Some(dir) = profiles {
        keep(work, dir);
    }
    let met = total_m <= TARGET_M;
    println!(
        "(b) instructions outside Argon2 per sign-in, client + daemon: {total_m:.3} M   target <= {TARGET_M} M: {}",
        if met { "met" } else { "MISSED" }
    );
    !met
}

/// Marginal instructions per login, from runs of A and B logins.
struct PerLogin {
    /// tapd's, hash included.
    daemon: f64,
    /// The login process's, beyond pam_permit alone.
    client: f64,
    /// pam_permit alone's whole login.
    permit: f64,
}

/// For `user`: a fresh store and a tapd under callgrind for each of n = A
/// and n = B; WARM uncounted logins, then n counted ones (the login
/// process under callgrind too), then SIGTERM; and n logins of pam_permit
/// alone under callgrind.
fn per_login(work: &Workspace, me: &Path, user: &str, tag: &str) -> PerLogin {
    let mut daemon = Vec::new();
    let mut client = Vec::new();
    let mut permit = Vec::new();
    for n in [A, B] {
        let name = format!("cg-{tag}-{n}");
        let policy = work.policy(&name, "");
        work.issue(&policy);
        let service = format!("tap-{name}");
        work.tap_service(&service, &name, "auth required pam_permit.so");
        let out = work.dir.join(format!("tapd-{tag}-{n}.cg"));
        let tapd = work.start(&name, &wrapper(&out), SLOW);
        let logins = |service: &str, k: u32| {
            vec![
                "--logins".into(),
                work.confdir.display().to_string(),
                service.to_string(),
                user.to_string(),
                k.to_string(),
            ]
        };
        // Uncounted on the client side: every worker's store connection
        // opened, caches filled.
        plain(me, &logins(&service, WARM));
        let c = counted(work, me, &format!("client-{tag}-{n}"), &logins(&service, n));
        let status = tapd.stop(SLOW);
        if !status.success() {
            fail(&format!("tapd under valgrind exited {status}"));
        }
        let d = total(&out);
        let p = counted(work, me, &format!("permit-{tag}-{n}"), &logins("permit", n));
        println!(
            "{user}, n = {n:>2} (after {WARM} warm-up): tapd {d:.0} Ir, client pam_tap {c:.0} Ir, client pam_permit {p:.0} Ir"
        );
        daemon.push(d);
        client.push(c);
        permit.push(p);
    }
    let span = f64::from(B - A);
    PerLogin {
        daemon: (daemon[1] - daemon[0]) / span,
        client: ((client[1] - client[0]) - (permit[1] - permit[0])) / span,
        permit: (permit[1] - permit[0]) / span,
    }
}

/// (g): a tapctl process and tapd's share per call, beside `cat`.
fn authorized_keys(work: &Workspace, tapctl: &Path) {
    println!();
    let setup = SshSetup::new(work, tapctl);
    let cat = counted_sample(work, "cat", &setup.cat());
    let mut rows = Vec::new();
    for store in [ssh::SMALL, ssh::BIG] {
        let tapd = work.start(store, &[], SLOW);
        let sample = setup.tapctl(&tapd);
        (0..WARM).for_each(|_| sample.once());
        let client = counted_sample(work, &format!("tapctl-{store}"), &sample);
        tapd.stop(SLOW);
        let mut daemon = Vec::new();
        for n in [A, B] {
            let out = work.dir.join(format!("tapd-{store}-{n}.cg"));
            let tapd = work.start(store, &wrapper(&out), SLOW);
            let sample = setup.tapctl(&tapd);
            // Uncounted: caches filled and the store's connection opened.
            (0..WARM + n).for_each(|_| sample.once());
            let status = tapd.stop(SLOW);
            if !status.success() {
                fail(&format!("tapd under valgrind exited {status}"));
            }
            let d = total(&out);
            println!(
                "{store}: tapd after {WARM} + {n} calls {d:.0} Ir; one tapctl process {client:.0} Ir"
            );
            daemon.push(d);
        }
        rows.push((store, client, (daemon[1] - daemon[0]) / f64::from(B - A)));
    }
    println!(
        "(g) authorized-keys, per call: cat of the file {:.3} M (whole process)",
        cat / 1e6
    );
    for (store, client, daemon) in rows {
        println!(
            "    {store:<9} tapctl process {:.3} M ({:.2}x cat), tapd {:.3} M (marginal over {B} - {A} calls)",
            client / 1e6,
            client / cat,
            daemon / 1e6
        );
    }
}

fn wrapper(out: &Path) -> Vec<OsString> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out.display()).into(),
    ]
}

/// One run of `sample` under callgrind (its output checked); its total Ir.
fn counted_sample(work: &Workspace, name: &str, sample: &Sample<'_>) -> f64 {
    let out = work.dir.join(format!("{name}.cg"));
    sample.run(&wrapper(&out));
    total(&out)
}

/// Copies every callgrind.out file to `dir`, for callgrind_annotate.
fn keep(work: &Workspace, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let entries = std::fs::read_dir(&work.dir).unwrap_or_else(|e| fail(&e.to_string()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "cg") {
            let to = dir.join(entry.file_name());
            std::fs::copy(&path, &to).unwrap_or_else(|e| fail(&format!("{}: {e}", to.display())));
        }
    }
    println!("callgrind output files copied to {}", dir.display());
}

/// Runs this program with `args` under callgrind; its total Ir.
fn counted(work: &Workspace, me: &Path, name: &str, args: &[String]) -> f64 {
    let out = work.dir.join(format!("{name}.cg"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(me)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| fail(&format!("valgrind: {e}")));
    if !status.success() {
        fail(&format!(
            "valgrind {} {}: {status}",
            me.display(),
            args.join(" ")
        ));
    }
    total(&out)
}

fn plain(me: &Path, args: &[String]) {
    let status = Command::new(me)
        .args(args)
        .status()
        .unwrap_or_else(|e| fail(&format!("{}: {e}", me.display())));
    if !status.success() {
        fail(&format!("{} {}: {status}", me.display(), args.join(" ")));
    }
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn total(file: &Path) -> f64 {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| fail(&format!("{}: {e}", file.display())));
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| fail(&format!("{}: no totals line", file.display())))
}
