"""tapctl when its output cannot be written, and `policy check` on what is
not a regular file. Never a panic (Rust's exit 101): the README's exit codes.

  * stdout a pipe nobody reads any more (`tapctl list | head -1`): quiet,
    exit 1 (the read end is closed before tapctl writes, so EPIPE is certain,
    not a race with the reader);
  * a write that fails otherwise (`> /dev/full`): a message, exit 1;
  * `policy check` on a FIFO, a device or a directory: a clear refusal,
    exit 5, at once (a FIFO without a writer is never waited on).
"""

import os
import subprocess
import time

import pytest


def run_with_stdout(tap, stdout, *args):
    args = [str(tap.policy) if a == "POLICY" else a for a in args]
    cmd = [tap.tapctl_bin, "--socket", tap.socket_for(), *args]
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=30)
    return proc.returncode, proc.stderr.decode(errors="replace")


def closed_pipe():
    """The write end of a pipe whose read end is already closed."""
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.parametrize("args", [
    ["list"], ["list", "--json"], ["show", "tapuser1"], ["audit"], ["audit", "--json"],
    ["issue", "tapuser2"], ["policy", "check", "POLICY"],
])
def test_closed_stdout_is_a_quiet_exit_1(tap, args):
    tap.issue("tapuser1")
    w = closed_pipe()
    try:
        code, err = run_with_stdout(tap, w, *args)
    finally:
        os.close(w)
    assert code == 1 and err == "", (code, err)


@pytest.mark.parametrize("args", [["show", "tapuser1"], ["list"], ["audit", "--json"]])
def test_failed_write_says_so_and_exits_1(tap, args):
    tap.issue("tapuser1")
    with open("/dev/full", "w") as full:
        code, err = run_with_stdout(tap, full, *args)
    assert code == 1, (code, err)
    assert err == "tapctl: cannot write the output: No space left on device (os error 28)\n", err


def test_the_pipeline_in_the_readme_ends_cleanly(tap):
    """`tapctl list | head -1` as a shell runs it; with pipefail the status
    is tapctl's: 0 when head read everything, 1 when it left first. Never a
    panic message."""
    for user in ("tapuser1", "tapuser2", "tapuser3"):
        tap.issue(user)
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {tap.tapctl_bin} --socket {tap.socket_for()} list | head -1"],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode in (0, 1) and proc.stderr == "", proc
    assert proc.stdout.split()[0] == "USER", proc


def check(tap, path):
    t0 = time.monotonic()
    proc = tap.tapctl("policy", "check", path, policy=False, check=False, timeout=30)
    return proc, time.monotonic() - t0


def test_policy_check_refuses_a_fifo_at_once(tap, tmpdir_ns):
    fifo = tmpdir_ns / "pam_tap.toml"
    os.mkfifo(fifo, 0o644)
    proc, took = check(tap, fifo)
    assert proc.returncode == 5, proc
    assert proc.stderr == f"tapctl: policy not usable: {fifo} is a FIFO, not a regular file\n", proc
    assert took < 1, took


@pytest.mark.parametrize("path,what", [("/dev/zero", "a device"), ("/etc", "a directory")])
def test_policy_check_refuses_devices_and_directories(tap, path, what):
    proc, took = check(tap, path)
    assert proc.returncode == 5, proc
    assert proc.stderr == f"tapctl: policy not usable: {path} is {what}, not a regular file\n", proc
    assert took < 1, took


def test_policy_check_of_a_good_file_still_works(tap):
    proc, _ = check(tap, tap.policy)
    assert proc.returncode == 0 and "is valid" in proc.stdout, proc
