//! The PostgreSQL backend against a real server the tests start
//! (`tap_store::testkit::pg`, src/testkit/pg/cluster.rs).
//! Its own harness: one cluster for every case, stopped at the end. Run
//! `cargo test -p tap-store --test postgres [-- NAME]`. Nothing is skipped:
//! without PostgreSQL's binaries every case fails, naming tests/install-deps.sh.

use tap_store::testkit::pg;

use pg::cluster::{free_port, Cluster, ADMIN_PASSWORD, HOST_PASSWORD};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tap_core::audit::{AuditRecord, Event};
use tap_core::hashing::PassProof;
use tap_core::keys::credential::KeyCredential;
use tap_core::pass::testkit::sample;
use tap_core::pass::PassRecord;
use tap_core::ssh::record::SshKeyRecord;
use tap_core::store::{AddKey, AuditFilter, FailureCount, Store, StoreError, StoreErrorKind};
use tap_store::{
    PostgresConfig, PostgresStore, Roster, RosterEvent, Snapshot, SqliteStore, StoreWarning,
};

type Case = fn(&Cluster);

const CASES: &[(&str, Case)] = &[
    (
        "roles_sql_is_the_shipped_file_and_runs_twice",
        roles_sql_runs_twice,
    ),
    (
        "migrate_as_admin_then_both_roles_connect_without_warnings",
        migrate_and_connect,
    ),
    ("the_host_role_cannot_migrate", host_cannot_migrate),
    ("put_replaces_and_returns_the_old_pass", put_replaces),
    ("one_time_pass_is_consumed_once", one_time_once),
    (
        "success_rechecks_window_revocation_and_id",
        success_rechecks,
    ),
    ("failures_lock_at_the_limit", failures_lock),
    ("keys_add_list_limit_remove", keys_add_limit_remove),
    (
        "hosts_see_a_verifier_prove_the_pass_and_enroll_only_in_a_window",
        host_proof_and_window,
    ),
    ("key_counter_moves_once_and_only_forward", key_counter),
    ("ssh_keys_add_list_limit_remove_and_use", ssh_keys),
    ("audit_keeps_the_newest_in_order_with_the_host", audit_order),
    ("audit_filters_by_host_before_the_limit", audit_by_host),
    (
        "offline_record_found_by_its_mark_on_this_host_only",
        own_record_by_mark,
    ),
    (
        "roster_answers_users_without_pass_or_key_and_follows_the_database",
        roster_follows,
    ),
    (
        "a_multi_use_success_commits_without_waiting_for_the_disk_only",
        multi_use_success_not_synced,
    ),
    (
        "exactly_once_under_a_race_of_64_connections",
        race_exactly_once,
    ),
    (
        "failures_across_connections_lock_at_the_total",
        failures_across_connections,
    ),
    (
        "revoke_is_seen_by_the_next_sign_in_elsewhere",
        revoke_elsewhere,
    ),
    (
        "the_host_role_cannot_issue_revoke_or_delete",
        host_cannot_issue,
    ),
    (
        "too_many_rights_for_the_host_role_are_warned",
        excess_rights_warned,
    ),
    (
        "bad_url_wrong_password_and_password_file_are_refused",
        bad_input,
    ),
    ("a_certificate_for_another_name_is_refused", wrong_name),
    ("an_expired_certificate_is_refused", expired_certificate),
    ("a_newer_schema_is_refused_and_left_alone", newer_schema),
    (
        "an_unreachable_server_fails_within_connect_timeout",
        unreachable,
    ),
    (
        "a_sqlite_store_is_copied_whole_once_and_all_or_nothing",
        copy_from_sqlite,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<&(&str, Case)> = CASES
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    if chosen.is_empty() {
        return;
    }
    let started = Instant::now();
    let cluster = Cluster::start();
    let mut failed = Vec::new();
    for (name, case) in &chosen {
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&cluster)));
        let took = began.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({took:.2} s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({took:.2} s)");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("--- server log ---\n{}", cluster.log());
    }
    drop(cluster);
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.2} s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        for name in failed {
            eprintln!("failed: {name}");
        }
        std::process::exit(1);
    }
}

// ---- helpers ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Admin,
    Host,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Admin => "pam_tap_admin",
            Role::Host => "pam_tap_host",
        }
    }
    fn password(self) -> &'static str {
        match self {
            Role::Admin => ADMIN_PASSWORD,
            Role::Host => HOST_PASSWORD,
        }
    }
}

/// A 0600 file holding `text`, in the tests' private directory.
fn secret_file(cluster: &Cluster, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = cluster.client_dir().join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

/// The role's password file, written once (connections in other threads read it).
fn role_password_file(cluster: &Cluster, name: &str, role: Role) -> PathBuf {
    let path = cluster.client_dir().join(name);
    if !path.exists() {
        let staged = cluster.client_dir().join(format!("{name}.new"));
        secret_file(
            cluster,
            &format!("{name}.new"),
            &format!("{}\n", role.password()),
            0o600,
        );
        std::fs::rename(&staged, &path).unwrap_or_else(|e| panic!("{e}"));
    }
    path
}

fn config(cluster: &Cluster, db: &str, role: Role) -> PostgresConfig {
    let file = format!("{}.pw", role.name());
    PostgresConfig {
        url: format!(
            "postgresql://{}@127.0.0.1:{}/{db}?sslmode=verify-full",
            role.name(),
            cluster.port
        ),
        password_file: Some(role_password_file(cluster, &file, role)),
        ca_file: Some(cluster.ca_file()),
        connect_timeout: Duration::from_secs(3),
        statement_timeout: Duration::from_secs(10),
    }
}

fn connect(cluster: &Cluster, db: &str, role: Role) -> PostgresStore {
    PostgresStore::connect(&config(cluster, db, role)).unwrap_or_else(|e| panic!("{e}"))
}

/// A new database, migrated by the admin role; returns (db, admin, host).
fn fresh(cluster: &Cluster) -> (String, PostgresStore, PostgresStore) {
    let db = cluster.database();
    let admin = PostgresStore::connect_and_migrate(&config(cluster, &db, Role::Admin))
        .unwrap_or_else(|e| panic!("{e}"));
    let host = connect(cluster, &db, Role::Host);
    (db, admin, host)
}

fn connect_error(config: &PostgresConfig) -> String {
    match PostgresStore::connect(config) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

fn connect_kind(config: &PostgresConfig) -> Option<StoreErrorKind> {
    PostgresStore::connect(config).err().map(|e| e.kind())
}

fn audit(event: &str) -> AuditRecord {
    let mut record = AuditRecord::new(0, Event::PassIssued, "alice", "root");
    record.event = event.into();
    record
}

fn audited(store: &PostgresStore, event: &str) -> usize {
    store
        .audit(None, 100_000)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter(|r| r.event == event)
        .count()
}

/// Raw SQL as one of the roles, over TLS, as an attacker holding its
/// password would send it; the server's SQLSTATE on refusal.
fn raw(cluster: &Cluster, db: &str, role: Role, sql: &str) -> Result<u64, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        .unwrap_or_else(|e| panic!("{e}"));
    builder
        .set_ca_file(cluster.ca_file())
        .unwrap_or_else(|e| panic!("{e}"));
    let tls = postgres_openssl::MakeTlsConnector::new(builder.build());
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(cluster.port)
        .user(role.name())
        .password(role.password())
        .dbname(db)
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    runtime.block_on(async move {
        let (client, connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
        let driver = tokio::spawn(connection);
        let result = client.execute(sql, &[]).await.map_err(|e| {
            e.code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| e.to_string())
        });
        drop(client);
        let _ = driver.await;
        result
    })
}

fn one_time(id: i64) -> PassRecord {
    PassRecord {
        one_time: true,
        id,
        ..sample(100)
    }
}

// ---- cases ----

fn roles_sql_runs_twice(cluster: &Cluster) {
    let shipped =
        std::fs::read_to_string(pg::cluster::roles_sql_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shipped,
        tap_store::postgres::ROLES_SQL,
        "the constant is the file"
    );
    let db = cluster.database();
    let again = cluster.sql_file(&db, &pg::cluster::roles_sql_path());
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        cluster.sql(
            &db,
            "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'pam_tap'"
        ),
        "pam_tap_admin"
    );
}

fn migrate_and_connect(cluster: &Cluster) {
    let db = cluster.database();
    let early = connect_error(&config(cluster, &db, Role::Host));
    assert!(
        early.contains("schema version 0") && early.contains("pam_tap_admin"),
        "{early}"
    );
    let kind = connect_kind(&config(cluster, &db, Role::Host));
    assert_eq!(kind, Some(StoreErrorKind::Schema));
    let admin = PostgresStore::connect_and_migrate(&config(cluster, &db, Role::Admin))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cluster.sql(&db, "SELECT version FROM pam_tap.schema_version"),
        tap_store::postgres::SCHEMA_VERSION.to_string()
    );
    assert!(admin.warnings().is_empty(), "{:?}", admin.warnings());
    // A second migration finds nothing to do.
    drop(
        PostgresStore::connect_and_migrate(&config(cluster, &db, Role::Admin))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let host = connect(cluster, &db, Role::Host);
    assert!(host.warnings().is_empty(), "{:?}", host.warnings());
    assert_eq!(
        host.server().as_deref(),
        Some(format!("127.0.0.1:{}", cluster.port).as_str())
    );
    let shown = cluster.sql(
        &db,
        "SELECT application_name FROM pg_stat_activity WHERE usename = 'pam_tap_host'",
    );
    assert!(shown.starts_with("pam_tap@"), "{shown}");
    let timeout = cluster.sql(
        &db,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.usename = 'pam_tap_host' AND s.ssl",
    );
    assert_eq!(timeout, "1");
}

fn host_cannot_migrate(cluster: &Cluster) {
    let db = cluster.database();
    let error = PostgresStore::connect_and_migrate(&config(cluster, &db, Role::Host)).err();
    assert_eq!(
        error.as_ref().map(StoreError::kind),
        Some(StoreErrorKind::Refused)
    );
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains("permission denied") && error.contains("42501"),
        "{error}"
    );
    assert_eq!(
        cluster.sql(
            &db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'pam_tap'"
        ),
        "0",
        "nothing half-made"
    );
}

fn put_replaces(cluster: &Cluster) {
    let (_db, mut admin, host) = fresh(cluster);
    let first = sample(100);
    assert_eq!(
        admin
            .put_pass(&first, &audit("pass.issued"))
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    let second = PassRecord {
        id: 8,
        ..sample(200)
    };
    let old = admin
        .put_pass(&second, &audit("pass.replaced"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old, Some(first));
    // hosts see the hash only in verifier form
    let seen = host
        .pass("alice")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pass"));
    assert!(seen.phc.starts_with("$argon2id-sha256$"), "{}", seen.phc);
    assert_eq!(
        seen,
        PassRecord {
            phc: seen.phc.clone(),
            ..second
        }
    );
    assert_eq!(host.passes().unwrap_or_else(|e| panic!("{e}")).len(), 1);
    assert_eq!(
        host.audit(Some("alice"), 10)
            .unwrap_or_else(|e| panic!("{e}"))
            .len(),
        2
    );
    assert_eq!(host.pass("bob").unwrap_or_else(|e| panic!("{e}")), None);
}

fn one_time_once(cluster: &Cluster) {
    let (_db, mut admin, mut host) = fresh(cluster);
    let pass = one_time(7);
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(host
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            150,
            500,
            &audit("signin.pass.success")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!host
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            151,
            500,
            &audit("signin.pass.success")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    let stored = host
        .pass("alice")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pass"));
    assert_eq!(
        (stored.used_at, stored.enroll_until, stored.last_used),
        (Some(150), Some(500), Some(150))
    );
    assert_eq!(
        audited(&host, "signin.pass.success"),
        1,
        "only the change is audited"
    );
}

fn success_rechecks(cluster: &Cluster) {
    let (_db, mut admin, mut host) = fresh(cluster);
    let pass = sample(100);
    let replaced = PassRecord {
        id: 6,
        ..sample(100)
    };
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ok = |p: &PassRecord, now| {
        host.record_success(p, &PassProof::from_phc(&p.phc), now, 500, &audit("x"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(!ok(&pass, 99), "before start");
    assert!(!ok(&pass, 100 + 3_600), "at expiry");
    assert!(!ok(&replaced, 150), "a replaced pass");
    assert!(
        !ok(
            &PassRecord {
                one_time: true,
                ..pass.clone()
            },
            150
        ),
        "not as one-time"
    );
    assert!(ok(&pass, 150));
    assert!(ok(&pass, 160), "multi-use");
    assert!(admin
        .revoke("alice", 170, &audit("pass.revoked"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!admin
        .revoke("alice", 171, &audit("pass.revoked"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!admin
        .revoke("bob", 171, &audit("pass.revoked"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!host
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            180,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(audited(&admin, "x"), 2);
    assert_eq!(audited(&admin, "pass.revoked"), 1);
}

fn failures_lock(cluster: &Cluster) {
    let (_db, mut admin, mut host) = fresh(cluster);
    let pass = sample(100);
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let counts: Vec<FailureCount> = (0..4)
        .map(|i| {
            host.record_failure("alice", 7, 110 + i, 3, &|_| vec![audit("f")])
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    assert_eq!(
        counts.iter().map(|c| c.failures).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        counts.iter().map(|c| c.locked_now).collect::<Vec<_>>(),
        vec![false, false, true, false]
    );
    assert_eq!(
        host.pass("alice")
            .unwrap_or_else(|e| panic!("{e}"))
            .and_then(|p| p.locked_at),
        Some(112)
    );
    assert!(
        !host
            .record_success(
                &pass,
                &PassProof::from_phc(&pass.phc),
                120,
                500,
                &audit("x")
            )
            .unwrap_or_else(|e| panic!("{e}")),
        "locked"
    );
    // A replaced or absent pass counts nothing, and the audit still runs.
    let none = host
        .record_failure("alice", 99, 130, 3, &|c| {
            vec![audit(&format!("gone {}", c.failures))]
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        none,
        FailureCount {
            failures: 0,
            locked_now: false
        }
    );
    assert_eq!(audited(&host, "gone 0"), 1);
    assert_eq!(audited(&host, "f"), 4);
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

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The host role reads passes only in verifier form, checks a real pass
/// against it, and records a sign-in only with the pass's proof; a key is
/// added by a host only while the user's window is open by the database's
/// clock, by the admin role always.
fn host_proof_and_window(cluster: &Cluster) {
    let (db, mut admin, mut host) = fresh(cluster);
    let now = wall_clock();
    let cheap = tap_core::hashing::HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let phc = tap_core::hashing::hash("K7QM9XRT4D", &cheap).unwrap_or_else(|e| panic!("{e}"));
    let issued = PassRecord {
        phc: phc.clone(),
        start: now - 10,
        expires: now + 3_600,
        ..sample(now - 10)
    };
    admin
        .put_pass(&issued, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = host
        .pass("alice")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no pass"));
    // the database's view and core agree on the verifier; the hash is not shown
    assert_eq!(Ok(seen.phc.clone()), tap_core::hashing::verifier_form(&phc));
    let field = phc.rsplit_once('$').map(|(_, f)| f).unwrap_or_default();
    assert!(!seen.phc.contains(field));
    assert_eq!(
        raw(cluster, &db, Role::Host, "SELECT phc FROM pam_tap.passes"),
        Err("42501".into())
    );
    let proof = tap_core::hashing::verify_in(
        "K7QM9XRT4D",
        &seen.phc,
        &mut tap_core::hashing::HashMemory::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|| panic!("the right pass must verify against the verifier"));
    // A key before any sign-in: the host may not add it, the admin may.
    let add = |store: &mut PostgresStore, k: &KeyCredential| {
        store
            .add_key(k, 5, &audit("key.enrolled"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(add(&mut host, &key("alice", 1)), AddKey::WindowClosed);
    assert_eq!(audited(&host, "key.enrolled"), 0);
    // What a stolen host credential has: the verifier, and its own field.
    let verifier_field = seen
        .phc
        .rsplit_once('$')
        .map(|(_, f)| f)
        .unwrap_or_default();
    for forged in ["", verifier_field, "...", &seen.phc] {
        let forged = PassProof::from_phc(&format!("$x${forged}"));
        assert!(!host
            .record_success(
                &seen,
                &forged,
                now,
                now + 600,
                &audit("signin.pass.success")
            )
            .unwrap_or_else(|e| panic!("{e}")));
    }
    let still = host.pass("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(still.and_then(|p| p.enroll_until), None, "nothing recorded");
    assert_eq!(add(&mut host, &key("alice", 1)), AddKey::WindowClosed);
    // The pass's own proof records the sign-in and opens the window.
    assert!(host
        .record_success(&seen, &proof, now, now + 600, &audit("signin.pass.success"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(add(&mut host, &key("alice", 1)), AddKey::Added);
    assert_eq!(add(&mut host, &key("alice", 1)), AddKey::Duplicate);
    assert_eq!(audited(&host, "key.enrolled"), 1);
    // bob has no window: not for his keys, nor his SSH keys, from a host
    assert_eq!(add(&mut host, &key("bob", 2)), AddKey::WindowClosed);
    assert_eq!(
        host.add_ssh_key(&ssh_key("bob", 2), 5, &audit("ssh_key.added"))
            .unwrap_or_else(|e| panic!("{e}")),
        AddKey::WindowClosed
    );
    assert_eq!(
        host.add_ssh_key(&ssh_key("alice", 2), 5, &audit("ssh_key.added"))
            .unwrap_or_else(|e| panic!("{e}")),
        AddKey::Added
    );
    assert_eq!(add(&mut admin, &key("bob", 2)), AddKey::Added);
    // A window in the past (a host cannot choose the clock) is closed.
    raw(
        cluster,
        &db,
        Role::Admin,
        &format!("UPDATE pam_tap.passes SET enroll_until = {}", now - 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(add(&mut host, &key("alice", 3)), AddKey::WindowClosed);
    // A revoked pass's window is closed too.
    raw(
        cluster,
        &db,
        Role::Admin,
        &format!(
            "UPDATE pam_tap.passes SET enroll_until = {}, revoked_at = {now}",
            now + 600
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(add(&mut host, &key("alice", 3)), AddKey::WindowClosed);
}

fn keys_add_limit_remove(cluster: &Cluster) {
    let (_db, mut admin, host) = fresh(cluster);
    let mut add = |k: &KeyCredential| {
        admin
            .add_key(k, 2, &audit("key.enrolled"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(add(&key("alice", 1)), AddKey::Added);
    assert_eq!(add(&key("alice", 1)), AddKey::Duplicate);
    assert_eq!(add(&key("alice", 2)), AddKey::Added);
    assert_eq!(add(&key("alice", 3)), AddKey::TooMany);
    assert_eq!(add(&key("bob", 3)), AddKey::Added);
    assert_eq!(
        host.keys("alice").unwrap_or_else(|e| panic!("{e}")),
        vec![key("alice", 1), key("alice", 2)]
    );
    assert_eq!(audited(&host, "key.enrolled"), 3);
    // A plan's two reads in one round trip give what the two calls give.
    admin
        .put_pass(&one_time(7), &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    for user in ["alice", "bob", "nobody"] {
        let both = host.keys_and_pass(user).unwrap_or_else(|e| panic!("{e}"));
        let apart = (host.keys(user), host.pass(user));
        assert_eq!(
            Ok(both),
            apart.0.and_then(|keys| apart.1.map(|pass| (keys, pass))),
            "{user}"
        );
    }
    host.reachable().unwrap_or_else(|e| panic!("{e}"));
    assert!(admin
        .remove_key("alice", &[1; 16], &audit("key.removed"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!admin
        .remove_key("alice", &[1; 16], &audit("key.removed"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(
        !admin
            .remove_key("alice", &[3; 16], &audit("key.removed"))
            .unwrap_or_else(|e| panic!("{e}")),
        "bob's key"
    );
    assert_eq!(
        host.keys("alice").unwrap_or_else(|e| panic!("{e}")).len(),
        1
    );
    assert_eq!(audited(&host, "key.removed"), 1);
}

fn key_counter(cluster: &Cluster) {
    let (db, mut admin, mut host) = fresh(cluster);
    let stored = key("alice", 1);
    admin
        .add_key(&stored, 5, &audit("key.enrolled"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut other = connect(cluster, &db, Role::Host);
    assert!(host
        .record_key_use(&stored, 11, 200, &audit("signin.key.success"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(
        !other
            .record_key_use(&stored, 11, 201, &audit("signin.key.success"))
            .unwrap_or_else(|e| panic!("{e}")),
        "the same counter value on another connection: a clone"
    );
    let now = host.keys("alice").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((now[0].sign_count, now[0].last_used), (11, Some(200)));
    let moved = KeyCredential {
        sign_count: 11,
        ..stored.clone()
    };
    assert!(
        !host
            .record_key_use(&moved, 5, 202, &audit("signin.key.success"))
            .unwrap_or_else(|e| panic!("{e}")),
        "never backwards"
    );
    assert_eq!(audited(&host, "signin.key.success"), 1);
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

fn ssh_keys(cluster: &Cluster) {
    let (_db, mut admin, mut host) = fresh(cluster);
    let mut add = |k: &SshKeyRecord| {
        admin
            .add_ssh_key(k, 2, &audit("ssh_key.added"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(add(&ssh_key("alice", 1)), AddKey::Added);
    assert_eq!(add(&ssh_key("alice", 1)), AddKey::Duplicate);
    assert_eq!(
        add(&ssh_key("bob", 1)),
        AddKey::Duplicate,
        "alice's key for bob"
    );
    assert_eq!(add(&ssh_key("alice", 2)), AddKey::Added);
    assert_eq!(add(&ssh_key("alice", 3)), AddKey::TooMany);
    assert_eq!(audited(&host, "ssh_key.added"), 2);
    assert_eq!(
        host.ssh_keys("alice").unwrap_or_else(|e| panic!("{e}")),
        vec![ssh_key("alice", 1), ssh_key("alice", 2)]
    );
    assert!(!host
        .record_ssh_key_use("bob", "SHA256:key1", 300, &audit("used"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(host
        .record_ssh_key_use("alice", "SHA256:key1", 300, &audit("used"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        host.ssh_keys("alice").unwrap_or_else(|e| panic!("{e}"))[0].last_used,
        Some(300)
    );
    assert_eq!(audited(&host, "used"), 1);
    assert!(!admin
        .remove_ssh_key("bob", "SHA256:key1", &audit("ssh_key.removed"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(admin
        .remove_ssh_key("alice", "SHA256:key1", &audit("ssh_key.removed"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!admin
        .remove_ssh_key("alice", "SHA256:key1", &audit("ssh_key.removed"))
        .unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(audited(&host, "ssh_key.removed"), 1);
    assert_eq!(
        admin
            .add_ssh_key(&ssh_key("bob", 1), 2, &audit("ssh_key.added"))
            .unwrap_or_else(|e| panic!("{e}")),
        AddKey::Added,
        "free again"
    );
}

fn audit_order(cluster: &Cluster) {
    let (db, _admin, mut host) = fresh(cluster);
    for i in 0..5 {
        host.append_audit(&AuditRecord {
            time: i,
            ..audit("e")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let newest = host.audit(None, 3).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        newest.iter().map(|a| a.time).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert!(newest.windows(2).all(|w| w[0].seq < w[1].seq));
    let hosts = cluster.sql(&db, "SELECT DISTINCT host FROM pam_tap.audit");
    assert_eq!(hosts, host.host_name());
    assert!(!hosts.is_empty());
}

fn audit_by_host(cluster: &Cluster) {
    let (db, _admin, mut host) = fresh(cluster);
    let here = host.host_name().to_string();
    for i in 0..3 {
        host.append_audit(&AuditRecord {
            time: i,
            ..audit("e")
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // five newer records, as another host's tapd writes them
    cluster.sql(
        &db,
        "SELECT pam_tap.append_audit((10 + g)::BIGINT, 'e', 'bob', 'bob', 'sshd', '', '', '', '', \
         'other-host') FROM generate_series(0, 4) g",
    );
    let read = |user: Option<&str>, host_name: Option<&str>, limit: u32| {
        host.audit_where(
            AuditFilter {
                user,
                host: host_name,
            },
            limit,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|a| (a.time, a.host.clone()))
        .collect::<Vec<_>>()
    };
    // filtered in the query: this host's newest two, though five are newer
    assert_eq!(
        read(None, Some(&here), 2),
        vec![(1, here.clone()), (2, here.clone())]
    );
    let other: Vec<_> = (10..15).map(|t| (t, "other-host".to_string())).collect();
    assert_eq!(read(None, Some("other-host"), 100), other);
    assert_eq!(read(Some("bob"), Some("other-host"), 100), other);
    assert_eq!(read(Some("alice"), Some("other-host"), 100), vec![]);
    assert_eq!(read(None, Some("no-such-host"), 100), vec![]);
    // unfiltered: every host's, each naming its own
    let all = read(None, None, 100);
    assert_eq!(all.len(), 8);
    assert_eq!(all.iter().filter(|(_, h)| *h == here).count(), 3);
}

/// Reconciling asks whether this host already delivered an offline record
/// (its detail's end): another host's record with the same end, another
/// user's, or a mark only contained in a detail, is not this one.
fn own_record_by_mark(cluster: &Cluster) {
    let (db, _admin, mut host) = fresh(cluster);
    let mark = "(offline: the database was unreachable; record 0123456789abcdef)";
    let has = |host: &PostgresStore, user: &str, end: &str| {
        host.has_own_record(user, end)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(!has(&host, "alice", mark));
    cluster.sql(
        &db,
        &format!(
            "SELECT pam_tap.append_audit(1, 'e', 'alice', 'alice', 'login', '', '', 'key k {mark}', \
             '', 'other-host')"
        ),
    );
    assert!(
        !has(&host, "alice", mark),
        "another host's record is not this host's"
    );
    host.append_audit(&AuditRecord {
        detail: format!("key k {mark} and more"),
        ..audit("e")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!has(&host, "alice", mark), "the mark must end the detail");
    host.append_audit(&AuditRecord {
        detail: format!("key k {mark}"),
        ..audit("e")
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(has(&host, "alice", mark));
    assert!(!has(&host, "bob", mark));
    assert!(!has(
        &host,
        "alice",
        "(offline: the database was unreachable; record 0123456789abcdee)"
    ));
}

/// Polls `what` every 10 ms for up to `limit`; how long it took.
fn within(limit: Duration, what: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if what() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// The roster (store/src/postgres/roster.rs): read at start, told of new
/// passes and keys by the triggers, trusted only while its session
/// answers, read again by a new session; a store that uses it answers a
/// plan for a user with neither pass nor key without asking the database.
fn roster_follows(cluster: &Cluster) {
    let (db, mut admin, mut host) = fresh(cluster);
    let before = one_time(1);
    admin
        .put_pass(&before, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let roster = Roster::start(&config(cluster, &db, Role::Host), move |e| {
        seen.lock().unwrap_or_else(|e| panic!("{e}")).push(e)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let roster = Arc::new(roster);
    let took = within(Duration::from_secs(10), || roster.is_current());
    println!("  roster current after {took:?}");
    assert!(took.is_some(), "roster never current: {events:?}");
    assert_eq!(
        events.lock().map(|e| e.clone()).unwrap_or_default(),
        vec![RosterEvent::Current { users: 1 }]
    );
    assert!(!roster.has_nothing(&before.user));
    assert!(roster.has_nothing("bob"));

    // New rows elsewhere (another host's admin): told by NOTIFY.
    let mut pass = one_time(2);
    pass.user = "dave".into();
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = within(Duration::from_secs(2), || !roster.has_nothing("dave"));
    println!("  a new pass known after {took:?}");
    assert!(took.is_some(), "the new pass was never heard of");
    assert_eq!(
        admin.add_key(&key("carol", 1), 5, &audit("key.enrolled")),
        Ok(AddKey::Added)
    );
    let took = within(Duration::from_secs(2), || !roster.has_nothing("carol"));
    println!("  a new key known after {took:?}");
    assert!(took.is_some(), "the new key was never heard of");

    // A store using it answers bob's plan without the database: with the
    // host role's reads taken away, bob's plan is still answered (nothing),
    // and alice's is refused, as it must be asked.
    host.use_roster(Arc::clone(&roster));
    cluster.sql(
        &db,
        "REVOKE SELECT ON pam_tap.keys, pam_tap.host_passes FROM pam_tap_host",
    );
    assert_eq!(host.keys_and_pass("bob"), Ok((vec![], None)));
    let asked = host.keys_and_pass(&before.user);
    assert!(asked.is_err(), "{asked:?}");
    cluster.sql(
        &db,
        "GRANT SELECT ON pam_tap.keys, pam_tap.host_passes TO pam_tap_host",
    );
    assert_eq!(host.keys_and_pass("carol").map(|(k, _)| k.len()), Ok(1));

    // Its session ended: not trusted until a new one has read the list
    // again, which has what was written meanwhile.
    cluster.sql(
        &db,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name LIKE 'pam_tap-roster@%'",
    );
    let took = within(Duration::from_secs(2), || !roster.is_current());
    assert!(took.is_some(), "still trusted after its session ended");
    assert!(
        !roster.has_nothing("erin"),
        "not current: nobody is known to have nothing"
    );
    let mut pass = one_time(3);
    pass.user = "erin".into();
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let took = within(Duration::from_secs(10), || roster.is_current());
    println!("  current again after {took:?}");
    assert!(took.is_some(), "roster never current again: {events:?}");
    assert!(!roster.has_nothing("erin"));
    assert!(roster.has_nothing("bob"));
    // A flood on the channel (anyone who may connect can NOTIFY it): past
    // its bound the roster is no longer current, so every sign-in asks.
    cluster.sql(
        &db,
        "SELECT count(pg_notify('pam_tap_credentials', 'flood' || g)) \
         FROM generate_series(1, 100001) g",
    );
    let took = within(Duration::from_secs(20), || !roster.is_current());
    println!("  flooded: not current after {took:?}");
    assert!(took.is_some(), "still current after a flood of names");
    assert!(!roster.has_nothing("bob"));
    let events = events.lock().map(|e| e.clone()).unwrap_or_default();
    assert!(
        matches!(
            events.as_slice(),
            [
                RosterEvent::Current { users: 1 },
                RosterEvent::Lost(_),
                RosterEvent::Current { users: 4 }
            ]
        ),
        "{events:?}"
    );
}

/// record_success (schema step 2): a multi-use pass's transaction commits
/// with synchronous_commit off, a one-time pass's as the server says; the
/// setting ends with the transaction, so the session's next is synced.
fn multi_use_success_not_synced(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    let call = |one_time: bool| {
        format!(
            "WITH r AS (SELECT pam_tap.record_success('nobody', 1, {one_time}, 0, 0, 'x', 0, \
             'e', 'nobody', 'nobody', '', '', '', '', '', 'h') AS ok) \
             SELECT ok::text || ',' || current_setting('synchronous_commit') FROM r"
        )
    };
    let out = cluster
        .psql(&db)
        .args(["-c", &call(false), "-c", "SHOW synchronous_commit"])
        .args(["-c", &call(true)])
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["false,off", "on", "false,on"]
    );
}

fn race_exactly_once(cluster: &Cluster) {
    const THREADS: usize = 64;
    const ROUNDS: i64 = 20;
    let (db, mut admin, _host) = fresh(cluster);
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let (tx, rx) = std::sync::mpsc::channel::<(i64, Result<bool, String>)>();
    let mut workers = Vec::new();
    for _ in 0..THREADS {
        let barrier = Arc::clone(&barrier);
        let tx = tx.clone();
        // Connected here, so a failure fails the case instead of stranding the barrier.
        let mut store = connect(cluster, &db, Role::Host);
        workers.push(std::thread::spawn(move || {
            barrier.wait();
            for round in 0..ROUNDS {
                barrier.wait();
                let won = store
                    .record_success(
                        &one_time(1000 + round),
                        &PassProof::from_phc(&one_time(1000 + round).phc),
                        150,
                        500,
                        &audit("signin.pass.success"),
                    )
                    .map_err(|e| e.to_string());
                // Never panic between barriers: the others would wait forever.
                let _ = tx.send((round, won));
                barrier.wait();
            }
        }));
    }
    drop(tx);
    barrier.wait();
    let started = Instant::now();
    for round in 0..ROUNDS {
        admin
            .put_pass(&one_time(1000 + round), &audit("pass.issued"))
            .unwrap_or_else(|e| panic!("{e}"));
        barrier.wait();
        barrier.wait();
        let answers: Vec<_> = rx.try_iter().filter(|(r, _)| *r == round).collect();
        assert_eq!(
            answers.len(),
            THREADS,
            "round {round}: every sign-in answered"
        );
        let errors: Vec<_> = answers
            .iter()
            .filter_map(|(_, a)| a.as_ref().err())
            .collect();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
        let wins = answers.iter().filter(|(_, a)| a == &Ok(true)).count();
        assert_eq!(
            wins, 1,
            "round {round}: {wins} sign-ins consumed one one-time pass"
        );
        assert_eq!(
            admin
                .pass("alice")
                .unwrap_or_else(|e| panic!("{e}"))
                .and_then(|p| p.used_at),
            Some(150)
        );
    }
    for worker in workers {
        worker.join().unwrap_or_else(|_| panic!("a worker failed"));
    }
    assert_eq!(
        audited(&admin, "signin.pass.success"),
        usize::try_from(ROUNDS).unwrap_or(0)
    );
    eprintln!(
        "  {ROUNDS} rounds x {THREADS} connections: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

fn failures_across_connections(cluster: &Cluster) {
    const CONNECTIONS: usize = 8;
    const EACH: i64 = 3;
    const MAX: u32 = 5;
    let (db, mut admin, _host) = fresh(cluster);
    admin
        .put_pass(&sample(100), &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    let barrier = Arc::new(Barrier::new(CONNECTIONS));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let mut store = connect(cluster, &db, Role::Host);
            std::thread::spawn(move || {
                barrier.wait();
                (0..EACH)
                    .map(|i| {
                        store
                            .record_failure("alice", 7, 110 + i, MAX, &|c| {
                                vec![audit(if c.locked_now { "locked" } else { "failure" })]
                            })
                            .unwrap_or_else(|e| panic!("{e}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let counts: Vec<FailureCount> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_else(|_| panic!("a worker failed")))
        .collect();
    let mut seen: Vec<u32> = counts.iter().map(|c| c.failures).collect();
    seen.sort_unstable();
    let total = u32::try_from(CONNECTIONS).unwrap_or(0) * 3;
    assert_eq!(
        seen,
        (1..=total).collect::<Vec<_>>(),
        "each failure saw its own count"
    );
    assert_eq!(counts.iter().filter(|c| c.locked_now).count(), 1);
    assert!(counts.iter().any(|c| c.failures == MAX && c.locked_now));
    let stored = admin
        .pass("alice")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(stored.failures, total);
    assert!(stored.locked_at.is_some());
    assert_eq!(audited(&admin, "locked"), 1);
}

fn revoke_elsewhere(cluster: &Cluster) {
    let (db, mut admin, mut host_a) = fresh(cluster);
    let mut host_b = connect(cluster, &db, Role::Host);
    let pass = sample(100);
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(host_a
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            150,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(host_b
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            151,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    admin
        .revoke("alice", 152, &audit("pass.revoked"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(host_b
        .pass("alice")
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|p| p.revoked_at)
        .is_some());
    assert!(!host_b
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            153,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    assert!(!host_a
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            153,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
}

fn host_cannot_issue(cluster: &Cluster) {
    let (db, mut admin, mut host) = fresh(cluster);
    let pass = sample(100);
    admin
        .put_pass(&pass, &audit("pass.issued"))
        .unwrap_or_else(|e| panic!("{e}"));
    admin
        .add_key(&key("alice", 1), 5, &audit("key.enrolled"))
        .unwrap_or_else(|e| panic!("{e}"));
    let before = cluster.sql(
        &db,
        "SELECT md5(string_agg(p::text, ',')) FROM pam_tap.passes p",
    );
    for sql in [
        "INSERT INTO pam_tap.passes (\"user\", id, phc, issued_by, created, start, expires, one_time) \
         VALUES ('mallory', 1, '$argon2id$x', 'root', 0, 0, 9999999999, false)",
        "UPDATE pam_tap.passes SET phc = '$argon2id$attacker'",
        "UPDATE pam_tap.passes SET used_at = NULL, failures = 0, locked_at = NULL, revoked_at = NULL",
        "DELETE FROM pam_tap.passes",
        "TRUNCATE pam_tap.audit",
        "DELETE FROM pam_tap.audit",
        "UPDATE pam_tap.keys SET sign_count = 0",
        "INSERT INTO pam_tap.keys SELECT 'mallory', credential_id, public_key, algorithm, aaguid, \
         sign_count, label, attestation, created, last_used FROM pam_tap.keys",
        "CREATE TABLE pam_tap.mine (x int)",
        "UPDATE pam_tap.schema_version SET version = 0",
    ] {
        assert_eq!(raw(cluster, &db, Role::Host, sql), Err("42501".to_string()), "{sql}");
    }
    assert_eq!(
        raw(
            cluster,
            &db,
            Role::Admin,
            "UPDATE pam_tap.passes SET last_used = last_used"
        ),
        Ok(1),
        "the admin may"
    );
    let error = host
        .put_pass(
            &PassRecord {
                id: 9,
                ..sample(100)
            },
            &audit("pass.issued"),
        )
        .err();
    assert_eq!(
        error.as_ref().map(StoreError::kind),
        Some(StoreErrorKind::Refused)
    );
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains("permission denied") && error.contains("pam_tap_admin"),
        "{error}"
    );
    let error = host
        .revoke("alice", 150, &audit("pass.revoked"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("permission denied"), "{error}");
    assert!(host
        .remove_key("alice", &[1; 16], &audit("key.removed"))
        .is_err());
    // a host adds a key only in the user's window (see host_proof_and_window)
    assert_eq!(
        host.add_key(&key("alice", 2), 5, &audit("key.enrolled")),
        Ok(AddKey::WindowClosed)
    );
    assert_eq!(
        before,
        cluster.sql(
            &db,
            "SELECT md5(string_agg(p::text, ',')) FROM pam_tap.passes p"
        ),
        "passes untouched"
    );
    assert_eq!(
        host.keys("alice").unwrap_or_else(|e| panic!("{e}")),
        vec![key("alice", 1)]
    );
    // The session still works after refusals (and nothing was left half-done).
    assert!(host
        .record_success(
            &pass,
            &PassProof::from_phc(&pass.phc),
            150,
            500,
            &audit("x")
        )
        .unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(audited(&host, "pass.revoked"), 0);
}

fn excess_rights_warned(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    cluster.sql(&db, "GRANT INSERT ON pam_tap.passes TO pam_tap_host; GRANT UPDATE (failures) ON pam_tap.passes TO pam_tap_host; GRANT SELECT (phc) ON pam_tap.passes TO pam_tap_host; GRANT EXECUTE ON FUNCTION pam_tap.append_audit(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO PUBLIC");
    let host = connect(cluster, &db, Role::Host);
    let shown: Vec<String> = host.warnings().iter().map(ToString::to_string).collect();
    for wanted in [
        StoreWarning::ExcessRight {
            role: "pam_tap_host".into(),
            right: "INSERT on pam_tap.passes".into(),
        },
        StoreWarning::ExcessRight {
            role: "pam_tap_host".into(),
            right: "UPDATE on pam_tap.passes".into(),
        },
        StoreWarning::ExcessRight {
            role: "PUBLIC".into(),
            right: "EXECUTE on pam_tap.append_audit".into(),
        },
        StoreWarning::ExcessRight {
            role: "pam_tap_host".into(),
            right: "SELECT on pam_tap.passes (the pass hashes; hosts read host_passes)".into(),
        },
    ] {
        assert!(
            host.warnings().contains(&wanted),
            "{wanted:?} not in {shown:?}"
        );
    }
    assert!(
        shown.iter().all(|s| s.contains("stolen host credential")),
        "{shown:?}"
    );
    // The admin's connect checks the host role too.
    let admin = connect(cluster, &db, Role::Admin);
    assert_eq!(admin.warnings().len(), 4, "{:?}", admin.warnings());
    cluster.sql(&db, "GRANT pam_tap_admin TO pam_tap_host");
    let host = connect(cluster, &db, Role::Host);
    assert!(
        host.warnings()
            .iter()
            .any(|w| w.to_string().contains("membership of pam_tap_admin")),
        "{:?}",
        host.warnings()
    );
    cluster.sql(&db, "REVOKE pam_tap_admin FROM pam_tap_host");
}

fn bad_input(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    let good = config(cluster, &db, Role::Host);
    let audit_rows = || cluster.sql(&db, "SELECT count(*) FROM pam_tap.audit");
    let rows = audit_rows();
    let cases: Vec<(PostgresConfig, &str, StoreErrorKind)> = vec![
        (
            PostgresConfig {
                url: "mysql://db/pam_tap".into(),
                ..good.clone()
            },
            "must start with postgresql://",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                url: format!(
                    "postgresql://pam_tap_host:{HOST_PASSWORD}@127.0.0.1:{}/{db}",
                    cluster.port
                ),
                ..good.clone()
            },
            "password_file",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                url: format!(
                    "postgresql://pam_tap_host@127.0.0.1:{}/{db}?sslmode=require",
                    cluster.port
                ),
                ..good.clone()
            },
            "sslmode=require does not check",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                url: format!(
                    "postgresql://pam_tap_host@127.0.0.1:{}/{db}?sslmode=verify-full",
                    cluster.port
                ),
                ca_file: None,
                ..good.clone()
            },
            "needs the CA",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                url: format!(
                    "postgresql://pam_tap_host@127.0.0.1:{}/nosuchdb",
                    cluster.port
                ),
                ..good.clone()
            },
            "nosuchdb",
            StoreErrorKind::Refused,
        ),
        (
            PostgresConfig {
                url: format!("postgresql://nosuchrole@127.0.0.1:{}/{db}", cluster.port),
                ..good.clone()
            },
            "pg_hba.conf",
            StoreErrorKind::Refused,
        ),
        (
            PostgresConfig {
                password_file: Some(secret_file(
                    cluster,
                    "wrong.pw",
                    "not-the-password\n",
                    0o600,
                )),
                ..good.clone()
            },
            "password authentication failed",
            StoreErrorKind::Refused,
        ),
        (
            PostgresConfig {
                password_file: Some(secret_file(
                    cluster,
                    "open.pw",
                    &format!("{HOST_PASSWORD}\n"),
                    0o644,
                )),
                ..good.clone()
            },
            "mode 0644",
            StoreErrorKind::Untrusted,
        ),
        (
            PostgresConfig {
                password_file: Some(secret_file(
                    cluster,
                    "group.pw",
                    &format!("{HOST_PASSWORD}\n"),
                    0o640,
                )),
                ..good.clone()
            },
            "mode 0640",
            StoreErrorKind::Untrusted,
        ),
        (
            PostgresConfig {
                password_file: Some(cluster.client_dir().join("absent.pw")),
                ..good.clone()
            },
            "cannot be opened",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                password_file: Some(secret_file(cluster, "empty.pw", "", 0o600)),
                ..good.clone()
            },
            "is empty",
            StoreErrorKind::Config,
        ),
        (
            PostgresConfig {
                ca_file: Some(cluster.client_dir().join("absent-ca.pem")),
                ..good.clone()
            },
            "absent-ca.pem",
            StoreErrorKind::Config,
        ),
    ];
    for (config, wanted, kind) in cases {
        let error = connect_error(&config);
        assert!(error.contains(wanted), "{}: {error}", config.url);
        assert_eq!(connect_kind(&config), Some(kind), "{error}");
        assert!(
            !error.contains(HOST_PASSWORD),
            "the password never shows: {error}"
        );
    }
    let link = cluster.client_dir().join("link.pw");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(cluster.client_dir().join("pam_tap_host.pw"), &link)
        .unwrap_or_else(|e| panic!("{e}"));
    let linked = PostgresConfig {
        password_file: Some(link),
        ..good.clone()
    };
    let error = connect_error(&linked);
    assert!(error.contains("not a link"), "{error}");
    assert_eq!(connect_kind(&linked), Some(StoreErrorKind::Untrusted));
    assert_eq!(audit_rows(), rows, "nothing written");
    assert!(
        PostgresStore::connect(&good).is_ok(),
        "the good settings still work"
    );
}

fn wrong_name(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    let url = format!(
        "postgresql://pam_tap_host@db.wrong.invalid:{}/{db}?hostaddr=127.0.0.1&sslmode=verify-full",
        cluster.port
    );
    let error = connect_error(&PostgresConfig {
        url,
        ..config(cluster, &db, Role::Host)
    });
    assert!(error.contains("hostname mismatch"), "{error}");
    // The same server by a name its certificate carries.
    let url = format!(
        "postgresql://pam_tap_host@localhost:{}/{db}?hostaddr=127.0.0.1",
        cluster.port
    );
    assert!(PostgresStore::connect(&PostgresConfig {
        url,
        ..config(cluster, &db, Role::Host)
    })
    .is_ok());
    // A certificate from another CA.
    let other = cluster.client_dir().join("other-ca.pem");
    pg::certs::Certs::new().ca_pem(&other);
    let error = connect_error(&PostgresConfig {
        ca_file: Some(other),
        ..config(cluster, &db, Role::Host)
    });
    assert!(error.contains("certificate verify failed"), "{error}");
}

fn expired_certificate(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    let good = config(cluster, &db, Role::Host);
    let expired = cluster.certs.expired();
    cluster.serve_certificate(&expired);
    let error = connect_error(&good);
    cluster.serve_certificate(&cluster.certs.server);
    assert!(error.contains("certificate has expired"), "{error}");
    assert!(
        PostgresStore::connect(&good).is_ok(),
        "the good certificate again"
    );
}

fn newer_schema(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    cluster.sql(&db, "UPDATE pam_tap.schema_version SET version = 99");
    let tables = || {
        cluster.sql(&db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'pam_tap'")
    };
    let before = tables();
    let error = connect_error(&config(cluster, &db, Role::Host));
    assert!(
        error.contains("schema version 99") && error.contains("understands up to"),
        "{error}"
    );
    let kind = connect_kind(&config(cluster, &db, Role::Host));
    assert_eq!(kind, Some(StoreErrorKind::Schema));
    let error = PostgresStore::connect_and_migrate(&config(cluster, &db, Role::Admin)).err();
    assert_eq!(
        error.as_ref().map(StoreError::kind),
        Some(StoreErrorKind::Schema)
    );
    let error = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("schema version 99"), "{error}");
    assert_eq!(
        cluster.sql(&db, "SELECT version FROM pam_tap.schema_version"),
        "99"
    );
    assert_eq!(tables(), before);
}

fn unreachable(cluster: &Cluster) {
    let (db, _admin, _host) = fresh(cluster);
    let timeout = Duration::from_secs(1);
    let closed = free_port();
    // A socket that accepts (the kernel completes the handshake) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let silent_port = silent
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    for (port, wanted) in [
        (closed, "refused"),
        (silent_port, "no answer within the connect timeout"),
    ] {
        let url = format!("postgresql://pam_tap_host@127.0.0.1:{port}/{db}");
        let began = Instant::now();
        let error = PostgresStore::connect(&PostgresConfig {
            url,
            connect_timeout: timeout,
            ..config(cluster, &db, Role::Host)
        })
        .err();
        let took = began.elapsed();
        let kind = error.as_ref().map(StoreError::kind);
        assert_eq!(kind, Some(StoreErrorKind::Unreachable), "{error:?}");
        let error = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(wanted), "{error}");
        assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
        eprintln!(
            "  port {port}: refused in {:.3} s: {error}",
            took.as_secs_f64()
        );
    }
    // Several hosts: the silent one costs one timeout, then the next answers.
    let url = format!(
        "postgresql://pam_tap_host@127.0.0.1:{silent_port},127.0.0.1:{}/{db}?target_session_attrs=read-write",
        cluster.port
    );
    let began = Instant::now();
    let store = PostgresStore::connect(&PostgresConfig {
        url,
        connect_timeout: timeout,
        ..config(cluster, &db, Role::Host)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(began.elapsed() < 2 * timeout + Duration::from_millis(500));
    assert_eq!(store.server(), Some(format!("127.0.0.1:{}", cluster.port)));
    drop(silent);
}

fn must<T>(r: Result<T, tap_core::store::StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A host's SQLite store with a pass in each state, keys with counters,
/// SSH keys and audit records, copied by `import`: everything arrives, a
/// second copy and a clash are refused, a failing copy leaves nothing.
fn copy_from_sqlite(cluster: &Cluster) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("tap.db");
    {
        let mut source = must(SqliteStore::open(
            &path,
            tap_store::OpenOptions {
                create: true,
                check_trust: true,
            },
        ));
        let used = PassRecord {
            phc: "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into(),
            ..one_time(3)
        };
        must(source.put_pass(&used, &audit("pass.issued")));
        assert!(must(source.record_success(
            &used,
            &PassProof::from_phc(&used.phc),
            150,
            500,
            &audit("signin.pass.success")
        )));
        let bob = PassRecord {
            user: "bob".into(),
            ..sample(100)
        };
        must(source.put_pass(&bob, &audit("pass.issued")));
        for _ in 0..2 {
            must(source.record_failure("bob", bob.id, 160, 5, &|_| {
                vec![audit("signin.pass.failure")]
            }));
        }
        let carol = PassRecord {
            user: "carol".into(),
            ..sample(100)
        };
        must(source.put_pass(&carol, &audit("pass.issued")));
        assert!(must(source.revoke("carol", 170, &audit("pass.revoked"))));
        let alice_key = key("alice", 1);
        must(source.add_key(&alice_key, 5, &audit("key.enrolled")));
        must(source.add_key(&key("bob", 2), 5, &audit("key.enrolled")));
        assert!(must(source.record_key_use(
            &alice_key,
            42,
            180,
            &audit("signin.key.success")
        )));
        must(source.add_ssh_key(&ssh_key("bob", 4), 5, &audit("ssh.key.added")));
        must(source.add_ssh_key(&ssh_key("bob", 5), 5, &audit("ssh.key.added")));
    }
    let read = |p: &std::path::Path| std::fs::read(p).unwrap_or_default();
    let wal = dir.path().join("tap.db-wal");
    let before = (read(&path), read(&wal));
    let snapshot = must(must(SqliteStore::open_read_only(&path)).snapshot());
    assert_eq!(before, (read(&path), read(&wal)), "the source is only read");
    assert_eq!(
        (
            snapshot.passes.len(),
            snapshot.keys.len(),
            snapshot.ssh_keys.len()
        ),
        (3, 2, 2)
    );
    let audit_rows = snapshot.audit.len();
    assert!(audit_rows >= 11, "{audit_rows}");

    // A failing copy (a clash inside the copy itself, found by the
    // database after the passes went in) leaves the target as it was.
    let (db, mut admin, mut host) = fresh(cluster);
    let mut broken = snapshot.clone();
    broken.ssh_keys.push(broken.ssh_keys[0].clone());
    let refused = admin
        .import(&broken, false)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("nothing was copied"), "{refused}");
    assert!(must(admin.passes()).is_empty());
    assert!(must(admin.audit(None, 1000)).is_empty());

    // The host role may not copy (it cannot even lock the tables).
    let denied = host.import(&snapshot, false).map(|_| ()).unwrap_err();
    assert_eq!(denied.kind(), StoreErrorKind::Refused);
    let denied = denied.to_string();
    assert!(denied.contains("permission denied"), "{denied}");

    let copied = must(admin.import(&snapshot, false));
    assert_eq!(
        (copied.passes, copied.keys, copied.ssh_keys, copied.audit),
        (3, 2, 2, audit_rows)
    );
    // every state as it was (read back, like everything, in verifier form)
    let without_hash = |passes: Vec<PassRecord>| -> Vec<PassRecord> {
        passes
            .into_iter()
            .map(|p| PassRecord {
                phc: String::new(),
                ..p
            })
            .collect()
    };
    assert_eq!(
        without_hash(must(admin.passes())),
        without_hash(snapshot.passes.clone()),
        "all state"
    );
    // and the hashes themselves, byte for byte
    let phcs: Vec<&str> = snapshot.passes.iter().map(|p| p.phc.as_str()).collect();
    assert_eq!(
        cluster.sql(
            &db,
            "SELECT string_agg(phc, ' ' ORDER BY \"user\") FROM pam_tap.passes"
        ),
        phcs.join(" "),
        "hashes"
    );
    for user in ["alice", "bob", "carol"] {
        let keys: Vec<_> = snapshot
            .keys
            .iter()
            .filter(|k| k.user == user)
            .cloned()
            .collect();
        assert_eq!(must(host.keys(user)), keys, "counters too");
        let ssh: Vec<_> = snapshot
            .ssh_keys
            .iter()
            .filter(|k| k.user == user)
            .cloned()
            .collect();
        assert_eq!(must(host.ssh_keys(user)), ssh);
    }
    let strip = |records: Vec<AuditRecord>| {
        records
            .into_iter()
            .map(|r| AuditRecord { seq: 0, ..r })
            .collect::<Vec<_>>()
    };
    let landed = must(admin.audit(None, 100_000));
    assert!(landed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        strip(landed),
        strip(snapshot.audit.clone()),
        "order and times kept"
    );
    let other_host = raw(
        cluster,
        &db,
        Role::Admin,
        &format!(
            "SELECT 1 FROM pam_tap.audit WHERE host <> '{}'",
            admin.host_name()
        ),
    );
    assert_eq!(other_host, Ok(0), "every record names the source host");

    // The copy behaves as the source did: the used pass stays used, the
    // counter goes on from 42 only, a usable pass signs in.
    let alice = must(host.pass("alice")).unwrap_or_else(|| panic!("no pass"));
    // (with the real proof: the hosts read only the verifier)
    let alice_proof = PassProof::from_phc("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA");
    assert!(!must(host.record_success(
        &alice,
        &alice_proof,
        200,
        600,
        &audit("signin.pass.success")
    )));
    let bob = must(host.pass("bob")).unwrap_or_else(|| panic!("no pass"));
    assert_eq!(bob.failures, 2);
    assert!(must(host.record_success(
        &bob,
        &PassProof::from_phc(&sample(100).phc),
        200,
        600,
        &audit("signin.pass.success")
    )));
    let stale = key("alice", 1);
    assert!(!must(host.record_key_use(
        &stale,
        11,
        201,
        &audit("signin.key.success")
    )));
    let current = KeyCredential {
        sign_count: 42,
        ..stale
    };
    assert!(must(host.record_key_use(
        &current,
        43,
        202,
        &audit("signin.key.success")
    )));

    // A second copy is refused, and changes nothing.
    let count = must(admin.audit(None, 100_000)).len();
    let again = admin
        .import(&snapshot, false)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        again.contains("holds 3 passes, 2 security keys and 2 SSH keys"),
        "{again}"
    );
    assert_eq!(must(admin.audit(None, 100_000)).len(), count);

    // --merge adds another host's users, but a clash refuses it whole.
    let dave = PassRecord {
        user: "dave".into(),
        ..sample(100)
    };
    let clash = Snapshot {
        passes: vec![dave.clone(), snapshot.passes[0].clone()],
        ..Snapshot::default()
    };
    let refused = admin
        .import(&clash, true)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("the pass of alice"), "{refused}");
    assert!(must(admin.pass("dave")).is_none(), "nothing of it went in");
    let key_clash = Snapshot {
        keys: vec![key("bob", 2)],
        ssh_keys: vec![ssh_key("erin", 4)],
        ..Snapshot::default()
    };
    let refused = admin
        .import(&key_clash, true)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a security key of bob") && refused.contains("SSH key SHA256:key4 of bob"),
        "{refused}"
    );
    let more = Snapshot {
        passes: vec![dave],
        ..Snapshot::default()
    };
    assert_eq!(must(admin.import(&more, true)).passes, 1);
    assert_eq!(must(admin.passes()).len(), 4);
}
