"""Helpers for the pam_tap end-to-end tests: accounts, policy files, the
store, tapctl, PAM service files and the PAM driver.

Everything here runs inside the private mount namespace set up by
namespace.py (see conftest.py); /etc is an overlay there.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROMPT = "Temporary Access Pass: "
DEFAULT_POLICY = "/etc/security/pam_tap.toml"
DEFAULT_SOCKET = "/run/pam_tap/tapd.sock"
PAM_E2E = None  # set by setup(): path of the helper module pam_e2e.so
DRIVER = None  # set by setup(): path of the PAM driver program


# --------------------------------------------------------------------------
# accounts

PRIMARY_GID = 61000
GROUPS = {
    # name: (gid, supplementary members)
    "tapusers": (61000, []),
    "tapexcluded": (61100, ["tapexcl"]),
    "tapincluded": (61101, ["tapin"]),
    "tap-admins": (61102, []),
    "pam-tap": (61103, []),
    "pam-tap-ssh": (61104, []),
}
USERS = {
    # name: (uid, primary gid)
    **{f"tapuser{i}": (61000 + i, PRIMARY_GID) for i in range(1, 9)},
    "tapout": (61020, PRIMARY_GID),  # excluded by name
    "tapexcl": (61021, PRIMARY_GID),  # excluded through a supplementary group
    "tapprim": (61022, 61100),  # excluded through its primary group
    "tapin": (61023, PRIMARY_GID),  # member of tapincluded
    "pam-tap": (61103, 61103),  # tapd's system user, as the packages make it
    "pam-tap-ssh": (61104, 61104),  # sshd's AuthorizedKeysCommandUser, likewise
}
DAEMON_USER = "pam-tap"
TAPD = None  # set by conftest: the root-owned tapd binary


def add_accounts(home_root):
    """Append the test users and groups to the namespace's private copies."""
    home_root.mkdir(parents=True, exist_ok=True)
    passwd, group, shadow = [], [], []
    for name, (uid, gid) in USERS.items():
        home = home_root / name
        home.mkdir(mode=0o700)
        os.chown(home, uid, gid)
        passwd.append(f"{name}:x:{uid}:{gid}:pam_tap e2e:{home}:/bin/sh\n")
        shadow.append(f"{name}:*:19000:0:99999:7:::\n")
    for name, (gid, members) in GROUPS.items():
        group.append(f"{name}:x:{gid}:{','.join(members)}\n")
    for path, lines in (("/etc/passwd", passwd), ("/etc/group", group), ("/etc/shadow", shadow)):
        with open(path, "a") as f:
            f.writelines(lines)
    os.chmod("/etc/shadow", 0o640)


# --------------------------------------------------------------------------
# syslog sink on /dev/log (an overlay path: only inside the namespace)

class SyslogSink:
    def __init__(self, path="/dev/log"):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.records = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.lock:
                self.records.append(data)

    def mark(self):
        with self.lock:
            return len(self.records)

    def since(self, mark=0, settle=0.3):
        """Records received after mark, as (facility, severity, text)."""
        time.sleep(settle)
        with self.lock:
            raw = self.records[mark:]
        out = []
        for data in raw:
            text = data.decode("utf-8", "replace")
            m = re.match(r"<(\d+)>", text)
            pri = int(m.group(1)) if m else -1
            out.append((pri >> 3, pri & 7, text))
        return out


LOG_AUTHPRIV = 10

# A log field is `key=value`, or `key="..."` with \" and \\ escaped: the
# format the README gives for pam_tap's and tapctl's log lines.
LOG_FIELD = re.compile(r'(?<![^ ])(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')


def log_fields(text):
    """Every key=value a log reader finds in a line, in order, unquoted."""
    found = []
    for key, value in LOG_FIELD.findall(text):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.append((key, value))
    return found


# --------------------------------------------------------------------------
# builds

def build_helpers(out):
    """Compile the PAM driver and the helper module into out/."""
    global DRIVER, PAM_E2E
    out.mkdir(parents=True, exist_ok=True)
    driver, module = out / "pamdriver", out / "pam_e2e.so"
    subprocess.run(
        ["gcc", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(driver),
         str(HERE / "pamdriver.c"), "-lpam"], check=True)
    subprocess.run(
        ["gcc", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-o", str(module),
         str(HERE / "pam_e2e.c"), "-lpam"], check=True)
    DRIVER, PAM_E2E = str(driver), str(module)


def artifact(env, default):
    path = Path(os.environ.get(env, REPO / default))
    return path if path.exists() else None


# --------------------------------------------------------------------------
# policy

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def policy_text(store, enabled=True, passes=None, scope=None, admins=None, top=None):
    p = {
        "default_lifetime": "1h", "min_lifetime": "1s", "max_lifetime": "8h",
        "one_time": False, "require_one_time": False, "length": 10,
        "max_failures": 3, "enroll_window": "10m",
    }
    p.update(passes or {})
    s = {"include_users": [], "include_groups": [], "exclude_users": [], "exclude_groups": []}
    s.update(scope or {})
    a = {"groups": ["tap-admins"], "protected_groups": ["sudo", "wheel"]}
    a.update(admins or {})
    t = {"enabled": enabled, "store": str(store), "store_group": "pam-tap"}
    t.update(top or {})
    lines = [f"{k} = {toml_value(v)}" for k, v in t.items()]
    for name, table in (("pass", p), ("scope", s), ("admins", a)):
        lines.append(f"\n[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# results

@dataclass
class Result:
    rc: str
    messages: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    @property
    def fellthrough(self):
        return "E2E_MARK_fellthrough" in self.raw.get("env", {})

    @property
    def outcome(self):
        """What pam_tap itself returned, as far as the stack lets us see."""
        return "PAM_IGNORE" if self.fellthrough else self.rc

    def of_style(self, style):
        return [m["msg"] for m in self.messages if m["style"] == style]

    @property
    def prompts(self):
        return self.of_style("PAM_PROMPT_ECHO_OFF") + self.of_style("PAM_PROMPT_ECHO_ON")

    @property
    def infos(self):
        return self.of_style("PAM_TEXT_INFO")

    def __str__(self):
        return json.dumps(self.raw)


# --------------------------------------------------------------------------
# tapd: one per policy file, as the package runs it (its own user)

class Daemon:
    """A foreground `tapd --policy P --socket S` running as pam-tap."""

    counter = 0
    socket_dir = None  # set by conftest: a short directory pam-tap may write

    def __init__(self, policy, socket_path=None):
        Daemon.counter += 1
        self.policy = str(policy)
        self.socket = str(socket_path or Path(Daemon.socket_dir) / f"{Daemon.counter}.sock")
        self.proc = None
        self.start()

    def command(self):
        uid, gid = USERS[DAEMON_USER]
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--",
                TAPD, "--policy", self.policy, "--socket", self.socket]

    def start(self):
        if os.path.lexists(self.socket):
            os.unlink(self.socket)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tapd exited {self.proc.returncode}: "
                                     f"{self.proc.stderr.read().decode(errors='replace')}")
            if ping(self.socket):
                return
            time.sleep(0.01)
        raise AssertionError(f"tapd did not answer on {self.socket} within 10 s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


_DEFAULT = []


def default_daemon():
    """tapd on the default socket with the default policy, as installed;
    started once per session, it re-reads the policy when it changes."""
    if not _DEFAULT or _DEFAULT[0].proc is None or _DEFAULT[0].proc.poll() is not None:
        _DEFAULT[:] = [Daemon(DEFAULT_POLICY, DEFAULT_SOCKET)]
    return _DEFAULT[0]


def stop_default_daemon():
    if _DEFAULT:
        _DEFAULT[0].stop()


def frame(body):
    data = json.dumps({"v": 1, "body": body}).encode()
    return len(data).to_bytes(4, "big") + data


def request(socket_path, body, timeout=5):
    """One request to tapd; the decoded response body."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(frame(body))
        head = recv_exactly(s, 4)
        return json.loads(recv_exactly(s, int.from_bytes(head, "big")))["body"]


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("tapd closed the connection")
        data += chunk
    return data


def ping(socket_path):
    """Whether a tapd answers there (a refusal, for an unusable policy, is
    an answer: the daemon is up and fails closed)."""
    try:
        request(socket_path, "ping", timeout=2)
        return True
    except (OSError, ValueError):
        return False


def tapd_as_pam_tap(*args):
    """tapd run once as its own user (`--migrate`, `--migrate-to`, ...)."""
    uid, gid = USERS[DAEMON_USER]
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--",
           TAPD, *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def store_dir(path):
    """A store directory as the package makes it: tapd's own, 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = USERS[DAEMON_USER]
    os.chown(path, uid, gid)
    os.chmod(path, 0o700)
    return path


# --------------------------------------------------------------------------
# one test's world: a policy, a store, service files

class Tap:
    """A per-test environment: its own directory, policy and store."""

    counter = 0

    def __init__(self, workdir, pam_tap_so, tapctl_bin):
        self.dir = workdir
        self.dir.mkdir(parents=True, mode=0o755)
        self.so = str(pam_tap_so)
        self.tapctl_bin = str(tapctl_bin)
        self.store = self.dir / "store" / "tap.db"
        store_dir(self.store.parent)
        self.daemons = {}
        self.policy = self.write_policy()

    # -- daemons -------------------------------------------------------------
    def socket_for(self, policy=None):
        """The socket of the tapd serving `policy` (started on first use).
        The default policy has the session's daemon on the default socket."""
        key = str(policy or self.policy)
        if key == DEFAULT_POLICY:
            return default_daemon().socket
        if key not in self.daemons:
            self.daemons[key] = Daemon(key)
        return self.daemons[key].socket

    def stop_daemons(self):
        for daemon in self.daemons.values():
            daemon.stop()
        self.daemons.clear()

    # -- policy and store --------------------------------------------------
    def write_policy(self, name="pam_tap.toml", text=None, mode=0o644, **kw):
        path = self.dir / name
        path.write_text(text if text is not None else policy_text(self.store, **kw))
        os.chown(path, 0, 0)
        os.chmod(path, mode)
        return path

    def tapctl(self, *args, policy=None, check=True, as_user=None, timeout=60):
        cmd = [self.tapctl_bin]
        if policy is not False:
            cmd += ["--socket", self.socket_for(policy)]
        cmd += [str(a) for a in args]
        if as_user:
            cmd = as_user_prefix(as_user) + cmd
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def init(self, **kw):
        return self.tapctl("init", **kw)

    def issue(self, user, lifetime=None, start=None, one_time=False, policy=None):
        args = ["issue", user, "--json"]
        if lifetime:
            args += ["--lifetime", lifetime]
        if start:
            args += ["--start", start]
        if one_time:
            args.append("--one-time")
        out = self.tapctl(*args, policy=policy).stdout
        data = json.loads(out)
        assert data["user"] == user and data["pass"], out
        return data

    def show(self, user, policy=None):
        return json.loads(self.tapctl("show", user, "--json", policy=policy).stdout)

    def audit(self, user=None, policy=None):
        args = ["audit", "--json"] + (["--user", user] if user else [])
        return parse_json_records(self.tapctl(*args, policy=policy).stdout)

    # -- PAM ----------------------------------------------------------------
    def module_line(self, control, args="", policy=None, pass_only=True):
        """pam_tap's line. These stacks have no password module after it,
        so by default they are pass-only services (`pass_only`); the one
        prompt with a password module behind it is test_one_prompt.py's."""
        pol = self.policy if policy is None else policy
        pol_arg = f" policy={pol} socket={self.socket_for(pol)}" if pol else ""
        mode = " pass_only" if pass_only else ""
        return f"auth {control} {self.so}{pol_arg}{mode} {args}".rstrip()

    def service(self, stack="probe", args="", policy=None, preset=False, name=None):
        """Write a PAM service file to the namespace's /etc/pam.d; return its name.

        probe: pam_tap, then a marker line that records a fall-through (so
               Result.outcome shows PAM_IGNORE) and fails;
        gate:  pam_tap, then pam_permit: a wrong PAM_IGNORE would let the user in;
        deny:  pam_tap, then pam_deny (as a real sshd/login stack would be).
        """
        Tap.counter += 1
        name = name or f"e2e-{stack}-{Tap.counter}"
        lines = []
        if preset:
            lines.append(f"auth optional {PAM_E2E} authtok_from_env=E2E_AUTHTOK")
        lines.append(self.module_line("[success=done ignore=ignore default=die]", args, policy))
        if stack == "probe":
            lines.append(f"auth requisite {PAM_E2E} mark=fellthrough return=PAM_AUTH_ERR")
        elif stack == "gate":
            lines.append(f"auth optional {PAM_E2E} mark=fellthrough")
            lines.append("auth required pam_permit.so")
        elif stack == "deny":
            lines.append(f"auth optional {PAM_E2E} mark=fellthrough")
            lines.append("auth required pam_deny.so")
        else:
            raise ValueError(stack)
        lines += ["account required pam_permit.so", "session required pam_permit.so",
                  "password required pam_deny.so"]
        write_service(name, lines)
        return name

    def auth(self, user, answers=(), stack="probe", args="", policy=None, **kw):
        preset = kw.get("authtok") is not None
        svc = kw.pop("service", None) or self.service(stack, args, policy, preset=preset)
        return drive(svc, user, answers, **kw)


def write_service(name, lines):
    path = Path("/etc/pam.d") / name
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def as_user_prefix(user):
    return ["setpriv", f"--reuid={user}", f"--regid={USERS[user][1]}", "--init-groups", "--"]


def drive(service, user, answers=(), silent=False, conv="ok", authtok=None, hex_answers=(),
          rhost=None, tty=None, setcred=False, session=False, as_user=None, wait_file=None,
          timeout=120,
          popen=False, prefix=()):
    """Run the PAM driver (after `prefix`, e.g. an nsenter into a simulated
    host, outermost)."""
    cmd = [DRIVER, "--service", service, "--conv", conv]
    if user is not None:
        cmd += ["--user", user]
    for a in answers:
        cmd += ["--answer", a]
    for h in hex_answers:
        cmd += ["--answer-hex", h]
    if silent:
        cmd.append("--silent")
    if authtok is not None:
        cmd += ["--authtok", authtok]
    if rhost:
        cmd += ["--rhost", rhost]
    if tty:
        cmd += ["--tty", tty]
    if setcred:
        cmd.append("--setcred")
    if session:
        cmd.append("--session")
    if wait_file:
        cmd += ["--wait-file", str(wait_file)]
    if as_user:
        cmd = as_user_prefix(as_user) + cmd
    cmd = [str(c) for c in prefix] + cmd
    if popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return parse_driver(proc.returncode, proc.stdout, proc.stderr)


def parse_driver(code, stdout, stderr):
    text = stdout.decode("utf-8", "replace")
    if code != 0:
        raise AssertionError(f"pamdriver exited {code}: {text} {stderr.decode(errors='replace')}")
    data = json.loads(text)
    return Result(rc=data["rc"], messages=data["messages"], raw=data)


def parse_json_records(text):
    """tapctl --json output as a list of records (a JSON array, an object
    holding one array, or JSON lines)."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
        return [data]
    raise AssertionError(f"unexpected JSON: {text[:200]}")


def normalize(p):
    return re.sub(r"[\s-]", "", p).upper()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_root_owned(src, dst, mode):
    shutil.copyfile(src, dst)
    os.chown(dst, 0, 0)
    os.chmod(dst, mode)
    return dst


# --------------------------------------------------------------------------
# a real sshd on 127.0.0.1, inside the namespace (so it sees the private
# /etc/pam.d/sshd and /etc/passwd), and a real OpenSSH client

class Sshd:
    def __init__(self, workdir, pam_lines, method="keyboard-interactive", config=None,
                 prefix=()):
        """`config`: sshd_config keywords to set or override (None drops one).
        `prefix`: what sshd runs under, e.g. a fleet host's nsenter (so it,
        its PAM stack and its AuthorizedKeysCommand see that host)."""
        self.prefix = [str(p) for p in prefix]
        self.dir = workdir
        self.dir.mkdir(parents=True, mode=0o755)
        self.pam_lines = pam_lines
        self.write_pam()
        self.port = free_port()
        key = self.dir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, stdin=subprocess.DEVNULL)
        self.config = self.dir / "sshd_config"
        settings = {
            "Port": self.port, "ListenAddress": "127.0.0.1", "HostKey": key,
            "PidFile": f"{self.dir}/sshd.pid", "UsePAM": "yes",
            "KbdInteractiveAuthentication": "yes" if method == "keyboard-interactive" else "no",
            "PasswordAuthentication": "yes" if method == "password" else "no",
            "PubkeyAuthentication": "no", "AuthenticationMethods": method,
            "PermitRootLogin": "no", "AuthorizedKeysFile": "none", "StrictModes": "no",
            "UseDNS": "no", "PrintMotd": "no", "PrintLastLog": "no", "X11Forwarding": "no",
            "AllowTcpForwarding": "no", "MaxAuthTries": 3, "LoginGraceTime": 30,
            "LogLevel": "VERBOSE",
        }
        settings.update(config or {})
        self.config.write_text("".join(f"{k} {v}\n" for k, v in settings.items() if v is not None))
        self.askpass = self.dir / "askpass"
        self.askpass.write_text(
            '#!/bin/sh\nprintf "%s\\n" "$1" >> "$E2E_ASKPASS_LOG"\nprintf "%s\\n" "$E2E_ANSWER"\n')
        os.chmod(self.askpass, 0o755)
        self.log = self.dir / "sshd.log"
        self.proc = None

    def write_pam(self):
        """/etc/pam.d/sshd as this sshd uses it."""
        write_service("sshd", self.pam_lines)

    def start(self):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        check = subprocess.run(self.prefix + [sshd, "-t", "-f", str(self.config)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"sshd -t: {check.stderr}")
        # -D: no daemon, -e: log to stderr; sshd wants its absolute path to re-exec
        # (nsenter without a PID namespace execs: self.proc is sshd itself)
        self.proc = subprocess.Popen(self.prefix + [sshd, "-D", "-e", "-f", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"), start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited {self.proc.returncode}: {self.log.read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"sshd did not listen on {self.port}: {self.log.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()

    def ssh(self, user, answer, command="echo ok; id -un", timeout=60,
            method="keyboard-interactive"):
        """Sign in over `method`, answering every prompt with answer.

        Returns (exit code, stdout, stderr, prompts seen by askpass)."""
        prompts = self.dir / f"prompts-{time.monotonic_ns()}"
        prompts.touch()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SSH_ASKPASS": str(self.askpass), "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0", "E2E_ANSWER": answer, "E2E_ASKPASS_LOG": str(prompts),
        }
        cmd = ["ssh", "-F", "/dev/null", "-p", str(self.port), "-l", user,
               "-o", f"PreferredAuthentications={method}",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "GlobalKnownHostsFile=/dev/null", "-o", "NumberOfPasswordPrompts=1",
               "-o", "ConnectTimeout=10", "-o", "BatchMode=no", "-o", "LogLevel=ERROR",
               "127.0.0.1", command]
        # setsid + no stdin: no controlling terminal, so ssh must use SSH_ASKPASS
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        return proc.returncode, proc.stdout, proc.stderr, prompts.read_text().splitlines()


def copy_text_root_owned(text, dst, mode):
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    Path(dst).write_text(text)
    os.chown(dst, 0, 0)
    os.chmod(dst, mode)
    return dst


# --------------------------------------------------------------------------
# a program on a pseudo-terminal (su and sudo read the password from a tty)

def run_on_pty(cmd, answer, prompt_re, timeout=30):
    """Run cmd with a new session whose controlling terminal is a pty; type
    answer when output matches prompt_re. Returns (exit code, output)."""
    import fcntl
    import pty
    import select
    import termios

    master, slave = pty.openpty()

    def child_setup():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=child_setup, close_fds=True)
    os.close(slave)
    out, answered = b"", False
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and re.search(prompt_re, out.decode(errors="replace")):
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        try:
            code = proc.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            code = None  # still running at the deadline: killed below
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")
