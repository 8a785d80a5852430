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

and every host's policy names the same PostgreSQL cluster as
`pam_tap_host`. Sign-ins run the PAM driver inside the host's namespaces
(`nsenter`) on service files whose pam_tap line has no policy= or socket=,
so the module uses the standard paths, as on a real host.

The hosts' namespaces are made from the e2e namespace (namespace.py): its
overlays of /etc, /run, /var and /dev, all private, come along, so
/etc/pam.d and /etc/passwd writes stay in the test's private overlay and a
host's bind mounts never leave its own namespace.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import harness

SECURITY = Path("/etc/security")
RUN_DIR = Path("/run/pam_tap")


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
        script = (f"hostname {name} && mount --bind {self.security} {SECURITY} && "
                  f"mount --bind {self.run} {RUN_DIR} && echo ready && exec sleep infinity")
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
        self.tapd = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.tapd.poll() is not None:
                raise AssertionError(f"{self.name}: tapd exited {self.tapd.returncode}: "
                                     f"{self.tapd.stderr.read().decode(errors='replace')}")
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
