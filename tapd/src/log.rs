//! tapd's log: syslog, facility authpriv, and in the foreground (not
//! socket-activated) stderr as well.

use std::sync::atomic::{AtomicBool, Ordering};
use tap_core::audit::{syslog, Severity};

static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Whether lines also go to stderr (set once at start).
pub fn mirror_to_stderr(on: bool) {
    TO_STDERR.store(on, Ordering::Relaxed);
}

pub fn log(severity: Severity, message: &str) {
    syslog(severity, "tapd", message);
    if TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("tapd: {}", tap_core::audit::escape_controls(message));
    }
}

pub fn error(message: &str) {
    log(Severity::Error, message);
}

pub fn warning(message: &str) {
    log(Severity::Warning, message);
}

pub fn notice(message: &str) {
    log(Severity::Notice, message);
}
