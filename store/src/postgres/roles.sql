-- pam_tap on PostgreSQL: the two roles and their schema.
--
-- Run once, by a superuser (or a role with CREATEROLE that owns the
-- database), connected to the database pam_tap will use. Running it again
-- changes nothing. Then give each role a password (psql's \password), and
-- let pam_tap_admin create the tables (the migrations; they grant
-- pam_tap_host its rights, table by table and function by function).
--
--   pam_tap_admin  owns the schema: migrates it, issues, revokes, removes,
--                  adds keys. Used by administrators, never by hosts.
--   pam_tap_host   what every host's tapd logs in as: reads what sign-in
--                  needs, and changes the store only through the functions
--                  the migrations define (consume a pass, count a failure,
--                  move a key counter, set last_used, append audit).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pam_tap_admin') THEN
        CREATE ROLE pam_tap_admin LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pam_tap_host') THEN
        CREATE ROLE pam_tap_host LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    -- Nobody else may connect to this database, or make temporary tables in it.
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO pam_tap_admin, pam_tap_host',
                   current_database());
END
$$;

CREATE SCHEMA IF NOT EXISTS pam_tap AUTHORIZATION pam_tap_admin;
REVOKE ALL ON SCHEMA pam_tap FROM PUBLIC;
GRANT USAGE ON SCHEMA pam_tap TO pam_tap_host;
-- Nothing of pam_tap's lives in public; no one may put anything there
-- that a search_path could pick up.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
