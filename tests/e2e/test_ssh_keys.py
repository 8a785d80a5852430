"""OpenSSH security keys enrolled under a Temporary Access Pass (issue 13),
through the real OpenSSH on both sides and no hardware:

* the server: a real sshd in the namespace. Passes over keyboard-interactive
  (pam_tap pass_only), keys over publickey served by
  `AuthorizedKeysCommand tapctl authorized-keys %u` as the dedicated
  `AuthorizedKeysCommandUser pam-tap-ssh`, and `session optional pam_tap.so`
  recording each key's use from sshd's SSH_AUTH_INFO_0;
* the laptop: another account running `tapctl ssh-enroll`, the real ssh and
  ssh-keygen, and the software FIDO2 key (tests/sk-provider) behind
  OpenSSH's security-key API (SSH_SK_PROVIDER), its state in a file.

The default tapd (the default policy and socket) serves both, as installed.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness
from conftest import WORLD

SERVER_USER = "tapuser3"
LAPTOP_USER = "tapuser8"
POLICY = Path(harness.DEFAULT_POLICY)
SK_TYPES = {"ed25519-sk": "sk-ssh-ed25519@openssh.com",
            "ecdsa-sk": "sk-ecdsa-sha2-nistp256@openssh.com"}
PROVIDER_AAGUID = "70616d5f-7461-702d-736b-2d736f667400"  # "pam_tap-sk-soft\0"


def provider_built():
    return harness.artifact("PAMTAP_SK_PROVIDER", "target/release/libpam_tap_sk_provider.so")



def key_sshd(directory, prefix=(), **more_config):
    """A started sshd that takes a public key (tapd's, through
    `AuthorizedKeysCommand tapctl authorized-keys %u`) or a pass, with
    pam_tap's session hook: the one the SSH key tests run. `prefix` runs it
    inside a simulated host (fleet.py)."""
    so = WORLD.pam_tap_so
    return harness.Sshd(directory, [
        f"auth [success=done default=die] {so} pass_only",
        "auth required pam_deny.so",
        "account required pam_permit.so",
        f"session optional {so}",
        "session required pam_permit.so",
        "password required pam_deny.so",
    ], method="any", config={
        "KbdInteractiveAuthentication": "yes",
        "PubkeyAuthentication": "yes",
        "AuthorizedKeysCommand": f"{WORLD.tapctl} authorized-keys %u",
        "AuthorizedKeysCommandUser": "pam-tap-ssh",
        "MaxAuthTries": 6,
        # sessions find tapctl on their PATH, as where it is installed
        "SetEnv": f"PATH={Path(WORLD.tapctl).parent}:/usr/bin:/bin",
        **more_config,
    }, prefix=prefix).start()


class SshWorld:
    def __init__(self):
        self.dir = WORLD.base / "t" / "ssh-keys"
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, mode=0o755)
        built = provider_built()
        if built is None:
            pytest.fail("tests/sk-provider is not built: cargo build --release -p tap-sk-provider")
        self.provider = harness.copy_root_owned(built, WORLD.base / "lib" / "sk-provider.so", 0o755)
        self.saved_policy = POLICY.read_text() if POLICY.exists() else None
        self.store = self.dir / "store" / "tap.db"
        harness.store_dir(self.store.parent)
        self.ssh = {}
        self.set_policy()
        self.tap = harness.Tap(self.dir / "tap", WORLD.pam_tap_so, WORLD.tapctl)
        self.tap.policy = POLICY
        self.tap.init()
        # scp speaks SFTP
        self.sshd = key_sshd(self.dir / "sshd", Subsystem="sftp /usr/lib/openssh/sftp-server")

    def set_policy(self, **ssh):
        settings = {"enabled": True}
        settings.update(ssh)
        self.ssh = settings
        text = harness.policy_text(self.store) + "\n[ssh]\n" + "".join(
            f"{k} = {harness.toml_value(v)}\n" for k, v in settings.items())
        harness.copy_text_root_owned(text, POLICY, 0o644)

    def keys_policy(self, text):
        """Append a [keys] table (allowed_aaguids) to the current policy."""
        harness.copy_text_root_owned(POLICY.read_text() + text, POLICY, 0o644)

    def close(self):
        self.sshd.stop()
        if self.saved_policy is not None:
            harness.copy_text_root_owned(self.saved_policy, POLICY, 0o644)
        elif POLICY.exists():
            POLICY.unlink()

    def ssh_keys(self, user=SERVER_USER):
        return json.loads(self.tap.tapctl("ssh-keys", user, "--json").stdout)


class Person:
    """A user with a software security key, running OpenSSH's tools as
    themselves with no terminal (prompts go to SSH_ASKPASS)."""

    count = 0

    def __init__(self, world, user, name="key", real_home=False):
        self.world, self.user = world, user
        uid, gid = harness.USERS[user]
        self.uid, self.gid = uid, gid
        # a short home: ssh's control sockets live under it (~/.ssh, and
        # TMPDIR for ssh-enroll), and a socket's path holds 108 bytes
        Person.count += 1
        self.name = name
        # (ssh reads ~/.ssh/config from the passwd entry's home, not $HOME)
        self.dir = Path(pwd.getpwnam(user).pw_dir) if real_home else WORLD.base / f"h{Person.count}"
        self.tmp = self.dir / f"t{Person.count}"
        if real_home:
            shutil.rmtree(self.dir / ".ssh", ignore_errors=True)
        for path in (self.dir, self.dir / ".ssh", self.tmp):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, uid, gid)
        self.state = self.tmp / "sk.json"
        self.askpass = world.dir / f"askpass-{Person.count}"
        # the pass for the server's prompt; an empty passphrase for ssh-keygen
        self.askpass.write_text(
            '#!/bin/sh\nprintf "%s\\n" "$1" >> "$E2E_ASKPASS_LOG"\n'
            'case "$1" in *"Access Pass"*) printf "%s\\n" "$E2E_ANSWER";; *) echo;; esac\n')
        os.chmod(self.askpass, 0o755)
        self.prompts = self.tmp / "prompts"
        self.prompts.touch()
        os.chown(self.prompts, uid, gid)

    def env(self, answer="", **extra):
        env = {
            "PATH": "/usr/bin:/bin", "HOME": str(self.dir), "USER": self.user,
            "TMPDIR": str(self.tmp),
            "SSH_SK_PROVIDER": str(self.world.provider), "PAM_TAP_SK_STATE": str(self.state),
            "SSH_ASKPASS": str(self.askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0",
            "E2E_ANSWER": answer, "E2E_ASKPASS_LOG": str(self.prompts),
        }
        env.update(extra)
        return env

    def run(self, cmd, answer="", timeout=120, stdin=None, **extra):
        full = harness.as_user_prefix(self.user) + [str(c) for c in cmd]
        return subprocess.run(full, env=self.env(answer, **extra), capture_output=True,
                              cwd=self.dir,
                              text=True, timeout=timeout, start_new_session=True,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)

    def prompts_seen(self):
        return self.prompts.read_text().splitlines()

    def ssh_options(self):
        port = self.world.sshd.port
        # ssh itself takes the provider from its option (ssh-keygen, from
        # SSH_SK_PROVIDER): it signs with the key when it signs in.
        return ["-o", f"SecurityKeyProvider={self.world.provider}", "-o", f"Port={port}", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]

    def enroll(self, server_user, pass_, key_type="ed25519-sk", label=None, **extra):
        key_file = self.dir / f"id_{key_type}_{time.monotonic_ns()}"
        cmd = [WORLD.tapctl, "ssh-enroll", f"{server_user}@127.0.0.1", "--type", key_type,
               "--no-passphrase", "--key-file", key_file, "--remote-tapctl", WORLD.tapctl]
        for option in self.ssh_options() + ["-o", "PreferredAuthentications=keyboard-interactive"]:
            cmd.append(option)
        if label:
            cmd += ["--label", label]
        return self.run(cmd, answer=pass_, **extra), key_file

    def ssh_by_key(self, server_user, key_file, command="echo ok; id -un", **extra):
        cmd = ["ssh", "-F", "/dev/null", *self.ssh_options(), "-i", key_file,
               "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey",
               "-o", "BatchMode=no", "-l", server_user, "127.0.0.1", command]
        return self.run(cmd, **extra)

    def keygen(self, key_type, challenge=None, attestation=None, application="ssh:", **extra):
        """`ssh-keygen -t TYPE` on the software key, as the user."""
        key_file = self.dir / f"k_{time.monotonic_ns()}"
        cmd = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", key_file, "-C", "",
               "-O", f"application={application}"]
        if challenge is not None:
            cmd += ["-O", f"challenge={challenge}"]
        if attestation is not None:
            cmd += ["-O", f"write-attestation={attestation}"]
        proc = self.run(cmd, **extra)
        assert proc.returncode == 0, proc
        return key_file


@pytest.fixture(scope="module")
def ssh_world():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    harness.default_daemon()
    world = SshWorld()
    yield world
    world.close()


def sign_in_with_pass(world, user):
    """A pass sign-in over ssh: opens the user's enrollment window."""
    issued = world.tap.issue(user)
    code, out, err, _ = world.sshd.ssh(user, issued["pass"])
    assert code == 0 and out.split() == ["ok", user], (code, out, err)


def authorized_keys(user, as_user="pam-tap-ssh", timeout=10):
    started = time.monotonic()
    prefix = [] if as_user == "root" else harness.as_user_prefix(as_user)
    proc = subprocess.run(prefix + [str(WORLD.tapctl), "authorized-keys", user], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("key_type", ["ed25519-sk", "ecdsa-sk"])
def test_enroll_from_the_laptop_then_ssh_by_touch(ssh_world, key_type, syslog):
    w = ssh_world
    w.set_policy()
    issued = w.tap.issue(SERVER_USER)
    laptop = Person(w, LAPTOP_USER, f"laptop-{key_type}")
    proc, key_file = laptop.enroll(SERVER_USER, issued["pass"], key_type, label="my key")
    assert proc.returncode == 0, (proc, w.sshd.log.read_text()[-3000:])
    # one sign-in, so the pass was asked for once
    assert len(laptop.prompts_seen()) == 1, laptop.prompts_seen()
    assert "Host 127.0.0.1" in proc.stdout and f"IdentityFile {key_file}" in proc.stdout, proc.stdout
    assert f"User {SERVER_USER}" in proc.stdout
    enrolled = [k for k in w.ssh_keys() if k["label"] == "my key" and k["key_type"] == SK_TYPES[key_type]]
    assert len(enrolled) == 1, w.ssh_keys()
    key = enrolled[0]
    assert key["model"] == PROVIDER_AAGUID and "verified" in key["attestation"], key
    assert key["last_used"] is None

    mark = syslog.mark()
    proc = laptop.ssh_by_key(SERVER_USER, key_file)
    assert proc.returncode == 0 and proc.stdout.split() == ["ok", SERVER_USER], (
        proc.stderr, w.sshd.log.read_text()[-3000:])
    assert not [p for p in laptop.prompts_seen()[1:] if "Pass" in p], "the key alone: no pass"
    assert any("Confirm user presence" in p for p in laptop.prompts_seen()), "a touch"
    assert f"Accepted publickey for {SERVER_USER}" in w.sshd.log.read_text()
    # the PAM session told tapd which key sshd accepted
    (key,) = [k for k in w.ssh_keys() if k["fingerprint"] == key["fingerprint"]]
    assert key["last_used"] is not None, key
    events = [r for r in w.tap.audit(SERVER_USER) if r["event"] == "signin.ssh_key.success"]
    assert any(key["fingerprint"] in r["detail"] and r["service"] == "sshd"
               and r["rhost"] == "127.0.0.1" for r in events), events
    logged = [t for _, _, t in syslog.since(mark) if "signin.ssh_key.success" in t]
    assert logged, syslog.since(mark)

    # the key does not depend on the pass
    w.tap.tapctl("revoke", SERVER_USER)
    proc = laptop.ssh_by_key(SERVER_USER, key_file)
    assert proc.returncode == 0, proc


def test_a_key_signs_in_its_own_user_only_and_not_after_removal(ssh_world):
    w = ssh_world
    w.set_policy()
    issued = w.tap.issue("tapuser4")
    laptop = Person(w, LAPTOP_USER, "laptop-own")
    proc, key_file = laptop.enroll("tapuser4", issued["pass"])
    assert proc.returncode == 0, proc
    assert laptop.ssh_by_key("tapuser4", key_file).returncode == 0
    # the same key for another user
    proc = laptop.ssh_by_key("tapuser5", key_file)
    assert proc.returncode == 255 and "ok" not in proc.stdout, proc
    # removed by an admin: refused at once
    (key,) = w.ssh_keys("tapuser4")
    w.tap.tapctl("ssh-keys", "remove", "tapuser4", key["fingerprint"])
    proc = laptop.ssh_by_key("tapuser4", key_file)
    assert proc.returncode == 255 and "ok" not in proc.stdout, proc
    assert w.ssh_keys("tapuser4") == []


def tapctl_as(user, *args, stdin=None):
    cmd = harness.as_user_prefix(user) + [str(WORLD.tapctl), *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def test_outside_the_window_nothing_is_added(ssh_world):
    w = ssh_world
    w.set_policy()
    person = Person(w, "tapuser5", "nowindow")
    key = person.keygen("ed25519-sk")
    before = w.tap.audit()
    for args in (["ssh-keys", "challenge"], ["ssh-keys", "add", f"{key}.pub"]):
        proc = tapctl_as("tapuser5", *args)
        assert proc.returncode == 3 and "no enrollment window" in proc.stderr, proc
        assert proc.stdout == ""
    assert w.ssh_keys("tapuser5") == []
    assert len(w.tap.audit()) == len(before), "a refused permission changes nothing"


def test_plain_keys_options_and_garbage_are_refused_with_nothing_stored(ssh_world, tmpdir_ns):
    w = ssh_world
    w.set_policy()
    sign_in_with_pass(w, "tapuser6")
    plain = tmpdir_ns / "plain"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plain], check=True)
    line = (tmpdir_ns / "plain.pub").read_text()
    person = Person(w, "tapuser6", "bad-input")
    sk_line = Path(f"{person.keygen('ed25519-sk')}.pub").read_text().strip()
    cases = {
        "plain ssh-ed25519": (line, 3, "not allowed by the policy"),
        "command= option": (f'command="/bin/sh -c id" {sk_line}', 2, "option"),
        "restrict option": (f"restrict {sk_line}", 2, "option"),
        "two lines": (f"{sk_line}\n{sk_line}", 2, ""),
        "garbage": ("sk-ssh-ed25519@openssh.com AAAA!!!!", 2, ""),
        "truncated blob": (sk_line.split()[0] + " " + sk_line.split()[1][:40], 2, ""),
        "wrong type name": ("ssh-ed25519 " + sk_line.split()[1], 2, ""),
        "huge": ("sk-ssh-ed25519@openssh.com " + "A" * 60000, 2, ""),
        "empty": ("", 2, ""),
    }
    for name, (text, code, words) in cases.items():
        proc = tapctl_as("tapuser6", "ssh-keys", "add", "-", stdin=text)
        assert proc.returncode == code, (name, proc)
        assert words.lower() in proc.stderr.lower() and proc.stderr.strip(), (name, proc.stderr)
    assert w.ssh_keys("tapuser6") == []
    refused = [r for r in w.tap.audit("tapuser6") if r["event"] == "ssh_key.refused"]
    assert len(refused) == len(cases), refused
    # and the same plain key, once the policy lists its type
    w.set_policy(key_types=["sk-ssh-ed25519@openssh.com", "ssh-ed25519"])
    proc = tapctl_as("tapuser6", "ssh-keys", "add", "--label", "plain", "-", stdin=line)
    assert proc.returncode == 0, proc
    assert [k["key_type"] for k in w.ssh_keys("tapuser6")] == ["ssh-ed25519"]


def corrupt(blob, offset_from_end):
    data = bytearray(blob)
    data[len(data) - offset_from_end] ^= 0x01
    return bytes(data)


def test_attestations_that_do_not_hold_are_refused(ssh_world):
    w = ssh_world
    w.set_policy(require_attestation=True)
    user = "tapuser7"
    sign_in_with_pass(w, user)
    person = Person(w, user, "attest")
    d = person.dir

    def challenge():
        proc = tapctl_as(user, "ssh-keys", "challenge")
        assert proc.returncode == 0, proc
        path = d / f"challenge-{time.monotonic_ns()}"
        path.write_text(proc.stdout)  # as `> FILE` writes it: with its newline
        os.chown(path, person.uid, person.gid)
        return path

    def attested(key_type="ed25519-sk", challenge_file=None, **extra):
        att = d / f"att-{time.monotonic_ns()}"
        key = person.keygen(key_type, challenge_file or challenge(), att, **extra)
        return Path(f"{key}.pub"), att

    def add(pub, att_bytes):
        att = d / f"sent-{time.monotonic_ns()}"
        att.write_bytes(att_bytes)
        return tapctl_as(user, "ssh-keys", "add", "--attestation", att, pub)

    # without an attestation, under require_attestation
    pub, _ = attested()
    proc = tapctl_as(user, "ssh-keys", "add", pub)
    assert proc.returncode == 3 and "requires an attestation" in proc.stderr, proc
    # made for a challenge tapd never issued
    own = d / "own-challenge"
    own.write_text("pam_tap-ssh-enroll:made-up-by-the-user")
    challenge()  # one is outstanding, just not this one
    pub, att = attested(challenge_file=own)
    proc = add(pub, att.read_bytes())
    assert proc.returncode == 3 and "does not verify" in proc.stderr, proc
    # tampered: the signature, and the authenticator data
    pub, att = attested()
    blob = att.read_bytes()
    for tampered in (corrupt(blob, 120), corrupt(blob, 30)):
        proc = add(pub, tampered)
        assert proc.returncode in (2, 3), proc
    # the attestation of one key with the public key of another
    pub_a, att_a = attested()
    pub_b, _ = attested()
    proc = add(pub_b, att_a.read_bytes())
    assert proc.returncode == 3, proc
    # truncated and garbage
    for bad in (att_a.read_bytes()[:50], b"\x00\x00\x00\x11ssh-sk-attest-v01", os.urandom(300), b""):
        proc = add(pub_a, bad)
        assert proc.returncode == 2, (bad[:20], proc)
    assert w.ssh_keys(user) == []
    # an authenticator model the policy does not allow
    w.keys_policy('\n[keys]\nallowed_aaguids = ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]\n')
    pub, att = attested()
    proc = add(pub, att.read_bytes())
    assert proc.returncode == 3 and "allowed_aaguids" in proc.stderr, proc
    assert w.ssh_keys(user) == []
    # and a good one is taken, once: its challenge is used up
    w.set_policy(require_attestation=True)
    pub, att = attested()
    assert add(pub, att.read_bytes()).returncode == 0
    (key,) = w.ssh_keys(user)
    assert key["model"] == PROVIDER_AAGUID
    pub2, _ = attested()
    proc = add(pub2, att.read_bytes())
    assert proc.returncode == 3, "the challenge was consumed"


def test_require_verify_is_served_and_sshd_refuses_a_signature_without_uv(ssh_world):
    w = ssh_world
    w.set_policy()
    issued = w.tap.issue("tapuser1")
    laptop = Person(w, LAPTOP_USER, "laptop-uv")
    proc, old_key = laptop.enroll("tapuser1", issued["pass"])
    assert proc.returncode == 0, proc
    w.set_policy(require_verify=True)
    # ssh-enroll makes a verify-required key when the server's policy says so
    issued = w.tap.issue("tapuser1")
    proc, key_file = laptop.enroll("tapuser1", issued["pass"], label="uv")
    assert proc.returncode == 0, proc
    proc, _ = authorized_keys("tapuser1")
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(
        line.startswith("verify-required sk-ssh-ed25519@openssh.com ") for line in lines), lines
    # the device verifies its user (built-in UV): in
    proc = laptop.ssh_by_key("tapuser1", key_file)
    assert proc.returncode == 0, (proc, w.sshd.log.read_text()[-2000:])
    # a device that cannot: the key cannot sign, and a key made before the
    # policy asked for UV signs without it: sshd refuses both
    proc = laptop.ssh_by_key("tapuser1", key_file, PAM_TAP_SK_NO_UV="1")
    assert proc.returncode == 255 and "ok" not in proc.stdout, proc
    proc = laptop.ssh_by_key("tapuser1", old_key)
    assert proc.returncode == 255 and "ok" not in proc.stdout, proc
    assert "user verification requirement not met" in w.sshd.log.read_text()
    w.set_policy()


def test_served_lines_are_written_from_the_blob_and_asked_for_by_sshd_only(ssh_world):
    w = ssh_world
    w.set_policy()
    sign_in_with_pass(w, "tapuser2")
    person = Person(w, "tapuser2", "lines")
    pub = Path(f"{person.keygen('ed25519-sk')}.pub")
    proc = tapctl_as("tapuser2", "ssh-keys", "add", "--label", 'x" command="id', pub)
    assert proc.returncode == 0, proc
    kind, blob = pub.read_text().split()[:2]
    expected = f"{kind} {blob} pam_tap\n"
    for asker in ("pam-tap-ssh", "tapuser2", "root"):
        proc, _ = authorized_keys("tapuser2", as_user=asker)
        assert proc.returncode == 0 and proc.stdout == expected, (asker, proc)
    proc, _ = authorized_keys("tapuser2", as_user="tapuser1")
    assert proc.returncode == 3 and proc.stdout == "", proc
    # out of scope, or SSH keys off: nothing
    w.set_policy(enabled=False)
    proc, _ = authorized_keys("tapuser2")
    assert proc.returncode == 0 and proc.stdout == "", proc
    w.set_policy()
    harness.copy_text_root_owned(
        POLICY.read_text().replace("exclude_users = []", 'exclude_users = ["tapuser2"]'),
        POLICY, 0o644)
    proc, _ = authorized_keys("tapuser2")
    assert proc.returncode == 0 and proc.stdout == "", proc
    w.set_policy()


@pytest.mark.parametrize("name", [
    "nosuchuser", "../../etc/passwd", "a b", "tapuser2\nroot", "$(id)", "x" * 5000, "root",
    "\u00e9l\u00e8ve", "--", "%u",
])
def test_authorized_keys_with_odd_user_names_prints_nothing(ssh_world, name):
    ssh_world.set_policy()
    proc, took = authorized_keys(name)
    assert proc.stdout == "", proc
    assert took < 3, took


def test_daemon_down_or_stopped_gives_nothing_within_a_second_and_sshd_goes_on(ssh_world):
    w = ssh_world
    w.set_policy()
    daemon = harness.default_daemon()
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        proc, took = authorized_keys("tapuser2")
        assert proc.stdout == "" and proc.returncode != 0 and took < 1.5, (proc, took)
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    harness.stop_default_daemon()
    try:
        proc, took = authorized_keys("tapuser2")
        assert proc.stdout == "" and proc.returncode == 6 and took < 1.5, (proc, took)
        # sshd: no keys, so publickey fails and it offers the next method
        person = Person(w, "tapuser2", "down")
        key = person.keygen("ed25519-sk")
        cmd = ["ssh", "-F", "/dev/null", *person.ssh_options(), "-i", key,
               "-o", "IdentitiesOnly=yes",
               "-o", "PreferredAuthentications=publickey,keyboard-interactive",
               "-l", "tapuser2", "127.0.0.1", "true"]
        proc = person.run(cmd, answer="ABCD-EFGH-JK")
        assert proc.returncode == 255, proc
        log = w.sshd.log.read_text()
        assert "keyboard-interactive/pam for tapuser2" in log, log[-3000:]
    finally:
        harness.default_daemon()


def test_sshd_command_user_is_not_capped_like_a_user(ssh_world):
    """sshd runs authorized-keys on every public-key attempt, and anyone on
    the network can make those: the command user is exempt from the
    per-user caps (8 connections, 20 requests/s) that a local user meets."""
    import concurrent.futures
    w = ssh_world
    w.set_policy()
    sign_in_with_pass(w, "tapuser2")

    def flood(asker):
        with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
            runs = list(pool.map(lambda _: authorized_keys("tapuser2", as_user=asker)[0],
                                 range(120)))
        return [r.returncode for r in runs]

    codes = flood("pam-tap-ssh")
    assert codes == [0] * 120, sorted(set(codes))
    codes = flood("tapuser2")
    assert 6 in codes, "a plain user meets the per-user caps"


def readme_commands(first):
    """The `alice@laptop$` commands of the README block that has `first`."""
    text = (harness.REPO / "README.md").read_text()
    blocks = text.split("```console\n")
    (block,) = [b.split("```")[0] for b in blocks if first in b.split("```")[0]]
    return [line.split("$ ", 1)[1] for line in block.splitlines()
            if line.startswith("alice@laptop$ ")]


def as_written(person, command, server_user):
    """A README command as the person types it, alice being them."""
    return person.run(["sh", "-c", command.replace("alice@server", f"{server_user}@server")],
                      answer=person.pass_)


def laptop_config(person):
    """~/.ssh/config naming the test sshd `server`, as a laptop would."""
    config = person.dir / ".ssh" / "config"
    config.write_text(
        "Host server\n    HostName 127.0.0.1\n"
        f"    Port {person.world.sshd.port}\n"
        "    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
        "    GlobalKnownHostsFile /dev/null\n    LogLevel ERROR\n"
        f"    SecurityKeyProvider {person.world.provider}\n")
    os.chown(config, person.uid, person.gid)
    return config


def test_the_readme_one_command_enrollment_as_written(ssh_world):
    w = ssh_world
    w.set_policy()
    user = "tapuser6"
    laptop = Person(w, LAPTOP_USER, "readme-enroll", real_home=True)
    config = laptop_config(laptop)
    laptop.pass_ = w.tap.issue(user, one_time=True)["pass"]
    (command,) = readme_commands("tapctl ssh-enroll alice@server")
    assert command == "tapctl ssh-enroll alice@server"
    proc = as_written(laptop, f"PATH={Path(WORLD.tapctl).parent}:$PATH; {command}", user)
    assert proc.returncode == 0, (proc, w.sshd.log.read_text()[-2000:])
    asked = [p for p in laptop.prompts_seen() if "Access Pass" in p]
    assert len(asked) == 1 and asked[0].startswith(f"({user}@"), laptop.prompts_seen()
    # the block it prints, added to ~/.ssh/config, and `ssh server` by touch
    block = proc.stdout.split("~/.ssh/config, then `ssh HOST` signs in by a touch:\n\n")[1]
    assert block.startswith("Host server\n") and f"    User {user}\n" in block, block
    with open(config, "a") as f:
        f.write(block)
    proc = laptop.run(["ssh", "server", "id -un"])
    assert proc.returncode == 0 and proc.stdout.split() == [user], proc


def test_the_readme_manual_enrollment_as_written(ssh_world):
    w = ssh_world
    w.set_policy(require_attestation=True)
    user = "tapuser7"
    laptop = Person(w, LAPTOP_USER, "readme-manual", real_home=True)
    laptop_config(laptop)
    laptop.pass_ = w.tap.issue(user, one_time=True)["pass"]
    commands = readme_commands("ssh -o ControlMaster=yes")
    assert len(commands) == 6, commands
    before = {k["fingerprint"] for k in w.ssh_keys(user)}
    for command in commands:
        proc = as_written(laptop, command, user)
        assert proc.returncode == 0, (command, proc, w.sshd.log.read_text()[-2000:])
    # one sign-in for all of it, with a one-time pass
    assert len([p for p in laptop.prompts_seen() if "Access Pass" in p]) == 1
    (key,) = [k for k in w.ssh_keys(user) if k["fingerprint"] not in before]
    assert key["model"] == PROVIDER_AAGUID, key
    proc = laptop.run(["ssh", "-i", laptop.dir / ".ssh" / "id_ed25519_sk_server",
                       "-o", "IdentitiesOnly=yes", "-l", user, "server", "id -un"])
    assert proc.returncode == 0 and proc.stdout.split() == [user], proc
    w.set_policy()


def test_the_session_hook_records_for_sshd_only(ssh_world, tmpdir_ns):
    """SSH_AUTH_INFO_0 is sshd's to set; in another service (here pam_env
    puts it in the PAM environment, as a user's ~/.pam_environment could
    with user_readenv) the module leaves it alone."""
    w = ssh_world
    w.set_policy()
    user = "tapuser4"
    sk = Person(w, user, "session").keygen("ed25519-sk")
    w.tap.tapctl("ssh-keys", "add", "--user", user, "--label", "forged", f"{sk}.pub")
    kind, blob = Path(f"{sk}.pub").read_text().split()[:2]
    env_conf = tmpdir_ns / "env.conf"
    env_conf.write_text(f'SSH_AUTH_INFO_0 DEFAULT="publickey {kind} {blob}"\n')
    for service in ("e2e-session-login", "sshd-copy"):
        harness.write_service(service, [
            "auth required pam_permit.so", "account required pam_permit.so",
            f"session required pam_env.so conffile={env_conf} readenv=0",
            f"session optional {WORLD.pam_tap_so}",
        ])
        result = harness.drive(service, user, session=True)
        assert result.raw["session"] == "PAM_SUCCESS", result
        assert result.raw["env"].get("SSH_AUTH_INFO_0", "").startswith("publickey"), result
    (key,) = [k for k in w.ssh_keys(user) if k["label"] == "forged"]
    assert key["last_used"] is None, "not sshd: nothing recorded"
    # the same stack as the service sshd: recorded
    harness.write_service("sshd", [
        "auth required pam_permit.so", "account required pam_permit.so",
        f"session required pam_env.so conffile={env_conf} readenv=0",
        f"session optional {WORLD.pam_tap_so}",
    ])
    try:
        result = harness.drive("sshd", user, session=True)
        assert result.raw["session"] == "PAM_SUCCESS", result
        (key,) = [k for k in w.ssh_keys(user) if k["label"] == "forged"]
        assert key["last_used"] is not None, key
    finally:
        w.sshd.write_pam()
