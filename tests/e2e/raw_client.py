"""A raw client of tapd's socket, run as any user (under setpriv) by
test_tapd_adversarial.py: what a local attacker can do with the socket.

    raw_client.py send SOCKET HEX [--shut]
        send these bytes, half-close when --shut, print the answer's bytes
        as hex on stdout ("" when the daemon closed without a word)
    raw_client.py stall MODE SOCKET INTERVAL
        every INTERVAL seconds fork a child that does MODE and stops itself
        (SIGSTOP), until killed; prints "stopped PID" for each:
          connect   connect, send nothing
          half      send half of a whole request frame
          whole     send a whole request, never read the answer
          idle      connect, send nothing, and do not stop (sleep)
          tapctl    run `tapctl --socket SOCKET status` (TAPCTL in the
                    environment) and stop it after a delay that varies
                    from 0 to 20 ms between children
    raw_client.py flood SOCKET N
        open N connections at once (the daemon refuses most at the door),
        keep them, print "flooded OPEN", and stop itself
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time


def frame(body):
    data = json.dumps({"v": 1, "body": body}).encode()
    return len(data).to_bytes(4, "big") + data


# A request any user may make (their own status).
STATUS = frame({"admin": {"command": "status"}})


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def send(path, data, shut):
    s = connect(path)
    s.settimeout(10)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        answer += chunk
    print(answer.hex())


def stop_self():
    print(f"stopped {os.getpid()}", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)


def child(mode, path, n):
    held = []
    if mode == "connect":
        held.append(connect(path))
        stop_self()
    elif mode == "half":
        s = connect(path)
        s.sendall(STATUS[: len(STATUS) // 2])
        held.append(s)
        stop_self()
    elif mode == "whole":
        s = connect(path)
        s.sendall(STATUS)
        held.append(s)
        stop_self()
    elif mode == "idle":
        held.append(connect(path))
        print(f"idle {os.getpid()}", flush=True)
        while True:
            time.sleep(60)
    elif mode == "tapctl":
        proc = subprocess.Popen([os.environ["TAPCTL"], "--socket", path, "status"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep((n % 11) * 0.002)
        os.kill(proc.pid, signal.SIGSTOP)
        print(f"stopped {proc.pid}", flush=True)
        proc.wait()  # until the test kills it
    else:
        raise SystemExit(f"unknown mode {mode}")
    os._exit(0)


def stall(mode, path, interval):
    n = 0
    while True:
        pid = os.fork()
        if pid == 0:
            child(mode, path, n)
        n += 1
        time.sleep(interval)


def main(argv):
    what = argv[1]
    if what == "send":
        send(argv[2], bytes.fromhex(argv[3]), "--shut" in argv[4:])
    elif what == "stall":
        stall(argv[2], argv[3], float(argv[4]))
    elif what == "flood":
        held = []
        for _ in range(int(argv[3])):
            try:
                held.append(connect(argv[2]))
            except OSError as e:
                print(f"connect failed: {e}", flush=True)
                break
        print(f"flooded {len(held)}", flush=True)
        stop_self()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
