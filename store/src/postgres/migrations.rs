//! The PostgreSQL schema, as numbered steps (like SQLite's), and bringing a
//! database up to date. Steps run as pam_tap_admin, in schema `pam_tap`,
//! which roles.sql made; each step also grants pam_tap_host its rights.

use super::link::Outcome;
use super::PostgresStore;
use tap_core::store::StoreError;

/// Each entry takes the schema from version N to N+1; never edit one that shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the tables SQLite has at its version 6 (same columns; `host` on
    // audit names the host that wrote each record), and what hosts may do.
    r#"
CREATE TABLE pam_tap.passes (
    "user"       TEXT PRIMARY KEY,
    id           BIGINT NOT NULL,
    phc          TEXT NOT NULL,
    issued_by    TEXT NOT NULL,
    created      BIGINT NOT NULL,
    start        BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    one_time     BOOLEAN NOT NULL,
    used_at      BIGINT,
    last_used    BIGINT,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_at    BIGINT,
    revoked_at   BIGINT,
    enroll_until BIGINT,
    length       BIGINT
);
CREATE TABLE pam_tap.audit (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time     BIGINT NOT NULL,
    event    TEXT NOT NULL,
    "user"   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    service  TEXT NOT NULL,
    rhost    TEXT NOT NULL,
    tty      TEXT NOT NULL,
    detail   TEXT NOT NULL,
    peer     TEXT NOT NULL DEFAULT '',
    host     TEXT NOT NULL DEFAULT ''
);
-- A fleet's log is long: `tapctl audit --user/--host` read one index each.
CREATE INDEX audit_by_user ON pam_tap.audit ("user", seq);
CREATE INDEX audit_by_host ON pam_tap.audit (host, seq);
CREATE TABLE pam_tap.keys (
    "user"        TEXT NOT NULL,
    credential_id BYTEA NOT NULL,
    public_key    BYTEA NOT NULL,
    algorithm     BIGINT NOT NULL,
    aaguid        BYTEA NOT NULL,
    sign_count    BIGINT NOT NULL,
    label         TEXT NOT NULL,
    attestation   TEXT NOT NULL,
    created       BIGINT NOT NULL,
    last_used     BIGINT,
    PRIMARY KEY ("user", credential_id)
);
CREATE TABLE pam_tap.ssh_keys (
    fingerprint TEXT PRIMARY KEY,
    "user"      TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    blob        BYTEA NOT NULL,
    label       TEXT NOT NULL,
    application TEXT NOT NULL,
    aaguid      BYTEA,
    attestation TEXT NOT NULL,
    created     BIGINT NOT NULL,
    last_used   BIGINT
);
CREATE INDEX ssh_keys_by_user ON pam_tap.ssh_keys ("user", created);

-- Every change a host makes is one of these functions. Each runs with its
-- owner's (pam_tap_admin's) rights, re-checks its conditions in the one
-- statement that writes, and takes no name from the caller's search_path.

-- One audit record; the caller's transaction carries it.
CREATE FUNCTION pam_tap.append_audit(
    p_time BIGINT, p_event TEXT, p_user TEXT, p_actor TEXT, p_service TEXT,
    p_rhost TEXT, p_tty TEXT, p_detail TEXT, p_peer TEXT, p_host TEXT)
RETURNS BIGINT LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    INSERT INTO pam_tap.audit (time, event, "user", actor, service, rhost, tty, detail, peer, host)
    VALUES (p_time, p_event, p_user, p_actor, p_service, p_rhost, p_tty, p_detail, p_peer, p_host)
    RETURNING seq
$f$;

-- What hosts read of the passes: every column, but the hash in verifier
-- form only (core/src/hashing.rs, VERIFIER_IDENT): the PHC string with its
-- hash field replaced by that field's SHA-256. A host checks a pass against
-- it; record_success wants the hash field itself, which only the pass
-- gives. So a stolen host credential cannot consume a pass, nor open an
-- enrollment window (and so add a key), without knowing the pass.
CREATE VIEW pam_tap.host_passes AS
SELECT "user", id,
    CASE WHEN phc LIKE '$argon2id$%' THEN
        '$argon2id-sha256' || substr(regexp_replace(phc, '[^$]*$', ''), 10)
        || rtrim(encode(sha256(convert_to(substring(phc FROM '[^$]*$'), 'UTF8')), 'base64'), '=')
    ELSE '' END AS phc,
    issued_by, created, start, expires, one_time, used_at, last_used, failures, locked_at,
    revoked_at, enroll_until, length
FROM pam_tap.passes;

-- A right pass: consumes a one-time pass, sets last_used and the enrollment
-- window, only while this very pass is usable at p_now and p_proof is its
-- hash field (see host_passes); audited when it did.
CREATE FUNCTION pam_tap.record_success(
    p_user TEXT, p_id BIGINT, p_one_time BOOLEAN, p_now BIGINT, p_enroll_until BIGINT,
    p_proof TEXT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS BOOLEAN LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    WITH changed AS (
        UPDATE pam_tap.passes
        SET last_used = p_now,
            used_at = CASE WHEN one_time THEN p_now ELSE used_at END,
            enroll_until = p_enroll_until
        WHERE "user" = p_user AND id = p_id AND one_time = p_one_time
          AND revoked_at IS NULL AND locked_at IS NULL
          AND (NOT one_time OR used_at IS NULL)
          AND start <= p_now AND expires > p_now
          AND substring(phc FROM '[^$]*$') = p_proof
        RETURNING 1
    ), logged AS (
        INSERT INTO pam_tap.audit (time, event, "user", actor, service, rhost, tty, detail, peer, host)
        SELECT a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty, a_detail, a_peer, a_host
        FROM changed
        RETURNING 1
    )
    SELECT count(*) = 1 FROM changed
$f$;

-- A wrong pass: one more failure, and the lock at p_max. locked_now is
-- true only for the failure that set the lock (the row is locked first,
-- so concurrent failures each see their own count).
CREATE FUNCTION pam_tap.count_failure(p_user TEXT, p_id BIGINT, p_now BIGINT, p_max BIGINT)
RETURNS TABLE (failures BIGINT, locked_now BOOLEAN) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    was_locked BIGINT;
    now_locked BIGINT;
    counted BIGINT;
BEGIN
    SELECT p.locked_at INTO was_locked FROM pam_tap.passes p
    WHERE p."user" = p_user AND p.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0::BIGINT, false;
        RETURN;
    END IF;
    UPDATE pam_tap.passes p
    SET failures = p.failures + 1,
        locked_at = CASE WHEN p.locked_at IS NULL AND p.failures + 1 >= p_max
                         THEN p_now ELSE p.locked_at END
    WHERE p."user" = p_user AND p.id = p_id
    RETURNING p.failures, p.locked_at INTO counted, now_locked;
    RETURN QUERY SELECT counted, (was_locked IS NULL AND now_locked IS NOT NULL);
END
$f$;

-- A verified key sign-in: the counter moves from the value the verifier
-- checked, and only forward (0 stays 0 for keys without a counter), so a
-- host can never wind a counter back to let a clone's signature pass.
CREATE FUNCTION pam_tap.record_key_use(
    p_user TEXT, p_credential_id BYTEA, p_checked BIGINT, p_new BIGINT, p_now BIGINT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS BOOLEAN LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    WITH changed AS (
        UPDATE pam_tap.keys SET sign_count = p_new, last_used = p_now
        WHERE "user" = p_user AND credential_id = p_credential_id AND sign_count = p_checked
          AND (p_new > p_checked OR (p_new = 0 AND p_checked = 0))
        RETURNING 1
    ), logged AS (
        INSERT INTO pam_tap.audit (time, event, "user", actor, service, rhost, tty, detail, peer, host)
        SELECT a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty, a_detail, a_peer, a_host
        FROM changed
        RETURNING 1
    )
    SELECT count(*) = 1 FROM changed
$f$;

-- sshd accepted the user's key: last_used only.
CREATE FUNCTION pam_tap.record_ssh_key_use(
    p_user TEXT, p_fingerprint TEXT, p_now BIGINT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS BOOLEAN LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    WITH changed AS (
        UPDATE pam_tap.ssh_keys SET last_used = p_now
        WHERE "user" = p_user AND fingerprint = p_fingerprint
        RETURNING 1
    ), logged AS (
        INSERT INTO pam_tap.audit (time, event, "user", actor, service, rhost, tty, detail, peer, host)
        SELECT a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty, a_detail, a_peer, a_host
        FROM changed
        RETURNING 1
    )
    SELECT count(*) = 1 FROM changed
$f$;

-- Whether p_user may add a key now: an administrator may for anyone; a
-- host only while the user's enrollment window is open by the database's
-- clock (a host cannot choose the time), a window only a right pass opens.
CREATE FUNCTION pam_tap.may_enroll(p_user TEXT)
RETURNS BOOLEAN LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    SELECT pg_has_role(session_user, 'pam_tap_admin', 'MEMBER')
        OR EXISTS (SELECT FROM pam_tap.passes
                   WHERE "user" = p_user AND revoked_at IS NULL
                     AND enroll_until > extract(epoch FROM statement_timestamp())::BIGINT)
$f$;

-- A security key: 'added', 'too_many' (the user has p_max), 'duplicate', or
-- 'window_closed' (see may_enroll). Counted and inserted under a lock on
-- the user, so enrollments on several hosts cannot together pass p_max.
CREATE FUNCTION pam_tap.add_key(
    p_user TEXT, p_credential_id BYTEA, p_public_key BYTEA, p_algorithm BIGINT,
    p_aaguid BYTEA, p_sign_count BIGINT, p_label TEXT, p_attestation TEXT, p_created BIGINT,
    p_max BIGINT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS TEXT LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM pg_advisory_xact_lock(1952542721, hashtext(p_user));
    IF NOT pam_tap.may_enroll(p_user) THEN
        RETURN 'window_closed';
    END IF;
    IF (SELECT count(*) FROM pam_tap.keys k WHERE k."user" = p_user) >= p_max THEN
        RETURN 'too_many';
    END IF;
    INSERT INTO pam_tap.keys ("user", credential_id, public_key, algorithm, aaguid, sign_count,
                              label, attestation, created, last_used)
    VALUES (p_user, p_credential_id, p_public_key, p_algorithm, p_aaguid, p_sign_count,
            p_label, p_attestation, p_created, NULL)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    PERFORM pam_tap.append_audit(a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty,
                                 a_detail, a_peer, a_host);
    RETURN 'added';
END
$f$;

-- An SSH key, as add_key (a key has one user: its fingerprint is the key).
CREATE FUNCTION pam_tap.add_ssh_key(
    p_fingerprint TEXT, p_user TEXT, p_key_type TEXT, p_blob BYTEA, p_label TEXT,
    p_application TEXT, p_aaguid BYTEA, p_attestation TEXT, p_created BIGINT, p_max BIGINT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS TEXT LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM pg_advisory_xact_lock(1952542722, hashtext(p_user));
    IF NOT pam_tap.may_enroll(p_user) THEN
        RETURN 'window_closed';
    END IF;
    IF (SELECT count(*) FROM pam_tap.ssh_keys k WHERE k."user" = p_user) >= p_max THEN
        RETURN 'too_many';
    END IF;
    INSERT INTO pam_tap.ssh_keys (fingerprint, "user", key_type, blob, label, application,
                                  aaguid, attestation, created, last_used)
    VALUES (p_fingerprint, p_user, p_key_type, p_blob, p_label, p_application, p_aaguid,
            p_attestation, p_created, NULL)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    PERFORM pam_tap.append_audit(a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty,
                                 a_detail, a_peer, a_host);
    RETURN 'added';
END
$f$;

-- Functions are executable by PUBLIC unless revoked: only hosts (and the
-- owner) may call these.
REVOKE ALL ON FUNCTION pam_tap.append_audit(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.record_success(TEXT, BIGINT, BOOLEAN, BIGINT, BIGINT, TEXT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.count_failure(TEXT, BIGINT, BIGINT, BIGINT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.record_key_use(TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.record_ssh_key_use(TEXT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;

REVOKE ALL ON FUNCTION pam_tap.may_enroll(TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.add_key(TEXT, BYTEA, BYTEA, BIGINT, BYTEA, BIGINT, TEXT, TEXT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION pam_tap.add_ssh_key(TEXT, TEXT, TEXT, BYTEA, TEXT, TEXT, BYTEA, TEXT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) FROM PUBLIC;

-- pam_tap_host: read what sign-in needs (passes through host_passes only);
-- change only through the functions.
GRANT SELECT ON pam_tap.schema_version, pam_tap.host_passes, pam_tap.keys, pam_tap.ssh_keys,
    pam_tap.audit TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.add_key(TEXT, BYTEA, BYTEA, BIGINT, BYTEA, BIGINT, TEXT, TEXT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.add_ssh_key(TEXT, TEXT, TEXT, BYTEA, TEXT, TEXT, BYTEA, TEXT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.append_audit(BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.record_success(TEXT, BIGINT, BOOLEAN, BIGINT, BIGINT, TEXT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.count_failure(TEXT, BIGINT, BIGINT, BIGINT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.record_key_use(TEXT, BYTEA, BIGINT, BIGINT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
GRANT EXECUTE ON FUNCTION pam_tap.record_ssh_key_use(TEXT, TEXT, BIGINT, BIGINT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT) TO pam_tap_host;
"#,
    // 2: each new pass row and key row names its user on the channel
    // pam_tap_credentials, so each host's tapd knows, without asking, who
    // has neither (postgres/roster.rs). Only rows that add a user matter:
    // a user already named stays named. And a multi-use pass's success
    // commits without waiting for the disk.
    r#"
CREATE FUNCTION pam_tap.notify_credential() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM pg_notify('pam_tap_credentials', NEW."user");
    RETURN NULL;
END
$f$;
REVOKE ALL ON FUNCTION pam_tap.notify_credential() FROM PUBLIC;
CREATE TRIGGER passes_notify AFTER INSERT ON pam_tap.passes
    FOR EACH ROW EXECUTE FUNCTION pam_tap.notify_credential();
CREATE TRIGGER keys_notify AFTER INSERT ON pam_tap.keys
    FOR EACH ROW EXECUTE FUNCTION pam_tap.notify_credential();

-- record_success as in step 1, but a multi-use pass's commit is merely
-- atomic, as SQLite's (one fsync, or one standby's round trip, less).
CREATE OR REPLACE FUNCTION pam_tap.record_success(
    p_user TEXT, p_id BIGINT, p_one_time BOOLEAN, p_now BIGINT, p_enroll_until BIGINT,
    p_proof TEXT,
    a_time BIGINT, a_event TEXT, a_user TEXT, a_actor TEXT, a_service TEXT,
    a_rhost TEXT, a_tty TEXT, a_detail TEXT, a_peer TEXT, a_host TEXT)
RETURNS BOOLEAN LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $f$
    -- A multi-use pass's success guards nothing (core's store contract):
    -- its commit need not wait for the disk or a synchronous standby.
    -- (Local to this call's transaction; the SET clause above is only
    -- search_path's.)
    SELECT set_config('synchronous_commit', 'off', true) WHERE NOT p_one_time;
    WITH changed AS (
        UPDATE pam_tap.passes
        SET last_used = p_now,
            used_at = CASE WHEN one_time THEN p_now ELSE used_at END,
            enroll_until = p_enroll_until
        WHERE "user" = p_user AND id = p_id AND one_time = p_one_time
          AND revoked_at IS NULL AND locked_at IS NULL
          AND (NOT one_time OR used_at IS NULL)
          AND start <= p_now AND expires > p_now
          AND substring(phc FROM '[^$]*$') = p_proof
        RETURNING 1
    ), logged AS (
        INSERT INTO pam_tap.audit (time, event, "user", actor, service, rhost, tty, detail, peer, host)
        SELECT a_time, a_event, a_user, a_actor, a_service, a_rhost, a_tty, a_detail, a_peer, a_host
        FROM changed
        RETURNING 1
    )
    SELECT count(*) = 1 FROM changed
$f$;
"#,
];

/// Made before the first step, in the same transaction: one row, the version.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS pam_tap.schema_version (
    one     BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    version INTEGER NOT NULL
)";

/// Serializes migrations from several administrators (any constant will do).
const MIGRATION_LOCK: i64 = 0x7061_6d5f_7461_7001;

impl PostgresStore {
    /// The database's schema version; 0 when pam_tap has no tables there.
    pub(super) fn schema_version(&self) -> Result<usize, StoreError> {
        let version = self.call("reading the schema version", |c| {
            Box::pin(async move {
                let row = c
                    .query_one(
                        "SELECT CASE WHEN to_regclass('pam_tap.schema_version') IS NULL THEN NULL
                         ELSE 1 END::INTEGER",
                        &[],
                    )
                    .await?;
                if row.get::<_, Option<i32>>(0).is_none() {
                    return Ok(0);
                }
                let row = c
                    .query_opt("SELECT version FROM pam_tap.schema_version", &[])
                    .await?;
                Ok(row.map_or(0, |r| r.get::<_, i32>(0)))
            })
        })?;
        usize::try_from(version)
            .map_err(|_| StoreError::schema(format!("postgresql: schema version {version}")))
    }

    /// Refuses a database this build cannot use: newer (another pam_tap
    /// wrote it), or older or empty (an administrator migrates it first).
    pub(super) fn check_version(&self, version: usize) -> Result<(), StoreError> {
        let known = MIGRATIONS.len();
        if version > known {
            return Err(StoreError::schema(format!(
                "postgresql database {} has schema version {version}; this pam_tap \
                 understands up to {known}: upgrade pam_tap on this host",
                self.database
            )));
        }
        if version < known {
            return Err(StoreError::schema(format!(
                "postgresql database {} has schema version {version}, this pam_tap needs \
                 {known}: an administrator runs `tapd --migrate` with a policy whose url \
                 names pam_tap_admin (docs/fleet.md)",
                self.database
            )));
        }
        Ok(())
    }

    /// Brings the schema up to date, in one transaction; as pam_tap_admin.
    pub(super) fn migrate(&self) -> Result<usize, StoreError> {
        let outcome = self.call_raw(|c| {
            Box::pin(async move {
                let tx = c;
                tx.batch_execute("BEGIN").await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .await?;
                let has_schema = tx
                    .query_one("SELECT to_regnamespace('pam_tap') IS NOT NULL", &[])
                    .await?
                    .get::<_, bool>(0);
                if !has_schema {
                    tx.batch_execute("ROLLBACK").await?;
                    return Ok(Err(
                        "has no schema pam_tap: a superuser runs roles.sql in it first".to_string(),
                    ));
                }
                tx.batch_execute(VERSION_TABLE).await?;
                let current = tx
                    .query_opt("SELECT version FROM pam_tap.schema_version", &[])
                    .await?
                    .map_or(0, |r| r.get::<_, i32>(0));
                let current = usize::try_from(current).unwrap_or(usize::MAX);
                if current > MIGRATIONS.len() {
                    tx.batch_execute("ROLLBACK").await?;
                    return Ok(Ok(current));
                }
                for step in &MIGRATIONS[current..] {
                    tx.batch_execute(step).await?;
                }
                let now = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
                tx.execute(
                    "INSERT INTO pam_tap.schema_version (version) VALUES ($1)
                     ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version",
                    &[&now],
                )
                .await?;
                tx.batch_execute("COMMIT").await?;
                Ok(Ok(MIGRATIONS.len()))
            })
        });
        match outcome {
            Outcome::Done(Ok(version)) => Ok(version),
            Outcome::Done(Err(why)) => Err(StoreError::schema(format!(
                "postgresql database {} {why}",
                self.database
            ))),
            Outcome::Refused(e) => Err(StoreError::refused(format!(
                "postgresql database {}: migration failed: {}",
                self.database,
                super::link::describe(&e)
            ))),
            Outcome::Lost(why) => Err(StoreError::new(
                why.kind(),
                format!("postgresql database {}: migration: {why}", self.database),
            )),
        }
    }
}
