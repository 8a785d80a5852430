//! The runner against real child processes.
use super::*;
use crate::keys::protocol::{AssertRequest, Bytes, HelperError, Pin, UserVerification};
use std::os::unix::fs::PermissionsExt;

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn assert_request() -> Request {
    Request::Assert(AssertRequest {
        rp_id: "pam://host".into(),
        client_data_hash: Bytes(vec![7; 32]),
        allow: vec![Bytes(vec![1, 2, 3])],
        user_verification: UserVerification::Preferred,
        pin: Some(Pin(Zeroizing::new("1234".into()))),
    })
}

const GOOD: &str = r#"{"status":"present","pin_set":true}"#;

/// How a helper that gave no answer ended, as the message says it.
fn death(result: Result<Response, HelperFailure>) -> String {
    match result {
        Err(HelperFailure::Died(death)) => death.to_string(),
        other => panic!("expected a dead helper: {other:?}"),
    }
}

fn run(helper: &Path, timeout: Duration) -> (Result<Response, HelperFailure>, Duration) {
    let start = Instant::now();
    let result = run_helper(helper, &assert_request(), timeout);
    (result, start.elapsed())
}

#[test]
fn good_answer() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(
        dir.path(),
        "good",
        &format!("cat >/dev/null\necho '{GOOD}'"),
    );
    let (result, took) = run(&helper, Duration::from_secs(10));
    assert_eq!(result.unwrap(), Response::Present { pin_set: true });
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// Threads that each write a helper and run it at once: another thread's
/// fork can hold a just-written helper open for writing (ETXTBSY).
#[test]
fn freshly_written_helpers_run_while_other_threads_spawn() {
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<_> = (0..6)
        .map(|worker| {
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                for round in 0..15 {
                    let helper = script(
                        &dir,
                        &format!("w{worker}-{round}"),
                        &format!("cat >/dev/null\necho '{GOOD}'"),
                    );
                    let (result, _) = run(&helper, Duration::from_secs(10));
                    assert_eq!(result.unwrap(), Response::Present { pin_set: true });
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn helper_sees_the_request_an_empty_environment_and_no_extra_fds() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    // An inherited descriptor without FD_CLOEXEC, as sshd might hold.
    let leak = std::fs::File::open("/dev/null").unwrap();
    let raw = leak.as_raw_fd();
    crate::sys::set_cloexec(leak.as_fd(), false).unwrap();
    let helper = script(
        dir.path(),
        "echo",
        &format!(
            "cat > '{seen}.req'\nenv > '{seen}.env'\nls /proc/self/fd > '{seen}.fds'\nfor f in /proc/$$/fd/*; do echo \"${{f##*/}} $(readlink $f)\"; done > '{seen}.links'\necho '{GOOD}'",
            seen = seen.display()
        ),
    );
    let (result, _) = run(&helper, Duration::from_secs(10));
    assert_eq!(result.unwrap(), Response::Present { pin_set: true });
    let req = std::fs::read(format!("{}.req", seen.display())).unwrap();
    assert_eq!(Request::from_json(&req).unwrap(), assert_request());
    let env = std::fs::read_to_string(format!("{}.env", seen.display())).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split('=').next())
        .filter(|n| !matches!(*n, "PWD" | "SHLVL" | "_" | "OLDPWD"))
        .collect();
    assert_eq!(names, vec!["PATH"], "{env}");
    assert!(env.contains("PATH=/usr/bin:/bin"));
    // ls itself opens one directory descriptor (3); nothing above it.
    let fds = std::fs::read_to_string(format!("{}.fds", seen.display())).unwrap();
    let fds: Vec<i32> = fds
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    assert!(!fds.contains(&raw) || raw == 3, "leaked fd {raw}: {fds:?}");
    // Beside it, only the descriptor of the script itself, which the
    // interpreter was handed as /dev/fd/N (an ELF helper gets none).
    let extra: Vec<_> = fds.iter().filter(|&&fd| fd > 3).collect();
    assert!(extra.len() <= 1, "{fds:?}");
    let targets = std::fs::read_to_string(format!("{}.links", seen.display())).unwrap();
    for fd in extra {
        let line = targets
            .lines()
            .find(|l| l.starts_with(&format!("{fd} ")))
            .unwrap_or_default();
        assert!(line.ends_with(&format!("{}", helper.display())), "{line}");
    }
    drop(leak);
}

/// The file opened is the file run: a helper renamed over after the
/// open (after the checks, for root) does not run.
#[test]
fn the_opened_program_runs_even_if_its_path_is_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("impostor-ran");
    let helper = script(dir.path(), "helper", &format!("echo '{GOOD}'"));
    let program = Program::open(&helper).unwrap();
    let impostor = script(
        dir.path(),
        "impostor",
        &format!("touch '{}'\necho garbage", marker.display()),
    );
    std::fs::rename(&impostor, &helper).unwrap();
    assert_eq!(
        run_program(&program, &assert_request(), Duration::from_secs(10)).unwrap(),
        Response::Present { pin_set: true }
    );
    assert!(!marker.exists());
    // By path, the impostor is what runs now.
    assert!(matches!(
        run(&helper, Duration::from_secs(10)).0,
        Err(HelperFailure::Garbage(_))
    ));
    assert!(marker.exists());
}

/// An ELF program runs from its close-on-exec descriptor (a script
/// could not: its interpreter needs the descriptor open).
#[test]
fn an_elf_runs_from_its_close_on_exec_descriptor() {
    let cat = Program::open(Path::new("/bin/cat")).unwrap();
    assert!(!cat.script);
    // cat echoes the request: it ran, and answered no valid response.
    let result = run_program(&cat, &Request::Probe, Duration::from_secs(10));
    assert!(
        matches!(result, Err(HelperFailure::Garbage(_))),
        "{result:?}"
    );
}

#[test]
fn hang_times_out_and_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleep.pid");
    let helper = script(
        dir.path(),
        "hang",
        &format!("sleep 60 &\necho $! > '{}'\nwait", pidfile.display()),
    );
    let (result, took) = run(&helper, Duration::from_millis(400));
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_millis(400) + Duration::from_secs(1),
        "{took:?}"
    );
    // The helper's own child (sleep) went with it.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "sleep still running: {stat}"
    );
}

#[test]
fn plain_sleep_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "sleep", "sleep 60");
    let (result, took) = run(&helper, Duration::from_millis(300));
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
    assert!(took < Duration::from_millis(1300), "{took:?}");
}

#[test]
fn closed_stdout_then_hang_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "quiet", "exec >&-\nsleep 60");
    let (result, took) = run(&helper, Duration::from_millis(300));
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
    assert!(took < Duration::from_millis(1300), "{took:?}");
}

#[test]
fn partial_answer_then_hang_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "partial", "printf '{\"status\":'\nsleep 60");
    let (result, _) = run(&helper, Duration::from_millis(300));
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
}

#[test]
fn dies() {
    let dir = tempfile::tempdir().unwrap();
    let exit1 = script(dir.path(), "exit1", "exit 1");
    assert_eq!(
        death(run(&exit1, Duration::from_secs(5)).0),
        "exited with status 1"
    );
    let killed = script(dir.path(), "kill9", "kill -9 $$");
    assert_eq!(
        death(run(&killed, Duration::from_secs(5)).0),
        "killed by signal 9"
    );
    let silent = script(dir.path(), "exit0", "exit 0");
    assert_eq!(
        death(run(&silent, Duration::from_secs(5)).0),
        "exited with status 0"
    );
}

#[test]
fn garbage() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "garbage", "echo 'hello, world'");
    assert!(matches!(
        run(&helper, Duration::from_secs(5)).0,
        Err(HelperFailure::Garbage(_))
    ));
    let extra = script(
        dir.path(),
        "extra",
        &format!("echo '{GOOD}'\necho '{GOOD}'"),
    );
    assert!(matches!(
        run(&extra, Duration::from_secs(5)).0,
        Err(HelperFailure::Garbage(_))
    ));
    // Binary noise.
    let binary = script(dir.path(), "binary", "head -c 100 /dev/urandom");
    assert!(matches!(
        run(&binary, Duration::from_secs(5)).0,
        Err(HelperFailure::Garbage(_))
    ));
}

#[test]
fn oversized_output_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    // Endless output: the runner must stop reading and kill it.
    let endless = script(dir.path(), "endless", "yes");
    let (result, took) = run(&endless, Duration::from_secs(10));
    assert!(
        matches!(result, Err(HelperFailure::Garbage(Garbage::TooLarge))),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A valid-looking JSON padded past the limit.
    let padded = script(
        dir.path(),
        "padded",
        &format!(
            "head -c {} /dev/zero | tr '\\0' ' '\necho '{GOOD}'",
            MAX_MESSAGE_BYTES
        ),
    );
    assert!(matches!(
        run(&padded, Duration::from_secs(10)).0,
        Err(HelperFailure::Garbage(_))
    ));
    // Just under the limit is fine.
    let under = script(
        dir.path(),
        "under",
        &format!(
            "head -c {} /dev/zero | tr '\\0' ' '\necho '{GOOD}'",
            MAX_MESSAGE_BYTES - GOOD.len() - 1
        ),
    );
    assert_eq!(
        run(&under, Duration::from_secs(10)).0.unwrap(),
        Response::Present { pin_set: true }
    );
}

#[test]
fn helper_that_ignores_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "deaf", &format!("exec 0<&-\necho '{GOOD}'"));
    assert_eq!(
        run(&helper, Duration::from_secs(5)).0.unwrap(),
        Response::Present { pin_set: true }
    );
    // A large request to a helper that never reads it must not block.
    let big = Request::Assert(AssertRequest {
        rp_id: "pam://host".into(),
        client_data_hash: Bytes(vec![7; 32]),
        allow: (0..600).map(|i| Bytes(vec![i as u8; 64])).collect(),
        user_verification: UserVerification::Required,
        pin: None,
    });
    let sleeper = script(dir.path(), "sleeper", &format!("sleep 0.2\necho '{GOOD}'"));
    let start = Instant::now();
    assert_eq!(
        run_helper(&sleeper, &big, Duration::from_secs(5)).unwrap(),
        Response::Present { pin_set: true }
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn answer_then_linger_is_accepted_and_killed() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(
        dir.path(),
        "linger",
        &format!("echo '{GOOD}'\nexec >&-\nsleep 60"),
    );
    let (result, took) = run(&helper, Duration::from_secs(10));
    assert_eq!(result.unwrap(), Response::Present { pin_set: true });
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn failed_answer_is_a_response() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(
        dir.path(),
        "failed",
        r#"echo '{"status":"failed","error":"no_device","message":"none"}'; exit 3"#,
    );
    assert_eq!(
        run(&helper, Duration::from_secs(5)).0.unwrap(),
        Response::Failed {
            error: HelperError::NoDevice,
            message: "none".into()
        }
    );
}

#[test]
fn missing_or_unexecutable_helper() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(
        run(&missing, Duration::from_secs(5)).0,
        Err(HelperFailure::Spawn(_))
    ));
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    // root may execute nothing without an x bit either.
    assert!(matches!(
        run(&plain, Duration::from_secs(5)).0,
        Err(HelperFailure::Spawn(_))
    ));
    assert!(matches!(
        run(dir.path(), Duration::from_secs(5)).0,
        Err(HelperFailure::Spawn(_))
    ));
}

#[test]
fn zero_timeout_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let helper = script(dir.path(), "sleep", "sleep 60");
    let (result, took) = run(&helper, Duration::ZERO);
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn leaves_no_zombies() {
    let dir = tempfile::tempdir().unwrap();
    // Each helper notes its pid: run from a descriptor, its process
    // name is the descriptor's number, not the file's.
    let noted = |name: &str, body: &str| {
        let pidfile = dir.path().join(format!("{name}.pid"));
        let body = format!("echo $$ > '{}'\n{body}", pidfile.display());
        (script(dir.path(), name, &body), pidfile)
    };
    let helpers = [
        noted("a", &format!("echo '{GOOD}'")),
        noted("b", "exit 1"),
        noted("c", "echo garbage"),
        noted("d", "sleep 60"),
    ];
    for (helper, _) in &helpers {
        let _ = run(helper, Duration::from_millis(200));
    }
    // None of them is left as an unreaped child of this test process.
    let me = std::process::id().to_string();
    for (_, pidfile) in &helpers {
        let pid = std::fs::read_to_string(pidfile).unwrap();
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert!(
            !(fields.get(1) == Some(&me.as_str()) && fields[0] == "Z"),
            "zombie: {stat}"
        );
    }
}

fn gone(pidfile: &Path) -> bool {
    let pid: i32 = std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed and reaped by init soon after; a zombie counts as gone.
    for _ in 0..50 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.contains(") Z") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn children_that_outlive_the_helper_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("straggler.pid");
    let p = pidfile.display();
    // The helper exits, its child keeps stdout open: no EOF, timeout.
    let holder = script(
        dir.path(),
        "holder",
        &format!("sleep 61 &\necho $! > '{p}'\necho garbage-before-exit"),
    );
    let (result, took) = run(&holder, Duration::from_millis(400));
    assert!(matches!(result, Err(HelperFailure::Timeout)), "{result:?}");
    assert!(took < Duration::from_millis(1400), "{took:?}");
    assert!(gone(&pidfile), "the child holding stdout survived");
    // A child that let go of stdout, after a helper that died...
    let dead = script(
        dir.path(),
        "dead",
        &format!("sleep 62 >/dev/null 2>&1 &\necho $! > '{p}'\nexit 1"),
    );
    assert_eq!(
        death(run(&dead, Duration::from_secs(5)).0),
        "exited with status 1"
    );
    assert!(gone(&pidfile), "the child of a dead helper survived");
    // ... or after a good answer.
    let good = script(
        dir.path(),
        "good",
        &format!("sleep 63 >/dev/null 2>&1 &\necho $! > '{p}'\necho '{GOOD}'"),
    );
    assert_eq!(
        run(&good, Duration::from_secs(5)).0.unwrap(),
        Response::Present { pin_set: true }
    );
    assert!(gone(&pidfile), "the child of a good helper survived");
}
