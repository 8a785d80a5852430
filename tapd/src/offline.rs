//! Key sign-ins while a fleet's database is unreachable (`[store]
//! offline_keys = true`), from this host's copy of the keys.
//!
//! * **Copy.** Each time a sign-in plan or sshd's `authorized-keys` reads a
//!   user's keys from the database, the copy (`[store] offline_cache`, a
//!   SQLite file of tapd's own) is made to match: keys removed there leave
//!   it, and a counter never moves back. So the copy covers the users who
//!   signed in on this host while the database answered, as SSSD's cached
//!   credentials do.
//! * **Offline.** When the database does not answer (no session and none
//!   can be made within `connect_timeout`), a plan, a key answer and
//!   `authorized-keys` are served from the copy. The plan offers the key
//!   only (`Plan::offline`): no pass can be checked, and a sign-in without
//!   a key is "unavailable", never "nothing here". The counter is checked
//!   against the copy, and the sign-in is recorded there.
//! * **Reconcile.** When the database answers again, each offline record
//!   goes to it, oldest first: a key sign-in moves the database's counter
//!   up to the one the key answered with, unless the database has that
//!   counter or a higher one already (the key was used elsewhere meanwhile:
//!   a clone, or a copy raced), which is flagged as `key.counter_regressed`.
//!   Each record's detail ends with a mark naming it (a random name the
//!   copy gave it), and a record the database already has is not sent again:
//!   an answer lost after the database committed, or tapd stopped before
//!   the copy settled the record, would otherwise write it twice, and its
//!   key's counter, already moved, would look like a clone's.

use crate::context::Challenges;
use crate::log;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tap_core::audit::{AuditRecord, Event};
use tap_core::keys::credential::KeyCredential;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::{Store, StoreError};
use tap_protocol::admin::AdminRequest;
use tap_protocol::signin::SignInRequest;
use tap_protocol::Request;
use tap_store::{Offline, SqliteStore};

/// Records reconciled per pass; the rest wait for the next request.
const RECONCILE_BATCH: u32 = 100;

/// The copy, shared by the workers: each use is a short local transaction.
pub struct OfflineKeys {
    copy: Mutex<Option<SqliteStore>>,
    /// The copy may hold records the database has not seen. Starts set, so
    /// the first request that reaches the database looks.
    unsettled: AtomicBool,
}

/// A key answer to a challenge the copy issued: checked against the copy
/// without trying the database again (which failed a moment ago, and
/// might cost the connect timeouts once more).
pub fn answers_offline_challenge(request: &Request, challenges: &Challenges) -> bool {
    match request {
        Request::SignIn(SignInRequest::KeyAnswer { challenge, .. }) => {
            challenges.issued_offline(&challenge.0)
        }
        _ => false,
    }
}

/// What an offline request may be: a key sign-in's steps, sshd's ask for
/// a user's SSH keys, and the PAM session's word that sshd accepted one
/// (recorded in the copy, reconciled like a key sign-in's record). A pass
/// cannot be checked without the database.
pub fn servable(request: &Request) -> bool {
    matches!(
        request,
        Request::SignIn(SignInRequest::Plan { .. } | SignInRequest::KeyAnswer { .. })
            | Request::Admin(AdminRequest::AuthorizedKeys { .. } | AdminRequest::SshKeyUsed { .. })
    )
}

/// How long a request the copy could serve waits to learn whether the
/// database answers: sshd's `authorized-keys` asks through tapctl, which
/// gives up after 900 ms (tapctl/src/ssh_keys.rs), so its answer from the
/// copy must come before that; the session's note that sshd accepted a key
/// holds up the session's start, for a record only. A sign-in step waits
/// the connect timeouts.
pub fn reachable_limit(request: &Request) -> Option<Duration> {
    match request {
        Request::Admin(AdminRequest::AuthorizedKeys { .. } | AdminRequest::SshKeyUsed { .. }) => {
            Some(AUTHORIZED_KEYS_PROBE)
        }
        _ => None,
    }
}

/// `authorized-keys`' share of tapctl's 900 ms for finding the database.
const AUTHORIZED_KEYS_PROBE: Duration = Duration::from_millis(500);

impl Default for OfflineKeys {
    fn default() -> OfflineKeys {
        OfflineKeys {
            copy: Mutex::new(None),
            unsettled: AtomicBool::new(true),
        }
    }
}

impl OfflineKeys {
    /// The copy at `path`, opened (created) on first use, or again when the
    /// policy names another file.
    pub fn open(&self, path: &Path) -> Result<MutexGuard<'_, Option<SqliteStore>>, StoreError> {
        let mut copy = self
            .copy
            .lock()
            .map_err(|_| StoreError::internal("offline copy: poisoned lock"))?;
        if copy.as_ref().map(SqliteStore::path) != Some(path) {
            *copy = None;
            *copy = Some(SqliteStore::open_offline_copy(path)?);
        }
        Ok(copy)
    }

    /// Makes the copy of `user`'s security keys match what the database gave.
    pub fn remember_keys(&self, path: &Path, user: &str, keys: &[KeyCredential]) {
        let result = self.open(path).and_then(|mut copy| match copy.as_mut() {
            Some(copy) => copy.remember_keys(user, keys),
            None => Ok(()),
        });
        if let Err(e) = result {
            log::warning(&format!("offline copy of {user:?}'s keys not updated: {e}"));
        }
    }

    /// Makes the copy of `user`'s SSH keys match what the database gave.
    pub fn remember_ssh_keys(&self, path: &Path, user: &str, keys: &[SshKeyRecord]) {
        let result = self.open(path).and_then(|mut copy| match copy.as_mut() {
            Some(copy) => copy.remember_ssh_keys(user, keys),
            None => Ok(()),
        });
        if let Err(e) = result {
            log::warning(&format!(
                "offline copy of {user:?}'s SSH keys not updated: {e}"
            ));
        }
    }

    /// Whether the copy may hold records the database has not seen.
    pub fn unsettled(&self) -> bool {
        self.unsettled.load(Ordering::Acquire)
    }

    /// A request was served from the copy: reconcile at the next chance.
    pub fn served_offline(&self) {
        self.unsettled.store(true, Ordering::Release);
    }

    /// Sends the copy's offline records to the database, if there may be
    /// any, before the request that found the database answering is served:
    /// a key's offline counter must reach the database before a newer
    /// online use of that key, or the online use would race it (refused) and
    /// the offline one then look like a clone. Requests on other workers
    /// wait on the copy's lock meanwhile, and find it settled. Stops at the
    /// first failure (the database went away again); the next request that
    /// reaches it tries again.
    pub fn reconcile(&self, path: &Path, database: &mut dyn Store) {
        if !self.unsettled.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut guard) = self.open(path) else {
            return;
        };
        let Some(copy) = guard.as_mut() else {
            return;
        };
        // Cleared under the copy's lock, which serving offline also holds
        // when it sets it: a record made meanwhile sets it again.
        self.unsettled.store(false, Ordering::Release);
        match reconcile(copy, database) {
            Ok(Settled {
                records,
                flagged,
                already,
                more,
            }) => {
                if records > 0 {
                    log::notice(&format!(
                        "offline copy: {records} record(s) of sign-ins made while the database was \
                         unreachable are now in it{}{}",
                        if flagged > 0 {
                            format!("; {flagged} flagged as a possible cloned key")
                        } else {
                            String::new()
                        },
                        if already > 0 {
                            format!("; {already} it had already (not sent again)")
                        } else {
                            String::new()
                        }
                    ));
                }
                if more {
                    self.unsettled.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                self.unsettled.store(true, Ordering::Release);
                log::warning(&format!(
                    "offline copy: reconciling with the database stopped: {e}"
                ));
            }
        }
    }
}

/// What one reconcile pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Offline records now in the database.
    pub records: usize,
    /// Key sign-ins whose counter the database had already reached.
    pub flagged: usize,
    /// Records the database had already: sent before, but the answer was
    /// lost or the copy not settled.
    pub already: usize,
    /// More records wait for the next pass.
    pub more: bool,
}

/// Moves up to `RECONCILE_BATCH` offline records from `copy` into
/// `database`, oldest first, each settled in the copy once the database
/// has it.
pub fn reconcile(copy: &mut SqliteStore, database: &mut dyn Store) -> Result<Settled, StoreError> {
    let records = copy.offline_records(RECONCILE_BATCH)?;
    let mut settled = Settled {
        more: records.len() == RECONCILE_BATCH as usize,
        ..Settled::default()
    };
    for offline in records {
        let seq = offline.record.seq;
        let mark = offline_mark(&offline);
        if database.has_own_record(&offline.record.user, &mark)? {
            settled.already += 1;
        } else if reconcile_one(database, offline, &mark)? {
            settled.flagged += 1;
        }
        copy.settle_offline_record(seq)?;
        settled.records += 1;
    }
    Ok(settled)
}

/// What ends the detail of an offline record in the database: the same
/// for one record of the copy however often it is sent, and another for
/// any other record (its random name in the copy).
fn offline_mark(offline: &Offline) -> String {
    format!(
        "(offline: the database was unreachable; record {})",
        offline.id.to_lowercase()
    )
}

/// One offline record into the database; true when it was flagged. The
/// record, which carries the mark, is always written last: once the
/// database has it, the whole record has arrived.
fn reconcile_one(
    database: &mut dyn Store,
    offline: Offline,
    mark: &str,
) -> Result<bool, StoreError> {
    let mut record = offline.record;
    // The sign-in's record names the key as "key LABEL".
    let label = record
        .detail
        .strip_prefix("key ")
        .unwrap_or(&record.detail)
        .to_string();
    let original = std::mem::take(&mut record.detail);
    record.detail = format!("{original} {mark}");
    // An SSH key sshd accepted: its last use moves too, with the record,
    // if the database still has the key.
    if let Some(fingerprint) = original.strip_prefix("ssh key ") {
        if record.event == Event::SshKeySignIn.name()
            && database.record_ssh_key_use(&record.user, fingerprint, record.time, &record)?
        {
            return Ok(false);
        }
    }
    let Some(used) = offline.key_use else {
        database.append_audit(&record)?;
        return Ok(false);
    };
    let flag = |detail: String| {
        let mut flag = AuditRecord::new(
            record.time,
            Event::KeyCounterRegressed,
            &record.user,
            &record.user,
        )
        .detail(detail);
        flag.peer = record.peer.clone();
        flag
    };
    // The counter moves from the value read here: a sign-in elsewhere in
    // between makes the conditional update miss, and the next look decides.
    for _ in 0..3 {
        let keys = database.keys(&record.user)?;
        let Some(key) = keys.iter().find(|k| k.credential_id == used.credential_id) else {
            database.append_audit(&flag(format!(
                "an offline sign-in used key {label} that the database no longer has"
            )))?;
            database.append_audit(&record)?;
            return Ok(true);
        };
        // An authenticator without a counter answers 0 every time.
        let counted = used.counter > 0 || key.sign_count > 0;
        if counted && key.sign_count >= used.counter {
            database.append_audit(&flag(format!(
                "possible cloned key {}: an offline sign-in answered with counter {}, but the \
                 database had {} from a sign-in elsewhere",
                key.label, used.counter, key.sign_count
            )))?;
            database.append_audit(&record)?;
            return Ok(true);
        }
        if !counted {
            database.append_audit(&record)?;
            return Ok(false);
        }
        if database.record_key_use(key, used.counter, record.time, &record)? {
            return Ok(false);
        }
    }
    // Like a serialization failure: the database's answers kept moving.
    Err(StoreError::refused(format!(
        "key counter of {:?} kept changing while an offline sign-in was reconciled",
        record.user
    )))
}

/// The copy's path for this policy, when offline keys are asked for.
pub fn cache_path(policy: &tap_core::policy::Policy) -> Option<PathBuf> {
    policy.store.offline_cache_path().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tap_core::store::AddKey;
    use tap_store::OpenOptions;

    struct Stores {
        _dir: tempfile::TempDir,
        database: SqliteStore,
        copy: SqliteStore,
    }

    fn stores() -> Stores {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let database = SqliteStore::open(
            &dir.path().join("database.db"),
            OpenOptions {
                create: true,
                check_trust: false,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let copy = SqliteStore::open_offline_copy(&dir.path().join("offline-keys.db"))
            .unwrap_or_else(|e| panic!("{e}"));
        Stores {
            _dir: dir,
            database,
            copy,
        }
    }

    fn key(id: u8, sign_count: u32) -> KeyCredential {
        KeyCredential {
            user: "alice".into(),
            credential_id: vec![id; 16],
            public_key: vec![0xa5],
            algorithm: -7,
            aaguid: [0; 16],
            sign_count,
            label: format!("yubi{id}"),
            attestation: "none".into(),
            created: 100,
            last_used: None,
        }
    }

    fn record(event: Event, detail: &str) -> AuditRecord {
        AuditRecord::new(500, event, "alice", "alice").detail(detail)
    }

    fn events(store: &SqliteStore) -> Vec<(String, String)> {
        store
            .audit(Some("alice"), 100)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|a| (a.event, a.detail))
            .collect()
    }

    /// The database has alice's key at `count`; the copy has read it.
    fn enrolled(stores: &mut Stores, count: u32) -> KeyCredential {
        let enrolled = record(Event::KeyEnrolled, "key yubi1");
        stores
            .database
            .add_key(&key(1, count), 5, &enrolled)
            .unwrap_or_else(|e| panic!("{e}"));
        let keys = stores.database.keys("alice").unwrap_or_default();
        stores
            .copy
            .remember_keys("alice", &keys)
            .unwrap_or_else(|e| panic!("{e}"));
        key(1, count)
    }

    /// A verified offline sign-in that answered with `counter`.
    fn offline_sign_in(copy: &mut SqliteStore, seen: &KeyCredential, counter: u32) {
        let signed_in = record(Event::KeySignIn, "key yubi1");
        assert_eq!(
            copy.record_key_use(seen, counter, 500, &signed_in),
            Ok(true)
        );
    }

    #[test]
    fn the_copy_follows_the_database_but_never_lowers_a_counter() {
        let mut stores = stores();
        let seen = enrolled(&mut stores, 10);
        offline_sign_in(&mut stores.copy, &seen, 15);
        // The database still says 10 until reconciled: the copy keeps 15.
        let keys = stores.database.keys("alice").unwrap_or_default();
        assert_eq!(stores.copy.remember_keys("alice", &keys), Ok(()));
        assert_eq!(stores.copy.keys("alice").map(|k| k[0].sign_count), Ok(15));
        // A key removed from the database leaves the copy.
        assert_eq!(stores.copy.remember_keys("alice", &[]), Ok(()));
        assert_eq!(stores.copy.keys("alice"), Ok(vec![]));
        // The offline record waits all the same.
        assert_eq!(stores.copy.offline_records(10).map(|r| r.len()), Ok(1));
    }

    #[test]
    fn an_offline_sign_in_moves_the_database_counter_once() {
        let mut stores = stores();
        let seen = enrolled(&mut stores, 10);
        offline_sign_in(&mut stores.copy, &seen, 15);
        // A replayed counter is refused by the copy itself.
        let stale = record(Event::KeySignIn, "key yubi1");
        assert_eq!(
            stores.copy.record_key_use(&seen, 16, 501, &stale),
            Ok(false)
        );
        let failed = record(Event::KeySignInFailed, "NoCredentials: none");
        assert_eq!(stores.copy.append_audit(&failed), Ok(()));

        let settled = reconcile(&mut stores.copy, &mut stores.database);
        assert_eq!(
            settled,
            Ok(Settled {
                records: 2,
                flagged: 0,
                already: 0,
                more: false
            })
        );
        assert_eq!(
            stores.database.keys("alice").map(|k| k[0].sign_count),
            Ok(15)
        );
        let logged = events(&stores.database);
        assert_eq!(logged.len(), 3, "{logged:?}");
        assert_eq!(logged[1].0, Event::KeySignIn.name());
        assert!(
            logged[1]
                .1
                .starts_with("key yubi1 (offline: the database was unreachable; record "),
            "{logged:?}"
        );
        assert_eq!(logged[2].0, Event::KeySignInFailed.name());
        assert!(
            logged[2]
                .1
                .starts_with("NoCredentials: none (offline: the database was unreachable; record "),
            "{logged:?}"
        );
        assert_ne!(
            logged[1].1[10..],
            logged[2].1[20..],
            "each record its own mark"
        );
        // Settled: a second pass has nothing to send.
        assert_eq!(stores.copy.offline_records(10), Ok(vec![]));
        assert_eq!(
            reconcile(&mut stores.copy, &mut stores.database).map(|s| s.records),
            Ok(0)
        );
        assert_eq!(events(&stores.database).len(), 3);
    }

    #[test]
    fn a_counter_the_database_reached_elsewhere_is_flagged() {
        let mut stores = stores();
        let seen = enrolled(&mut stores, 10);
        offline_sign_in(&mut stores.copy, &seen, 15);
        // Meanwhile a clone (or the key on another host) signed in at 20.
        let elsewhere = record(Event::KeySignIn, "key yubi1");
        assert_eq!(
            stores.database.record_key_use(&seen, 20, 490, &elsewhere),
            Ok(true)
        );
        let settled = reconcile(&mut stores.copy, &mut stores.database);
        assert_eq!(settled.map(|s| s.flagged), Ok(1));
        assert_eq!(
            stores.database.keys("alice").map(|k| k[0].sign_count),
            Ok(20)
        );
        let flags = flags(&stores.database);
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert!(
            flags[0].contains("counter 15, but the database had 20"),
            "{flags:?}"
        );
    }

    /// `key.counter_regressed` details in the database.
    fn flags(store: &SqliteStore) -> Vec<String> {
        events(store)
            .into_iter()
            .filter(|(event, _)| event == Event::KeyCounterRegressed.name())
            .map(|(_, detail)| detail)
            .collect()
    }

    #[test]
    fn a_record_the_database_has_is_not_sent_again() {
        let mut stores = stores();
        let seen = enrolled(&mut stores, 10);
        offline_sign_in(&mut stores.copy, &seen, 15);
        let failed = record(Event::KeySignInFailed, "NoCredentials: none");
        assert_eq!(stores.copy.append_audit(&failed), Ok(()));
        // The database commits both records, but the copy never hears so
        // (the answer was lost, or tapd stopped before settling).
        for offline in stores.copy.offline_records(10).unwrap_or_default() {
            let mark = offline_mark(&offline);
            assert_eq!(
                reconcile_one(&mut stores.database, offline, &mark),
                Ok(false)
            );
        }
        let before = events(&stores.database);
        assert_eq!(before.len(), 3, "{before:?}");
        // The next pass finds both there: nothing written twice, and the
        // counter it moved is no clone.
        assert_eq!(
            reconcile(&mut stores.copy, &mut stores.database),
            Ok(Settled {
                records: 2,
                flagged: 0,
                already: 2,
                more: false
            })
        );
        assert_eq!(events(&stores.database), before);
        assert_eq!(
            stores.database.keys("alice").map(|k| k[0].sign_count),
            Ok(15)
        );
        assert_eq!(stores.copy.offline_records(10), Ok(vec![]));
    }

    #[test]
    fn an_offline_ssh_sign_in_reaches_the_database_with_the_keys_last_use() {
        let mut stores = stores();
        let key = SshKeyRecord {
            user: "alice".into(),
            fingerprint: "SHA256:abc".into(),
            key_type: "sk-ssh-ed25519@openssh.com".into(),
            blob: vec![1, 2, 3],
            label: "laptop".into(),
            application: "ssh:".into(),
            aaguid: None,
            attestation: "none".into(),
            created: 100,
            last_used: None,
        };
        let enrolled = record(Event::SshKeyAdded, "ssh key SHA256:abc");
        assert_eq!(
            stores.database.add_ssh_key(&key, 5, &enrolled),
            Ok(AddKey::Added)
        );
        let keys = stores.database.ssh_keys("alice").unwrap_or_default();
        assert_eq!(stores.copy.remember_ssh_keys("alice", &keys), Ok(()));
        // sshd accepted it while the database was down: the copy has it.
        let accepted = AuditRecord::new(700, Event::SshKeySignIn, "alice", "alice")
            .detail("ssh key SHA256:abc");
        assert_eq!(
            stores
                .copy
                .record_ssh_key_use("alice", "SHA256:abc", 700, &accepted),
            Ok(true)
        );
        assert_eq!(
            reconcile(&mut stores.copy, &mut stores.database).map(|s| (s.records, s.flagged)),
            Ok((1, 0))
        );
        let last = events(&stores.database).pop().unwrap_or_default();
        assert_eq!(last.0, Event::SshKeySignIn.name());
        assert!(
            last.1
                .starts_with("ssh key SHA256:abc (offline: the database was unreachable; record "),
            "{last:?}"
        );
        assert_eq!(
            stores.database.ssh_keys("alice").map(|k| k[0].last_used),
            Ok(Some(700))
        );
    }

    #[test]
    fn a_key_removed_meanwhile_is_flagged_and_counters_of_zero_are_not() {
        let mut stores = stores();
        let seen = enrolled(&mut stores, 0);
        // An authenticator without a counter: 0 and 0 is no clone.
        offline_sign_in(&mut stores.copy, &seen, 0);
        assert_eq!(
            reconcile(&mut stores.copy, &mut stores.database).map(|s| s.flagged),
            Ok(0)
        );
        offline_sign_in(&mut stores.copy, &seen, 0);
        let removed = record(Event::KeyRemoved, "key yubi1");
        assert_eq!(
            stores
                .database
                .remove_key("alice", &seen.credential_id, &removed),
            Ok(true)
        );
        assert_eq!(
            reconcile(&mut stores.copy, &mut stores.database).map(|s| s.flagged),
            Ok(1)
        );
        assert_eq!(
            flags(&stores.database),
            ["an offline sign-in used key yubi1 that the database no longer has"]
        );
    }
}
