"""Faults and bad input on the PostgreSQL store (issue 14), through tapd and
the real PAM stack: a real PostgreSQL started here (pg.py), an
administrator's tapd as `pam_tap_admin`, a host's tapd as `pam_tap_host`
serving the release pam_tap.so through real libpam on the gate stack (a
wrong PAM_IGNORE would let the user in).

* failover: a synchronous standby promoted with `pg_ctl promote`; sign-ins
  resume without a tapd restart, and a consumed one-time pass stays used;
  before that, the standby silent: sign-ins on the primary fail closed, in
  bounded time, and a pass and its audit row stay together;
* the server killed while a sign-in's change waits inside it: a clean
  PAM_AUTHINFO_UNAVAIL, and the pass neither half consumed nor lost;
* the database gone silent (every server process stopped: what a network
  dropping packets looks like) with a login waiting: PAM_AUTHINFO_UNAVAIL
  within the policy's timeouts, tapd answering meanwhile, and back after;
* bad input: what the administrator sees (exit code, stderr, the log) for a
  wrong URL, password, certificate name, an expired certificate, a newer
  schema, a host role with too many rights, and a `[store]` table mixing
  the backends' settings; nothing in the database changes.

A database restart is test_fleet_postgres.py's.
"""

import contextlib
import json
import os
import subprocess
import threading
import time

import pytest

import harness
import pg
from conftest import WORLD

UNAVAIL = "PAM_AUTHINFO_UNAVAIL"
# The host policy's [store] timeouts (the shortest the policy allows).
CONNECT_S, STATEMENT_S = 1, 2


def policy_with(tap, name, store_table):
    """A policy as harness.policy_text writes it, `[store]` instead of the
    SQLite path."""
    text = harness.policy_text(tap.store, passes={"max_failures": 3})
    text = "\n".join(l for l in text.splitlines() if not l.startswith("store = ")) + "\n"
    return tap.write_policy(name, text=text + store_table)


tapd_as_pam_tap = harness.tapd_as_pam_tap


def log_texts(syslog, mark):
    return [text for _, _, text in syslog.since(mark)]


class Site:
    """Clusters (the first is the primary), a Tap, the roles' password
    files, and an admin and a host policy naming every cluster."""

    def __init__(self, name, clusters, **url_params):
        self.clusters = clusters
        self.base = WORLD.base / "t" / name
        self.tap = harness.Tap(self.base / "tap", WORLD.pam_tap_so, WORLD.tapctl)
        self.secrets = self.base / "secrets"
        self.secrets.mkdir(mode=0o755)
        first = clusters[0]
        self.admin_pw = first.password_file("pam_tap_admin", self.secrets / "admin", "pam-tap")
        self.host_pw = first.password_file("pam_tap_host", self.secrets / "host", "pam-tap")
        self.url_params = url_params
        self.admin = self.policy("admin.toml", "pam_tap_admin")
        self.host = self.policy("host.toml", "pam_tap_host")

    def url(self, role, **more):
        return pg.url_for(role, self.clusters, **{**self.url_params, **more})

    def policy(self, name, role, url=None, password_file=None, ca_file=None,
               statement_timeout=f"{STATEMENT_S}s"):
        password_file = password_file or (self.admin_pw if role == "pam_tap_admin"
                                          else self.host_pw)
        table = pg.store_section(url or self.url(role), password_file,
                                 ca_file or self.clusters[0].ca, f"{CONNECT_S}s",
                                 statement_timeout)
        return policy_with(self.tap, name, table)

    def sign_in(self, user, answer, policy=None):
        return self.tap.auth(user, [answer], stack="gate", policy=policy or self.host)

    def sql(self, statement):
        return self.clusters[0].sql("pam_tap", statement)

    def daemon_pid(self, policy):
        self.tap.socket_for(policy)
        return self.tap.daemons[str(policy)].proc.pid

    def stop(self):
        self.tap.stop_daemons()
        for cluster in reversed(self.clusters):
            cluster.stop()


@pytest.fixture(scope="module")
def site():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    cluster = pg.Cluster(WORLD.base / "t" / "fleet-faults" / "cluster")
    s = None
    try:
        s = Site("fleet-faults-site", [cluster])
        migrated = tapd_as_pam_tap("--migrate", "--policy", s.admin)
        assert migrated.returncode == 0, migrated
        yield s
    finally:
        if s is not None:
            s.stop()
        cluster.stop()


def passes_and_audit(site):
    """Everything a bad-input case must leave as it was."""
    return (site.sql("SELECT string_agg(concat_ws(':', \"user\", id, used_at, last_used, "
                     "failures, locked_at, revoked_at), ',' ORDER BY \"user\") "
                     "FROM pam_tap.passes"),
            site.sql("SELECT count(*) FROM pam_tap.audit"))


# --------------------------------------------------------------------------
# the database silent with a login waiting


def test_a_silent_database_is_unavail_in_bounded_time_and_tapd_keeps_answering(site, syslog):
    issued = site.tap.issue("tapuser2", policy=site.admin)
    assert site.sign_in("tapuser2", issued["pass"]).outcome == "PAM_SUCCESS"
    pid = site.daemon_pid(site.host)
    sock = site.tap.socket_for(site.host)
    service = site.tap.service("gate", policy=site.host)
    go = site.base / "go-silent"
    # every worker opens its session while the database answers (idle
    # workers take requests in turn), so the login meets the silence on a
    # kept session: statement_timeout + connect_timeout, then one retry
    for _ in range(12):
        harness.request(sock, "ping")
    login = harness.drive(service, "tapuser2", [issued["pass"]], wait_file=go, popen=True)
    mark = syslog.mark()
    stopped = pg.freeze(site.clusters[0])
    ended = {}

    def wait_for_login():
        ended["out"] = login.communicate(timeout=60)
        ended["at"] = time.monotonic()

    waiter = threading.Thread(target=wait_for_login)
    try:
        go.touch()
        began = time.monotonic()
        waiter.start()
        # meanwhile tapd answers: pings (a worker that had no session would
        # try to open one first, and say the store is not usable when that
        # fails)
        pings = []
        for _ in range(8):
            t = time.monotonic()
            reply = harness.request(sock, "ping", timeout=15)
            pings.append((time.monotonic() - t, next(iter(reply))))
        waiter.join(60)
        took = ended["at"] - began
        waiting = harness.parse_driver(login.returncode, *ended["out"])
        # a user without a pass, once tapd has found the database gone: its
        # roster (who has a pass or key) is no longer current, so the plan
        # asks the database, which does not answer: unavailable, not
        # "nothing here"
        t = time.monotonic()
        nopass = site.sign_in("tapuser6", "NO-PASS-0")
        nopass_took = time.monotonic() - t
    finally:
        pg.thaw(stopped)
    print(f"\n  silent database: login refused after {took:.2f} s "
          f"(connect_timeout {CONNECT_S} s, statement_timeout {STATEMENT_S} s; fail delay "
          f"{waiting.raw.get('fail_delay_usec')} us asked of libpam, not slept by the driver); "
          f"pings {', '.join(f'{p:.3f} s {kind}' for p, kind in pings)}; "
          f"a user without a pass answered in {nopass_took:.2f} s ({nopass.rc})")
    assert waiting.rc == UNAVAIL and not waiting.fellthrough, waiting
    assert waiting.prompts == [], waiting
    # a call on the kept session: statement_timeout + connect_timeout; the
    # one retry on a fresh session: connect_timeout; plus slack for this
    # loaded machine
    bound = STATEMENT_S + 2 * CONNECT_S + 2
    assert took < bound, took
    # each answered, a worker without a session after its own connect
    # attempt at worst; the workers that have one at once
    for p, kind in pings:
        assert kind in ("pong", "refused") and p < CONNECT_S + 2, pings
    assert any(kind == "pong" and p < 0.5 for p, kind in pings), pings
    assert nopass.rc == UNAVAIL and not nopass.fellthrough, nopass
    assert nopass_took < bound, nopass_took
    lines = log_texts(syslog, mark)
    assert any("tapuser2" in l and "no answer within" in l for l in lines), lines
    # back without a restart
    t = time.monotonic()
    back = site.sign_in("tapuser2", issued["pass"])
    print(f"  after SIGCONT: signed in in {time.monotonic() - t:.2f} s")
    assert back.outcome == "PAM_SUCCESS", (back, log_texts(syslog, mark))
    assert site.daemon_pid(site.host) == pid


# --------------------------------------------------------------------------
# the server killed in the middle of a sign-in


def wait_for(cluster, query, wanted, seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        got = cluster.sql("postgres", query)
        if got == wanted:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{query}: {got!r}, not {wanted!r}")
        time.sleep(0.05)


def test_the_server_killed_mid_sign_in_is_unavail_and_nothing_half_written(site, syslog):
    cluster = site.clusters[0]
    # long enough a statement_timeout that the change is still waiting
    # inside the server when the server dies
    slow = site.policy("host-slow.toml", "pam_tap_host", statement_timeout="6s")
    issued = site.tap.issue("tapuser3", one_time=True, policy=site.admin)
    audit_rows = ("SELECT count(*) FROM pam_tap.audit WHERE \"user\" = 'tapuser3'")
    before = site.sql(audit_rows)
    pid = site.daemon_pid(slow)
    # an administrator's open transaction holds the pass's row: the
    # sign-in's consume (pam_tap.record_success) waits for it in the server
    holder = subprocess.Popen(
        cluster.psql("pam_tap") + ["-c", "BEGIN; SELECT 1 FROM pam_tap.passes "
                                         "WHERE \"user\" = 'tapuser3' FOR UPDATE; "
                                         "SELECT pg_sleep(120)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    started = []
    try:
        wait_for(cluster, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
                 "1")
        service = site.tap.service("gate", policy=slow)
        login = harness.drive(service, "tapuser3", [issued["pass"]], popen=True)
        started.append(login)
        wait_for(cluster, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pam_tap_host' "
                          "AND wait_event_type = 'Lock' AND query LIKE '%record_success%'", "1")
        mark = syslog.mark()
        killed = time.monotonic()
        cluster.stop()  # SIGQUIT: immediate shutdown, every backend gone
        out, err = login.communicate(timeout=60)
        took = time.monotonic() - killed
        result = harness.parse_driver(login.returncode, out, err)
    finally:
        for proc in [holder] + started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if cluster.proc is None:
            cluster.start()
    print(f"\n  server killed mid-sign-in: {result.rc} {took:.2f} s after the kill")
    assert result.prompts == [harness.PROMPT], result  # the pass had been typed
    assert result.rc == UNAVAIL and not result.fellthrough, result
    assert took < CONNECT_S + 2, took
    lines = log_texts(syslog, mark)
    assert any("tapuser3" in l and "recording a sign-in" in l for l in lines), lines
    # nothing half written: not consumed, no failure counted, no audit row
    assert site.sql("SELECT used_at IS NULL, failures FROM pam_tap.passes "
                    "WHERE \"user\" = 'tapuser3'") == "t|0"
    assert site.sql(audit_rows) == before
    # and nothing lost: the same pass signs in once, on the same tapd
    assert site.sign_in("tapuser3", issued["pass"], policy=slow).outcome == "PAM_SUCCESS"
    again = site.sign_in("tapuser3", issued["pass"], policy=slow)
    assert again.outcome == "PAM_IGNORE" and again.prompts == [], again
    assert site.sql("SELECT count(*) FROM pam_tap.audit WHERE \"user\" = 'tapuser3' "
                    "AND event = 'signin.pass.success'") == "1"
    assert site.daemon_pid(slow) == pid


# --------------------------------------------------------------------------
# failover to a synchronous standby


@contextlib.contextmanager
def primary_and_standby(name):
    """A primary, its synchronous standby, and a Site whose URLs name both
    with target_session_attrs=read-write (the one that takes writes is
    used); the schema made by the admin role."""
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    base = WORLD.base / "t" / name
    primary = pg.Cluster(base / "primary")
    standby, s = None, None
    try:
        standby = pg.Standby(primary, base / "standby")
        s = Site(f"{name}-site", [primary, standby], target_session_attrs="read-write")
        migrated = tapd_as_pam_tap("--migrate", "--policy", s.admin)
        assert migrated.returncode == 0, migrated
        yield s
    finally:
        if s is not None:
            s.tap.stop_daemons()
        if standby is not None:
            standby.stop()
        primary.stop()


@pytest.fixture(scope="module")
def pair():
    with primary_and_standby("fleet-failover") as s:
        yield s


@pytest.fixture(scope="module")
def vanishing_pair():
    with primary_and_standby("fleet-failover-silent") as s:
        yield s


def test_a_silent_standby_fails_sign_ins_closed_and_keeps_each_pass_whole(pair, syslog):
    """The network to the synchronous standby cut: the primary cannot
    acknowledge a commit. The consume is written on the primary and waits
    there for the standby; tapd gives up at its deadline, tries once more on
    a new session (which waits for the first's row lock until
    statement_timeout), and fails closed. Whatever then becomes of that
    first transaction, the pass and its audit row go together."""
    primary, standby = pair.clusters
    used = pair.tap.issue("tapuser4", one_time=True, policy=pair.admin)
    stopped = pg.freeze(standby)
    try:
        mark = syslog.mark()
        t = time.monotonic()
        result = pair.sign_in("tapuser4", used["pass"])
        took = time.monotonic() - t
        lines = log_texts(syslog, mark)
    finally:
        pg.thaw(stopped)
    print(f"\n  synchronous standby silent: {result.rc} after {took:.2f} s")
    assert result.rc == UNAVAIL and not result.fellthrough, result
    # the kept session's deadline, then the retry's statement_timeout; the
    # hash and slack for a loaded machine on top
    assert took < 2 * STATEMENT_S + 2 * CONNECT_S + 3, took
    assert any("tapuser4" in l and "recording a sign-in" in l for l in lines), lines
    # the standby back: the waiting commit completes (or not) as one
    query = ("SELECT (SELECT used_at IS NOT NULL FROM pam_tap.passes WHERE \"user\" = "
             "'tapuser4') || '|' || (SELECT count(*) FROM pam_tap.audit WHERE \"user\" = "
             "'tapuser4' AND event = 'signin.pass.success')")
    deadline = time.monotonic() + 20
    while primary.sql("pam_tap", "SELECT count(*) FROM pg_stat_activity "
                                 "WHERE wait_event = 'SyncRep'") != "0":
        assert time.monotonic() < deadline, "the primary still waits for the standby"
        time.sleep(0.1)
    state = primary.sql("pam_tap", query)
    print(f"  afterwards: consumed|success rows = {state} (primary), "
          f"{standby.sql('pam_tap', query)} (standby)")
    assert state in ("true|1", "false|0"), state
    if state == "false|0":
        assert pair.sign_in("tapuser4", used["pass"]).outcome == "PAM_SUCCESS"
    again = pair.sign_in("tapuser4", used["pass"])
    assert again.outcome == "PAM_IGNORE" and again.prompts == [], again


def test_failover_to_the_standby_resumes_sign_ins_and_no_used_pass_comes_back(pair, syslog):
    primary, standby = pair.clusters
    assert pg.url_for("pam_tap_host", pair.clusters, target_session_attrs="read-write") in \
        pair.host.read_text()
    used = pair.tap.issue("tapuser1", one_time=True, policy=pair.admin)
    spare = pair.tap.issue("tapuser2", policy=pair.admin)
    host_pid, admin_pid = pair.daemon_pid(pair.host), pair.daemon_pid(pair.admin)
    # the last change before the primary dies: acknowledged only once the
    # standby has it
    assert pair.sign_in("tapuser1", used["pass"]).outcome == "PAM_SUCCESS"
    mark = syslog.mark()
    primary.stop()  # SIGQUIT: immediate
    began = time.monotonic()
    standby.promote()
    promoted = time.monotonic() - began
    # no restart of either tapd: a fresh pass from the admin's, signed in
    # on the host's; both find the new primary by themselves
    attempts = 0
    while True:
        attempts += 1
        issued = pair.tap.tapctl("issue", "tapuser3", "--one-time", "--json",
                                 policy=pair.admin, check=False)
        if issued.returncode == 0:
            fresh = json.loads(issued.stdout)["pass"]
            first = pair.sign_in("tapuser3", fresh)
            if first.outcome == "PAM_SUCCESS":
                break
        assert time.monotonic() - began < 30, (issued, log_texts(syslog, mark))
        time.sleep(0.2)
    resumed = time.monotonic() - began
    print(f"\n  failover: pg_ctl promote took {promoted:.2f} s; first sign-in with a fresh "
          f"pass {resumed:.2f} s after promote began, attempt {attempts}")
    assert attempts == 1, "the first sign-in after the promotion succeeds"
    # the pass used just before the failure stays used
    again = pair.sign_in("tapuser1", used["pass"])
    assert again.outcome == "PAM_IGNORE" and again.prompts == [], again
    assert pair.tap.show("tapuser1", policy=pair.admin)["reason"] == "OneTimeUsed"
    assert standby.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit WHERE \"user\" = "
                                  "'tapuser1' AND event = 'signin.pass.success'") == "1"
    # a pass issued before the failure and not used: still good
    assert pair.sign_in("tapuser2", spare["pass"]).outcome == "PAM_SUCCESS"
    assert (pair.daemon_pid(pair.host), pair.daemon_pid(pair.admin)) == (host_pid, admin_pid)
    # the hosts' sessions are on the promoted server now
    assert int(standby.sql("pam_tap", "SELECT count(*) FROM pg_stat_activity "
                                      "WHERE usename = 'pam_tap_host'")) >= 1


def test_failover_from_a_primary_gone_silent_resumes_on_the_first_sign_in(vanishing_pair,
                                                                         syslog):
    """The primary's host vanishes without a word (its processes stopped,
    then killed: nothing ever closes tapd's sessions) and the standby is
    promoted. Each tapd worker meets the silence once on its kept session,
    gives up at the call deadline, and its one retry dials the URL's
    servers in order: the silent one for connect_timeout, then the new
    primary. The sign-in that meets it succeeds; nothing is restarted."""
    primary, standby = vanishing_pair.clusters
    s = vanishing_pair
    used = s.tap.issue("tapuser1", one_time=True, policy=s.admin)
    fresh = s.tap.issue("tapuser2", one_time=True, policy=s.admin)
    # every worker of the host's tapd holds a session to the primary
    sock = s.tap.socket_for(s.host)
    for _ in range(12):
        harness.request(sock, "ping")
    host_pid = s.daemon_pid(s.host)
    assert s.sign_in("tapuser1", used["pass"]).outcome == "PAM_SUCCESS"
    stopped = pg.freeze(primary)
    began = time.monotonic()
    standby.promote()
    promoted = time.monotonic() - began
    try:
        mark = syslog.mark()
        t = time.monotonic()
        first = s.sign_in("tapuser2", fresh["pass"])
        took = time.monotonic() - t
        lines = log_texts(syslog, mark)
        again = s.sign_in("tapuser1", used["pass"])
    finally:
        for pid in stopped:  # SIGKILL reaches a stopped process
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        primary.stop()
    print(f"\n  failover from a silent primary: promote {promoted:.2f} s; the first sign-in "
          f"took {took:.2f} s ({first.rc}), {time.monotonic() - began:.2f} s after promote "
          "began")
    assert first.outcome == "PAM_SUCCESS", (first, lines)
    # at most two steps (plan, pass check), each on a worker that may meet
    # the silence: the call deadline, connect_timeout for the silent server,
    # the new primary; plus the hash and slack
    assert took < 2 * (STATEMENT_S + 3 * CONNECT_S) + 3, took
    assert again.outcome == "PAM_IGNORE" and again.prompts == [], again
    assert standby.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit WHERE event = "
                                  "'signin.pass.success'") == "2"
    assert s.daemon_pid(s.host) == host_pid


# --------------------------------------------------------------------------
# bad input: what the administrator sees


def refused_everywhere(site, syslog, policy, wanted, secret=None, migrate=True):
    """`tapd --migrate` fails naming the cause; a tapd on the policy
    answers tapctl with exit 6 and the cause; a sign-in through it is
    PAM_AUTHINFO_UNAVAIL on the gate stack, and its log says why."""
    said = ""
    if migrate:
        migrated = tapd_as_pam_tap("--migrate", "--policy", policy)
        assert migrated.returncode == 1, migrated
        assert migrated.stderr.startswith("tapd: ") and wanted in migrated.stderr, migrated
        said = migrated.stderr
    mark = syslog.mark()
    shown = site.tap.tapctl("show", "tapuser1", policy=policy, check=False)
    assert shown.returncode == 6 and wanted in shown.stderr, shown
    result = site.sign_in("tapuser1", "ANY-PASS-0", policy=policy)
    assert result.rc == UNAVAIL and not result.fellthrough, result
    lines = log_texts(syslog, mark)
    assert any("store not usable" in l and wanted in l for l in lines), lines
    for text in [said, shown.stderr] + lines:
        assert secret is None or secret not in text, text
    return (said or shown.stderr).strip()


def test_a_wrong_url_is_refused_with_the_reason_and_nothing_changes(site, syslog):
    cluster = site.clusters[0]
    before = passes_and_audit(site)
    good = site.url("pam_tap_host")
    closed = harness.free_port()
    for name, url, wanted in [
        ("unknown", good + "?sslcert=/etc/x.pem", 'parameter "sslcert" is not supported'),
        ("weak", good + "?sslmode=require", "sslmode=require does not check"),
        ("nohost", f"postgresql://pam_tap_host@no-such-db.invalid:{cluster.port}/pam_tap",
         "no-such-db.invalid"),
        ("closed", f"postgresql://pam_tap_host@127.0.0.1:{closed}/pam_tap", "refused"),
        ("nodb", f"postgresql://pam_tap_host@127.0.0.1:{cluster.port}/nosuchdb", "nosuchdb"),
    ]:
        policy = site.policy(f"url-{name}.toml", "pam_tap_host", url=url)
        said = refused_everywhere(site, syslog, policy, wanted)
        print(f"\n  {name}: {said}")
    assert passes_and_audit(site) == before


def test_a_wrong_password_is_refused_and_fixing_the_file_is_enough(site, syslog):
    issued = site.tap.issue("tapuser4", policy=site.admin)
    before = passes_and_audit(site)
    wrong = site.secrets / "host-wrong"
    wrong.write_text("not-the-password\n")
    uid, gid = harness.USERS["pam-tap"]
    os.chown(wrong, uid, gid)
    os.chmod(wrong, 0o600)
    policy = site.policy("wrong-password.toml", "pam_tap_host", password_file=wrong)
    said = refused_everywhere(site, syslog, policy, "password authentication failed",
                              secret=site.clusters[0].passwords["pam_tap_host"])
    assert "(check the password_file)" in said, said
    print(f"\n  {said}")
    assert passes_and_audit(site) == before
    # the right password in the same file: the same tapd signs in
    wrong.write_text(site.clusters[0].passwords["pam_tap_host"] + "\n")
    assert site.sign_in("tapuser4", issued["pass"], policy=policy).outcome == "PAM_SUCCESS"


def test_a_certificate_for_another_name_or_from_another_ca_is_refused(site, syslog):
    cluster = site.clusters[0]
    before = passes_and_audit(site)
    # the server's certificate is for 127.0.0.1 and localhost
    url = (f"postgresql://pam_tap_host@db.wrong.invalid:{cluster.port}/pam_tap"
           "?hostaddr=127.0.0.1")
    said = refused_everywhere(site, syslog, site.policy("name.toml", "pam_tap_host", url=url),
                              "hostname mismatch")
    print(f"\n  {said}")
    other = site.base / "other-ca"
    other.mkdir()
    pg.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", other / "ca.key", "-out", other / "ca.pem", "-days", "2",
            "-subj", "/CN=another CA"])
    os.chmod(other / "ca.pem", 0o644)
    said = refused_everywhere(site, syslog, site.policy("ca.toml", "pam_tap_host",
                                                        ca_file=other / "ca.pem"),
                              "certificate verify failed")
    print(f"  {said}")
    assert passes_and_audit(site) == before


def test_an_expired_server_certificate_is_refused(site, syslog):
    cluster = site.clusters[0]
    before = passes_and_audit(site)
    good = site.base / "server.crt.good"
    good.write_bytes((cluster.server / "server.crt").read_bytes())
    pg.serve_certificate(cluster, pg.expired_certificate(cluster))
    try:
        said = refused_everywhere(site, syslog, site.policy("expired.toml", "pam_tap_host"),
                                  "certificate has expired")
    finally:
        pg.serve_certificate(cluster, good)
    print(f"\n  {said}")
    assert passes_and_audit(site) == before


def test_a_newer_schema_is_refused_and_left_alone(site, syslog):
    issued = site.tap.issue("tapuser5", policy=site.admin)
    before = passes_and_audit(site)
    tables = ("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
              "WHERE schemaname = 'pam_tap'")
    shape = site.sql(tables)
    version = site.sql("SELECT version FROM pam_tap.schema_version")
    site.sql("UPDATE pam_tap.schema_version SET version = 99")
    try:
        migrated = tapd_as_pam_tap("--migrate", "--policy", site.admin)
        assert migrated.returncode == 1 and "schema version 99" in migrated.stderr, migrated
        print(f"\n  {migrated.stderr.strip()}")
        # a host's tapd that connects now (the policy's first use); the
        # host role's own `tapd --migrate` stops earlier, at its rights
        # (test_fleet_postgres.py)
        policy = site.policy("newer.toml", "pam_tap_host")
        said = refused_everywhere(site, syslog, policy, "schema version 99", migrate=False)
        assert "understands up to" in said, said
        assert site.sql("SELECT version FROM pam_tap.schema_version") == "99"
        assert site.sql(tables) == shape
        assert passes_and_audit(site) == before
    finally:
        site.sql(f"UPDATE pam_tap.schema_version SET version = {version}")
    # nothing lost: the same tapd, once the schema is one it knows
    assert site.sign_in("tapuser5", issued["pass"], policy=policy).outcome == "PAM_SUCCESS"


def test_a_host_role_with_too_many_rights_is_warned_loudly_and_still_served(site, syslog):
    issued = site.tap.issue("tapuser7", policy=site.admin)
    site.sql("GRANT INSERT ON pam_tap.passes TO pam_tap_host")
    try:
        migrated = tapd_as_pam_tap("--migrate", "--policy", site.admin)
        assert migrated.returncode == 0, migrated
        wanted = "role pam_tap_host has INSERT on pam_tap.passes: a stolen host credential"
        assert f"tapd: warning: {wanted}" in migrated.stderr, migrated
        mark = syslog.mark()
        # a host's tapd that connects now: warns, and serves (a warning,
        # not a refusal: the rights are the database's to fix)
        policy = site.policy("rights.toml", "pam_tap_host")
        result = site.sign_in("tapuser7", issued["pass"], policy=policy)
        assert result.outcome == "PAM_SUCCESS", result
        warned = [(sev, t) for _, sev, t in syslog.since(mark) if wanted in t]
        assert warned and all(sev == 4 for sev, _ in warned), warned  # LOG_WARNING
        print(f"\n  {warned[0][1]}")
    finally:
        site.sql("REVOKE INSERT ON pam_tap.passes FROM pam_tap_host")


def test_a_store_table_mixing_the_backends_is_refused(site, syslog):
    before = passes_and_audit(site)
    url = site.url("pam_tap_host")
    for name, table, wanted in [
        ("sqlite-url", f'\n[store]\nbackend = "sqlite"\npath = "{site.tap.store}"\n'
                       f'url = "{url}"\n',
         '[store] url is a postgresql setting, but backend = "sqlite"'),
        ("pg-path", f'\n[store]\nbackend = "postgresql"\nurl = "{url}"\n'
                    f'path = "{site.tap.store}"\npassword_file = "{site.host_pw}"\n',
         '[store] path is a sqlite setting, but backend = "postgresql"'),
        ("pg-no-url", '\n[store]\nbackend = "postgresql"\n',
         'backend = "postgresql" needs url'),
    ]:
        policy = policy_with(site.tap, f"mixed-{name}.toml", table)
        checked = site.tap.tapctl("policy", "check", policy, policy=False, check=False)
        assert checked.returncode == 5 and wanted in checked.stderr, checked
        migrated = tapd_as_pam_tap("--migrate", "--policy", policy)
        assert migrated.returncode == 1 and wanted in migrated.stderr, migrated
        mark = syslog.mark()
        shown = site.tap.tapctl("show", "tapuser1", policy=policy, check=False)
        assert shown.returncode == 5 and wanted in shown.stderr, shown
        result = site.sign_in("tapuser1", "ANY-PASS-0", policy=policy)
        assert result.rc == UNAVAIL and not result.fellthrough, result
        lines = log_texts(syslog, mark)
        assert any(wanted in l for l in lines), lines
        print(f"\n  {name}: {checked.stderr.strip()}")
    # the SQLite file the first names was never made
    assert not site.tap.store.exists()
    assert passes_and_audit(site) == before
