//! What a failing bench must not leave behind: its daemons and its private
//! directory. `fail` exits without running destructors, so both are
//! registered here as well.

use std::path::PathBuf;
use std::sync::Mutex;

static DAEMONS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRECTORY: Mutex<Option<PathBuf>> = Mutex::new(None);

pub fn daemon_started(pid: u32) {
    if let Ok(mut pids) = DAEMONS.lock() {
        pids.push(pid);
    }
}

pub fn daemon_stopped(pid: u32) {
    if let Ok(mut pids) = DAEMONS.lock() {
        pids.retain(|p| *p != pid);
    }
}

pub fn directory(dir: Option<PathBuf>) {
    if let Ok(mut d) = DIRECTORY.lock() {
        *d = dir;
    }
}

/// Kills the daemons still running (our children only, by pid) and
/// removes the directory.
pub fn now() {
    if let Ok(pids) = DAEMONS.lock() {
        for pid in pids.iter() {
            if let Ok(pid) = libc::pid_t::try_from(*pid) {
                // SAFETY: kill only signals a child this process started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    if let Ok(dir) = DIRECTORY.lock() {
        if let Some(dir) = dir.as_ref() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
