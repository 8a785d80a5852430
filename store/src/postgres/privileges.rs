//! What the connect checks about the roles' rights, beyond what it needs:
//! a host role that can do more than sign-in asks (insert passes, update
//! them directly, act as the admin role, ...) makes a stolen host
//! credential worth far more. Found, it is a warning the caller logs loudly.

use super::PostgresStore;
use tap_core::store::StoreError;

/// One right too many, or a setting that weakens the store's guarantees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreWarning {
    /// `role` holds `right` (e.g. "INSERT on pam_tap.passes").
    ExcessRight { role: String, right: String },
    /// There is no pam_tap_host role: hosts must be using another one.
    NoHostRole,
    /// This session's role is a superuser (or may bypass row security).
    Superuser { role: String },
    /// The server may acknowledge a commit before it is durable (or on the
    /// synchronous standby): a consumed pass could come back after a crash
    /// or a failover.
    SynchronousCommit { setting: String },
}

impl std::fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreWarning::ExcessRight { role, right } => write!(
                f,
                "role {role} has {right}: a stolen host credential could use it; \
                 revoke it (hosts change the store only through pam_tap's functions)"
            ),
            StoreWarning::NoHostRole => f.write_str(
                "there is no role pam_tap_host: run roles.sql, and let hosts log in as it",
            ),
            StoreWarning::Superuser { role } => write!(
                f,
                "connected as {role}, a superuser: give this host pam_tap_host (or \
                 pam_tap_admin to administrators) instead"
            ),
            StoreWarning::SynchronousCommit { setting } => write!(
                f,
                "synchronous_commit is {setting}: a commit may be acknowledged before it is \
                 durable, so a consumed one-time pass could be usable again after a crash \
                 or failover; set it to on (or remote_apply)"
            ),
        }
    }
}

/// Rights the host role must not hold on any pam_tap table: every change
/// goes through the functions, and the hashes are read only in verifier
/// form. Column grants count too.
const CHECK: &str = "
WITH roles AS (
    SELECT DISTINCT r FROM unnest(ARRAY['pam_tap_host', current_user::TEXT]) r
    WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = r)
      AND NOT pg_has_role(current_user, 'pam_tap_admin', 'MEMBER') OR r = 'pam_tap_host'
), tables AS (
    SELECT c.oid, c.relname FROM pg_class c
    WHERE c.relnamespace = 'pam_tap'::regnamespace AND c.relkind IN ('r', 'p', 'v')
), rights AS (
    SELECT roles.r, tables.relname, p.privilege FROM roles, tables,
        unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) p(privilege)
    WHERE (p.privilege IN ('INSERT', 'UPDATE', 'REFERENCES')
           AND has_any_column_privilege(roles.r, tables.oid, p.privilege))
       OR has_table_privilege(roles.r, tables.oid, p.privilege)
)
SELECT r, privilege || ' on pam_tap.' || relname FROM rights
UNION ALL
-- the hashes themselves: with them a host could prove a pass it does not know
SELECT r, 'SELECT on pam_tap.passes (the pass hashes; hosts read host_passes)' FROM roles
    WHERE r <> 'pam_tap_admin'
      AND CASE WHEN to_regclass('pam_tap.passes') IS NULL THEN false
               ELSE has_column_privilege(r, 'pam_tap.passes', 'phc', 'SELECT') END
UNION ALL
SELECT r, 'membership of pam_tap_admin' FROM roles
    WHERE r <> 'pam_tap_admin' AND pg_has_role(r, 'pam_tap_admin', 'MEMBER')
UNION ALL
SELECT r, 'CREATE on schema pam_tap' FROM roles WHERE has_schema_privilege(r, 'pam_tap', 'CREATE')
UNION ALL
SELECT rolname, 'the ' || a || ' attribute' FROM pg_roles, roles,
    LATERAL (VALUES ('SUPERUSER', rolsuper), ('CREATEROLE', rolcreaterole),
                    ('BYPASSRLS', rolbypassrls)) v(a, has)
    WHERE rolname = roles.r AND has
ORDER BY 1, 2";

/// Functions anyone (PUBLIC) may execute: each must be granted to hosts only.
const PUBLIC_FUNCTIONS: &str = "
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'pam_tap'::regnamespace
  AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'))
ORDER BY 1";

pub(super) fn check(store: &PostgresStore) -> Result<Vec<StoreWarning>, StoreError> {
    store.call("checking the roles' rights", |c| {
        Box::pin(async move {
            let mut warnings = Vec::new();
            let host_role = c
                .query_one(
                    "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pam_tap_host')",
                    &[],
                )
                .await?
                .try_get::<_, bool>(0)?;
            if !host_role {
                warnings.push(StoreWarning::NoHostRole);
            }
            let me = c
                .query_one(
                    "SELECT current_user::TEXT, rolsuper OR rolbypassrls FROM pg_roles
                     WHERE rolname = current_user",
                    &[],
                )
                .await?;
            if me.try_get::<_, bool>(1)? {
                warnings.push(StoreWarning::Superuser {
                    role: me.try_get(0)?,
                });
            }
            if host_role {
                for row in c.query(CHECK, &[]).await? {
                    warnings.push(StoreWarning::ExcessRight {
                        role: row.try_get(0)?,
                        right: row.try_get(1)?,
                    });
                }
            }
            for row in c.query(PUBLIC_FUNCTIONS, &[]).await? {
                warnings.push(StoreWarning::ExcessRight {
                    role: "PUBLIC".into(),
                    right: format!("EXECUTE on pam_tap.{}", row.try_get::<_, String>(0)?),
                });
            }
            let setting: String = c
                .query_one("SELECT current_setting('synchronous_commit')", &[])
                .await?
                .try_get(0)?;
            if setting == "off" || setting == "local" {
                warnings.push(StoreWarning::SynchronousCommit { setting });
            }
            Ok(warnings)
        })
    })
}
