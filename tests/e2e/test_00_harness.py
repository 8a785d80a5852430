"""Self-tests of the harness, with stock modules only (no pam_tap needed).

They prove the namespace is private, the driver reports what libpam really
returns, and — the point of the fail-closed tests — that the "gate" stack
really lets a user in when the module in pam_tap's slot returns PAM_IGNORE.
"""

import grp
import os
import pwd

import harness


def svc(name, *lines):
    harness.write_service(name, list(lines))
    return name


def test_namespace_has_test_users_and_private_etc():
    assert pwd.getpwnam("tapuser1").pw_uid == 61001
    assert pwd.getpwnam("tapprim").pw_gid == grp.getgrnam("tapexcluded").gr_gid
    assert "tapexcl" in grp.getgrnam("tapexcluded").gr_mem
    mounts = open("/proc/self/mountinfo").read()
    for path in ("/etc", "/run", "/var", "/dev"):
        assert f" {path} " in mounts and "overlay" in mounts


def test_driver_reports_permit_and_deny():
    r = harness.drive(svc("h-permit", "auth required pam_permit.so"), "tapuser1")
    assert r.rc == "PAM_SUCCESS", r
    r = harness.drive(svc("h-deny", "auth required pam_deny.so"), "tapuser1")
    assert r.rc == "PAM_AUTH_ERR", r


def test_gate_stack_lets_a_wrong_ignore_in():
    """The stack used for every fail-closed row admits the user if the
    module returns PAM_IGNORE: so a non-success there is real evidence."""
    e2e = harness.PAM_E2E
    name = svc("h-gate-ignore",
               f"auth [success=done ignore=ignore default=die] {e2e} return=PAM_IGNORE",
               f"auth optional {e2e} mark=fellthrough",
               "auth required pam_permit.so")
    r = harness.drive(name, "tapuser1")
    assert r.rc == "PAM_SUCCESS" and r.fellthrough, r


def test_gate_stack_returns_the_exact_error_code():
    e2e = harness.PAM_E2E
    for code in ("PAM_AUTHINFO_UNAVAIL", "PAM_SERVICE_ERR", "PAM_CONV_ERR", "PAM_USER_UNKNOWN"):
        name = svc(f"h-gate-{code.lower()}",  # libpam lowercases service names
                   f"auth [success=done ignore=ignore default=die] {e2e} return={code}",
                   f"auth optional {e2e} mark=fellthrough",
                   "auth required pam_permit.so")
        r = harness.drive(name, "tapuser1")
        assert r.rc == code and not r.fellthrough, r


def test_conversation_records_prompts_and_answers():
    e2e = harness.PAM_E2E
    name = svc("h-expect", f"auth required {e2e} expect=s3cret")
    r = harness.drive(name, "tapuser1", answers=["s3cret"])
    assert r.rc == "PAM_SUCCESS" and r.prompts == ["Password: "], r
    r = harness.drive(name, "tapuser1", answers=["nope"])
    assert r.rc == "PAM_AUTH_ERR", r
    r = harness.drive(name, "tapuser1", conv="fail")
    assert r.rc == "PAM_CONV_ERR" and r.prompts == ["Password: "], r
    r = harness.drive(name, "tapuser1", conv="null")
    assert r.rc == "PAM_CONV_ERR", r
    r = harness.drive(name, "tapuser1")  # no answer left: the conversation fails
    assert r.rc == "PAM_CONV_ERR" and r.raw["exhausted"], r


def test_preset_authtok_reaches_use_first_pass():
    e2e = harness.PAM_E2E
    name = svc("h-preset",
               f"auth optional {e2e} authtok_from_env=E2E_AUTHTOK",
               "auth required pam_unix.so use_first_pass")
    r = harness.drive(name, "tapuser1", authtok="whatever")
    # pam_unix used the preset token (no prompt) and refused it
    assert r.rc == "PAM_AUTH_ERR" and r.prompts == [], r
    assert r.raw["fail_delay_usec"] > 0  # the delay was requested, recorded, not slept


def test_syslog_sink_receives_authpriv():
    sink = harness_sink()
    mark = sink.mark()
    harness.drive(svc("h-unix", "auth required pam_unix.so"), "tapuser1", answers=["wrong"])
    recs = sink.since(mark)
    assert any(fac == harness.LOG_AUTHPRIV and "tapuser1" in text for fac, _, text in recs), recs


def harness_sink():
    from conftest import WORLD
    return WORLD.syslog


def test_sshd_and_ssh_client_with_a_stand_in_module(tmpdir_ns):
    e2e = harness.PAM_E2E
    sshd = harness.Sshd(tmpdir_ns / "sshd", [
        f"auth [success=done default=die] {e2e} expect=s3cret",
        "auth required pam_deny.so",
        "account required pam_permit.so",
        "session required pam_permit.so",
        "password required pam_deny.so",
    ]).start()
    try:
        code, out, err, prompts = sshd.ssh("tapuser1", "s3cret")
        assert code == 0 and out.split() == ["ok", "tapuser1"], (code, out, err)
        assert prompts and "Password" in prompts[0], prompts
        code, out, err, prompts = sshd.ssh("tapuser1", "wrong")
        assert code == 255 and "ok" not in out, (code, out, err)
        assert "Permission denied" in err
    finally:
        sshd.stop()
        print(sshd.log.read_text())
