"""docs/fleet.md's operations, run as written against a real PostgreSQL.

Every sh block of the page runs as a script (`sh -e`), and every config
block is used as the file it belongs to, with only the page's placeholders
put in: `db.example` (the server's name: here 127.0.0.1, which the test
server's certificate names), `5432` (its port: a free one) and
`192.0.2.0/24` (the hosts' network: 127.0.0.1/32). The commands are
Debian's: `runuser -u postgres -- psql` reaches the server through
/var/run/postgresql (a tmpfs here, where the test server also listens) on
port 5432 (a link to its real socket), as libpq's defaults do.

One mount namespace stands for the fleet: the session's default policy
and tapd (/etc/security/pam_tap.toml, /run/pam_tap/tapd.sock) are the host
being migrated; the administration host's commands run in a nested mount
namespace where its policy and its tapd's socket are bound over those
paths. The story, in order: set up the server; a host on SQLite has
passes; install the password files and migrate the schema; `tapctl store
migrate` copies the host's store (and refuses a second time); the host's
policy gets the `[store]` and `[keys]` tables and signs the migrated pass
in; the administration host lists the same passes; a backup, a consumed
pass, a restore brings it back, and the revocation command ends them all.
"""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import harness
import pg
from conftest import WORLD

FLEET_MD = harness.REPO / "docs" / "fleet.md"
DEFAULT_POLICY = Path(harness.DEFAULT_POLICY)
DEBIAN_SOCKETS = Path("/run/postgresql")
DEBIAN_CONF = Path("/etc/postgresql/15/main")


def section(title):
    text = FLEET_MD.read_text()
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"docs/fleet.md has no '## {title}'"
    return found.group(1)


def blocks(title, lang):
    """The section's fenced blocks of one language, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", section(title), re.M | re.S)


def run_sh(script, cwd, binds=()):
    """A block as a script, as root, with tapctl and tapd on the PATH;
    `binds` (source, target) are mounted first in a nested namespace."""
    env = dict(os.environ, PATH=f"{WORLD.base / 'bin'}:{os.environ['PATH']}")
    cmd = ["sh", "-e", "-c", script]
    if binds:
        mounts = "".join(f"mount --bind '{src}' '{dst}'\n" for src, dst in binds)
        cmd = ["unshare", "--mount", "--propagation", "private",
               "sh", "-e", "-c", mounts + 'exec sh -e -c "$0"', script]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def ok(proc):
    assert proc.returncode == 0, f"{proc.args}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def digest(*paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths]


class Ops:
    def __init__(self):
        self.base = WORLD.base / "t" / "fleet-ops"
        self.tap = harness.Tap(self.base / "tap", WORLD.pam_tap_so, WORLD.tapctl)
        # The database server's working directory (root's, like /root).
        self.server_dir = self.base / "server"
        self.server_dir.mkdir(mode=0o700)
        shutil.copy(pg.ROLES_SQL, self.server_dir / "roles.sql")
        self.saved_policy = DEFAULT_POLICY.read_text() if DEFAULT_POLICY.exists() else None
        self.made = []  # directories this module made outside its own
        self.files = []  # and files

    # -- the page's placeholders --------------------------------------------
    def placed(self, text):
        for placeholder, value in (("db.example", "127.0.0.1"),
                                   ("5432", str(self.cluster.port)),
                                   ("192.0.2.0/24", "127.0.0.1/32")):
            text = text.replace(placeholder, value)
        return text

    # -- the database server ------------------------------------------------
    def start_server(self):
        """The doc's postgresql.conf and pg_hba.conf lines; its certificate
        paths get the test CA's server certificate (for 127.0.0.1)."""
        conf, hba = blocks("Set up the database and roles", "conf")
        # the port is not known yet: the placeholders go in once it is
        placeholders = {"db.example": "127.0.0.1", "192.0.2.0/24": "127.0.0.1/32"}
        for k, v in placeholders.items():
            conf, hba = conf.replace(k, v), hba.replace(k, v)
        if not DEBIAN_SOCKETS.is_dir():
            DEBIAN_SOCKETS.mkdir(parents=True)
            self.made.append(DEBIAN_SOCKETS)
        # a tmpfs of our own: no host cluster's socket shows through
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "pamtap-pg", DEBIAN_SOCKETS],
                       check=True)
        self.mounted = DEBIAN_SOCKETS

        def certificates(cluster):
            DEBIAN_CONF.mkdir(parents=True, exist_ok=True)
            for name in ("server.crt", "server.key"):
                assert not (DEBIAN_CONF / name).exists(), "not ours to replace"
                shutil.copy(cluster.server / name, DEBIAN_CONF / name)
                pg.give(DEBIAN_CONF / name, 0o600)
                self.files.append(DEBIAN_CONF / name)
            # the port in the doc's lines: none is set there (Debian's 5432)
            assert "5432" not in conf and "port" not in conf, conf

        self.cluster = pg.Cluster(self.base / "cluster", conf=conf, hba=hba,
                                  socket_dirs=[DEBIAN_SOCKETS], setup=False,
                                  prepare=certificates)
        # libpq's default port: 5432's socket name leads to the test server's
        os.symlink(f".s.PGSQL.{self.cluster.port}", DEBIAN_SOCKETS / ".s.PGSQL.5432")
        # what every host has (prose in the doc): the CA's certificate
        ca = Path("/etc/pam_tap/db-ca.pem")
        if not ca.parent.exists():
            ca.parent.mkdir(mode=0o755)
            self.made.append(ca.parent)
        shutil.copy(self.cluster.ca, ca)
        os.chmod(ca, 0o644)

    # -- hosts ------------------------------------------------------------------
    def base_policy(self):
        """harness's policy without its SQLite `store` line."""
        text = harness.policy_text(self.tap.store)
        return "\n".join(l for l in text.splitlines() if not l.startswith("store = ")) + "\n"

    def set_default_policy(self, text):
        harness.copy_text_root_owned(text, DEFAULT_POLICY, 0o644)

    def sign_in(self, user, answer):
        return self.tap.auth(user, [answer], stack="gate", policy=DEFAULT_POLICY)

    def tapctl(self, *args, check=True):
        return self.tap.tapctl(*args, policy=DEFAULT_POLICY, check=check)

    def on_admin_host(self, script):
        """As root on the administration host: its policy, and its tapd
        on the default socket."""
        socket_path = self.tap.socket_for(self.admin_policy)
        return run_sh(self.placed(script), self.server_dir,
                      binds=[(self.admin_policy, DEFAULT_POLICY),
                             (socket_path, harness.DEFAULT_SOCKET)])

    def admin(self, *args):
        return self.tap.tapctl(*args, policy=self.admin_policy)

    def close(self):
        self.tap.stop_daemons()
        if getattr(self, "cluster", None) is not None:
            self.cluster.stop()
        if getattr(self, "mounted", None) is not None:
            subprocess.run(["umount", self.mounted], capture_output=True)
        for path in self.files:
            path.unlink(missing_ok=True)
        for directory in self.made:
            shutil.rmtree(directory, ignore_errors=True)
        if self.saved_policy is not None:
            self.set_default_policy(self.saved_policy)
        elif DEFAULT_POLICY.exists():
            DEFAULT_POLICY.unlink()


@pytest.fixture(scope="module")
def ops():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    o = Ops()
    try:
        yield o
    finally:
        o.close()


def test_the_server_is_set_up_as_the_doc_says(ops):
    ops.start_server()
    (script,) = blocks("Set up the database and roles", "sh")
    ok(run_sh(ops.placed(script), ops.server_dir))
    roles = ops.cluster.sql("pam_tap", "SELECT string_agg(rolname, ',' ORDER BY rolname) "
                            "FROM pg_roles WHERE rolname LIKE 'pam_tap_%' AND rolpassword IS NOT NULL")
    # rolpassword is readable by superusers only: each role has a verifier
    assert roles == "pam_tap_admin,pam_tap_host", roles
    verifier = ops.cluster.sql("pam_tap", "SELECT rolpassword FROM pg_authid "
                               "WHERE rolname = 'pam_tap_host'")
    assert verifier.startswith("SCRAM-SHA-256$"), "only a verifier is kept"
    for name in ("admin.pw", "host.pw"):
        mode = (ops.server_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))


def test_a_host_on_sqlite_has_passes(ops):
    ops.sqlite_policy = harness.policy_text(ops.tap.store)
    ops.set_default_policy(ops.sqlite_policy)
    ops.tapctl("init")
    ops.passes = {"tapuser1": ops.tap.issue("tapuser1", one_time=True, policy=DEFAULT_POLICY)}
    ops.tap.issue("tapuser2", policy=DEFAULT_POLICY)
    ops.tap.issue("tapuser3", policy=DEFAULT_POLICY)
    ops.tapctl("revoke", "tapuser3")
    assert ops.sign_in("tapuser2", "WRONG-PASS-0").outcome == "PAM_AUTH_ERR"
    ops.listed = json.loads(ops.tapctl("list", "--json").stdout)
    ops.audited = len(ops.tap.audit(policy=DEFAULT_POLICY))
    assert [p["user"] for p in ops.listed] == ["tapuser1", "tapuser2", "tapuser3"]
    assert ops.listed[1]["failures"] == 1, ops.listed


def test_password_files_and_the_schema_as_the_doc_says(ops):
    host_install, host_store, admin_install, admin_store = (
        blocks("Point hosts at it", "sh")[0], blocks("Point hosts at it", "toml")[0],
        blocks("Point hosts at it", "sh")[1], blocks("Point hosts at it", "toml")[1])
    migrate = blocks("Point hosts at it", "sh")[2]
    ok(run_sh(ops.placed(host_install), ops.server_dir))
    ok(run_sh(ops.placed(admin_install), ops.server_dir))
    uid, _ = harness.USERS[harness.DAEMON_USER]
    for name in ("host.pw", "admin.pw"):
        st = (Path("/etc/pam_tap") / name).stat()
        assert (st.st_uid, st.st_mode & 0o777) == (uid, 0o600), name
    ops.host_store = ops.placed(host_store)
    ops.admin_policy = ops.tap.write_policy("admin.toml",
                                            text=ops.base_policy() + ops.placed(admin_store))
    # the host role may not make the schema
    host_policy = ops.tap.write_policy("host-only.toml",
                                       text=ops.base_policy() + ops.host_store)
    # before the schema exists, tapctl init says what to do
    init = ops.tap.tapctl("init", policy=host_policy, check=False)
    assert init.returncode == 6, init
    assert "schema version 0" in init.stderr and "`tapd --migrate`" in init.stderr, init.stderr
    assert "pam_tap_admin" in init.stderr, init.stderr
    refused = run_sh(migrate, ops.server_dir, binds=[(host_policy, DEFAULT_POLICY)])
    assert refused.returncode != 0 and "permission denied" in refused.stderr, refused
    done = ok(ops.on_admin_host(migrate))
    url = f"postgresql://pam_tap_admin@127.0.0.1:{ops.cluster.port}/pam_tap"
    assert re.fullmatch(rf"store {re.escape(url)} is at schema version \d+\n", done.stdout), done
    ops.version = done.stdout.split()[-1]


def test_store_migrate_copies_the_host_as_the_doc_says(ops):
    (script,) = blocks("Migrate a host's SQLite store", "sh")
    store = ops.tap.store
    files = [store, Path(f"{store}-wal")]
    before = digest(*files)
    done = ok(run_sh(ops.placed(script), ops.server_dir))
    assert digest(*files) == before, "the SQLite store is only read"
    assert not Path("/etc/pam_tap/migrate.pw").exists()
    url = f"postgresql://pam_tap_admin@127.0.0.1:{ops.cluster.port}/pam_tap"
    want = (f"copied 3 passes, 0 security keys, 0 SSH keys, {ops.audited} audit records "
            f"from {store} into {url} (schema version {ops.version}); the audit records name host "
            f"{socket.gethostname()}")
    assert done.stdout.strip() == want, done.stdout
    rows = ops.cluster.sql("pam_tap", "SELECT count(*) || ' ' || count(DISTINCT host) || ' ' "
                           "|| min(host) FROM pam_tap.audit")
    assert rows == f"{ops.audited} 1 {socket.gethostname()}", rows
    # once: the same command again is refused, and changes nothing
    again = run_sh(ops.placed(script), ops.server_dir)
    assert again.returncode == 6, again
    assert "holds 3 passes" in again.stderr and "--merge" in again.stderr, again.stderr
    assert ops.cluster.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit") == str(ops.audited)


def test_the_host_signs_the_migrated_pass_in_and_the_admin_sees_the_same(ops):
    (keys,) = blocks("Share `rp_id` across hosts", "toml")
    ops.set_default_policy(ops.base_policy() + ops.host_store + ops.placed(keys))
    shown = ops.tap.tapctl("--policy", DEFAULT_POLICY, "policy", "check", "--json", policy=False)
    effective = json.loads(shown.stdout)
    assert effective["keys"]["rp_id"] == "pam://fleet.example", effective
    assert effective["store"]["backend"] == "postgresql", effective
    first = ops.sign_in("tapuser1", ops.passes["tapuser1"]["pass"])
    assert first.outcome == "PAM_SUCCESS", first
    again = ops.sign_in("tapuser1", ops.passes["tapuser1"]["pass"])
    assert again.outcome != "PAM_SUCCESS", again
    listed = json.loads(ops.admin("list", "--json").stdout)
    used = {p["user"]: p for p in listed}
    assert used["tapuser1"]["reason"] == "OneTimeUsed", used
    assert used["tapuser2"]["failures"] == 1, "the failure counted on SQLite came along"
    assert used["tapuser3"]["revoked_at"], "and the revocation"
    strip = [{k: v for k, v in p.items() if k not in ("used_at", "last_used", "usable",
                                                     "reason", "reason_text")}
             for p in listed]
    before = [{k: v for k, v in p.items() if k not in ("used_at", "last_used", "usable",
                                                       "reason", "reason_text")}
              for p in ops.listed]
    assert strip == before
    shown = json.loads(ops.admin("show", "tapuser2", "--json").stdout)
    assert shown["usable"] and shown["issued_by"] == "root", shown


def test_backup_restore_and_revoking_everything_as_the_doc_says(ops):
    dump, restore = blocks("Back up and restore", "sh")[:2]
    revoke_all = blocks("Back up and restore", "sh")[2]
    issued = json.loads(ops.admin("issue", "tapuser4", "--one-time", "--json").stdout)
    ok(run_sh(ops.placed(dump), ops.server_dir))
    assert (ops.server_dir / "pam_tap.dump").stat().st_size > 0
    assert ops.sign_in("tapuser4", issued["pass"]).outcome == "PAM_SUCCESS"
    assert json.loads(ops.admin("show", "tapuser4", "--json").stdout)["reason"] == "OneTimeUsed"
    ok(run_sh(ops.placed(restore), ops.server_dir))
    # what the doc warns of: the consumed one-time pass is usable again
    back = json.loads(ops.admin("show", "tapuser4", "--json").stdout)
    assert back["usable"] and back["used_at"] is None, back
    ok(ops.on_admin_host(revoke_all))
    listed = json.loads(ops.admin("list", "--json").stdout)
    assert listed and all(p["revoked_at"] for p in listed), listed
    refused = ops.sign_in("tapuser4", issued["pass"])
    assert refused.outcome != "PAM_SUCCESS", refused


def test_store_migrate_refuses_what_it_should_and_copies_nothing(ops):
    url = ops.placed("postgresql://pam_tap_admin@db.example:5432/pam_tap")
    ca = "/etc/pam_tap/db-ca.pem"
    count = ops.cluster.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit")

    def migrate(*args, as_user=None, policy=None):
        cmd = [WORLD.tapctl]
        if policy:
            cmd += ["--policy", policy]
        cmd += ["store", "migrate", "--to", url, "--ca-file", ca, *args]
        if as_user:
            cmd = harness.as_user_prefix(as_user) + [str(c) for c in cmd]
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    sqlite_policy = ops.tap.write_policy("sqlite.toml", text=ops.sqlite_policy)
    # not root
    proc = migrate(as_user="tapuser1", policy=sqlite_policy)
    assert proc.returncode == 3 and "for root" in proc.stderr, proc
    # a password file others may read
    loose = ops.base / "loose.pw"
    loose.write_text((ops.server_dir / "admin.pw").read_text())
    os.chmod(loose, 0o644)
    proc = migrate("--password-file", loose, policy=sqlite_policy)
    assert proc.returncode == 2 and "root's alone" in proc.stderr, proc
    # a store some other user owns is not handed the admin password
    stray_dir = ops.base / "stray"
    stray_dir.mkdir(mode=0o700)
    uid, gid = harness.USERS["tapuser1"]
    os.chown(stray_dir, uid, gid)
    stray = stray_dir / "tap.db"
    shutil.copy(ops.tap.store, stray)
    os.chown(stray, uid, gid)
    os.chmod(stray, 0o600)
    stray_policy = ops.tap.write_policy("stray.toml", text=harness.policy_text(stray))
    proc = migrate("--password-file", ops.server_dir / "admin.pw", policy=stray_policy)
    assert proc.returncode == 5 and "not handing it the admin password" in proc.stderr, proc
    # a policy on PostgreSQL already: nothing to copy from
    proc = migrate(policy=DEFAULT_POLICY)
    assert proc.returncode == 2 and "PostgreSQL store already" in proc.stderr, proc
    # a wrong password: refused by the server
    wrong = ops.base / "wrong.pw"
    wrong.write_text("not-the-password\n")
    os.chmod(wrong, 0o600)
    proc = migrate("--password-file", wrong, policy=sqlite_policy)
    assert proc.returncode == 6 and "password authentication failed" in proc.stderr, proc
    # the host role has no right to copy, even with --merge
    host_url = url.replace("pam_tap_admin", "pam_tap_host")
    proc = subprocess.run([str(WORLD.tapctl), "--policy", str(sqlite_policy), "store", "migrate",
                           "--to", host_url, "--ca-file", ca, "--password-file",
                           str(ops.server_dir / "host.pw"), "--merge"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 6 and "permission denied" in proc.stderr, proc
    assert ops.cluster.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit") == count
    # relative file names are the caller's (tapd runs from /): the copy
    # gets as far as the database, which holds passes already
    proc = subprocess.run([str(WORLD.tapctl), "--policy", str(sqlite_policy), "store", "migrate",
                           "--to", url, "--ca-file", "db-ca.pem", "--password-file",
                           os.path.relpath(ops.server_dir / "admin.pw", "/etc/pam_tap")],
                          capture_output=True, text=True, timeout=60, cwd="/etc/pam_tap")
    assert proc.returncode == 6 and "holds 4 passes" in proc.stderr, proc
    assert ops.cluster.sql("pam_tap", "SELECT count(*) FROM pam_tap.audit") == count
