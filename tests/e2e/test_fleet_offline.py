"""Key sign-ins while the fleet's database is unreachable (issue 14,
"offline_keys"): two simulated hosts (fleet.py) whose policies say
`offline_keys = true`, each with its own copy in its own state directory,
on one real PostgreSQL cluster that the tests stop, freeze and start again.
Sign-ins are the release pam_tap.so through real libpam on the gate stack
(pam_permit after pam_tap: a wrong PAM_IGNORE would let the user in).

* With the database down, a key that signed in on this host before signs in
  from the copy; a pass, a key never seen on this host, and a key sign-in
  with no key plugged in are PAM_AUTHINFO_UNAVAIL, never IGNORE.
* When the database is back, the offline sign-in's record and counter reach
  it, marked offline and carrying the host's name.
* A cloned key used offline on one host while the original signs in on the
  other: both succeed (each host checks its own copy), and the database
  flags the second to arrive as `key.counter_regressed`.
* The database silent (frozen): the key sign-in still completes, within the
  policy's connect timeouts.
"""

import os
import re
import shutil
import subprocess
import time
import tomllib

import pytest

import fleet as fleet_hosts
import harness
import pg
from conftest import WORLD

HOSTS = ("host-a", "host-b")
UNAVAIL = "PAM_AUTHINFO_UNAVAIL"
OFFLINE = "(offline: the database was unreachable; record "


FLEET_MD = harness.REPO / "docs" / "fleet.md"
SECTION = "Key sign-ins while the database is down"


def doc_block(lang):
    """The page's one `lang` block in SECTION (indented ones too)."""
    text = FLEET_MD.read_text()
    found = re.search(rf"^## {re.escape(SECTION)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"docs/fleet.md has no '## {SECTION}'"
    [(indent, body)] = re.findall(rf"^( *)```{lang}\n(.*?)^ *```", found.group(1), re.M | re.S)
    return "".join(line[len(indent):] + "\n" for line in body.splitlines())


def offline_store():
    """The page's lines for a host's `[store]` table, as written."""
    return doc_block("toml")


@pytest.fixture(scope="module")
def fleet():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    f = fleet_hosts.Fleet(WORLD.base / "t" / "fleet-offline", WORLD, host_names=HOSTS,
                          host_store=offline_store())
    try:
        f.start()
        yield f
    finally:
        f.stop()


class Down:
    """The database stopped for the body of a `with`, started after."""

    def __init__(self, fleet):
        self.cluster = fleet.cluster

    def __enter__(self):
        self.cluster.stop()
        return self

    def __exit__(self, *exc):
        self.cluster.start()


def audit_rows(fleet, user):
    return fleet.sql("SELECT event || '|' || host || '|' || detail FROM pam_tap.audit "
                     f"WHERE \"user\" = '{user}' ORDER BY seq").splitlines()


def key_user(fleet, user, on=HOSTS):
    """`user` with a key enrolled (on host-a), signed in by it on each host
    of `on` while the database answers: each of those hosts copies it."""
    key = fleet.new_key(user, "key")
    fleet.plug(key)
    fleet_hosts.enroll_on_host(fleet, "host-a", user, f"{user} key")
    for name in on:
        fleet_hosts.assert_key_success(fleet.sign_in(name, user, stack="gate"))
    return key


def copy_file(fleet, name):
    """The copy at the default path, /var/lib/pam_tap/offline-keys.db on
    the host (its own state directory)."""
    return fleet.host(name).state / "offline-keys.db"


def test_each_host_keeps_its_own_copy_as_tapds_alone(fleet):
    key_user(fleet, "tapuser2")
    for name in HOSTS:
        path = copy_file(fleet, name)
        st = os.stat(path)
        uid, _ = harness.USERS[harness.DAEMON_USER]
        assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o600), (name, oct(st.st_mode))


def test_with_the_database_down_only_a_copied_key_signs_in(fleet):
    user = "tapuser3"
    key = key_user(fleet, user, on=("host-b",))
    issued = fleet.issue(user)  # a multi-use pass, usable when the database is up
    [before] = fleet.keys(user)
    with Down(fleet):
        started = time.monotonic()
        r = fleet.sign_in("host-b", user, stack="gate")
        took = time.monotonic() - started
        fleet_hosts.assert_key_success(r)
        # host-a never saw this user's key: no copy, no sign-in
        r = fleet.sign_in("host-a", user, stack="gate")
        assert r.rc == UNAVAIL and not r.fellthrough, r
        # no key plugged in: unavailable, not "nothing here", and no prompt
        fleet.plug(key, "--no-device")
        r = fleet.sign_in("host-b", user, issued["pass"], stack="gate")
        assert r.rc == UNAVAIL and not r.fellthrough and not r.prompts, r
        fleet.plug(key)
        # a user this host has no copy of: unavailable, as without offline_keys
        other = fleet.sign_in("host-b", "tapuser4", "whatever", stack="gate")
        assert other.rc == UNAVAIL and not other.fellthrough, other
    print(f"offline key sign-in, database stopped: {took:.2f} s")
    # Back: the next request on host-b that reaches the database sends the
    # offline record on, before serving it.
    fleet_hosts.assert_key_success(fleet.sign_in("host-b", user, stack="gate"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = audit_rows(fleet, user)
        if any(OFFLINE in row for row in rows):
            break
        time.sleep(0.1)
    offline = [row for row in rows if OFFLINE in row]
    assert len(offline) == 1 and offline[0].startswith("signin.key.success|host-b|"), rows
    assert not any(row.startswith("key.counter_regressed") for row in rows), rows
    [after] = fleet.keys(user)
    # two sign-ins since: the offline one and the one that sent it on
    assert after["sign_count"] >= before["sign_count"] + 2, (before, after)
    # the pass still works, online
    assert fleet.sign_in("host-b", user, issued["pass"]).rc == "PAM_SUCCESS"


def test_a_clone_used_offline_is_flagged_when_the_database_is_back(fleet):
    user = "tapuser5"
    key = key_user(fleet, user)
    clone = fleet.new_key(user, "clone")
    shutil.copyfile(key.path, clone.path)
    with Down(fleet):
        # each host checks only its own copy: both are let in
        fleet_hosts.assert_key_success(fleet.sign_in("host-a", user, stack="gate"))
        fleet.plug(clone)
        fleet_hosts.assert_key_success(fleet.sign_in("host-b", user, stack="gate"))
        fleet.plug(key)
    # both hosts reach the database again (a ping-free request: a sign-in
    # plan for a user out of keys), and each sends its record on
    for name in HOSTS:
        fleet.sign_in(name, "tapuser4", "whatever", stack="gate")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = audit_rows(fleet, user)
        # the flag is its own record, written after the second offline one
        if sum(OFFLINE in row for row in rows) == 2 and \
                any(row.startswith("key.counter_regressed|") for row in rows):
            break
        time.sleep(0.1)
    offline = [row for row in rows if OFFLINE in row]
    assert sorted(row.split("|")[1] for row in offline) == list(HOSTS), rows
    flagged = [row for row in rows if row.startswith("key.counter_regressed|")]
    assert len(flagged) == 1 and "possible cloned key" in flagged[0], rows
    # the flag names the host whose record came second
    assert flagged[0].split("|")[1] in HOSTS, flagged
    # the page's command finds it (as root on a host: its role reads the audit)
    env = dict(os.environ, PATH=f"{WORLD.base / 'bin'}:{os.environ['PATH']}")
    found = subprocess.run(fleet.host("host-a").enter() + ["sh", "-e", "-c", doc_block("sh")],
                           capture_output=True, text=True, timeout=60, env=env,
                           stdin=subprocess.DEVNULL)
    assert found.returncode == 0, found
    mine = [line for line in found.stdout.splitlines() if f" {user} " in line]
    assert len(mine) == 1 and "possible cloned key" in mine[0], found.stdout
    print(f"\n  {mine[0]}")


def test_a_silent_database_still_lets_a_copied_key_in_within_the_timeouts(fleet):
    user = "tapuser6"
    key_user(fleet, user, on=("host-a",))
    pids = pg.freeze(fleet.cluster)
    try:
        started = time.monotonic()
        r = fleet.sign_in("host-a", user, stack="gate")
        took = time.monotonic() - started
    finally:
        pg.thaw(pids)
    fleet_hosts.assert_key_success(r)
    # the plan waits at most connect_timeout (2 s) for the kept session's
    # round trip and as long for a new one; the answer goes to the copy
    print(f"offline key sign-in, database frozen: {took:.2f} s")
    assert took < 2 * 2 + 2, took


def test_policy_check_shows_the_offline_settings(fleet):
    proc = fleet.host("host-a").run_here(WORLD.tapctl, "policy", "check", check=True)
    store = tomllib.loads(proc.stdout[proc.stdout.index("["):])["store"]
    assert store["offline_keys"] is True, proc.stdout
    assert store.get("offline_cache") in (None, "/var/lib/pam_tap/offline-keys.db"), proc.stdout


def test_a_database_that_refuses_this_host_is_not_served_around(fleet):
    """The copy stands in only for a database that does not answer. One
    that answers and refuses this host (its role's password changed, as an
    administrator cutting a host off would) gets UNAVAIL for a copied key,
    as without the copy."""
    user = "tapuser7"
    key_user(fleet, user, on=("host-a",))
    log = fleet.host("host-a").tapd_log
    seen = log.stat().st_size
    fleet.sql("ALTER ROLE pam_tap_host PASSWORD 'changed-by-an-administrator'")
    # the sessions tapd keeps end, so its next step must log in again
    fleet.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
              "WHERE usename = 'pam_tap_host'")
    try:
        r = fleet.sign_in("host-a", user, stack="gate")
    finally:
        fleet.sql("ALTER ROLE pam_tap_host PASSWORD "
                  f"'{fleet.cluster.passwords['pam_tap_host']}'")
    assert r.rc == UNAVAIL and not r.fellthrough, r
    said = log.read_text(errors="replace")[seen:]
    assert "password authentication failed" in said, said
    assert "from the offline copy" not in said, said
    # the password back: the same tapd signs the key in again
    fleet_hosts.assert_key_success(fleet.sign_in("host-a", user, stack="gate"))
