use super::durability::{Durability, LOG_EMPTY_ABOVE_BYTES, NEW_STORE_PAGE_BYTES};
use super::migrations::MIGRATIONS;
use super::*;
use tap_core::hashing::PassProof;
use tap_core::pass::testkit::sample;

/// A record of any name: the store keeps what it is given.
fn audit(event: &str) -> AuditRecord {
    let mut record = AuditRecord::new(0, tap_core::audit::Event::PassIssued, "alice", "root");
    record.event = event.into();
    record
}

/// How tapctl and the module open an existing store, trust aside.
const READER: OpenOptions = OpenOptions {
    create: false,
    check_trust: false,
};

/// The refusal an open meets, or "" when it opens.
fn open_error(path: &Path, options: OpenOptions) -> String {
    SqliteStore::open(path, options)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// The kind of refusal an open meets, or None when it opens.
fn open_kind(path: &Path, options: OpenOptions) -> Option<StoreErrorKind> {
    SqliteStore::open(path, options).err().map(|e| e.kind())
}

fn fresh() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let options = OpenOptions {
        create: true,
        check_trust: false,
    };
    let store =
        SqliteStore::open(&dir.path().join("tap.db"), options).unwrap_or_else(|e| panic!("{e}"));
    (dir, store)
}

#[test]
fn a_new_store_is_wal_and_current() -> Result<()> {
    let (_dir, store) = fresh();
    assert_eq!(pragma::<String>(&store, "journal_mode")?, "wal");
    assert_eq!(store.schema_version()?, MIGRATIONS.len());
    assert_eq!(pragma::<i64>(&store, "synchronous")?, 2, "FULL");
    Ok(())
}

#[test]
fn missing_store_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("absent.db");
    let error = open_error(&path, READER);
    assert!(error.contains("tapctl init"), "{error}");
    assert_eq!(open_kind(&path, READER), Some(StoreErrorKind::Io));
    assert!(!path.exists());
}

#[test]
fn garbage_file_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tap.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap_or_else(|e| panic!("{e}"));
    let error = open_error(&path, READER);
    assert!(error.contains("corrupt"), "{error}");
    assert_eq!(open_kind(&path, READER), Some(StoreErrorKind::Io));
}

#[test]
fn empty_or_foreign_database_is_refused_by_readers_and_left_alone() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap_or_else(|e| panic!("{e}"));
    let error = open_error(&empty, READER);
    assert!(error.contains("no pam_tap schema"), "{error}");
    assert_eq!(open_kind(&empty, READER), Some(StoreErrorKind::Schema));
    assert_eq!(
        std::fs::metadata(&empty).map(|m| m.len()).ok(),
        Some(0),
        "not written"
    );

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(SqliteStore::open(&foreign, READER).is_err());
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)))
        .unwrap_or(0);
    assert_eq!(tables, 1, "no tables added to a foreign database");
}

#[test]
fn root_refuses_side_files_another_user_owns() {
    if crate::sys::euid() != 0 {
        return; // needs root to hand the files to another uid
    }
    let (dir, holder) = fresh();
    holder.pass("alice").unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tap.db");
    let trusted = OpenOptions {
        create: false,
        check_trust: true,
    };
    assert!(
        SqliteStore::open(&path, trusted).is_ok(),
        "root's own side files"
    );
    for side in ["tap.db-wal", "tap.db-shm"] {
        std::os::unix::fs::chown(dir.path().join(side), Some(65534), None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let error = open_error(&path, trusted);
    assert!(error.contains("not by the store's owner"), "{error}");
    assert_eq!(open_kind(&path, trusted), Some(StoreErrorKind::Untrusted));
    drop(holder);
}

#[test]
fn side_files_outlive_the_connection_and_the_log_stays_short() -> Result<()> {
    let (dir, mut store) = fresh();
    let wal = dir.path().join("tap.db-wal");
    let mut largest = 0;
    for _ in 0..400 {
        store.append_audit(&audit("filler"))?;
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(
        largest <= LOG_EMPTY_ABOVE_BYTES + 64 * 1024,
        "log grew to {largest} bytes"
    );
    drop(store);
    for side in ["tap.db-wal", "tap.db-shm"] {
        assert!(dir.path().join(side).exists(), "{side} removed on close");
    }
    let reopened = SqliteStore::open(&dir.path().join("tap.db"), READER)?;
    assert_eq!(reopened.audit(None, 1000)?.len(), 400, "nothing lost");
    Ok(())
}

/// The daemon opens only a store that is its own: another user's file,
/// or one others may read or write, is refused before SQLite touches it
/// (so no side files appear either).
#[test]
fn a_store_that_is_not_the_openers_alone_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = fresh();
    store
        .conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(store);
    let path = dir.path().join("tap.db");
    for side in ["tap.db-wal", "tap.db-shm"] {
        std::fs::remove_file(dir.path().join(side)).unwrap_or_else(|e| panic!("{e}"));
    }
    let trusted = OpenOptions {
        create: false,
        check_trust: true,
    };
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    chmod(dir.path(), 0o700);
    chmod(&path, 0o600);
    assert!(
        SqliteStore::open(&path, trusted).is_ok(),
        "its own, private"
    );
    for (what, mode, wanted) in [
        (path.as_path(), 0o640, "read or write it"),
        (path.as_path(), 0o606, "read or write it"),
        (dir.path(), 0o770, "write it"),
    ] {
        chmod(what, mode);
        let error = open_error(&path, trusted);
        assert!(error.contains(wanted), "{error}");
        assert_eq!(open_kind(&path, trusted), Some(StoreErrorKind::Untrusted));
        chmod(what, if what == path.as_path() { 0o600 } else { 0o700 });
    }
    if crate::sys::euid() == 0 {
        // Needs root to hand the file to another uid.
        for side in ["tap.db-wal", "tap.db-shm"] {
            std::fs::remove_file(dir.path().join(side)).unwrap_or_else(|e| panic!("{e}"));
        }
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap_or_else(|e| panic!("{e}"));
        let error = open_error(&path, trusted);
        assert!(error.contains("owned by uid 65534"), "{error}");
        assert!(!dir.path().join("tap.db-wal").exists());
        assert!(!dir.path().join("tap.db-shm").exists());
    }
}

#[test]
fn a_new_store_is_private_to_its_creator() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("state").join("tap.db");
    let options = OpenOptions {
        create: true,
        check_trust: true,
    };
    drop(SqliteStore::open(&path, options).unwrap_or_else(|e| panic!("{e}")));
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.mode() & 0o7777, m.uid()))
            .ok()
    };
    let me = Some(crate::sys::euid());
    assert_eq!(mode(&path), Some(0o600).zip(me));
    assert_eq!(mode(&dir.path().join("state")), Some(0o700).zip(me));
    for side in ["tap.db-wal", "tap.db-shm"] {
        let side = dir.path().join("state").join(side);
        assert_eq!(mode(&side).map(|(m, _)| m & 0o077), Some(0), "{side:?}");
    }
}

#[test]
fn newer_schema_is_refused() -> Result<()> {
    let (dir, store) = fresh();
    store
        .conn
        .pragma_update(None, "user_version", 99)
        .map_err(|e| StoreError::io(e.to_string()))?;
    drop(store);
    let error = open_error(&dir.path().join("tap.db"), READER);
    assert!(error.contains("schema version 99"), "{error}");
    let kind = open_kind(&dir.path().join("tap.db"), READER);
    assert_eq!(kind, Some(StoreErrorKind::Schema));
    Ok(())
}

#[test]
fn put_replaces_and_returns_the_old_pass() -> Result<()> {
    let (_dir, mut store) = fresh();
    let first = sample(100);
    assert_eq!(store.put_pass(&first, &audit("pass.issued"))?, None);
    let second = PassRecord {
        id: 8,
        ..sample(200)
    };
    assert_eq!(
        store
            .put_pass(&second, &audit("pass.replaced"))?
            .map(|p| p.id),
        Some(7)
    );
    assert_eq!(store.pass("alice")?.map(|p| p.id), Some(8));
    assert_eq!(store.passes()?.len(), 1);
    assert_eq!(store.audit(Some("alice"), 10)?.len(), 2);
    Ok(())
}

#[test]
fn one_time_pass_is_consumed_once() -> Result<()> {
    let (_dir, mut store) = fresh();
    let pass = PassRecord {
        one_time: true,
        ..sample(100)
    };
    store.put_pass(&pass, &audit("pass.issued"))?;
    assert!(store.record_success(
        &pass,
        &PassProof::from_phc(&pass.phc),
        150,
        500,
        &audit("signin.pass.success")
    )?);
    assert!(!store.record_success(
        &pass,
        &PassProof::from_phc(&pass.phc),
        151,
        500,
        &audit("signin.pass.success")
    )?);
    assert_eq!(store.pass("alice")?.and_then(|p| p.used_at), Some(150));
    assert_eq!(store.pass("alice")?.and_then(|p| p.enroll_until), Some(500));
    Ok(())
}

/// One pragma's current value.
fn pragma<T: rusqlite::types::FromSql>(store: &SqliteStore, name: &str) -> Result<T> {
    store
        .conn
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .map_err(|e| StoreError::io(e.to_string()))
}

fn synchronous(store: &SqliteStore) -> i64 {
    pragma(store, "synchronous").unwrap_or(-1)
}

#[test]
fn only_a_multi_use_success_commits_unsynced() -> Result<()> {
    const FULL: i64 = 2;
    const NORMAL: i64 = 1;
    let (_dir, mut store) = fresh();
    let pass = sample(100);
    store.put_pass(&pass, &audit("pass.issued"))?;
    assert_eq!(synchronous(&store), FULL);
    assert!(store.record_success(
        &pass,
        &PassProof::from_phc(&pass.phc),
        150,
        500,
        &audit("signin.pass.success")
    )?);
    assert_eq!(synchronous(&store), NORMAL);
    store.record_failure("alice", pass.id, 151, 5, &|_| {
        vec![audit("signin.pass.failure")]
    })?;
    assert_eq!(synchronous(&store), FULL);
    let one_time = PassRecord {
        one_time: true,
        id: 8,
        ..sample(100)
    };
    store.put_pass(&one_time, &audit("pass.issued"))?;
    assert!(store.record_success(
        &one_time,
        &PassProof::from_phc(&one_time.phc),
        152,
        500,
        &audit("signin.pass.success")
    )?);
    assert_eq!(synchronous(&store), FULL);
    assert!(store.revoke("alice", 153, &audit("pass.revoked"))?);
    assert_eq!(synchronous(&store), FULL);
    Ok(())
}

/// `Store.durability` starts as the build's WAL default; were the two to
/// differ, a sign-in would skip a pragma it needs.
#[test]
fn an_opened_store_starts_at_the_durability_it_assumes() -> Result<()> {
    let (dir, mut store) = fresh();
    store.put_pass(&sample(100), &audit("pass.issued"))?;
    drop(store);
    let mut reopened = SqliteStore::open(&dir.path().join("tap.db"), READER)?;
    reopened.pass("alice")?;
    assert_eq!(reopened.durability, Durability::Atomic);
    assert_eq!(
        synchronous(&reopened),
        1,
        "NORMAL: built without .cargo/config.toml?"
    );
    reopened.append_audit(&audit("filler"))?;
    assert_eq!(synchronous(&reopened), 2, "a synced write sets FULL");
    Ok(())
}

#[test]
fn a_new_store_has_small_pages() -> Result<()> {
    let (_dir, store) = fresh();
    assert_eq!(pragma::<i64>(&store, "page_size")?, NEW_STORE_PAGE_BYTES);
    Ok(())
}

#[test]
fn a_version_2_audit_log_keeps_its_records_and_numbering() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| StoreError::io(e.to_string()))?;
    let path = dir.path().join("tap.db");
    {
        let conn = Connection::open(&path).map_err(|e| StoreError::io(e.to_string()))?;
        for step in &MIGRATIONS[..2] {
            conn.execute_batch(step)
                .map_err(|e| StoreError::io(e.to_string()))?;
        }
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             INSERT INTO audit (time, event, user, actor, service, rhost, tty, detail)
             VALUES (1, 'pass.issued', 'alice', 'root', '', '', '', ''),
                    (2, 'pass.issued', 'bob', 'root', '', '', '', ''),
                    (3, 'pass.revoked', 'bob', 'root', '', '', '', '');
             PRAGMA user_version = 2;",
        )
        .map_err(|e| StoreError::io(e.to_string()))?;
    }
    let mut store = SqliteStore::open(&path, READER)?;
    assert_eq!(store.schema_version()?, MIGRATIONS.len());
    store.append_audit(&audit("pass.issued"))?;
    let seqs: Vec<(i64, String)> = store
        .audit(None, 10)?
        .into_iter()
        .map(|a| (a.seq, a.event))
        .collect();
    assert_eq!(
        seqs,
        [
            (1, "pass.issued".to_string()),
            (2, "pass.issued".to_string()),
            (3, "pass.revoked".to_string()),
            (4, "pass.issued".to_string())
        ]
    );
    let leftovers: i64 = store
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'audit_by_user')
                  + (SELECT count(*) FROM sqlite_sequence)",
            [],
            |r| r.get(0),
        )
        .map_err(|e| StoreError::io(e.to_string()))?;
    assert_eq!(leftovers, 0);
    Ok(())
}

#[test]
fn success_rechecks_window_revocation_and_id() -> Result<()> {
    let (_dir, mut store) = fresh();
    let pass = sample(100);
    let replaced = PassRecord {
        id: 6,
        ..sample(100)
    };
    store.put_pass(&pass, &audit("pass.issued"))?;
    assert!(
        !store.record_success(&pass, &PassProof::from_phc(&pass.phc), 99, 500, &audit("x"))?,
        "before start"
    );
    assert!(
        !store.record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            100 + 3_600,
            500,
            &audit("x")
        )?,
        "at expiry"
    );
    assert!(
        !store.record_success(
            &replaced,
            &PassProof::from_phc(&replaced.phc),
            150,
            500,
            &audit("x")
        )?,
        "a replaced pass"
    );
    assert!(store.record_success(
        &pass,
        &PassProof::from_phc(&pass.phc),
        150,
        500,
        &audit("x")
    )?);
    assert!(
        store.record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            160,
            500,
            &audit("x")
        )?,
        "multi-use"
    );
    assert!(store.revoke("alice", 170, &audit("pass.revoked"))?);
    assert!(!store.revoke("alice", 171, &audit("pass.revoked"))?);
    assert!(!store.record_success(
        &pass,
        &PassProof::from_phc(&pass.phc),
        180,
        500,
        &audit("x")
    )?);
    Ok(())
}

#[test]
fn failures_lock_at_the_limit() -> Result<()> {
    let (_dir, mut store) = fresh();
    let pass = sample(100);
    store.put_pass(&pass, &audit("pass.issued"))?;
    let counts: Vec<FailureCount> = (0..4)
        .map(|i| store.record_failure("alice", 7, 110 + i, 3, &|_| vec![audit("f")]))
        .collect::<Result<_>>()?;
    assert_eq!(
        counts.iter().map(|c| c.failures).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        counts.iter().map(|c| c.locked_now).collect::<Vec<_>>(),
        vec![false, false, true, false]
    );
    assert_eq!(store.pass("alice")?.and_then(|p| p.locked_at), Some(112));
    assert!(
        !store.record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            120,
            500,
            &audit("x")
        )?,
        "locked"
    );
    Ok(())
}

fn key(user: &str, id: u8) -> KeyCredential {
    KeyCredential {
        user: user.into(),
        credential_id: vec![id; 16],
        public_key: vec![0xa5],
        algorithm: -7,
        aaguid: [id; 16],
        sign_count: 10,
        label: format!("key {id}"),
        attestation: "none".into(),
        created: 100,
        last_used: None,
    }
}

#[test]
fn keys_add_list_limit_remove() -> Result<()> {
    let (_dir, mut store) = fresh();
    assert_eq!(
        store.add_key(&key("alice", 1), 2, &audit("key.enrolled"))?,
        AddKey::Added
    );
    assert_eq!(
        store.add_key(&key("alice", 1), 2, &audit("key.enrolled"))?,
        AddKey::Duplicate
    );
    assert_eq!(
        store.add_key(&key("alice", 2), 2, &audit("key.enrolled"))?,
        AddKey::Added
    );
    assert_eq!(
        store.add_key(&key("alice", 3), 2, &audit("key.enrolled"))?,
        AddKey::TooMany
    );
    assert_eq!(
        store.add_key(&key("bob", 3), 2, &audit("key.enrolled"))?,
        AddKey::Added
    );
    assert_eq!(store.keys("alice")?, vec![key("alice", 1), key("alice", 2)]);
    assert!(store.remove_key("alice", &[1; 16], &audit("key.removed"))?);
    assert!(!store.remove_key("alice", &[1; 16], &audit("key.removed"))?);
    assert!(
        !store.remove_key("alice", &[3; 16], &audit("key.removed"))?,
        "bob's key"
    );
    assert_eq!(store.keys("alice")?.len(), 1);
    Ok(())
}

#[test]
fn key_counter_moves_once_from_the_checked_value() -> Result<()> {
    let (_dir, mut store) = fresh();
    let stored = key("alice", 1);
    store.add_key(&stored, 5, &audit("key.enrolled"))?;
    assert!(store.record_key_use(&stored, 11, 200, &audit("signin.key.success"))?);
    assert!(
        !store.record_key_use(&stored, 11, 201, &audit("signin.key.success"))?,
        "stale counter"
    );
    let now = store.keys("alice")?;
    assert_eq!((now[0].sign_count, now[0].last_used), (11, Some(200)));
    Ok(())
}

#[test]
fn audit_keeps_the_newest_in_order() -> Result<()> {
    let (_dir, mut store) = fresh();
    for i in 0..5 {
        store.append_audit(&AuditRecord {
            time: i,
            ..audit("e")
        })?;
    }
    let times: Vec<i64> = store.audit(None, 3)?.iter().map(|a| a.time).collect();
    assert_eq!(times, vec![2, 3, 4]);
    Ok(())
}

#[test]
fn audit_by_host_is_this_hosts_records_or_none() -> Result<()> {
    let (_dir, mut store) = fresh();
    for i in 0..5 {
        store.append_audit(&AuditRecord {
            time: i,
            // a record cannot name another host: the store names its own
            host: "elsewhere".into(),
            ..audit("e")
        })?;
    }
    let here = crate::sys::host_name().unwrap_or_else(|e| panic!("{e}"));
    let only = |user, host| AuditFilter { user, host };
    let mine = store.audit_where(only(None, Some(&here)), 3)?;
    assert_eq!(
        mine.iter().map(|a| a.time).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(mine.iter().all(|a| a.host == here));
    assert_eq!(
        store
            .audit_where(only(Some("alice"), Some(&here)), 10)?
            .len(),
        5
    );
    assert!(store
        .audit_where(only(None, Some("elsewhere")), 10)?
        .is_empty());
    assert!(store
        .audit_where(only(Some("bob"), Some(&here)), 10)?
        .is_empty());
    Ok(())
}

fn ssh_key(user: &str, id: u8) -> SshKeyRecord {
    SshKeyRecord {
        user: user.into(),
        fingerprint: format!("SHA256:key{id}"),
        key_type: "sk-ssh-ed25519@openssh.com".into(),
        blob: vec![id; 51],
        label: format!("ssh {id}"),
        application: "ssh:".into(),
        aaguid: (id % 2 == 0).then_some([id; 16]),
        attestation: "none".into(),
        created: 100 + i64::from(id),
        last_used: None,
    }
}

/// Audit records of `event`, in the store.
fn audited(store: &SqliteStore, event: &str) -> Result<usize> {
    Ok(store
        .audit(None, 1000)?
        .iter()
        .filter(|r| r.event == event)
        .count())
}

#[test]
fn ssh_keys_add_list_limit_remove_and_belong_to_one_user() -> Result<()> {
    let (_dir, mut store) = fresh();
    let add = |store: &mut SqliteStore, key: &SshKeyRecord| {
        store.add_ssh_key(key, 2, &audit("ssh_key.added"))
    };
    assert_eq!(add(&mut store, &ssh_key("alice", 1))?, AddKey::Added);
    assert_eq!(add(&mut store, &ssh_key("alice", 1))?, AddKey::Duplicate);
    assert_eq!(
        add(&mut store, &ssh_key("bob", 1))?,
        AddKey::Duplicate,
        "alice's key for bob"
    );
    assert_eq!(add(&mut store, &ssh_key("alice", 2))?, AddKey::Added);
    assert_eq!(add(&mut store, &ssh_key("alice", 3))?, AddKey::TooMany);
    assert_eq!(audited(&store, "ssh_key.added")?, 2, "only what was added");
    assert_eq!(
        store.ssh_keys("alice")?,
        vec![ssh_key("alice", 1), ssh_key("alice", 2)]
    );
    assert!(store.ssh_keys("bob")?.is_empty());
    assert!(
        !store.remove_ssh_key("bob", "SHA256:key1", &audit("ssh_key.removed"))?,
        "alice's key, asked for as bob's"
    );
    assert!(store.remove_ssh_key("alice", "SHA256:key1", &audit("ssh_key.removed"))?);
    assert!(!store.remove_ssh_key("alice", "SHA256:key1", &audit("ssh_key.removed"))?);
    assert_eq!(audited(&store, "ssh_key.removed")?, 1);
    assert_eq!(
        add(&mut store, &ssh_key("bob", 1))?,
        AddKey::Added,
        "free again"
    );
    Ok(())
}

#[test]
fn ssh_key_use_sets_last_used_of_that_users_key_only() -> Result<()> {
    let (_dir, mut store) = fresh();
    store.add_ssh_key(&ssh_key("alice", 1), 5, &audit("ssh_key.added"))?;
    assert!(!store.record_ssh_key_use("bob", "SHA256:key1", 300, &audit("used"))?);
    assert!(store.record_ssh_key_use("alice", "SHA256:key1", 300, &audit("used"))?);
    assert_eq!(store.ssh_keys("alice")?[0].last_used, Some(300));
    assert_eq!(audited(&store, "used")?, 1);
    Ok(())
}

#[test]
fn a_trusting_create_in_someone_elses_directory_makes_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap_or_else(|e| panic!("{e}"));
    // Another user's directory (the tests run as root: uid 65534 is not us).
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap_or_else(|e| panic!("{e}"));
    let path = theirs.join("tap.db");
    let options = OpenOptions {
        create: true,
        check_trust: true,
    };
    let error = open_error(&path, options);
    assert!(error.contains("owned by uid 65534"), "{error}");
    assert!(!path.exists(), "nothing left behind");
}

#[test]
fn a_read_only_open_reads_everything_and_changes_nothing() -> Result<()> {
    let (dir, mut store) = fresh();
    store.put_pass(&sample(100), &audit("pass.issued"))?;
    store.append_audit(&audit("other"))?;
    let path = dir.path().join("tap.db");
    let files =
        || ["tap.db", "tap.db-wal"].map(|f| std::fs::read(dir.path().join(f)).unwrap_or_default());
    let before = files();
    let reader = SqliteStore::open_read_only(&path)?;
    let snapshot = reader.snapshot()?;
    assert_eq!(snapshot.passes, vec![sample(100)]);
    let events: Vec<_> = snapshot.audit.iter().map(|a| a.event.as_str()).collect();
    assert_eq!(events, ["pass.issued", "other"]);
    // It cannot write, even by mistake.
    let write = reader.conn.execute("DELETE FROM passes", []);
    assert!(write.is_err(), "{write:?}");
    drop(reader);
    assert_eq!(files(), before, "nothing changed on disk");
    Ok(())
}

#[test]
fn a_read_only_open_refuses_another_schema_and_leaves_it() -> Result<()> {
    let (dir, store) = fresh();
    let path = dir.path().join("tap.db");
    for version in [MIGRATIONS.len() - 1, 99] {
        store
            .conn
            .pragma_update(None, "user_version", version as i64)
            .map_err(|e| StoreError::io(e.to_string()))?;
        let error = SqliteStore::open_read_only(&path).err();
        let kind = error.as_ref().map(StoreError::kind);
        assert_eq!(kind, Some(StoreErrorKind::Schema), "{error:?}");
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains(&format!("schema version {version}")),
            "{error}"
        );
        let now: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::io(e.to_string()))?;
        assert_eq!(now as usize, version, "not migrated");
    }
    Ok(())
}

#[test]
fn an_offline_copy_follows_each_users_ssh_keys() -> Result<()> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut copy = SqliteStore::open_offline_copy(&dir.path().join("offline-keys.db"))?;
    let (one, two) = (ssh_key("alice", 1), ssh_key("alice", 2));
    copy.remember_ssh_keys("alice", &[one.clone(), two.clone()])?;
    assert_eq!(copy.ssh_keys("alice")?, vec![one.clone(), two.clone()]);
    // Removed in the database: gone from the copy at the next read.
    copy.remember_ssh_keys("alice", std::slice::from_ref(&two))?;
    assert_eq!(copy.ssh_keys("alice")?, vec![two.clone()]);
    // The key now bob's (one key, one user): it leaves alice's copy.
    let mut moved = two.clone();
    moved.user = "bob".into();
    copy.remember_ssh_keys("bob", std::slice::from_ref(&moved))?;
    assert_eq!(copy.ssh_keys("bob")?, vec![moved]);
    assert_eq!(copy.ssh_keys("alice")?, vec![]);
    // The copy is the daemon's alone, and no offline record was made.
    let mode = std::fs::metadata(dir.path().join("offline-keys.db"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or_default();
    assert_eq!(mode, 0o600);
    assert_eq!(copy.offline_records(10)?, vec![]);
    Ok(())
}

/// How often SQLite compiled `sql` again since the connection cached it.
fn reprepared(store: &SqliteStore, sql: &str) -> usize {
    store
        .conn
        .prepare_cached(sql)
        .map(|stmt| stmt.get_status(rusqlite::StatementStatus::RePrepare) as usize)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_sign_ins_reads_are_compiled_once() -> Result<()> {
    let (_dir, mut store) = fresh();
    store.add_key(&key("alice", 1), 8, &audit("key.added"))?;
    for user in ["alice", "bob", "alice", "carol", "bob"] {
        store.keys(user)?;
        store.pass(user)?;
        store.ssh_keys(user)?;
    }
    // The daemon keeps its statements; one bound to another user must not
    // be compiled again (it was, for every read with an ORDER BY, until
    // the query planner was told to keep one plan: `configure`).
    assert_eq!(reprepared(&store, super::keys::KEYS_OF_USER), 0);
    assert_eq!(reprepared(&store, super::passes::PASS_OF_USER), 0);
    assert_eq!(reprepared(&store, super::ssh_keys::SSH_KEYS_OF_USER), 0);
    Ok(())
}

fn audit_rows(store: &SqliteStore) -> i64 {
    store
        .conn
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_write_that_fails_or_panics_changes_nothing_and_ends_its_transaction() {
    let (_dir, mut store) = fresh();
    let failed = store.write(Durability::Synced, |tx| {
        insert_audit(tx, &audit("half"))?;
        tx.execute("INSERT INTO no_such_table VALUES (1)", [])
    });
    assert!(failed.is_err());
    assert!(store.conn.is_autocommit(), "rolled back");
    assert_eq!(audit_rows(&store), 0);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.write(Durability::Atomic, |tx| -> rusqlite::Result<()> {
            insert_audit(tx, &audit("half"))?;
            panic!("a bug in the middle of a write")
        })
    }));
    assert!(panicked.is_err());
    assert!(store.conn.is_autocommit(), "rolled back");
    assert_eq!(audit_rows(&store), 0);
    // The next write works, and commits.
    store
        .write(Durability::Synced, |tx| insert_audit(tx, &audit("whole")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(audit_rows(&store), 1);
}
