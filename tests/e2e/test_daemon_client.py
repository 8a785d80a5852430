"""pam_tap.so as a client of tapd, on the gate stack (a wrong PAM_IGNORE
would let the user in): the daemon down, a daemon that never answers, and a
socket someone else serves are each PAM_AUTHINFO_UNAVAIL, logged, in
bounded time. And the module itself carries neither SQLite nor Argon2: only
tapd opens the store and hashes.
"""

import os
import socket
import subprocess
import threading
import time

import harness
from test_failclosed import armed, signin_closed  # noqa: F401 (fixture)


def logged_since(syslog, mark):
    return [t for fac, sev, t in syslog.since(mark, settle=0.2)
            if fac == harness.LOG_AUTHPRIV and "pam_tap" in t]


def test_daemon_down_is_unavail_and_the_log_says_how_to_start_it(armed, syslog):
    mark = syslog.mark()
    t0 = time.monotonic()
    signin_closed(armed, syslog, args="socket=/run/pam_tap/nobody-here.sock")
    assert time.monotonic() - t0 < 5
    lines = logged_since(syslog, mark)
    assert any("not reachable" in t and "systemctl start pam-tap.socket" in t for t in lines), lines


def test_a_daemon_that_never_answers_is_unavail_within_its_timeout(armed, syslog, tmpdir_ns):
    """Root's own listener (so it passes the server check) that accepts and
    reads but never answers: the module gives up at its 10 s deadline."""
    path = str(tmpdir_ns / "mute.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(16)
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    mark = syslog.mark()
    t0 = time.monotonic()
    try:
        signin_closed(armed, syslog, args=f"socket={path}")
    finally:
        listener.close()
    elapsed = time.monotonic() - t0
    print(f"mute daemon: the sign-in failed closed after {elapsed:.2f} s")
    assert 9 <= elapsed < 15, elapsed
    assert any("no answer within 10000 ms" in t for t in logged_since(syslog, mark))


def test_a_socket_served_by_another_user_is_never_asked(armed, syslog, tmpdir_ns):
    """A plain user who could bind a socket where the module looks (a wrong
    socket= path in a directory they can write) must not decide sign-ins.
    Their fake tapd answers every request with a success; the module
    refuses to ask it: the server is neither root nor pam-tap."""
    d = tmpdir_ns / "user-dir"
    d.mkdir()
    uid, gid = harness.USERS["tapuser2"]
    os.chown(d, uid, gid)
    path = d / "tapd.sock"
    fake = subprocess.Popen(
        harness.as_user_prefix("tapuser2") + ["/usr/bin/python3", "-c", FAKE_TAPD, str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(500):
            if path.exists() or fake.poll() is not None:
                break
            time.sleep(0.01)
        assert path.exists(), (fake.poll(), fake.stderr.read1() if fake.poll() is not None else "")
        mark = syslog.mark()
        signin_closed(armed, syslog, args=f"socket={path}")
        lines = logged_since(syslog, mark)
        assert any("neither root nor pam-tap" in t for t in lines), lines
    finally:
        fake.kill()
        fake.wait()


# Answers a plan with "ask for the pass", and any check with a success.
FAKE_TAPD = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
import os; os.chmod(sys.argv[1], 0o777)
def send(c, body):
    data = json.dumps({"v": 1, "body": body}).encode()
    c.sendall(len(data).to_bytes(4, "big") + data)
while True:
    c, _ = s.accept()
    n = int.from_bytes(c.recv(4), "big")
    req = json.loads(c.recv(n))["body"]
    step = req.get("sign_in", {}).get("step") if isinstance(req, dict) else None
    if step == "plan":
        send(c, {"plan": {"nothing": None, "key": None, "prompt": "Temporary Access Pass: ",
                          "pass": {"reason": "EnabledByPolicy", "length": None}}})
    else:
        send(c, {"verdict": {"outcome": {"PassSuccess": {"expires": 0, "one_time": False}},
                             "info": None}})
    c.close()
"""


def test_the_module_carries_neither_sqlite_nor_argon2(world):
    symbols = subprocess.run(["nm", "--demangle", str(world.pam_tap_so)],
                             capture_output=True, text=True, check=True).stdout
    assert symbols.strip(), "nm found no symbols to check"
    for marker in ("sqlite3_", "argon2::", "rusqlite::"):
        found = [line for line in symbols.splitlines() if marker in line]
        assert not found, (marker, found[:5])
