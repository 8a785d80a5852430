//! tapd serving: Ping, the store's files, the policy read again on change,
//! and a clean stop on SIGTERM.

mod common;

use common::{ms, request, Daemon, Dir, TAPD};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};
use tap_protocol::{ErrorKind, Request, Response};

fn refusal(response: Response) -> (ErrorKind, String) {
    match response {
        Response::Refused(r) => (r.kind, r.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn ping_works_and_the_store_is_the_daemons_alone() {
    let daemon = Daemon::start(Dir::new());
    let (median, max) = common::pings(&daemon.socket(), 20);
    eprintln!("ping: median {}, max {}", ms(median), ms(max));
    let mode = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode() & 0o7777, m.uid())
    };
    let store = daemon.dir.store();
    assert_eq!(mode(&store), (0o600, 0));
    assert_eq!(mode(store.parent().unwrap()), (0o700, 0));
    assert_eq!(
        mode(&daemon.socket()).0 & 0o777,
        0o666,
        "any user may connect"
    );
}

#[test]
fn a_store_someone_else_owns_is_refused() {
    let dir = Dir::new();
    let state = dir.store().parent().unwrap().to_path_buf();
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(dir.store(), b"").unwrap();
    std::fs::set_permissions(dir.store(), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(dir.store(), Some(65534), None).unwrap();
    let socket = dir.socket();
    let mut child = Command::new(TAPD)
        .arg("--policy")
        .arg(dir.policy())
        .arg("--socket")
        .arg(&socket)
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let (kind, message) = refusal(request(&socket, &Request::Ping));
    assert_eq!(kind, ErrorKind::Store);
    assert!(message.contains("owned by uid 65534"), "{message}");
    assert_eq!(
        std::fs::metadata(dir.store()).unwrap().len(),
        0,
        "untouched"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// tapd run as a plain uid (as the packages run it, as `pam-tap`): the
/// store it creates is that uid's.
#[test]
fn a_daemon_running_as_another_user_owns_its_store() {
    let dir = Dir::new();
    for sub in ["state", "run"] {
        let path = dir.path().join(sub);
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(
        dir.path().join("run"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let child = Command::new(TAPD)
        .arg("--policy")
        .arg(dir.policy())
        .arg("--socket")
        .arg(dir.socket())
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    let daemon = Daemon { dir, child };
    common::wait_for_pong(&daemon.socket(), Duration::from_secs(10));
    let meta = std::fs::metadata(daemon.dir.store()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
}

#[test]
fn a_policy_edit_applies_to_the_next_request() {
    let daemon = Daemon::start(Dir::new());
    daemon.dir.write_policy("[pass]\nlength = 4\n");
    let (kind, message) = refusal(request(&daemon.socket(), &Request::Ping));
    assert_eq!(kind, ErrorKind::Policy);
    assert!(message.contains("length = 4"), "{message}");

    daemon
        .dir
        .write_policy("[daemon]\nmax_connections_per_uid = 3\n");
    daemon.ping();

    // Changed in place (same inode): its mode is what changed.
    std::fs::set_permissions(daemon.dir.policy(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (kind, message) = refusal(request(&daemon.socket(), &Request::Ping));
    assert_eq!(kind, ErrorKind::Policy);
    assert!(message.contains("world-writable"), "{message}");
    std::fs::set_permissions(daemon.dir.policy(), std::fs::Permissions::from_mode(0o644)).unwrap();
    daemon.ping();

    std::fs::remove_file(daemon.dir.policy()).unwrap();
    let (kind, _) = refusal(request(&daemon.socket(), &Request::Ping));
    assert_eq!(kind, ErrorKind::Policy);
    daemon.dir.write_policy("");
    daemon.ping();
}

#[test]
fn sigterm_stops_it_cleanly_and_removes_its_socket() {
    let mut daemon = Daemon::start(Dir::new());
    // A request in flight (a silent client) does not keep it past its drain.
    let _silent = std::os::unix::net::UnixStream::connect(daemon.socket()).unwrap();
    let start = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = daemon.child.wait().unwrap();
    eprintln!("stopped in {}", ms(start.elapsed()));
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(6));
    assert!(!daemon.socket().exists());
    assert!(!daemon.alive());
}
