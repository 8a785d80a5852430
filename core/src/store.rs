//! The store's contract: what sign-in and tapctl ask of a backend. The
//! backends themselves (SQLite today) live in the `tap-store` crate, which
//! depends on this one; core never names a backend.
//!
//! Every backend must honour, for each method below:
//!
//! * **Atomic audit.** A change and the audit record(s) it carries commit
//!   together, or neither does; a conditional change that touches nothing
//!   writes no record.
//! * **Conditional updates.** Every change re-checks its conditions at the
//!   moment it writes (not from an earlier read), so concurrent callers in
//!   other processes see exactly one winner.
//! * **Durability.** A change that guards access (issuing, revoking,
//!   consuming a one-time pass, counting a failure, locking, a key's counter,
//!   adding or removing a key) is durable when the call returns. Only a
//!   multi-use pass's success may be merely atomic (see `record_success`).

use crate::audit::AuditRecord;
use crate::hashing::PassProof;
use crate::keys::credential::KeyCredential;
use crate::pass::PassRecord;
use crate::ssh::record::SshKeyRecord;
use crate::timefmt::Timestamp;

/// A store's failure: what kind it is, for code that decides by it, and
/// the message a person reads (the whole of what `Display` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    detail: String,
}

/// What kind of failure a `StoreError` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database did not answer, or the session to it was lost.
    Unreachable,
    /// The database answered and refused (a right, a constraint, a
    /// password; any SQLSTATE), or a conditional change kept missing.
    Refused,
    /// A file's owner, mode or type is not one the store may trust.
    Untrusted,
    /// The schema is newer, older or missing, or a migration failed.
    Schema,
    /// The settings are unusable: a URL, a password_file, TLS roots.
    Config,
    /// A local file or the runtime failed (SQLite's errors included).
    Io,
    /// A broken invariant: a poisoned lock, a store that should be open.
    Internal,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, detail: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            detail: detail.into(),
        }
    }

    pub fn unreachable(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Unreachable, detail)
    }

    pub fn refused(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Refused, detail)
    }

    pub fn untrusted(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Untrusted, detail)
    }

    pub fn schema(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Schema, detail)
    }

    pub fn config(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Config, detail)
    }

    pub fn io(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Io, detail)
    }

    pub fn internal(detail: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Internal, detail)
    }

    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message, as `Display` prints it.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for StoreError {}

type Result<T> = std::result::Result<T, StoreError>;

/// Outcome of adding a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddKey {
    Added,
    /// The user already has the policy's `max_keys`.
    TooMany,
    /// This credential is already enrolled for the user.
    Duplicate,
    /// The store found the user's enrollment window closed (a backend that
    /// re-checks it, by its own clock, for a caller that is no
    /// administrator: PostgreSQL's host role).
    WindowClosed,
}

/// Outcome of counting a wrong pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: u32,
    /// This failure reached the limit and locked the pass.
    pub locked_now: bool,
}

/// Which audit records to read: every set field must match exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter<'a> {
    /// Records about this user.
    pub user: Option<&'a str>,
    /// Records this host wrote.
    pub host: Option<&'a str>,
}

/// Passes, security keys and the audit trail, as one backend keeps them.
pub trait Store {
    /// The user's pass, whatever its state; None when there is none.
    fn pass(&self, user: &str) -> Result<Option<PassRecord>>;

    /// Every pass, ordered by user.
    fn passes(&self) -> Result<Vec<PassRecord>>;

    /// Stores a new pass for its user, replacing any old one (its use,
    /// failure, lock and revocation state start afresh). Returns the old one.
    /// Durable.
    fn put_pass(&mut self, pass: &PassRecord, audit: &AuditRecord) -> Result<Option<PassRecord>>;

    /// Marks the user's pass revoked at `now`. False when there was nothing
    /// to revoke (no pass, or revoked already). Durable.
    fn revoke(&mut self, user: &str, now: Timestamp, audit: &AuditRecord) -> Result<bool>;

    /// Records a right pass: sets `last_used` and `enroll_until`, and
    /// `used_at` for a one-time pass. The change re-checks, at write time,
    /// that this very pass (user, id, one_time) is still unrevoked, unlocked,
    /// within its validity at `now`, and for a one-time pass unused, so that
    /// of many concurrent sign-ins with one one-time pass exactly one gets
    /// `true`; the others get `false` and change nothing.
    ///
    /// `proof` is what checking the pass gave. A backend whose readers see
    /// only a verifier of the hash (PostgreSQL's host role) changes nothing
    /// unless it is the pass's hash field; SQLite, read only by the daemon
    /// that owns it, has no one to prove it to.
    ///
    /// Consuming a one-time pass is durable before this returns. A multi-use
    /// pass changes no state that guards access (only `last_used`, the
    /// enrollment window and the audit row, which syslog also carries), so
    /// that change need only be atomic: a power cut may lose it, never half
    /// of it.
    fn record_success(
        &mut self,
        pass: &PassRecord,
        proof: &PassProof,
        now: Timestamp,
        enroll_until: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool>;

    /// Counts a wrong pass against pass `id` of `user`, and locks it at `now`
    /// when the count reaches `max_failures` (a lock, once set, keeps its
    /// time). `audit` makes the records from the count this very update
    /// produced (concurrent failures each see their own, so exactly one sees
    /// `locked_now`), and they commit with it. A pass that is gone or was
    /// replaced counts nothing: `failures` 0, and `audit` still runs.
    /// Durable.
    fn record_failure(
        &mut self,
        user: &str,
        id: i64,
        now: Timestamp,
        max_failures: u32,
        audit: &dyn Fn(FailureCount) -> Vec<AuditRecord>,
    ) -> Result<FailureCount>;

    /// Appends one audit record. Durable.
    fn append_audit(&mut self, audit: &AuditRecord) -> Result<()>;

    /// Audit records, oldest first: the newest `limit` of them, of one user
    /// or of all. Each record carries its sequence number, which only grows.
    fn audit(&self, user: Option<&str>, limit: u32) -> Result<Vec<AuditRecord>> {
        self.audit_where(AuditFilter { user, host: None }, limit)
    }

    /// Audit records matching `filter`, oldest first: the newest `limit` of
    /// those (the filter applies before the limit).
    fn audit_where(&self, filter: AuditFilter<'_>, limit: u32) -> Result<Vec<AuditRecord>>;

    /// Whether this host already wrote a record about `user` whose detail
    /// ends with `detail_end`. Reconciling an offline copy asks it before it
    /// sends a record, because an answer lost after the database committed
    /// must not send that record twice (and make its key look cloned).
    fn has_own_record(&self, user: &str, detail_end: &str) -> Result<bool>;

    /// The user's keys, oldest first (ties by credential id).
    fn keys(&self, user: &str) -> Result<Vec<KeyCredential>>;

    /// The user's keys and pass, as a sign-in's plan reads them. A backend
    /// across a network reads both in one round trip.
    fn keys_and_pass(&self, user: &str) -> Result<(Vec<KeyCredential>, Option<PassRecord>)> {
        Ok((self.keys(user)?, self.pass(user)?))
    }

    /// Adds a key unless the user already has `max_keys` keys or this
    /// credential; the count and the insert are one atomic step. The audit
    /// record is written only when the key is added. Durable.
    fn add_key(
        &mut self,
        key: &KeyCredential,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey>;

    /// Removes one key. False when the user has no such key. Durable.
    fn remove_key(&mut self, user: &str, credential_id: &[u8], audit: &AuditRecord)
        -> Result<bool>;

    /// Records a verified key sign-in: sets the counter to `new_count` and
    /// `last_used` to `now`, only if the stored counter still equals
    /// `key.sign_count`, the value the verifier checked against. So two
    /// sign-ins racing with one counter value (a cloned key) cannot both get
    /// `true`. Durable: the counter guards against clones.
    fn record_key_use(
        &mut self,
        key: &KeyCredential,
        new_count: u32,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool>;

    /// The user's SSH keys, oldest first (ties by fingerprint).
    fn ssh_keys(&self, user: &str) -> Result<Vec<SshKeyRecord>>;

    /// Adds an SSH key unless the user already has `max_keys` SSH keys or
    /// the key is enrolled already, for anyone (one key, one user); the
    /// count and the insert are one atomic step. The audit record is
    /// written only when the key is added. Durable.
    fn add_ssh_key(
        &mut self,
        key: &SshKeyRecord,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey>;

    /// Removes one of the user's SSH keys. False when they have no such
    /// key. Durable.
    fn remove_ssh_key(
        &mut self,
        user: &str,
        fingerprint: &str,
        audit: &AuditRecord,
    ) -> Result<bool>;

    /// Records that sshd accepted the user's key: sets `last_used`. False
    /// (and no record) when the user has no such key. Atomic: it guards
    /// nothing, like a multi-use pass's success.
    fn record_ssh_key_use(
        &mut self,
        user: &str,
        fingerprint: &str,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool>;
}
