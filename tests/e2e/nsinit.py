"""PID 1 for a test's own PID namespace: runs one command and, on SIGTERM,
passes it to every process in the namespace, then reaps them all.

A PID namespace's init gets from outside only the signals it handles, and
cockpit-ws handles no SIGTERM; so cockpit-ws must not be PID 1 itself if
the test is to stop it with SIGTERM as systemd would.

    nsinit.py COMMAND [ARGS...]   exits with COMMAND's status (128+N if killed by signal N)
"""

import os
import signal
import sys


def main(argv):
    if not argv:
        print("usage: nsinit.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if os.getpid() != 1:
        print("nsinit.py: not PID 1 of a PID namespace", file=sys.stderr)
        return 2
    child = os.fork()
    if child == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)

    def terminate(signum, _frame):
        try:
            os.kill(-1, signum)  # every process in this PID namespace but PID 1
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    code = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            # no children: nothing else is left in the namespace (orphans come to us)
            return code if code is not None else 1
        if pid == child:
            ec = os.waitstatus_to_exitcode(status)
            code = ec if ec >= 0 else 128 - ec
            terminate(signal.SIGTERM, None)  # sessions and bridges it left


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
