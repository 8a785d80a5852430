//! Socket activation, with the real systemd-socket-activate (Debian's
//! `systemd` package): tapd serves on the socket it is passed, exits when
//! idle, and the next connection starts a new tapd.

mod common;

use common::{ms, wait_for_pong, Dir, TAPD};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn socket_activate() -> &'static str {
    [
        "/usr/bin/systemd-socket-activate",
        "/lib/systemd/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("systemd-socket-activate (package systemd; tests/install-deps.sh installs it)")
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let give_up = Instant::now() + within;
    while Instant::now() < give_up {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// As a unit's ExecStart would run it: `systemd-socket-activate -l PATH tapd ...`.
#[test]
fn activated_tapd_serves_and_exits_when_idle() {
    let dir = Dir::new();
    let socket = dir.path().join("tapd.sock");
    let mut child = Command::new(socket_activate())
        .arg("-l")
        .arg(&socket)
        .arg(TAPD)
        .arg("--policy")
        .arg(dir.policy())
        .arg("--idle-exit")
        .arg("1")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_pong(&socket, Duration::from_secs(10));
    let pinged = Instant::now();
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("no idle exit");
    eprintln!("idle exit {} after the last Ping", ms(pinged.elapsed()));
    assert!(status.success(), "{status}");
    assert!(pinged.elapsed() >= Duration::from_millis(900));
    // systemd's socket, not tapd's: tapd does not remove it.
    assert!(socket.exists());
}

/// systemd keeps the socket and starts the service again when a connection
/// comes; emulated here: this test holds the listening socket (as PID 1
/// does) and passes it to systemd-socket-activate each time, which waits
/// for a connection and execs tapd with LISTEN_FDS.
#[test]
fn the_next_connection_after_an_idle_exit_starts_a_new_tapd() {
    let dir = Dir::new();
    let socket = dir.path().join("tapd.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let fd = listener.as_raw_fd();
    // fd 3 in the child, as systemd passes it.
    let to_fd3 = if fd == 3 {
        String::new()
    } else {
        format!("exec 3<&{fd} {fd}<&-; ")
    };
    let start_unit = || {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{to_fd3}LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""
            ))
            .arg(socket_activate())
            .arg(TAPD)
            .arg("--policy")
            .arg(dir.policy())
            .arg("--idle-exit")
            .arg("1")
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    };
    clear_cloexec(fd);
    let mut pids = Vec::new();
    for round in 0..2 {
        let mut unit = start_unit();
        // The connection waits in the listening socket's queue until tapd
        // takes it: nothing is refused while no tapd runs.
        let start = Instant::now();
        let took = common::ping(&socket);
        eprintln!(
            "round {round}: first Ping answered in {} (tapd started by it), round trip {}",
            ms(start.elapsed()),
            ms(took)
        );
        pids.push(unit.id());
        let status = wait_exit(&mut unit, Duration::from_secs(10)).expect("no idle exit");
        assert!(status.success(), "{status}");
    }
    assert_ne!(pids[0], pids[1], "a new tapd each time");
    drop(listener);
}

/// The listener must reach the child as an open descriptor.
fn clear_cloexec(fd: i32) {
    // SAFETY: F_GETFD/F_SETFD on a descriptor this test owns; no memory involved.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC), 0);
    }
}
