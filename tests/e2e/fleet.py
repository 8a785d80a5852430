"""Simulated hosts for the fleet e2e tests (issue 14): each host is its own
mount and UTS namespace, made by `unshare` around a holder process, with

* its own host name (`hostname` inside the UTS namespace: what tapd's
  gethostname and so the audit rows see);
* its own policy at the standard path /etc/security/pam_tap.toml (a copy
  of the e2e namespace's /etc/security, bind-mounted over it, with the
  host's pam_tap.toml written in);
* its own `tapd`, run as pam-tap with no arguments, so on the standard
  policy and the standard socket /run/pam_tap/tapd.sock (a per-host
  directory bind-mounted over /run/pam_tap);
* its own state directory /var/lib/pam_tap (tapd's, 0700, as the package
  makes it), where the offline copy of the keys is kept by default;

and every host's policy names the same PostgreSQL cluster as
`pam_tap_host`. Sign-ins run the PAM driver inside the host's namespaces
(`nsenter`) on service files whose pam_tap line has no policy= or socket=,
so the module uses the standard paths, as on a real host.

The hosts' namespaces are made from the e2e namespace (namespace.py): its
overlays of /etc, /run, /var and /dev, all private, come along, so
/etc/pam.d and /etc/passwd writes stay in the test's private overlay and a
host's bind mounts never leave its own namespace.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import harness
import keys_support as ks
import pg

SECURITY = Path("/etc/security")
RUN_DIR = Path("/run/pam_tap")
STATE_DIR = Path("/var/lib/pam_tap")


class Host:
    """One simulated host: a namespace holder, its policy and its tapd."""

    def __init__(self, name, workdir, policy_text):
        self.name = name
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, mode=0o755)
        # root's alone, as pam_tap requires of the policy and its directories
        self.security = self.dir / "security"
        shutil.copytree(SECURITY, self.security, symlinks=True)
        os.chown(self.security, 0, 0)
        os.chmod(self.security, 0o755)
        self.policy = self.security / "pam_tap.toml"
        self.write_policy(policy_text)
        # tapd's socket directory, as the package makes /run/pam_tap
        self.run = harness.store_dir(self.dir / "run")
        os.chmod(self.run, 0o755)
        self.socket = self.run / "tapd.sock"
        self.state = harness.store_dir(self.dir / "state")
        # the mount point, in the e2e namespace's private /var
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        script = (f"hostname {name} && mount --bind {self.security} {SECURITY} && "
                  f"mount --bind {self.run} {RUN_DIR} && mount --bind {self.state} {STATE_DIR} && "
                  "echo ready && exec sleep infinity")
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private", "--", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = self.holder.stdout.readline()
        if ready.strip() != b"ready":
            self.holder.wait(5)
            raise AssertionError(f"host {name}: namespace set-up failed: "
                                 f"{self.holder.stderr.read().decode(errors='replace')}")
        self.tapd = None

    def write_policy(self, text):
        harness.copy_text_root_owned(text, self.policy, 0o644)

    def enter(self):
        """The prefix that runs a command on this host."""
        return ["nsenter", "-t", str(self.holder.pid), "--mount", "--uts", "--"]

    def run_here(self, *cmd, as_user=None, timeout=60, check=False, stdin=""):
        full = self.enter() + (harness.as_user_prefix(as_user) if as_user else []) + \
            [str(c) for c in cmd]
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              input=stdin, start_new_session=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(full)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def start_tapd(self):
        """tapd as pam-tap, with no arguments: the standard policy and socket."""
        if os.path.lexists(self.socket):
            os.unlink(self.socket)
        uid, gid = harness.USERS[harness.DAEMON_USER]
        cmd = self.enter() + ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups",
                              "--", harness.TAPD]
        # a file, not a pipe nobody reads: a pipe full of log lines stops tapd
        self.tapd_log = self.dir / "tapd.log"
        with open(self.tapd_log, "ab") as log:
            self.tapd = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.tapd.poll() is not None:
                raise AssertionError(f"{self.name}: tapd exited {self.tapd.returncode}: "
                                     f"{self.tapd_log.read_text(errors='replace')[-2000:]}")
            if harness.ping(str(self.socket)):
                return
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: tapd did not answer within 15 s")

    def sign_in(self, service, user, answers=(), popen=False, wait_file=None):
        return harness.drive(service, user, list(answers), popen=popen, wait_file=wait_file,
                             prefix=self.enter())

    def stop(self):
        for proc in (self.tapd, self.holder):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.tapd = None


def services(so):
    """The gate and deny stacks, pam_tap with no policy= or socket= (the
    standard paths, as a real host's stack). Returns {stack: service name}."""
    names = {}
    for stack, last in (("gate", "pam_permit.so"), ("deny", "pam_deny.so")):
        name = f"e2e-fleet-{stack}"
        harness.write_service(name, [
            f"auth [success=done ignore=ignore default=die] {so} pass_only",
            f"auth optional {harness.PAM_E2E} mark=fellthrough",
            f"auth required {last}",
            "account required pam_permit.so", "session required pam_permit.so",
            "password required pam_deny.so"])
        names[stack] = name
    return names


# --------------------------------------------------------------------------
# a fleet: one cluster, an administrator's tapd, and the hosts

HOST_NAMES = ("host-a", "host-b", "host-c")
MAX_FAILURES = 3
RP_ID = "pam://fleet.e2e.test"


def policy_text(store_table, helper):
    """harness.policy_text with `[store]` instead of the SQLite path, and
    one [keys] table every host shares (the same rp_id fleet-wide)."""
    text = harness.policy_text("unused", passes={"max_failures": MAX_FAILURES})
    text = "\n".join(l for l in text.splitlines() if not l.startswith("store = ")) + "\n"
    keys = {"rp_id": RP_ID, "user_verification": "preferred", "max_keys": 5,
            "allowed_aaguids": [], "touch_timeout": "10s", "helper": str(helper)}
    text += "\n[keys]\n" + "".join(f"{k} = {harness.toml_value(v)}\n" for k, v in keys.items())
    return text + store_table


class Fleet:
    """`host_store`: more `[store]` lines for every host's policy."""

    def __init__(self, base, world, host_names=HOST_NAMES, host_store=""):
        self.base = base
        self.world = world
        self.host_names = host_names
        self.host_store = host_store
        self.hosts = {}
        self.cluster = self.tap = None

    def start(self):
        base = self.base
        self.cluster = pg.Cluster(base / "cluster")
        self.tap = harness.Tap(base / "admin", self.world.pam_tap_so, self.world.tapctl)
        secrets = base / "secrets"
        secrets.mkdir(mode=0o755)
        admin_pw = self.cluster.password_file("pam_tap_admin", secrets / "admin", "pam-tap")
        host_pw = self.cluster.password_file("pam_tap_host", secrets / "host", "pam-tap")
        # the key helper every host's policy names (keys_support's wrapper idea)
        self.helper = base / "helper.sh"
        self.admin = self.tap.write_policy(
            "admin.toml", text=policy_text(self.cluster.store_table("pam_tap_admin", admin_pw),
                                           self.helper))
        migrated = self.tapd_as_pam_tap("--migrate", "--policy", self.admin)
        assert migrated.returncode == 0, migrated
        host_text = policy_text(self.cluster.store_table("pam_tap_host", host_pw), self.helper)
        for name in self.host_names:
            self.hosts[name] = Host(name, base / "hosts" / name, host_text + self.host_store)
            self.hosts[name].start_tapd()
        self.services = services(self.world.pam_tap_so)
        self.softkey = ks.softkey_binary(self.world)

    def tapd_as_pam_tap(self, *args):
        return harness.tapd_as_pam_tap(*args)

    def host(self, name):
        return self.hosts[name]

    def issue(self, user, one_time=False):
        return self.tap.issue(user, one_time=one_time, policy=self.admin)

    def show(self, user):
        return self.tap.show(user, policy=self.admin)

    def sign_in(self, host, user, answer=None, stack="gate"):
        answers = [] if answer is None else [answer]
        return self.hosts[host].sign_in(self.services[stack], user, answers)

    # -- security keys (pam_tap-softkey behind the one helper path) -----------
    def new_key(self, user, name):
        keydir = self.base / f"keys-{user}"
        if not keydir.exists():
            keydir.mkdir(mode=0o755)
            uid, gid = harness.USERS[user]
            os.chown(keydir, uid, gid)
        return ks.SoftKey(keydir / f"{name}.json", user, self.softkey)

    def plug(self, key, *opts):
        """The helper every host runs is now `key` (with softkey `opts`)."""
        tmp = self.helper.with_suffix(".tmp")
        tmp.write_text("#!/bin/sh\nexec " + " ".join(ks.harness_quote(a) for a in key.argv(*opts))
                       + ' "$@"\n')
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755)
        os.replace(tmp, self.helper)

    def keys(self, user):
        return json.loads(self.tap.tapctl("keys", user, "--json", policy=self.admin).stdout)

    def sql(self, statement):
        return self.cluster.sql("pam_tap", statement)

    def stop(self):
        for host in self.hosts.values():
            host.stop()
        if self.tap is not None:
            self.tap.stop_daemons()
        if self.cluster is not None:
            self.cluster.stop()


def enroll_on_host(fleet, host, user, label):
    """A pass sign-in on `host`, then `tapctl enroll` as the user there (its
    tapd, the standard socket): the key is in the fleet's store."""
    issued = fleet.issue(user)
    r = fleet.sign_in(host, user, issued["pass"])
    assert r.outcome == "PAM_SUCCESS", r
    proc = fleet.host(host).run_here(fleet.world.tapctl, "enroll", "--label", label, as_user=user)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    [key] = fleet.keys(user)
    assert key["label"] == label, key
    return key


def assert_key_success(r):
    """Signed in by touch: the cue, no prompt, on the deny stack."""
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    assert r.messages == [{"style": "PAM_TEXT_INFO", "msg": ks.TOUCH_CUE}], r
