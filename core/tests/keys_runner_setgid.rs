//! The key helper never inherits a set-group-id (tapctl runs setgid to the
//! store's group; device I/O runs without it). In its own test binary,
//! because group ids are process-wide. Needs root to fake the setgid state.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tap_core::helper::runner::run_helper;
use tap_core::keys::protocol::{Request, Response};

#[test]
fn helper_runs_with_the_real_group_only() {
    // SAFETY: plain id queries and changes on this test process.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot fake a set-group-id process; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("gids");
    let helper = dir.path().join("helper");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ngrep '^Gid:' /proc/self/status > '{}'\necho '{{\"status\":\"present\",\"pin_set\":false}}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let real = unsafe { libc::getgid() };
    // As if set-group-id (effective and saved gid differ from the real
    // one), and as if it had lowered only its effective gid for a while.
    for (effective, saved) in [(4242, 4242), (real, 4242)] {
        assert_eq!(unsafe { libc::setresgid(real, effective, saved) }, 0);
        let result = run_helper(&helper, &Request::Probe, Duration::from_secs(10));
        assert_eq!(unsafe { libc::setresgid(real, real, real) }, 0);
        assert_eq!(result.unwrap(), Response::Present { pin_set: false });
        let gids = std::fs::read_to_string(&seen).unwrap();
        let ids: Vec<&str> = gids.split_whitespace().skip(1).collect();
        assert_eq!(ids.len(), 4, "{gids}");
        assert!(ids.iter().all(|id| *id == real.to_string()), "{gids}");
    }
}
