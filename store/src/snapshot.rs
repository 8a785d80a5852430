//! A store's whole content at one moment: what `tapctl store migrate`
//! carries from a host's SQLite store into the fleet's PostgreSQL one.

use tap_core::audit::AuditRecord;
use tap_core::keys::credential::KeyCredential;
use tap_core::pass::PassRecord;
use tap_core::ssh::record::SshKeyRecord;

/// Every row, each table in a fixed order (audit oldest first).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// With their hashes and all state (uses, failures, locks, revocations,
    /// enrollment windows).
    pub passes: Vec<PassRecord>,
    /// With their signature counters.
    pub keys: Vec<KeyCredential>,
    pub ssh_keys: Vec<SshKeyRecord>,
    /// In sequence order; `seq` is the source's and is not carried over.
    pub audit: Vec<AuditRecord>,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub passes: usize,
    pub keys: usize,
    pub ssh_keys: usize,
    pub audit: usize,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passes, {} security keys, {} SSH keys, {} audit records",
            self.passes, self.keys, self.ssh_keys, self.audit
        )
    }
}
