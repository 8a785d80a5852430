//! The key-helper runner in a host that set SIGCHLD to SIG_IGN (the kernel
//! then reaps children itself and waitpid fails with ECHILD). In its own
//! test binary, because the disposition is process-wide.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tap_core::helper::runner::{run_helper, HelperFailure};
use tap_core::keys::protocol::{Request, Response};

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn sigchld_ignored_host() {
    // SAFETY: setting a signal disposition; this test binary has no other tests.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let good = script(
        dir.path(),
        "good",
        "cat >/dev/null; echo '{\"status\":\"present\",\"pin_set\":false}'",
    );
    let dead = script(dir.path(), "dead", "exit 1");
    let hang = script(dir.path(), "hang", "sleep 60");
    let garbage = script(dir.path(), "garbage", "echo nope");
    for _ in 0..3 {
        assert_eq!(
            run_helper(&good, &Request::Probe, Duration::from_secs(5)).unwrap(),
            Response::Present { pin_set: false }
        );
        // The status is lost to the kernel's reaping; it still died.
        assert!(matches!(
            run_helper(&dead, &Request::Probe, Duration::from_secs(5)),
            Err(HelperFailure::Died(_))
        ));
        assert!(matches!(
            run_helper(&garbage, &Request::Probe, Duration::from_secs(5)),
            Err(HelperFailure::Garbage(_))
        ));
        let start = Instant::now();
        assert!(matches!(
            run_helper(&hang, &Request::Probe, Duration::from_millis(300)),
            Err(HelperFailure::Timeout)
        ));
        assert!(start.elapsed() < Duration::from_millis(1300));
    }

    // The helper is reaped by the kernel at once, but its child holding
    // stdout keeps the process group alive, and is killed with it.
    let pidfile = dir.path().join("child.pid");
    let holder = script(
        dir.path(),
        "holder",
        &format!(
            "sleep 64 &\necho $! > '{}'\necho partial",
            pidfile.display()
        ),
    );
    assert!(matches!(
        run_helper(&holder, &Request::Probe, Duration::from_millis(300)),
        Err(HelperFailure::Timeout)
    ));
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat_path = format!("/proc/{}/stat", pid.trim());
    let mut gone = false;
    for _ in 0..50 {
        let stat = std::fs::read_to_string(&stat_path).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z") {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone, "the helper's child survived");
}
