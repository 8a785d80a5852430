"""Where the authpriv lines go on a journald system: the commands of README.md's
"## Logs" block, run exactly as written, find a pass sign-in and tapctl's
issue line (which tapd logs) in the journal.

A private systemd-journald (no systemd as PID 1 needed) runs in a nested mount
namespace, with tmpfs over /run/systemd, /run/log and its configuration
directory, and its syslog socket bound over the namespace's /dev/log, where
glibc's syslog() writes. Everything dies with the namespace.
"""

import json
import re
import subprocess
from pathlib import Path

import harness

JOURNALD = "/lib/systemd/systemd-journald"
README = harness.REPO / "README.md"

SCRIPT = r"""
set -euo pipefail
out=$1 tapctl=$2 policy=$3 driver=$4 service=$5 tapd=$6 socket=$7; shift 7
for d in /run/systemd /run/log /etc/systemd/journald.conf.d; do
    mkdir -p "$d" && mount -t tmpfs -o mode=0755 tmpfs "$d"
done
printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToWall=no\n' \
    > /etc/systemd/journald.conf.d/e2e.conf
[ -s /etc/machine-id ] || cat /proc/sys/kernel/random/uuid | tr -d - > /etc/machine-id
"$JOURNALD" > "$out/journald.log" 2>&1 &
journald=$!
trap 'kill $journald' EXIT
for _ in $(seq 100); do [ -S /run/systemd/journal/dev-log ] && break; sleep 0.1; done
mount --bind /run/systemd/journal/dev-log /dev/log
# tapd logs tapctl's actions: this one starts after /dev/log is journald's.
setpriv --reuid=pam-tap --regid=pam-tap --init-groups -- \
    "$tapd" --policy "$policy" --socket "$socket" 2> "$out/tapd.log" &
tapd_pid=$!
trap 'kill $tapd_pid $journald' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done

"$tapctl" --socket "$socket" issue tapuser1 --lifetime 30m --json > "$out/issue.json"
pass=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pass"])' "$out/issue.json")
"$driver" --service "$service" --user tapuser1 --answer "$pass" --rhost 192.0.2.9 > "$out/signin.json"
"$driver" --service "$service" --user tapuser1 --answer WRONG-PASS-0 > "$out/wrong.json"

# Each README command, as written, until the journal shows what it should.
i=0
for cmd in "$@"; do
    i=$((i + 1))
    for _ in $(seq 50); do
        sh -c "$cmd" > "$out/cmd$i.out" 2>&1 || true
        grep -q "$JOURNAL_WANT" "$out/cmd$i.out" && grep -q tapuser1 "$out/cmd$i.out" && break
        sleep 0.2
    done
done
"""


def readme_log_commands():
    """The lines of the sh block in README.md's "## Logs" section."""
    text = README.read_text()
    section = re.search(r"^## Logs\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "README.md has no '## Logs' section"
    block = re.search(r"^```sh\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "README.md's '## Logs' has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_journalctl_commands_find_signin_and_tapctl_lines(tap, tmpdir_ns):
    commands = readme_log_commands()
    assert len(commands) == 2, commands
    signins, actions = commands
    assert "SYSLOG_FACILITY=10" in signins and "SYSLOG_FACILITY=10" in actions, commands

    svc = tap.service("gate", "nodelay")
    # The script runs its own tapd on this policy's socket.
    socket = tap.socket_for()
    tap.stop_daemons()
    script = tmpdir_ns / "journald.sh"
    script.write_text(SCRIPT)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "JOURNALD": JOURNALD,
           "JOURNAL_WANT": r"pam_tap(\|pass.issued"}
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "bash", str(script),
         str(tmpdir_ns), tap.tapctl_bin, str(tap.policy), harness.DRIVER, svc, harness.TAPD,
         socket, *commands],
        capture_output=True, text=True, timeout=120, env=env)
    log = tmpdir_ns / "journald.log"
    assert proc.returncode == 0, \
        f"{proc.stdout}\n{proc.stderr}\njournald: {log.read_text() if log.exists() else ''}"
    assert json.loads((tmpdir_ns / "signin.json").read_text())["rc"] == "PAM_SUCCESS"
    assert json.loads((tmpdir_ns / "wrong.json").read_text())["rc"] == "PAM_AUTH_ERR"

    pw = harness.normalize(json.loads((tmpdir_ns / "issue.json").read_text())["pass"])
    got_signins = (tmpdir_ns / "cmd1.out").read_text()
    got_actions = (tmpdir_ns / "cmd2.out").read_text()
    ctx = f"\n--- {signins}\n{got_signins}\n--- {actions}\n{got_actions}"

    # The module's lines, under the PAM application's name (here pamdriver).
    lines = [line for line in got_signins.splitlines()
             if "pamdriver[" in line and f"pam_tap({svc}:auth): " in line and "tapuser1" in line]
    assert any(re.search(r"signed in|success", line, re.I) and "rhost=192.0.2.9" in line
               for line in lines), ctx
    assert any(re.search(r"wrong|fail", line, re.I) for line in lines), ctx
    assert "pass.issued" not in got_signins, ctx
    # tapctl's actions, logged by tapd (which carries them out), naming the
    # process that asked.
    assert any(" tapd[" in line and "tapctl: pass.issued" in line and "tapuser1" in line
               and 'peer="pid=' in line for line in got_actions.splitlines()), ctx
    assert "pam_tap(" not in got_actions, ctx
    # Never the pass.
    for out in (got_signins, got_actions):
        assert pw not in harness.normalize(out), ctx
