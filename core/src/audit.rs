//! Audit records: one per sign-in, issue, revoke and lock, kept in the store
//! and sent to syslog `authpriv`. They never carry a pass.

use crate::timefmt::Timestamp;
use serde::Serialize;
use std::ffi::CString;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Assigned by the store; 0 before it is stored.
    pub seq: i64,
    pub time: Timestamp,
    /// Dotted name, e.g. `signin.pass.success`, `pass.issued`, `pass.locked`.
    pub event: String,
    /// Whom it is about.
    pub user: String,
    /// Who did it: the admin for tapctl, the user for sign-ins.
    pub actor: String,
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub detail: String,
}

impl AuditRecord {
    pub fn new(time: Timestamp, event: &str, user: &str, actor: &str) -> Self {
        AuditRecord {
            time,
            event: event.into(),
            user: user.into(),
            actor: actor.into(),
            ..AuditRecord::default()
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// One log line: `event user=... actor=... rhost=... tty=... detail`.
    pub fn log_line(&self) -> String {
        let mut line = format!("{} user={}", self.event, printable(&self.user));
        for (key, value) in [
            ("actor", &self.actor),
            ("rhost", &self.rhost),
            ("tty", &self.tty),
        ] {
            let redundant = value.is_empty() || (key == "actor" && value == &self.user);
            if !redundant {
                line.push_str(&format!(" {key}={}", printable(value)));
            }
        }
        if !self.detail.is_empty() {
            line.push_str(": ");
            line.push_str(&printable(&self.detail));
        }
        line
    }
}

/// Control characters from a remote host name or user name must not forge
/// log lines.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Writes one line to syslog, facility `authpriv`, with the given prefix
/// (for the module `pam_tap(sshd:auth)`, as pam_syslog writes). No openlog:
/// the host process keeps its own ident.
pub fn syslog(severity: Severity, prefix: &str, message: &str) {
    let priority = libc::LOG_AUTHPRIV
        | match severity {
            Severity::Error => libc::LOG_ERR,
            Severity::Warning => libc::LOG_WARNING,
            Severity::Notice => libc::LOG_NOTICE,
            Severity::Info => libc::LOG_INFO,
            Severity::Debug => libc::LOG_DEBUG,
        };
    let line = format!("{prefix}: {}", printable(message));
    if let Ok(c_line) = CString::new(line) {
        // SAFETY: a constant format string and one NUL-terminated argument.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), c_line.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_is_one_line_and_names_the_parties() {
        let mut record = AuditRecord::new(5, "signin.pass.failure", "alice", "alice")
            .detail("wrong pass, 2 of 5");
        record.rhost = "10.0.0.1\nFAKE LINE".into();
        record.tty = "ssh".into();
        let line = record.log_line();
        assert_eq!(
            line,
            "signin.pass.failure user=alice rhost=10.0.0.1?FAKE LINE tty=ssh: wrong pass, 2 of 5"
        );
    }
}
