#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal and talk to it, as a person would.

  pty_expect.py [--timeout S] [--expect REGEX | --send TEXT]... -- CMD ARGS...

Steps run in order: --expect waits until REGEX matches the output seen since
the previous match; --send types TEXT followed by Enter. After the last step
the rest of the output is read until the command exits. Everything the
terminal showed is printed to stdout; the exit status is the command's, or
124 on a timeout or an unmet --expect."""
import os
import pty
import re
import select
import sys
import time


def main():
    argv = sys.argv[1:]
    timeout, steps = 30.0, []
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "--timeout":
            timeout = float(argv.pop(0))
        elif opt in ("--expect", "--send"):
            steps.append((opt[2:], argv.pop(0)))
        else:
            sys.exit(f"pty_expect: unknown option {opt}")
    cmd = argv[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    deadline = time.monotonic() + timeout
    seen, pos = b"", 0

    def read_some():
        nonlocal seen
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side closed
                return None
            if not chunk:
                return None
            seen += chunk
        return True

    failed = None
    for kind, arg in steps:
        if kind == "send":
            time.sleep(0.2)  # let the program turn echo off before typing
            os.write(fd, arg.encode() + b"\r")
            continue
        pattern = re.compile(arg.encode())
        while True:
            m = pattern.search(seen, pos)
            if m:
                pos = m.end()
                break
            r = read_some()
            if not r:
                failed = f"pty_expect: did not see /{arg}/ ({'timeout' if r is False else 'EOF'})"
                break
        if failed:
            break
    while failed is None:
        r = read_some()
        if r is None:
            break
        if r is False:
            failed = "pty_expect: timeout waiting for the command to finish"
    sys.stdout.write(seen.decode(errors="replace"))
    sys.stdout.flush()
    if failed:
        print(failed, file=sys.stderr)
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        sys.exit(124)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


main()
