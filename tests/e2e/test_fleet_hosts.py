"""A fleet of simulated hosts on one PostgreSQL store (issue 14: "Hosts",
"Races", "Cross-host"): HOST_NAMES hosts, each its own mount and UTS
namespace with its own host name, policy at the standard path and tapd on
the standard socket, connected as `pam_tap_host` to one real PostgreSQL
cluster (pg.py); an administrator's tapd connected as `pam_tap_admin`
issues and revokes. Sign-ins are the release pam_tap.so through real libpam
inside each host's namespaces (fleet.py).

Stacks (fleet.services): gate = pam_tap then pam_permit, so a wrong
PAM_IGNORE would let the user in (Result.fellthrough shows it); deny =
pam_tap then pam_deny, as a real host's stack, for "refused" as a user
sees it.
"""

import json
import shutil
import subprocess
import time
from datetime import datetime, timezone

import pytest

import fleet as fleet_hosts
import harness
from conftest import WORLD

RACERS = 64
ROUNDS = 20
HOST_NAMES = fleet_hosts.HOST_NAMES
MAX_FAILURES = fleet_hosts.MAX_FAILURES
enroll_on_host = fleet_hosts.enroll_on_host
assert_key_success = fleet_hosts.assert_key_success


@pytest.fixture(scope="module")
def fleet():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    f = fleet_hosts.Fleet(WORLD.base / "t" / "fleet-hosts", WORLD)
    try:
        f.start()
        yield f
    finally:
        f.stop()


def refused_everywhere(fleet, user, answer):
    """The right answer on every host, on a real (deny) stack: nobody in,
    and pam_tap itself refused or had nothing to offer (never a success)."""
    for name in HOST_NAMES:
        r = fleet.sign_in(name, user, answer, stack="deny")
        assert r.rc != "PAM_SUCCESS", (name, r)
        assert r.outcome in ("PAM_AUTH_ERR", "PAM_IGNORE"), (name, r)


# ---------------------------------------------------------------------------
# hosts

def test_each_host_is_its_own_namespace_with_its_own_name_policy_and_tapd(fleet):
    seen = {}
    for name in HOST_NAMES:
        host = fleet.host(name)
        proc = host.run_here("sh", "-c", "uname -n; cat /etc/security/pam_tap.toml; "
                                         "readlink /proc/self/ns/mnt /proc/self/ns/uts",
                             check=True)
        lines = proc.stdout.splitlines()
        assert lines[0] == name, proc.stdout
        assert "pam_tap_host@127.0.0.1" in proc.stdout, proc.stdout
        seen[name] = tuple(lines[-2:])
        # its tapd answers on the standard socket inside the host
        ping = host.run_here("sh", "-c", "test -S /run/pam_tap/tapd.sock && echo up", check=True)
        assert ping.stdout.strip() == "up", ping
    ours = (subprocess.run(["readlink", "/proc/self/ns/mnt", "/proc/self/ns/uts"],
                           capture_output=True, text=True).stdout.splitlines())
    assert len(set(seen.values()) | {tuple(ours)}) == len(HOST_NAMES) + 1, (seen, ours)


def test_sign_ins_on_each_host_are_audited_with_that_hosts_name(fleet):
    issued = fleet.issue("tapuser5")
    for name in HOST_NAMES:
        r = fleet.sign_in(name, "tapuser5", issued["pass"])
        assert r.outcome == "PAM_SUCCESS", (name, r)
    # the rows in the database, in sign-in order, name the host that wrote them
    hosts = fleet.sql("SELECT host FROM pam_tap.audit WHERE \"user\" = 'tapuser5' "
                      "AND event = 'signin.pass.success' ORDER BY seq").splitlines()
    assert hosts == list(HOST_NAMES), hosts
    # and the admin's own record names the admin's host, not a fleet host
    issued_on = fleet.sql("SELECT host FROM pam_tap.audit WHERE \"user\" = 'tapuser5' "
                          "AND event = 'pass.issued'")
    assert issued_on and issued_on not in HOST_NAMES, issued_on


def test_tapctl_audit_host_filters_on_the_host_name(fleet):
    issued = fleet.issue("tapuser8")
    for name in HOST_NAMES:
        assert fleet.sign_in(name, "tapuser8", issued["pass"]).outcome == "PAM_SUCCESS"
    # as written, by root on host B (its tapd, the standard socket)
    table = fleet.host("host-b").run_here(WORLD.tapctl, "audit", "--host", "host-b", check=True)
    rows = table.stdout.splitlines()
    assert rows[0].split()[:3] == ["TIME", "HOST", "EVENT"], table.stdout
    assert len(rows) > 1 and all(r.split()[1] == "host-b" for r in rows[1:]), table.stdout
    assert any("signin.pass.success" in r and "tapuser8" in r for r in rows[1:]), table.stdout
    # the admin's JSON: exactly host B's records, as many as the database has
    records = harness.parse_json_records(fleet.tap.tapctl(
        "audit", "--host", "host-b", "--limit", "100000", "--json", policy=fleet.admin).stdout)
    assert records and {r["host"] for r in records} == {"host-b"}, records
    in_db = fleet.sql("SELECT count(*) FROM pam_tap.audit WHERE host = 'host-b'")
    assert len(records) == int(in_db), (len(records), in_db)
    # with --user too
    mine = fleet.tap.audit("tapuser8", policy=fleet.admin)
    assert [r["host"] for r in mine if r["event"] == "signin.pass.success"] == list(HOST_NAMES)
    both = harness.parse_json_records(fleet.tap.tapctl(
        "audit", "--host", "host-b", "--user", "tapuser8", "--json", policy=fleet.admin).stdout)
    assert [(r["event"], r["host"]) for r in both] == [("signin.pass.success", "host-b")], both
    # the filter is in the query, before the limit: host A's newest record
    # even though host B's and C's are newer
    [newest_a] = harness.parse_json_records(fleet.tap.tapctl(
        "audit", "--host", "host-a", "--limit", "1", "--json", policy=fleet.admin).stdout)
    assert newest_a["host"] == "host-a" and newest_a["user"] == "tapuser8", newest_a
    # a host with no records: none, not an error
    none = fleet.tap.tapctl("audit", "--host", "host-z", "--json", policy=fleet.admin)
    assert harness.parse_json_records(none.stdout) == [], none.stdout


# ---------------------------------------------------------------------------
# races

def race(fleet, user, answer, go):
    """RACERS sign-ins with one answer, spread over the hosts, all let go at
    once (each driver waits after pam_start for `go`). Returns the results
    (host name, Result) and the seconds from the start signal to the last."""
    procs = []
    for i in range(RACERS):
        host = fleet.host(HOST_NAMES[i % len(HOST_NAMES)])
        procs.append((host.name, host.sign_in(fleet.services["gate"], user, [answer],
                                              popen=True, wait_file=go)))
    time.sleep(0.8)  # let every driver reach its wait
    t0 = time.monotonic()
    go.touch()
    results = []
    for name, p in procs:
        out, err = p.communicate(timeout=120)
        results.append((name, harness.parse_driver(p.returncode, out, err)))
    return results, time.monotonic() - t0


def test_one_time_pass_raced_across_hosts_signs_in_exactly_once_each_round(fleet):
    user = "tapuser1"
    timings, winners = [], []
    for n in range(ROUNDS):
        issued = fleet.issue(user, one_time=True)
        results, took = race(fleet, user, issued["pass"], fleet.base / f"go-race-{n}")
        won = [(h, r) for h, r in results if r.rc == "PAM_SUCCESS" and not r.fellthrough]
        assert len(won) == 1, (n, [(h, str(r)) for h, r in results])
        # every other one: refused inside pam_tap (raced: the right pass of a
        # used one-time pass), or the pass was already used when it asked,
        # so pam_tap offered nothing (no prompt, PAM_IGNORE)
        raced = sum(1 for _, r in results if r.rc == "PAM_AUTH_ERR" and not r.fellthrough)
        late = sum(1 for _, r in results if r.fellthrough and r.prompts == [])
        assert raced + late == RACERS - 1, (n, [(h, str(r)) for h, r in results])
        shown = fleet.show(user)
        assert shown["reason"] == "OneTimeUsed" and shown["failures"] == 0, shown
        timings.append(took)
        winners.append(won[0][0])
        print(f"round {n + 1}: {took:.2f} s, won on {won[0][0]}, {raced} refused in the race, "
              f"{late} found it used")
    successes = fleet.sql("SELECT host FROM pam_tap.audit WHERE \"user\" = 'tapuser1' "
                          "AND event = 'signin.pass.success'").splitlines()
    assert len(successes) == ROUNDS and set(successes) <= set(HOST_NAMES), successes
    assert sorted(successes) == sorted(winners), (successes, winners)
    print(f"{ROUNDS} rounds of {RACERS} over {len(HOST_NAMES)} hosts: "
          f"min {min(timings):.2f} s, max {max(timings):.2f} s, "
          f"mean {sum(timings) / len(timings):.2f} s; wins per host "
          f"{ {h: winners.count(h) for h in HOST_NAMES} }")


# ---------------------------------------------------------------------------
# cross-host

def test_wrong_passes_on_different_hosts_lock_at_max_failures_in_total(fleet):
    issued = fleet.issue("tapuser2")
    assert MAX_FAILURES == len(HOST_NAMES)  # one wrong pass on each host
    for i, name in enumerate(HOST_NAMES):
        r = fleet.sign_in(name, "tapuser2", "WRONG-PASS-0")
        assert r.rc == "PAM_AUTH_ERR" and not r.fellthrough, (name, r)
        shown = fleet.show("tapuser2")
        assert shown["failures"] == i + 1, shown
        assert (shown["reason"] == "Locked") == (i + 1 == MAX_FAILURES), shown
    refused_everywhere(fleet, "tapuser2", issued["pass"])
    locked = fleet.sql("SELECT host FROM pam_tap.audit WHERE \"user\" = 'tapuser2' "
                       "AND event = 'pass.locked'")
    assert locked == HOST_NAMES[-1], locked


def test_revoke_by_the_admin_refuses_on_another_host_at_once(fleet):
    issued = fleet.issue("tapuser3")
    assert fleet.sign_in("host-a", "tapuser3", issued["pass"]).outcome == "PAM_SUCCESS"
    fleet.tap.tapctl("revoke", "tapuser3", policy=fleet.admin)
    r = fleet.sign_in("host-b", "tapuser3", issued["pass"], stack="deny")
    assert r.rc == "PAM_AUTH_ERR" and r.outcome == "PAM_IGNORE" and r.prompts == [], r
    refused_everywhere(fleet, "tapuser3", issued["pass"])


def test_enrollment_window_is_per_user_not_per_host(fleet):
    def status(host):
        proc = fleet.host(host).run_here(WORLD.tapctl, "status", "--json", as_user="tapuser4")
        assert proc.returncode == 0, (host, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)

    issued = fleet.issue("tapuser4")
    assert not status("host-b")["enroll_window_until"], "no window before a sign-in"
    assert fleet.sign_in("host-a", "tapuser4", issued["pass"]).outcome == "PAM_SUCCESS"
    now = datetime.now(timezone.utc)
    for name in ("host-b", "host-c"):
        window = status(name)["enroll_window_until"]
        assert window and datetime.fromisoformat(window) > now, (name, window)


# ---------------------------------------------------------------------------
# cross-host: security keys

def test_a_key_enrolled_on_one_host_signs_in_on_the_others(fleet):
    user = "tapuser6"
    fleet.plug(fleet.new_key(user, "key"))
    enrolled = enroll_on_host(fleet, "host-a", user, "fleet key")
    count = enrolled["sign_count"]
    for name in ("host-b", "host-c"):
        assert_key_success(fleet.sign_in(name, user, stack="deny"))
        [key] = fleet.keys(user)
        assert key["sign_count"] > count and key["last_used"], (name, key)
        count = key["sign_count"]
    rows = fleet.sql("SELECT event || ' ' || host FROM pam_tap.audit WHERE \"user\" = 'tapuser6' "
                     "AND event LIKE '%key%' ORDER BY seq").splitlines()
    assert rows == ["key.enrolled host-a", "signin.key.success host-b",
                    "signin.key.success host-c"], rows


def test_a_cloned_key_used_on_another_host_after_the_original_is_refused(fleet):
    user = "tapuser7"
    key = fleet.new_key(user, "key")
    fleet.plug(key)
    enroll_on_host(fleet, "host-a", user, "cloned key")
    # the attacker copies the key's secret state now
    clone = fleet.new_key(user, "clone")
    shutil.copyfile(key.path, clone.path)
    # the owner signs in on host A: the counter moves on, fleet-wide
    assert_key_success(fleet.sign_in("host-a", user, stack="deny"))
    [stored] = fleet.keys(user)
    # the clone's next signature carries a counter the store has seen
    fleet.plug(clone)
    r = fleet.sign_in("host-b", user, stack="gate")
    assert r.rc == "PAM_AUTH_ERR" and not r.fellthrough, r
    assert harness.PROMPT not in r.prompts, r
    [after] = fleet.keys(user)
    assert after["sign_count"] == stored["sign_count"], (stored, after)
    regressed = fleet.sql("SELECT host || ' ' || detail FROM pam_tap.audit "
                          "WHERE \"user\" = 'tapuser7' AND event = 'key.counter_regressed'")
    assert regressed.startswith("host-b ") and "clone" in regressed, regressed
    # the original key still signs in, on another host again
    fleet.plug(key)
    assert_key_success(fleet.sign_in("host-c", user, stack="deny"))


def test_each_tapd_knows_who_has_neither_pass_nor_key_without_asking(fleet):
    """Each host's tapd keeps a roster (store/src/postgres/roster.rs): one
    listening session, `pam_tap-roster@HOST`, that read who has a pass or a
    key and is told of new ones. A user with neither is answered from it:
    with the host role's reads taken away, that user's sign-in is still
    "nothing here" (IGNORE, so the gate stack falls through), while a user
    with a pass, whom tapd must ask the database about, is unavailable."""
    issued = fleet.issue("tapuser1")
    for name in HOST_NAMES:
        assert fleet.sign_in(name, "tapuser1", issued["pass"]).outcome == "PAM_SUCCESS"
    give_up = time.monotonic() + 10
    while not all("roster: listening to the database" in fleet.host(n).tapd_log.read_text()
                  for n in HOST_NAMES):
        assert time.monotonic() < give_up, [fleet.host(n).tapd_log.read_text()[-1500:]
                                            for n in HOST_NAMES]
        time.sleep(0.05)
    sessions = fleet.sql("SELECT application_name FROM pg_stat_activity "
                         "WHERE application_name LIKE 'pam_tap-roster@%'").splitlines()
    assert {f"pam_tap-roster@{n}" for n in HOST_NAMES} <= set(sessions), sessions
    fleet.sql("REVOKE SELECT ON pam_tap.keys, pam_tap.host_passes FROM pam_tap_host")
    try:
        for name in HOST_NAMES:
            nobody = fleet.sign_in(name, "tapin", "not-a-pass")
            assert nobody.outcome == "PAM_IGNORE" and nobody.fellthrough, (name, nobody)
            asked = fleet.sign_in(name, "tapuser1", issued["pass"])
            assert asked.rc == "PAM_AUTHINFO_UNAVAIL" and not asked.fellthrough, (name, asked)
    finally:
        fleet.sql("GRANT SELECT ON pam_tap.keys, pam_tap.host_passes TO pam_tap_host")
    # a pass issued now (on the admin's tapd) is known on every host at once
    issued = fleet.issue("tapin")
    for name in HOST_NAMES:
        assert fleet.sign_in(name, "tapin", issued["pass"]).outcome == "PAM_SUCCESS", name
