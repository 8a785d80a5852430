//! The PostgreSQL backend: one store for a fleet of hosts.
//!
//! **Client: `tokio-postgres`, driven on the caller's thread, with TLS by
//! `postgres-openssl`.** It is the maintained pure-Rust PostgreSQL client
//! (the `postgres` crate is its blocking wrapper). We use it directly, on a
//! current-thread runtime that runs only while a call does (no thread is
//! left running; only tapd connects, so fork-safety is not needed), because
//! the blocking wrapper bounds only the TCP connect: a server that accepts
//! and then stays silent would hang it forever. Here the whole connect
//! (TCP, TLS, authentication, the read-write check) is bounded by
//! `connect_timeout` for each server, and every call by `statement_timeout`
//! plus `connect_timeout`, so a cut network never hangs a login.
//!
//! From the libpq-style URL, tokio-postgres gives us several hosts tried in
//! order, `target_session_attrs=read-write` (a standby is skipped), and
//! `options`, which carries `-c statement_timeout=…` to the server. It knows
//! only sslmode disable/prefer/require, none of which checks the server's
//! name, so `url.rs` reads the URL itself: `sslmode=verify-full` (our
//! default) becomes "TLS required" plus an OpenSSL connector that verifies
//! the chain against the CA file (`ca_file`, or `sslrootcert`) and the
//! certificate's name against the host, through OpenSSL's hostname check
//! (postgres-openssl enables it on every connection). Weaker modes are
//! refused; `disable` only for Unix-socket hosts. OpenSSL rather than
//! rustls: it is the system's library, patched by the distribution, and
//! its refusals say why ("certificate has expired", "hostname mismatch").
//!
//! Files: `url` (reading the URL), `secret` (the password file), `link`
//! (connecting and driving calls), `migrations` (schema), one per table,
//! `privileges` (warnings about the host role's rights), `roles.sql`, and
//! `roster` (who has a pass or key: the one session that keeps a thread of
//! its own, tapd's listening session).

mod audit;
mod import;
mod keys;
mod link;
mod migrations;
mod passes;
mod privileges;
mod roster;
mod secret;
mod ssh_keys;
mod url;

pub use privileges::StoreWarning;
pub use roster::{Roster, RosterEvent};

use link::{Dialer, Link, Outcome, Query, Session};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tap_core::audit::AuditRecord;
use tap_core::hashing::PassProof;
use tap_core::keys::credential::KeyCredential;
use tap_core::pass::PassRecord;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::{AddKey, AuditFilter, FailureCount, Store, StoreError};
use tap_core::timefmt::Timestamp;
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, StoreError>;

/// The SQL that creates the two roles and the schema; run by a superuser.
pub const ROLES_SQL: &str = include_str!("roles.sql");

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: usize = migrations::MIGRATIONS.len();

/// How to reach the database (the policy's `[store]` settings).
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// libpq-style: `postgresql://ROLE@db1,db2/pam_tap?target_session_attrs=read-write`.
    pub url: String,
    /// The role's password: a regular file, this process's alone.
    pub password_file: Option<PathBuf>,
    /// The CA that signed the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// For each server: TCP, TLS, authentication together.
    pub connect_timeout: Duration,
    /// The server ends a statement that runs longer.
    pub statement_timeout: Duration,
}

/// How to reach the database `config` names, and its name: the URL read,
/// the password file read (unless `given`). Sessions call themselves
/// `WHO@HOST` (unless the URL names them): `pam_tap` for a store's,
/// `pam_tap-roster` for the roster's.
fn dialer(
    config: &PostgresConfig,
    given: Option<Zeroizing<String>>,
    who: &str,
) -> Result<(Dialer, String)> {
    let target = url::parse(&config.url, config.ca_file.as_ref())?;
    let password = match given {
        Some(password) => Some(password),
        None => config
            .password_file
            .as_deref()
            .map(secret::read_password_file)
            .transpose()?,
    };
    let host_name = crate::sys::host_name()
        .map_err(|e| StoreError::io(format!("postgresql: this host's name: {e}")))?;
    let database = target.dbname.clone();
    let dialer = Dialer::new(
        target,
        password,
        config.connect_timeout,
        config.statement_timeout,
        format!("{who}@{host_name}"),
    )?;
    Ok((dialer, database))
}

/// core's `Store` over one PostgreSQL session, reconnecting when it is lost.
pub struct PostgresStore {
    runtime: tokio::runtime::Runtime,
    dialer: Dialer,
    /// None after a lost session, until the next call dials again.
    link: RefCell<Option<Link>>,
    database: String,
    host_name: String,
    warnings: Vec<StoreWarning>,
    /// The daemon's roster, when it keeps one (`use_roster`).
    roster: Option<Arc<Roster>>,
}

impl PostgresStore {
    /// Connects and checks the schema is the one this build knows.
    pub fn connect(config: &PostgresConfig) -> Result<PostgresStore> {
        let store = PostgresStore::open(config, None)?;
        let version = store.schema_version()?;
        store.check_version(version)?;
        store.finish()
    }

    /// Connects as pam_tap_admin and brings the schema up to date first
    /// (`tapctl init`, `tapd --migrate`). Refuses a newer schema.
    pub fn connect_and_migrate(config: &PostgresConfig) -> Result<PostgresStore> {
        PostgresStore::migrated(config, None)
    }

    /// `connect_and_migrate` with the role's password given, not read from
    /// `password_file`: `tapd --migrate-to` runs as the store's owner and
    /// takes the admin password on stdin from root's tapctl, so the admin
    /// password file stays root's alone.
    pub fn connect_and_migrate_with_password(
        config: &PostgresConfig,
        password: Zeroizing<String>,
    ) -> Result<PostgresStore> {
        PostgresStore::migrated(config, Some(password))
    }

    fn migrated(
        config: &PostgresConfig,
        password: Option<Zeroizing<String>>,
    ) -> Result<PostgresStore> {
        let store = PostgresStore::open(config, password)?;
        let version = store.migrate()?;
        store.check_version(version)?;
        store.finish()
    }

    fn open(config: &PostgresConfig, given: Option<Zeroizing<String>>) -> Result<PostgresStore> {
        let (dialer, database) = dialer(config, given, "pam_tap")?;
        let host_name = crate::sys::host_name()
            .map_err(|e| StoreError::io(format!("postgresql: this host's name: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            // A host name's look-up borrows a blocking thread: let it go at once.
            .thread_keep_alive(Duration::from_millis(100))
            .build()
            .map_err(|e| StoreError::io(format!("postgresql: runtime: {e}")))?;
        let link = dialer.dial(&runtime)?;
        Ok(PostgresStore {
            runtime,
            dialer,
            link: RefCell::new(Some(link)),
            database,
            host_name,
            warnings: Vec::new(),
            roster: None,
        })
    }

    /// Answers a sign-in's plan for a user the daemon's roster knows has
    /// neither pass nor key without asking the database (`roster.rs`).
    pub fn use_roster(&mut self, roster: Arc<Roster>) {
        self.roster = Some(roster);
    }

    /// This store's session was lost: the roster's may be too.
    fn distrust_roster(&self) {
        if let Some(roster) = &self.roster {
            roster.distrust();
        }
    }

    /// A pass or key this store just wrote for `user`.
    fn noted(&self, user: &str) {
        if let Some(roster) = &self.roster {
            roster.note(user);
        }
    }

    fn finish(mut self) -> Result<PostgresStore> {
        self.warnings = privileges::check(&self)?;
        Ok(self)
    }

    /// What the connect found wrong but not fatal (a host role with more
    /// rights than it should have, ...). The caller logs each loudly.
    pub fn warnings(&self) -> &[StoreWarning] {
        &self.warnings
    }

    /// The name every audit record this store writes carries as its host.
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// Which server of the URL this session is on, as `host:port`.
    pub fn server(&self) -> Option<String> {
        self.link.borrow().as_ref().map(|l| l.server.clone())
    }

    /// Whether the database answers now, each step within
    /// `connect_timeout`: the session answers a round trip, or a new one
    /// can be made. tapd asks before a step `offline_keys` could serve, so
    /// that a database gone away or gone silent is found in bounded time,
    /// before the step, not by a step's own call failing part way (a
    /// session's end is only seen when it is used: a round trip, not a look
    /// at the socket).
    pub fn reachable(&self) -> Result<()> {
        self.reachable_within(None)
    }

    /// `reachable`, the round trip and the new session together within
    /// `limit` when one is given (a caller that cannot wait a connect
    /// timeout: sshd's `authorized-keys`).
    pub fn reachable_within(&self, limit: Option<Duration>) -> Result<()> {
        let started = std::time::Instant::now();
        let mut slot = self.link.borrow_mut();
        if let Some(link) = slot.as_mut() {
            let (session, connection) = link.parts();
            let probe: Query<'_, ()> = Box::pin(async move { session.batch_execute("").await });
            let deadline = limit.map_or(self.dialer.connect_timeout(), |limit| {
                limit.min(self.dialer.connect_timeout())
            });
            if let Outcome::Done(()) = Link::run(&self.runtime, connection, probe, deadline) {
                return Ok(());
            }
        }
        *slot = None;
        let left = limit.map(|limit| limit.saturating_sub(started.elapsed()));
        match self.dialer.dial_within(&self.runtime, left) {
            Ok(link) => {
                *slot = Some(link);
                Ok(())
            }
            Err(e) => {
                self.distrust_roster();
                Err(e)
            }
        }
    }

    /// Runs one call: dials first when the session was lost; a lost session
    /// is dropped, a refused statement is not. A session kept from an
    /// earlier call may have died meanwhile (a server restart or failover;
    /// the connection only reads while a call runs, so that shows only when
    /// it is used): then the call runs once more on a fresh session. The
    /// server that died ran nothing of it; if the session broke in the
    /// middle of a change instead, the repeat re-checks its conditions like
    /// any call, so it can only refuse (a one-time pass already used), not
    /// let in twice.
    fn call_raw<'a, T>(&self, query: impl Fn(Session) -> Query<'a, T>) -> Outcome<T> {
        let reused = self.link.borrow().is_some();
        match self.call_once(&query) {
            Outcome::Lost(_) if reused => self.call_once(&query),
            outcome => outcome,
        }
    }

    fn call_once<'a, T>(&self, query: &impl Fn(Session) -> Query<'a, T>) -> Outcome<T> {
        let mut slot = self.link.borrow_mut();
        if let Some(link) = slot.as_mut() {
            if !link.alive(&self.runtime) {
                *slot = None;
            }
        }
        if slot.is_none() {
            match self.dialer.dial(&self.runtime) {
                Ok(link) => *slot = Some(link),
                Err(e) => {
                    self.distrust_roster();
                    return Outcome::Lost(e);
                }
            }
        }
        let Some(link) = slot.as_mut() else {
            return Outcome::Lost(StoreError::internal("no session"));
        };
        let (client, connection) = link.parts();
        let outcome = Link::run(
            &self.runtime,
            connection,
            query(client),
            self.dialer.call_deadline(),
        );
        match &outcome {
            Outcome::Lost(_) => {
                *slot = None;
                self.distrust_roster();
            }
            // A refusal inside a transaction leaves it aborted: end it (outside
            // one, the server only warns).
            Outcome::Refused(_) => {
                link.forget_prepared();
                let (client, connection) = link.parts();
                let rollback: Query<'_, ()> =
                    Box::pin(async move { client.batch_execute("ROLLBACK").await });
                let deadline = self.dialer.call_deadline();
                if !matches!(
                    Link::run(&self.runtime, connection, rollback, deadline),
                    Outcome::Done(())
                ) {
                    *slot = None;
                }
            }
            Outcome::Done(_) => {}
        }
        outcome
    }

    /// `call_raw`, with both failures as one StoreError naming `what`.
    fn call<'a, T>(&self, what: &str, query: impl Fn(Session) -> Query<'a, T>) -> Result<T> {
        match self.call_raw(query) {
            Outcome::Done(value) => Ok(value),
            Outcome::Refused(e) => Err(StoreError::refused(format!(
                "postgresql database {}: {what}: {}",
                self.database,
                link::describe(&e)
            ))),
            Outcome::Lost(why) => Err(StoreError::new(
                why.kind(),
                format!("postgresql database {}: {what}: {why}", self.database),
            )),
        }
    }
}

impl Store for PostgresStore {
    fn pass(&self, user: &str) -> Result<Option<PassRecord>> {
        passes::pass(self, user)
    }

    fn passes(&self) -> Result<Vec<PassRecord>> {
        passes::passes(self)
    }

    fn put_pass(&mut self, pass: &PassRecord, audit: &AuditRecord) -> Result<Option<PassRecord>> {
        let old = passes::put_pass(self, pass, audit)?;
        self.noted(&pass.user);
        Ok(old)
    }

    fn revoke(&mut self, user: &str, now: Timestamp, audit: &AuditRecord) -> Result<bool> {
        passes::revoke(self, user, now, audit)
    }

    fn record_success(
        &mut self,
        pass: &PassRecord,
        proof: &PassProof,
        now: Timestamp,
        enroll_until: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        passes::record_success(self, pass, proof, now, enroll_until, audit)
    }

    fn record_failure(
        &mut self,
        user: &str,
        id: i64,
        now: Timestamp,
        max_failures: u32,
        audit: &dyn Fn(FailureCount) -> Vec<AuditRecord>,
    ) -> Result<FailureCount> {
        passes::record_failure(self, user, id, now, max_failures, audit)
    }

    fn append_audit(&mut self, audit: &AuditRecord) -> Result<()> {
        audit::append_audit(self, audit)
    }

    fn audit_where(&self, filter: AuditFilter<'_>, limit: u32) -> Result<Vec<AuditRecord>> {
        audit::audit(self, filter, limit)
    }

    fn has_own_record(&self, user: &str, detail_end: &str) -> Result<bool> {
        audit::has_own_record(self, user, detail_end)
    }

    fn keys(&self, user: &str) -> Result<Vec<KeyCredential>> {
        keys::keys(self, user)
    }

    fn keys_and_pass(&self, user: &str) -> Result<(Vec<KeyCredential>, Option<PassRecord>)> {
        if self.roster.as_ref().is_some_and(|r| r.has_nothing(user)) {
            return Ok((Vec::new(), None));
        }
        keys::keys_and_pass(self, user)
    }

    fn add_key(
        &mut self,
        key: &KeyCredential,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey> {
        let added = keys::add_key(self, key, max_keys, audit)?;
        if added == AddKey::Added {
            self.noted(&key.user);
        }
        Ok(added)
    }

    fn remove_key(
        &mut self,
        user: &str,
        credential_id: &[u8],
        audit: &AuditRecord,
    ) -> Result<bool> {
        keys::remove_key(self, user, credential_id, audit)
    }

    fn record_key_use(
        &mut self,
        key: &KeyCredential,
        new_count: u32,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        keys::record_key_use(self, key, new_count, now, audit)
    }

    fn ssh_keys(&self, user: &str) -> Result<Vec<SshKeyRecord>> {
        ssh_keys::ssh_keys(self, user)
    }

    fn add_ssh_key(
        &mut self,
        key: &SshKeyRecord,
        max_keys: usize,
        audit: &AuditRecord,
    ) -> Result<AddKey> {
        ssh_keys::add_ssh_key(self, key, max_keys, audit)
    }

    fn remove_ssh_key(
        &mut self,
        user: &str,
        fingerprint: &str,
        audit: &AuditRecord,
    ) -> Result<bool> {
        ssh_keys::remove_ssh_key(self, user, fingerprint, audit)
    }

    fn record_ssh_key_use(
        &mut self,
        user: &str,
        fingerprint: &str,
        now: Timestamp,
        audit: &AuditRecord,
    ) -> Result<bool> {
        ssh_keys::record_ssh_key_use(self, user, fingerprint, now, audit)
    }
}
