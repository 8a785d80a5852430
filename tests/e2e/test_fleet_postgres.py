"""tapd on the PostgreSQL backend (issue 14), through the real stack: a
real PostgreSQL started by the test (pg.py: TLS from a test CA,
scram-sha-256, store/src/postgres/roles.sql as shipped), the schema made by
`tapd --migrate` as the admin role, an administrator's tapd connected as
`pam_tap_admin` issuing passes, and a host's tapd connected as
`pam_tap_host` serving the release pam_tap.so through real libpam on the
gate stack (a wrong PAM_IGNORE would let the user in).

This is one host. Several hosts (namespaces with their own host names) and
the 64-way race across them are test_fleet_hosts.py's; faults and failover
to a standby are test_fleet_faults.py's.
"""

import socket
import time

import pytest

import harness
import pg
from conftest import WORLD


def policy_with(tap, name, store_table):
    """A policy as harness.policy_text writes it, with `[store]` instead
    of the SQLite path."""
    text = harness.policy_text(tap.store, passes={"max_failures": 3})
    text = "\n".join(l for l in text.splitlines() if not l.startswith("store = ")) + "\n"
    return tap.write_policy(name, text=text + store_table)


class Fleet:
    def __init__(self):
        base = WORLD.base / "t" / "fleet-pg"
        self.cluster = pg.Cluster(base / "cluster")
        self.tap = harness.Tap(base / "tap", WORLD.pam_tap_so, WORLD.tapctl)
        secrets = base / "secrets"
        secrets.mkdir(mode=0o755)
        admin_pw = self.cluster.password_file("pam_tap_admin", secrets / "admin", "pam-tap")
        host_pw = self.cluster.password_file("pam_tap_host", secrets / "host", "pam-tap")
        self.admin = policy_with(self.tap, "admin.toml",
                                 self.cluster.store_table("pam_tap_admin", admin_pw))
        self.host = policy_with(self.tap, "host.toml",
                                self.cluster.store_table("pam_tap_host", host_pw))

    def tapd_as_pam_tap(self, *args):
        return harness.tapd_as_pam_tap(*args)

    def sign_in(self, user, answer):
        return self.tap.auth(user, [answer], stack="gate", policy=self.host)


@pytest.fixture(scope="module")
def fleet():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    f = Fleet()
    # the host role may not make the schema; the admin role may
    f.refused_migration = f.tapd_as_pam_tap("--migrate", "--policy", f.host)
    f.migration = f.tapd_as_pam_tap("--migrate", "--policy", f.admin)
    yield f
    f.tap.stop_daemons()
    f.cluster.stop()


def test_tapd_migrate_as_the_admin_role_and_not_as_the_host_role(fleet):
    proc = fleet.refused_migration
    assert proc.returncode != 0 and "permission denied" in proc.stderr.lower(), proc
    proc = fleet.migration
    assert proc.returncode == 0, proc
    assert "is at schema version 2" in proc.stdout, proc.stdout
    assert fleet.cluster.sql("pam_tap", "SELECT version FROM pam_tap.schema_version") == "2"
    # step 2: the triggers that tell each tapd's roster of new passes and keys
    assert fleet.cluster.sql(
        "pam_tap", "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger "
        "WHERE tgname IN ('passes_notify', 'keys_notify')") == "keys_notify,passes_notify"
    again = fleet.tapd_as_pam_tap("--migrate", "--policy", fleet.admin)
    assert again.returncode == 0 and again.stdout == proc.stdout, again


def test_a_pass_issued_by_the_admin_role_signs_in_once_on_a_host(fleet):
    issued = fleet.tap.issue("tapuser1", one_time=True, policy=fleet.admin)
    first = fleet.sign_in("tapuser1", issued["pass"])
    assert first.outcome == "PAM_SUCCESS", first
    # used: a pass_only service no longer even asks (as with SQLite)
    again = fleet.sign_in("tapuser1", issued["pass"])
    assert again.outcome == "PAM_IGNORE" and again.prompts == [], again
    # the audit rows in the database carry the host that wrote them
    rows = fleet.cluster.sql(
        "pam_tap", "SELECT event || ' ' || host FROM pam_tap.audit ORDER BY seq").splitlines()
    assert f"signin.pass.success {socket.gethostname()}" in rows, rows
    # and the admin's view of the pass agrees
    shown = fleet.tap.show("tapuser1", policy=fleet.admin)
    assert shown["reason"] == "OneTimeUsed", shown


def test_the_host_role_cannot_issue_or_revoke(fleet):
    proc = fleet.tap.tapctl("issue", "tapuser2", policy=fleet.host, check=False)
    assert proc.returncode == 6 and "pam_tap_admin" in proc.stderr, proc
    fleet.tap.issue("tapuser2", policy=fleet.admin)
    proc = fleet.tap.tapctl("revoke", "tapuser2", policy=fleet.host, check=False)
    assert proc.returncode == 6, proc
    assert fleet.tap.show("tapuser2", policy=fleet.admin)["usable"], "nothing changed"


def test_wrong_passes_lock_and_revoke_applies_at_once(fleet):
    fleet.tap.issue("tapuser3", policy=fleet.admin)
    for _ in range(3):
        assert fleet.sign_in("tapuser3", "WRONG-PASS-0").outcome == "PAM_AUTH_ERR"
    assert fleet.tap.show("tapuser3", policy=fleet.admin)["reason"] == "Locked"
    issued = fleet.tap.issue("tapuser4", policy=fleet.admin)
    fleet.tap.tapctl("revoke", "tapuser4", policy=fleet.admin)
    revoked = fleet.sign_in("tapuser4", issued["pass"])
    assert revoked.outcome == "PAM_IGNORE" and revoked.prompts == [], revoked


def test_database_down_is_unavail_in_bounded_time_and_back_without_a_restart(fleet, syslog):
    issued = fleet.tap.issue("tapuser5", policy=fleet.admin)
    fleet.cluster.stop()
    try:
        t0 = time.monotonic()
        down = fleet.sign_in("tapuser5", issued["pass"])
        took = time.monotonic() - t0
        assert down.rc == "PAM_AUTHINFO_UNAVAIL" and not down.fellthrough, down
        # connect_timeout is 2 s; the failed sign-in's 2 s pam_fail_delay on top
        assert took < 8, took
    finally:
        fleet.cluster.start()
    mark = syslog.mark()
    back = fleet.sign_in("tapuser5", issued["pass"])
    assert back.outcome == "PAM_SUCCESS", (back, [t for _, _, t in syslog.since(mark)])
