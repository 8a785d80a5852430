"""su and sudo with a pass, on a pseudo-terminal, as an unprivileged user.

The namespace's /etc/pam.d/su and /etc/pam.d/sudo hold:
    auth [success=done default=die] pam_tap.so policy=P pass_only
    auth required pam_deny.so
    account/session required pam_permit.so
"""

import os
import shutil

import pytest

import harness
from conftest import WORLD


@pytest.fixture(scope="module")
def stack_tap():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    tap = harness.Tap(WORLD.base / "t" / "su-sudo-module", WORLD.pam_tap_so, WORLD.tapctl)
    tap.init()
    lines = [
        tap.module_line("[success=done default=die]"),
        "auth required pam_deny.so",
        "account required pam_permit.so",
        "session required pam_permit.so",
        "password required pam_deny.so",
    ]
    for service in ("su", "su-l", "sudo"):
        harness.write_service(service, lines)
    yield tap
    tap.stop_daemons()


def su(user_from, user_to, answer):
    return harness.run_on_pty(
        harness.as_user_prefix(user_from) + ["su", user_to, "-c", "echo ok; id -un"],
        answer, r"Temporary Access Pass: ")


def test_su_with_the_pass(stack_tap):
    p = stack_tap.issue("tapuser1")
    code, out = su("tapuser2", "tapuser1", p["pass"])
    assert code == 0, out
    assert harness.PROMPT in out and "ok" in out and out.rstrip().endswith("tapuser1"), out
    assert p["pass"] not in out.replace(harness.PROMPT, "")  # echo off: the pass is not shown


def test_su_with_a_wrong_pass(stack_tap):
    stack_tap.issue("tapuser3")
    code, out = su("tapuser2", "tapuser3", "WRONG-PASS-0")
    assert code != 0 and "Authentication failure" in out, out
    assert "\nok" not in out


def test_sudo_with_the_pass(stack_tap):
    sudo = shutil.which("sudo")
    assert sudo, "sudo is not installed: run tests/install-deps.sh"
    rules = "/etc/sudoers.d/pamtap-e2e"  # the namespace's private /etc
    with open(rules, "w") as f:
        f.write("Defaults:tapuser5 !lecture, timestamp_timeout=0, passwd_tries=1\ntapuser5 ALL=(ALL) ALL\n")
    os.chmod(rules, 0o440)
    p = stack_tap.issue("tapuser5")
    cmd = harness.as_user_prefix("tapuser5") + [sudo, "-k", "-u", "tapuser6", "sh", "-c", "echo ok; id -un"]
    code, out = harness.run_on_pty(cmd, p["pass"], r"(Temporary Access Pass|[Pp]assword)[^:]*: ")
    assert code == 0 and out.rstrip().endswith("tapuser6"), out
    assert harness.PROMPT in out, out
    code, out = harness.run_on_pty(cmd, "WRONG-PASS-00", r"(Temporary Access Pass|[Pp]assword)[^:]*: ")
    assert code != 0 and "tapuser6" not in out.split(), out
