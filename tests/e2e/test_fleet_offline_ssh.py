"""SSH security keys while the fleet's database is unreachable (issue 14,
"offline_keys"), through a real sshd on each of two simulated hosts
(fleet.py): sshd runs inside the host's namespaces, so its PAM stack, its
`AuthorizedKeysCommand tapctl authorized-keys %u` (as pam-tap-ssh) and the
session hook reach that host's tapd on the standard socket, whose policy
says `[ssh] enabled = true` and the `[store]` lines of docs/fleet.md's
offline section. The laptop is another account with the software FIDO key
behind OpenSSH's security-key API (test_ssh_keys.Person), its keys
enrolled with `tapctl ssh-enroll` under a pass, on one real PostgreSQL
cluster that the tests stop and start again.

* Database up: a key signs in over ssh, and the `authorized-keys` read
  copies the user's SSH keys on that host.
* Database stopped: that key still signs in on that host, in bounded time,
  tapd serving sshd's question from the copy, and the sign-in's record
  reaches the database when it is back; a user whose keys were never
  read on that host is refused there (and still let in on the host that
  read them).
* A key removed in the database while it answers leaves the copy at the
  next `authorized-keys` read there, so it is refused offline while the
  user's other key is not.
"""

import copy
import json
import subprocess
import time

import pytest

import fleet as fleet_hosts
import harness
import pg
from conftest import WORLD
from test_fleet_offline import OFFLINE, Down, copy_file, offline_store
from test_ssh_keys import Person, key_sshd, provider_built

HOSTS = ("host-a", "host-b")
USER = "tapuser3"  # signs in on host-a
STRANGER = "tapuser4"  # signs in on host-b only
LAPTOP = "tapuser8"  # whose account the ssh client runs as
SSH = "\n[ssh]\nenabled = true\n"
# ssh to 127.0.0.1 with the database stopped: sshd asks authorized-keys
# twice (the key offered, then signed), tapctl gives up after 1 s each
OFFLINE_BOUND = 5.0


class Server:
    """One host's sshd, as test_ssh_keys.Person needs to know it."""

    def __init__(self, fleet, name, provider):
        host = fleet.host(name)
        self.dir = fleet.base / f"ssh-{name}"
        self.provider = provider
        self.sshd = key_sshd(self.dir / "sshd", prefix=host.enter())


@pytest.fixture(scope="module")
def ssh_fleet():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    built = provider_built()
    if built is None:
        pytest.fail("tests/sk-provider is not built: cargo build --release -p tap-sk-provider")
    f = fleet_hosts.Fleet(WORLD.base / "t" / "fleet-offline-ssh", WORLD, host_names=HOSTS,
                          host_store=offline_store() + SSH)
    servers = {}
    try:
        f.start()
        provider = harness.copy_root_owned(built, f.base / "sk-provider.so", 0o755)
        for name in HOSTS:
            servers[name] = Server(f, name, provider)
        yield f, servers
    finally:
        for server in servers.values():
            server.sshd.stop()
        f.stop()


def enroll(fleet, server, user, label):
    """`tapctl ssh-enroll` from the laptop to `user` on `server`, under a
    pass (keyboard-interactive; no key is offered, so sshd asks
    authorized-keys nothing). Returns (laptop, key file, fingerprint)."""
    laptop = Person(server, LAPTOP, label)
    proc, key_file = laptop.enroll(user, fleet.issue(user)["pass"], label=label)
    assert proc.returncode == 0, (proc, server.sshd.log.read_text()[-3000:])
    [key] = [k for k in ssh_keys(fleet, user) if k["label"] == label]
    return laptop, key_file, key["fingerprint"]


def at(laptop, server):
    """The same laptop (account, authenticator, key files), ssh-ing to
    another host's sshd."""
    other = copy.copy(laptop)
    other.world = server
    return other


def ssh_keys(fleet, user):
    return json.loads(fleet.tap.tapctl("ssh-keys", user, "--json", policy=fleet.admin).stdout)


def copied(fleet, host, user):
    """The fingerprints of `user`'s SSH keys in `host`'s copy, read as tapd's
    user (a read-only look at tapd's own file)."""
    path = copy_file(fleet, host)
    if not path.exists():
        return set()
    script = ("import sqlite3, sys\n"
              "db = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True)\n"
              "for (f,) in db.execute('SELECT fingerprint FROM ssh_keys WHERE user = ?',"
              " (sys.argv[2],)):\n"
              "    print(f)\n")
    proc = subprocess.run(harness.as_user_prefix(harness.DAEMON_USER) +
                          ["/usr/bin/python3", "-c", script, str(path), user],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc
    return set(proc.stdout.split())


def ssh_by_key(laptop, user, key_file):
    started = time.monotonic()
    proc = laptop.ssh_by_key(user, key_file, timeout=60)
    return proc, time.monotonic() - started


def assert_in(proc, user):
    assert proc.returncode == 0 and proc.stdout.split() == ["ok", user], proc


def assert_refused(proc):
    assert proc.returncode == 255 and "ok" not in proc.stdout, proc
    assert "Permission denied" in proc.stderr, proc


def offline_served(fleet, name, user):
    """tapd's log lines on host `name` saying it served sshd's question
    for `user` from the copy."""
    log = fleet.host(name).tapd_log.read_text(errors="replace")
    return [line for line in log.splitlines()
            if "serving authorized-keys" in line and "offline copy" in line and user in line]


@pytest.fixture(scope="module")
def enrolled(ssh_fleet):
    """USER's key enrolled on host-a, STRANGER's on host-b."""
    f, servers = ssh_fleet
    return {USER: enroll(f, servers["host-a"], USER, "laptop key"),
            STRANGER: enroll(f, servers["host-b"], STRANGER, "stranger key")}


def test_online_a_key_signs_in_over_ssh_and_only_then_is_copied(ssh_fleet, enrolled):
    f, servers = ssh_fleet
    laptop, key_file, fingerprint = enrolled[USER]
    # enrolled, but sshd never asked for this user's keys here yet
    assert copied(f, "host-a", USER) == set()
    proc, took = ssh_by_key(laptop, USER, key_file)
    assert_in(proc, USER)
    assert f"Accepted publickey for {USER}" in servers["host-a"].sshd.log.read_text()
    print(f"online ssh key sign-in: {took:.2f} s")
    assert copied(f, "host-a", USER) == {fingerprint}
    # the other host read nothing of this user
    assert copied(f, "host-b", USER) == set()


def test_database_stopped_a_copied_key_still_signs_in_over_ssh(ssh_fleet, enrolled):
    f, servers = ssh_fleet
    laptop, key_file, _ = enrolled[USER]
    assert_in(ssh_by_key(laptop, USER, key_file)[0], USER)  # copied on host-a
    before = len(offline_served(f, "host-a", USER))
    with Down(f):
        proc, took = ssh_by_key(laptop, USER, key_file)
        served = offline_served(f, "host-a", USER)
    print(f"offline ssh key sign-in, database stopped: {took:.2f} s")
    assert_in(proc, USER)
    assert took < OFFLINE_BOUND, took
    # tapd answered sshd from the copy (not some other key source)
    assert len(served) > before, served
    # back: the same key, online again; the request that finds the
    # database answering first sends it the offline sign-in's record
    assert_in(ssh_by_key(laptop, USER, key_file)[0], USER)
    rows = f.sql("SELECT host || '|' || detail FROM pam_tap.audit "
                 f"WHERE \"user\" = '{USER}' AND event = 'signin.ssh_key.success' "
                 "ORDER BY seq").splitlines()
    offline = [row for row in rows if OFFLINE in row]
    assert len(offline) == 1 and offline[0].startswith("host-a|ssh key SHA256:"), rows


def test_database_stopped_a_user_never_seen_on_the_host_is_refused(ssh_fleet, enrolled):
    f, servers = ssh_fleet
    laptop, key_file, fingerprint = enrolled[STRANGER]
    # a good key: it signs in on host-b, which so copies it; host-a never
    # read this user's keys
    assert_in(ssh_by_key(laptop, STRANGER, key_file)[0], STRANGER)
    assert copied(f, "host-b", STRANGER) == {fingerprint}
    assert copied(f, "host-a", STRANGER) == set()
    with Down(f):
        refused, took = ssh_by_key(at(laptop, servers["host-a"]), STRANGER, key_file)
        let_in, took_b = ssh_by_key(laptop, STRANGER, key_file)
    print(f"offline ssh, user never seen on host-a: refused in {took:.2f} s; "
          f"on host-b, which copied it: in in {took_b:.2f} s")
    assert_refused(refused)
    assert took < OFFLINE_BOUND, took
    assert_in(let_in, STRANGER)
    assert took_b < OFFLINE_BOUND, took_b


def test_a_key_removed_online_leaves_the_copy_and_is_refused_offline(ssh_fleet, enrolled):
    f, servers = ssh_fleet
    laptop, kept, kept_fp = enrolled[USER]
    # a second key, on a second authenticator
    other, doomed, doomed_fp = enroll(f, servers["host-a"], USER, "doomed key")
    assert_in(ssh_by_key(other, USER, doomed)[0], USER)
    assert copied(f, "host-a", USER) == {kept_fp, doomed_fp}
    # an administrator removes it; the next online read on host-a (here
    # sshd's, for an attempt with that key) makes the copy match
    f.tap.tapctl("ssh-keys", "remove", USER, doomed_fp, policy=f.admin)
    assert_refused(ssh_by_key(other, USER, doomed)[0])
    assert copied(f, "host-a", USER) == {kept_fp}
    with Down(f):
        refused, took = ssh_by_key(other, USER, doomed)
        let_in, took_kept = ssh_by_key(laptop, USER, kept)
    print(f"offline ssh, removed key: refused in {took:.2f} s; kept key: in in {took_kept:.2f} s")
    assert_refused(refused)
    assert took < OFFLINE_BOUND, took
    assert_in(let_in, USER)



def test_database_silent_a_copied_key_still_signs_in_over_ssh(ssh_fleet, enrolled):
    f, _ = ssh_fleet
    laptop, key_file, _ = enrolled[USER]
    assert_in(ssh_by_key(laptop, USER, key_file)[0], USER)  # copied on host-a
    pids = pg.freeze(f.cluster)
    try:
        proc, took = ssh_by_key(laptop, USER, key_file)
        started = time.monotonic()
        served = f.host("host-a").run_here(WORLD.tapctl, "authorized-keys", USER,
                                           as_user="pam-tap-ssh")
        asked = time.monotonic() - started
    finally:
        pg.thaw(pids)
    print(f"database frozen: ssh by key exited {proc.returncode} in {took:.2f} s; "
          f"authorized-keys exited {served.returncode} in {asked:.2f} s: {served.stderr.strip()}")
    # tapd gives `authorized-keys` 0.5 s to find the database (the kept
    # session's round trip and a new session together), well inside
    # tapctl's 900 ms, then answers from the copy; sshd asks twice
    assert served.returncode == 0, served
    assert asked < 0.9, asked
    assert_in(proc, USER)
    assert took < 2 * (0.9 + 1), took
