"""Helpers for the security-key end-to-end tests (test_keys.py).

One KeyWorld per test: a policy with a [keys] section, a software key
(pam_tap-softkey, tests/softkey/README.md) behind a wrapper script that the
policy's [keys] helper names, and a way to run tapctl as the test user.

Why the policy lives at /etc/security/pam_tap.toml: a user's own `tapctl
enroll` talks to the tapd on the default socket, which reads the default
path (harness.default_daemon). /etc is the namespace's private overlay, so
the test writes it there, points the PAM stacks and root's tapctl at the
same daemon, and removes it afterwards. One file, one daemon, so the module,
the admin and the user always agree.

tapctl is a plain program (no set-group-id bit): the daemon knows who asks
from its socket. The helper runs as the user, so the softkey state files
are owned by the user.

Why a copy of pam_tap-softkey: the test user runs it (through the helper), and
the clone may sit where that user cannot reach (a 0700 home such as /root). So
the key world runs a root-owned copy on the namespace's tmpfs, as it does with
tapctl.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import harness

DEFAULT_POLICY = Path("/etc/security/pam_tap.toml")
RP_ID = "pam://keys.e2e.test"
SOFTKEY_AAGUID = "736f6674-6b65-792d-7061-6d5f74617000"  # softkey's default, "softkey-pam_tap\0"
TOUCH_CUE = "Touch your security key."
PIN_PROMPT = "Security key PIN: "
ES256, EDDSA = -7, -8

_softkey = None


def softkey_built():
    return harness.artifact("PAMTAP_SOFTKEY", "target/release/pam_tap-softkey")


def softkey_binary(world):
    """The built softkey, copied (root:root 0755) where every test user can run it."""
    global _softkey
    if _softkey is None:
        built = softkey_built()
        if built is None:
            return None
        _softkey = harness.copy_root_owned(built, world.base / "bin" / "pam_tap-softkey", 0o755)
    return _softkey


def toml_keys(keys):
    lines = ["", "[keys]"]
    for k, v in keys.items():
        if v is None:
            continue
        lines.append(f"{k} = {harness.toml_value(v)}")
    return "\n".join(lines) + "\n"


class SoftKey:
    """One software authenticator: a state file owned by the user."""

    def __init__(self, path, owner, softkey, aaguid=None):
        self.path = Path(path)
        self.owner = owner
        self.softkey = softkey
        cmd = [str(softkey), "--state", str(self.path), "--init"]
        if aaguid:
            cmd += ["--aaguid", aaguid]
        subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        uid, gid = harness.USERS[owner]
        os.chown(self.path, uid, gid)

    def state(self):
        return json.loads(self.path.read_text())

    def credentials(self):
        return self.state()["credentials"]

    def argv(self, *opts):
        return [str(self.softkey), "--state", str(self.path), *opts]


class KeyWorld:
    """A test's key world: policy with [keys], softkeys, the helper wrapper."""

    def __init__(self, tap, world, user="tapuser1"):
        self.tap, self.world, self.user = tap, world, user
        # the `system` fixture's policy lives there too: close() puts it back
        self.saved_policy = DEFAULT_POLICY.read_text() if DEFAULT_POLICY.exists() else None
        self.softkey = softkey_binary(world)
        uid, gid = harness.USERS[user]
        self.keydir = tap.dir / "keys"
        self.keydir.mkdir(mode=0o755)
        os.chown(self.keydir, uid, gid)  # the user's softkey state lives here
        self.helper = tap.dir / "helper.sh"
        self.passes = {}
        self.keys = {
            "rp_id": RP_ID,
            "user_verification": "preferred",
            "max_keys": 5,
            "allowed_aaguids": [],
            "touch_timeout": "10s",
            "helper": str(self.helper),
        }
        self.key = self.new_key("key")  # the key in the user's hand
        self.plug(self.key)
        self.write_policy()
        tap.policy = DEFAULT_POLICY  # PAM stacks and root's tapctl use the same file

    # -- policy --------------------------------------------------------------
    def write_policy(self, passes=None, **keys):
        self.passes.update(passes or {})
        self.keys.update(keys)
        text = harness.policy_text(self.tap.store, passes=self.passes) + toml_keys(self.keys)
        harness.copy_text_root_owned(text, DEFAULT_POLICY, 0o644)
        return DEFAULT_POLICY

    def close(self):
        if self.saved_policy is not None:
            harness.copy_text_root_owned(self.saved_policy, DEFAULT_POLICY, 0o644)
        elif DEFAULT_POLICY.exists():
            DEFAULT_POLICY.unlink()

    # -- keys ----------------------------------------------------------------
    def new_key(self, name, aaguid=None):
        return SoftKey(self.keydir / f"{name}.json", self.user, self.softkey, aaguid)

    def plug(self, key, *opts, register=None):
        """Point the helper at `key` with softkey options `opts`.

        register=(key2, opts2): answer register requests with another key
        (the person swaps keys between the proof and the registration).
        """
        def cmd(k, o):
            return " ".join(harness_quote(a) for a in k.argv(*o))

        if register is None:
            body = f'exec {cmd(key, opts)} "$@"\n'
        else:
            rkey, ropts = register
            # the request is one JSON line whose first member is "op"
            body = ('IFS= read -r req\n'
                    'case "$req" in\n'
                    f'  *\'"op":"register"\'*) printf \'%s\\n\' "$req" | exec {cmd(rkey, ropts)} ;;\n'
                    f'  *) printf \'%s\\n\' "$req" | exec {cmd(key, opts)} ;;\n'
                    'esac\n')
        tmp = self.helper.with_suffix(".tmp")
        tmp.write_text("#!/bin/sh\n" + body)
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o755)
        os.replace(tmp, self.helper)

    # -- tapctl --------------------------------------------------------------
    def user_tapctl(self, *args, user=None, stdin=None, timeout=60):
        """tapctl as `user`, on the default socket, no controlling terminal
        (its own session), answers on stdin."""
        user = user or self.user
        cmd = harness.as_user_prefix(user) + [str(self.world.tapctl)] + [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=stdin if stdin is not None else "",
                              start_new_session=True)

    def enroll(self, label=None, user=None, stdin=None, extra=()):
        args = ["enroll", *extra] + (["--label", label] if label else [])
        return self.user_tapctl(*args, user=user, stdin=stdin)

    def keys_json(self, user=None):
        return json.loads(self.tap.tapctl("keys", user or self.user, "--json").stdout)

    def events(self, user=None):
        return [r["event"] for r in self.tap.audit(user or self.user)]

    def audit(self, user=None):
        return self.tap.audit(user or self.user)

    # -- PAM -----------------------------------------------------------------
    def pass_sign_in(self, one_time=False, lifetime=None):
        p = self.tap.issue(self.user, one_time=one_time, lifetime=lifetime)
        r = self.tap.auth(self.user, [p["pass"]], stack="gate", args="nodelay")
        assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
        return p

    def sign_in(self, answers=(), stack="gate", args="nodelay", **kw):
        return self.tap.auth(self.user, list(answers), stack=stack, args=args, **kw)

    def enrolled(self, label="laptop key", **pass_kw):
        """Pass sign-in, then `tapctl enroll` as the user: the key is stored."""
        self.pass_sign_in(**pass_kw)
        proc = self.enroll(label)
        assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
        keys = self.keys_json()
        assert [k["label"] for k in keys].count(label) == 1, keys
        return next(k for k in keys if k["label"] == label)


def harness_quote(s):
    import shlex
    return shlex.quote(str(s))


def processes_mentioning(text):
    """pids whose command line contains text (to prove a helper was reaped)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(pid))
    return found


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0
