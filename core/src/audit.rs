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
    /// An [`Event`]'s name, as stored (a store may hold names a newer
    /// version wrote).
    pub event: String,
    /// Whom it is about.
    pub user: String,
    /// Who did it: the admin for tapctl, the user for sign-ins.
    pub actor: String,
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub detail: String,
    /// Who asked the daemon, from the socket: `pid=… uid=…`. The service,
    /// rhost and tty above are as that client reported them.
    pub peer: String,
    /// The host that wrote it, as the store keeps it (a fleet store names
    /// each; a SQLite store is one host's and gives that host's name). A
    /// store fills it in itself when appending: what is set here is ignored.
    pub host: String,
}

/// Every event pam_tap records: the one list a log reader needs. The
/// names are stable (they are in stores and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A right pass signed someone in (a one-time pass is now used).
    PassSignIn,
    /// A pass sign-in failed: wrong pass (counted), or the right pass when
    /// it can no longer be used.
    PassSignInFailed,
    /// The pass reached `max_failures`.
    PassLocked,
    PassIssued,
    /// An issue replaced the user's earlier pass.
    PassReplaced,
    PassRevoked,
    KeySignIn,
    /// A key's answer was refused, or the helper failed.
    KeySignInFailed,
    /// A key's counter did not increase: a possible clone.
    KeyCounterRegressed,
    /// Two sign-ins raced with one counter value.
    KeyCounterRaced,
    KeyEnrolled,
    /// An enrollment was not allowed (no window, too many keys, policy).
    KeyEnrollRefused,
    /// An allowed enrollment did not complete (helper, verification).
    KeyEnrollFailed,
    KeyRemoved,
    SshKeyAdded,
    /// An SSH key was refused at enrollment (window, policy, attestation).
    SshKeyRefused,
    SshKeyRemoved,
    /// sshd accepted an enrolled SSH key (reported by the PAM session).
    SshKeySignIn,
}

impl Event {
    pub const ALL: [Event; 18] = [
        Event::PassSignIn,
        Event::PassSignInFailed,
        Event::PassLocked,
        Event::PassIssued,
        Event::PassReplaced,
        Event::PassRevoked,
        Event::KeySignIn,
        Event::KeySignInFailed,
        Event::KeyCounterRegressed,
        Event::KeyCounterRaced,
        Event::KeyEnrolled,
        Event::KeyEnrollRefused,
        Event::KeyEnrollFailed,
        Event::KeyRemoved,
        Event::SshKeyAdded,
        Event::SshKeyRefused,
        Event::SshKeyRemoved,
        Event::SshKeySignIn,
    ];

    /// The stored and logged name.
    pub fn name(self) -> &'static str {
        match self {
            Event::PassSignIn => "signin.pass.success",
            Event::PassSignInFailed => "signin.pass.failure",
            Event::PassLocked => "pass.locked",
            Event::PassIssued => "pass.issued",
            Event::PassReplaced => "pass.replaced",
            Event::PassRevoked => "pass.revoked",
            Event::KeySignIn => "signin.key.success",
            Event::KeySignInFailed => "signin.key.failure",
            Event::KeyCounterRegressed => "key.counter_regressed",
            Event::KeyCounterRaced => "key.counter_raced",
            Event::KeyEnrolled => "key.enrolled",
            Event::KeyEnrollRefused => "key.enroll_refused",
            Event::KeyEnrollFailed => "key.enroll_failed",
            Event::KeyRemoved => "key.removed",
            Event::SshKeyAdded => "ssh_key.added",
            Event::SshKeyRefused => "ssh_key.refused",
            Event::SshKeyRemoved => "ssh_key.removed",
            Event::SshKeySignIn => "signin.ssh_key.success",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AuditRecord {
    pub fn new(time: Timestamp, event: Event, user: &str, actor: &str) -> Self {
        AuditRecord {
            time,
            event: event.name().into(),
            user: user.into(),
            actor: actor.into(),
            ..AuditRecord::default()
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// One log line: `event user=U actor=A rhost=H tty=T detail=D`, each
    /// value as [`log_field`] writes it, so no value (a key label in the
    /// detail, a remote host) can forge another field.
    pub fn log_line(&self) -> String {
        let mut line = format!("{} {}", self.event, log_field("user", &self.user));
        for (key, value) in [
            ("actor", &self.actor),
            ("rhost", &self.rhost),
            ("tty", &self.tty),
            ("peer", &self.peer),
        ] {
            let redundant = value.is_empty() || (key == "actor" && value == &self.user);
            if !redundant {
                line.push(' ');
                line.push_str(&log_field(key, value));
            }
        }
        if !self.detail.is_empty() {
            line.push(' ');
            line.push_str(&log_field("detail", &self.detail));
        }
        line
    }
}

/// `key=value` for a syslog line. A value of letters, digits and
/// `.-_:@/+,%~[]` only stands bare; any other value (empty, spaces, `=`,
/// quotes, control characters...) is written in double quotes, with `"` and
/// `\` escaped by a backslash and control characters as `\xNN` (see
/// [`escape`]). So a user name or remote host cannot end its field early
/// and make up another one (`rhost=evil user=root` logs as
/// `rhost="evil user=root"`).
pub fn log_field(key: &str, value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:@/+,%~[]".contains(c));
    if bare {
        format!("{key}={value}")
    } else {
        format!("{key}=\"{}\"", escape(value))
    }
}

/// Text made safe for a quoted log value: `\\` and `"` get a backslash,
/// and what [`escape_controls`] escapes is escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
            out.push(c);
        } else {
            push_visible(&mut out, c);
        }
    }
    out
}

/// Text made safe for a terminal: control characters become `\xNN` (C1
/// ones too, so no escape sequence reaches the terminal), and the invisible
/// characters that reorder or hide text (bidirectional overrides,
/// zero-width, line separators) become `\u{NNNN}`.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    out
}

fn push_visible(out: &mut String, c: char) {
    match c {
        c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
        '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}' => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
        c => out.push(c),
    }
}

/// Free text beside the fields of a log line (pam_tap's message, which may
/// quote a user's key label): `=` is written `\x3d` and control characters
/// `?`, so that only the fields hold a `key=value`.
pub fn free_text(text: &str) -> String {
    printable(text).replace('=', "\\x3d")
}

/// Control characters in free text must not forge log lines.
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
        crate::sys::syslog(priority, &c_line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_is_one_line_and_names_the_parties() {
        let mut record = AuditRecord::new(5, Event::PassSignInFailed, "alice", "alice")
            .detail("wrong pass, 2 of 5");
        record.rhost = "10.0.0.1\nFAKE LINE".into();
        record.tty = "ssh".into();
        let line = record.log_line();
        assert_eq!(
            line,
            r#"signin.pass.failure user=alice rhost="10.0.0.1\x0aFAKE LINE" tty=ssh detail="wrong pass, 2 of 5""#
        );
    }

    #[test]
    fn values_cannot_forge_fields() {
        let mut record = AuditRecord::new(5, Event::PassSignIn, "bob rhost=1.2.3.4", "x");
        record.rhost = "evil user=root".into();
        record.tty = "\"tty=pts/9\\\"\x1b[2J".into();
        assert_eq!(
            record.log_line(),
            r#"signin.pass.success user="bob rhost=1.2.3.4" actor=x rhost="evil user=root" tty="\"tty=pts/9\\\"\x1b[2J""#
        );
        // Parsed back the way a log reader would, every field is what was
        // given and nothing else.
        // A key label in the detail stays inside it.
        let enrolled = AuditRecord::new(5, Event::KeyEnrolled, "bob", "bob")
            .detail("key x\" rhost=1.2.3.4 (AbC)");
        assert_eq!(
            enrolled.log_line(),
            r#"key.enrolled user=bob detail="key x\" rhost=1.2.3.4 (AbC)""#
        );
        assert_eq!(free_text("a=b\nc"), r"a\x3db?c");
        assert_eq!(log_field("rhost", "::1"), "rhost=::1");
        assert_eq!(log_field("rhost", ""), r#"rhost="""#);
        assert_eq!(log_field("user", "a=b"), r#"user="a=b""#);
        assert_eq!(escape("\u{202e}x\u{85}"), r"\u{202e}x\x85");
        assert_eq!(escape_controls("a \"b\" \\ \x1b[2J"), r#"a "b" \ \x1b[2J"#);
    }
}
