//! The audit records and syslog lines of tapctl's changes, as tapctl wrote
//! them before the daemon: service `tapctl`, actor the peer's user name.

use super::Ask;
use tap_core::audit::{syslog, AuditRecord, Event, Severity};
use tap_core::store::StoreError;
use tap_protocol::{ErrorKind, Refusal};

/// A record of `event` about `user`, also sent to syslog, with the peer's
/// pid and uid (from the socket) in its `peer` field and the log prefix.
pub fn record(ask: &Ask<'_, '_>, event: Event, user: &str, detail: String) -> AuditRecord {
    let mut audit = AuditRecord::new(ask.ctx.now, event, user, &ask.caller.name).detail(detail);
    audit.service = "tapctl".into();
    audit.peer = ask.ctx.peer.describe();
    // The line's `peer` field names the asking process and its uid.
    syslog(Severity::Notice, "tapctl", &audit.log_line());
    audit
}

/// The store failed: say so, and what it said.
pub fn store_failed(e: StoreError) -> Refusal {
    Refusal::new(ErrorKind::Store, e.to_string())
}
