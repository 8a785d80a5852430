//! A tapd started by the bench: one per policy, each on its own socket in
//! the bench's private directory, in the foreground (`--socket`), stopped
//! with SIGTERM at the end. Optionally under a wrapper (valgrind).

use crate::fail;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Tapd {
    child: Child,
    pub socket: PathBuf,
    log: PathBuf,
}

/// CPU time of a process's live threads, from each one's
/// /proc/PID/task/TID/schedstat (nanoseconds on a CPU, exact, where
/// /proc/PID/stat counts 10 ms ticks). A thread that has exited is not
/// counted: the bench's logins come one at a time, served by threads that
/// stay (`tapd::threads::SPARE`).
pub fn process_cpu(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| fail(&format!("/proc/{pid}/task: {e}")));
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Peak resident memory of a process, from /proc/PID/status.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub peak_kib: u64,
}

impl Tapd {
    /// Starts `tapd --policy POLICY --socket SOCKET` (behind `wrapper`, if
    /// any) and waits until it says it serves.
    pub fn start(
        binary: &Path,
        policy: &Path,
        socket: &Path,
        wrapper: &[OsString],
        env: &[(String, String)],
        ready_within: Duration,
    ) -> Tapd {
        let log = socket.with_extension("log");
        let stderr = std::fs::File::create(&log)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", log.display())));
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--policy")
            .arg(policy)
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("{}: {e}", binary.display())));
        crate::cleanup::daemon_started(child.id());
        let mut tapd = Tapd {
            child,
            socket: socket.to_path_buf(),
            log,
        };
        tapd.wait_ready(ready_within);
        tapd
    }

    fn wait_ready(&mut self, within: Duration) {
        let give_up = Instant::now() + within;
        loop {
            // Its own line, so the bench makes no stray connection to ask.
            if self.log_text().contains("tapd: serving on") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                fail(&format!(
                    "tapd on {} exited ({status}) before serving:\n{}",
                    self.socket.display(),
                    self.log_text()
                ));
            }
            if Instant::now() > give_up {
                fail(&format!(
                    "tapd on {} not serving after {} s:\n{}",
                    self.socket.display(),
                    within.as_secs(),
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How much the daemon has logged so far (a mark for `log_since`).
    pub fn log_len(&self) -> usize {
        self.log_text().len()
    }

    /// Distinct warning and error lines logged since `mark`, each with its
    /// count (numbers masked, so one cause is one line), at most `max`.
    pub fn complaints_since(&self, mark: usize, max: usize) -> Vec<String> {
        let text = self.log_text();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for line in text.get(mark..).unwrap_or("").lines() {
            let lower = line.to_ascii_lowercase();
            if !["busy", "refus", "fail", "error", "timed out", "waited"]
                .iter()
                .any(|w| lower.contains(w))
            {
                continue;
            }
            let masked: String = line
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            match seen.iter_mut().find(|(l, _)| *l == masked) {
                Some((_, n)) => *n += 1,
                None => seen.push((masked, 1)),
            }
        }
        seen.into_iter()
            .take(max)
            .map(|(l, n)| format!("{n} x {l}"))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the daemon's threads have had so far.
    pub fn cpu(&self) -> Duration {
        process_cpu(self.pid())
    }

    /// VmHWM of the daemon so far.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| fail(&format!("tapd's /proc status: {e}")));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Memory {
            peak_kib: field("VmHWM:"),
        }
    }

    /// SIGTERM, then waits (tapd lets requests in flight finish first).
    pub fn stop(mut self, within: Duration) -> ExitStatus {
        self.terminate();
        let give_up = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    crate::cleanup::daemon_stopped(self.child.id());
                    return status;
                }
                Ok(None) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    fail(&format!(
                        "tapd on {} did not stop on SIGTERM within {} s",
                        self.socket.display(),
                        within.as_secs()
                    ));
                }
            }
        }
    }

    fn terminate(&self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

impl Drop for Tapd {
    fn drop(&mut self) {
        // Stopped already (stop consumed it) or the bench is failing: never
        // leave a daemon behind.
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
            let give_up = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < give_up {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        crate::cleanup::daemon_stopped(self.child.id());
    }
}
