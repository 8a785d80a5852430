//! The real tapctl binary against tapd's request handling (`dispatch`)
//! over a Unix socket, with the real protocol and a real store. (The
//! daemon's own server is tested with it; here a minimal loop serves, and
//! the peer is this process's uid, as tapctl runs as it.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tap_core::hashing::HashCost;
use tap_core::policy::Policy;
use tap_protocol::{read_message, write_message, Request, MAX_REQUEST_BYTES};
use tap_store::{OpenOptions, SqliteStore};
use tapd::context::{Challenges, Context, HashGate, KeyCopy};
use tapd::peer::Peer;

struct Unbounded;

impl HashGate for Unbounded {
    fn run(&self, hash: &mut dyn FnMut(&mut tap_core::hashing::HashMemory)) {
        hash(&mut tap_core::hashing::HashMemory::default())
    }
}

/// Serves requests on a socket in `dir` from a thread; returns the path.
fn serve(dir: &Path) -> PathBuf {
    let socket = dir.join("tapd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let path = dir.join("tap.db");
    let mut policy = Policy {
        store: tap_core::policy::StorePolicy::sqlite(path.clone()),
        ..Policy::default()
    };
    policy.pass.hash = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    std::thread::spawn(move || {
        let mut store = SqliteStore::open(
            &path,
            OpenOptions {
                create: true,
                check_trust: false,
            },
        )
        .unwrap();
        let policy = Arc::new(policy);
        let challenges = Challenges::default();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let Ok(request) = read_message::<Request>(&mut stream, MAX_REQUEST_BYTES) else {
                continue;
            };
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            let peer = Peer {
                pid: 1,
                uid,
                gid: uid,
                privileged: uid == 0,
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let mut ctx = Context {
                peer: &peer,
                policy: policy.clone(),
                store: &mut store,
                key_copy: KeyCopy::None,
                challenges: &challenges,
                hashes: &Unbounded,
                now,
            };
            let response = tapd::dispatch::handle(&mut ctx, request);
            let _ = write_message(&mut stream, &response);
        }
    });
    socket
}

fn tapctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn me() -> String {
    // SAFETY: getuid cannot fail.
    tap_core::accounts::name_by_uid(unsafe { libc::getuid() }).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn commands_go_through_the_daemon_and_print_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let socket = serve(dir.path());
    let user = me();
    // As root, the test issues to itself; as anyone else it is refused, by
    // the daemon, with tapctl's exit code for "not permitted".
    let issued = tapctl(&socket, &["issue", &user, "--lifetime", "30m", "--json"]);
    if user != "root" {
        assert_eq!(issued.status.code(), Some(3), "{}", text(&issued.stderr));
        let show = tapctl(&socket, &["show", &user]);
        assert_eq!(show.status.code(), Some(4), "{}", text(&show.stderr));
        return;
    }
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let json: serde_json::Value = serde_json::from_slice(&issued.stdout).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "user",
        "pass",
        "start",
        "expires",
        "lifetime",
        "one_time",
        "usable",
        "reason",
        "reason_text",
        "failures",
        "max_failures",
        "issued_by",
        "created",
        "used_at",
        "last_used",
        "locked_at",
        "revoked_at",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["lifetime"], "30m");
    assert_eq!(json["reason"], "EnabledByPolicy");
    assert_eq!(json["pass"].as_str().unwrap().replace('-', "").len(), 10);

    let shown = tapctl(&socket, &["show", &user]);
    assert!(text(&shown.stdout).starts_with(&format!("Temporary Access Pass for {user}: usable")));
    let listed = tapctl(&socket, &["list"]);
    assert!(
        text(&listed.stdout).starts_with("USER"),
        "{}",
        text(&listed.stdout)
    );

    let audit = tapctl(&socket, &["audit", "--json"]);
    let records: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(records[0]["event"], "pass.issued");
    assert_eq!(records[0]["actor"], user.as_str());
    assert_eq!(records[0]["service"], "tapctl");

    let revoked = tapctl(&socket, &["revoke", &user]);
    assert_eq!(
        text(&revoked.stdout),
        format!("{user}'s pass is revoked.\n")
    );
    assert_eq!(tapctl(&socket, &["revoke", &user]).status.code(), Some(4));
    assert_eq!(
        tapctl(&socket, &["show", "no-such-user-pam-tap"])
            .status
            .code(),
        Some(4)
    );
    let bad = tapctl(&socket, &["issue", &user, "--lifetime", "1s"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("outside the policy's bounds"),
        "{}",
        text(&bad.stderr)
    );
    let status = tapctl(&socket, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["user"], user.as_str());
    assert_eq!(status["pass"]["reason"], "Revoked");
}

#[test]
fn a_daemon_that_is_down_or_silent_is_exit_6_and_says_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    let down = tapctl(&dir.path().join("none.sock"), &["list"]);
    assert_eq!(down.status.code(), Some(6));
    assert!(
        text(&down.stderr).contains("systemctl start pam-tap.socket"),
        "{}",
        text(&down.stderr)
    );

    // Accepts, never answers: tapctl gives up at its timeout.
    let socket = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let started = Instant::now();
    let silent = tapctl(&socket, &["list"]);
    assert_eq!(silent.status.code(), Some(6), "{}", text(&silent.stderr));
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(held);
}

#[test]
fn policy_is_for_policy_check_only() {
    let dir = tempfile::tempdir().unwrap();
    let other = tapctl(
        &dir.path().join("x.sock"),
        &["--policy", "/nonexistent", "list"],
    );
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("policy check"),
        "{}",
        text(&other.stderr)
    );
    let check = tapctl(
        &dir.path().join("x.sock"),
        &["--policy", "/nonexistent", "policy", "check"],
    );
    assert_eq!(check.status.code(), Some(5), "{}", text(&check.stderr));
}
