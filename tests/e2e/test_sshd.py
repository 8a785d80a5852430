"""A real sshd on 127.0.0.1 (its own config and host key, started inside the
namespace so it reads the private /etc/pam.d/sshd and /etc/passwd) and a
real OpenSSH client answering keyboard-interactive through SSH_ASKPASS
(SSH_ASKPASS_REQUIRE=force, setsid, no terminal).

/etc/pam.d/sshd:
    auth [success=done default=die] pam_tap.so policy=P pass_only
    auth required pam_deny.so
    account required pam_permit.so
    session required pam_permit.so
"""

import re

import pytest

import harness
from conftest import WORLD


@pytest.fixture(scope="module")
def sshd_tap():
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    tap = harness.Tap(WORLD.base / "t" / "sshd-module", WORLD.pam_tap_so, WORLD.tapctl)
    tap.init()
    sshd = harness.Sshd(WORLD.base / "t" / "sshd-module" / "sshd", [
        tap.module_line("[success=done default=die]"),
        "auth required pam_deny.so",
        "account required pam_permit.so",
        "session required pam_permit.so",
        "password required pam_deny.so",
    ]).start()
    yield tap, sshd
    sshd.stop()
    tap.stop_daemons()


def test_ssh_right_pass_runs_a_command_as_the_user(sshd_tap, syslog):
    tap, sshd = sshd_tap
    p = tap.issue("tapuser4")
    mark = syslog.mark()
    code, out, err, prompts = sshd.ssh("tapuser4", p["pass"])
    assert code == 0, (code, out, err, sshd.log.read_text()[-2000:])
    assert out.split() == ["ok", "tapuser4"], out
    # OpenSSH shows "(user@host) " before the server's prompt
    assert len(prompts) == 1 and prompts[0].endswith(harness.PROMPT), prompts
    print("client stderr:", err)
    lines = [t for fac, _, t in syslog.since(mark)
             if fac == harness.LOG_AUTHPRIV and "pam_tap(sshd:auth)" in t]
    assert any("tapuser4" in t and "rhost=127.0.0.1" in t for t in lines), lines
    assert "Accepted keyboard-interactive/pam for tapuser4" in sshd.log.read_text()


def test_ssh_wrong_pass_is_refused(sshd_tap):
    tap, sshd = sshd_tap
    tap.issue("tapuser5")
    code, out, err, prompts = sshd.ssh("tapuser5", "WRONG-PASS-0")  # pass-shaped: a counted try
    assert code == 255 and "ok" not in out, (code, out, err)
    assert "Permission denied" in err
    assert prompts, "the pass prompt should have been shown"
    assert tap.show("tapuser5")["failures"] >= 1


def test_ssh_one_time_pass_works_once(sshd_tap):
    tap, sshd = sshd_tap
    p = tap.issue("tapuser6", one_time=True)
    code, out, err, _ = sshd.ssh("tapuser6", p["pass"])
    assert code == 0 and out.split() == ["ok", "tapuser6"], (code, out, err)
    code, out, err, prompts = sshd.ssh("tapuser6", p["pass"])
    assert code == 255 and "ok" not in out, (code, out, err)
    assert prompts == [], prompts  # no usable pass: not even asked


def test_ssh_user_without_pass_is_refused(sshd_tap):
    _, sshd = sshd_tap
    code, out, err, prompts = sshd.ssh("tapuser7", "ABCD-EFGH-JK")
    assert code == 255 and "ok" not in out, (code, out, err)
    assert prompts == []


def test_ssh_lowercase_pass_without_dashes(sshd_tap):
    tap, sshd = sshd_tap
    p = tap.issue("tapuser8")
    code, out, err, _ = sshd.ssh("tapuser8", harness.normalize(p["pass"]).lower())
    assert code == 0 and re.search(r"\bok\b", out), (code, out, err)
