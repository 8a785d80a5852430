"""The release pam_tap.so through real libpam: every pass row of the behaviour table in README.md ("Behaviour of `pam_sm_authenticate`").

Unless a test says otherwise the "probe" stack is used:
    auth [success=done ignore=ignore default=die] pam_tap.so policy=P pass_only
    auth requisite pam_e2e.so mark=fellthrough return=PAM_AUTH_ERR
so Result.rc is what pam_authenticate returned and Result.outcome is what
pam_tap returned (PAM_IGNORE when the stack fell through to the marker).
"""

import subprocess
import time

import harness
from harness import PROMPT


def assert_in(r, who="tapuser1"):
    assert r.rc == "PAM_SUCCESS" and r.outcome == "PAM_SUCCESS", r


def assert_ignored(r):
    assert r.outcome == "PAM_IGNORE" and r.rc != "PAM_SUCCESS", r


# -- the happy path ----------------------------------------------------------

def test_right_pass_signs_in_with_prompt_and_info(tap):
    p = tap.issue("tapuser1")
    assert p["usable"] is True and p["reason"] == "EnabledByPolicy", p
    r = tap.auth("tapuser1", [p["pass"]])
    assert_in(r)
    assert r.messages[0] == {"style": "PAM_PROMPT_ECHO_OFF", "msg": PROMPT}, r
    assert len(r.prompts) == 1, r
    assert len(r.infos) == 1 and "tapctl enroll" in r.infos[0], r
    assert r.raw["answers_used"] == 1


def test_right_pass_with_realistic_deny_stack_and_setcred(tap):
    p = tap.issue("tapuser1")
    r = tap.auth("tapuser1", [p["pass"]], stack="deny", setcred=True)
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    assert r.raw["setcred"] == "PAM_SUCCESS", r


def test_pamtester_happy_path_and_wrong_pass(tap):
    p = tap.issue("tapuser2")
    svc = tap.service("deny", args="nodelay")
    ok = subprocess.run(["pamtester", "-v", svc, "tapuser2", "authenticate"],
                        input=p["pass"] + "\n", capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "successfully authenticated" in ok.stdout + ok.stderr, ok
    assert PROMPT in ok.stdout + ok.stderr
    bad = subprocess.run(["pamtester", "-v", svc, "tapuser2", "authenticate"],
                         input="WRONG-WRONG-00\n", capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Authentication failure" in bad.stdout + bad.stderr, bad


def test_default_policy_path(tap):
    """No policy= or socket= argument and no --socket: the tapd on the
    default socket, reading /etc/security/pam_tap.toml (the namespace's
    private copy). The `system` fixture's policy there, if an earlier test
    set it up, is put back."""
    default = "/etc/security/pam_tap.toml"
    try:
        saved = open(default).read()
    except FileNotFoundError:
        saved = None
    harness.copy_text_root_owned(tap.policy.read_text(), default, 0o644)
    harness.default_daemon()  # as installed: running before anyone asks
    try:
        p = tap.issue("tapuser1", policy=False)
        r = tap.auth("tapuser1", [p["pass"]], policy="")
        assert_in(r)
    finally:
        if saved is None:
            import os
            os.unlink(default)
        else:
            harness.copy_text_root_owned(saved, default, 0o644)


def test_pass_not_one_time_can_be_used_again(tap):
    p = tap.issue("tapuser1")
    assert_in(tap.auth("tapuser1", [p["pass"]]))
    assert_in(tap.auth("tapuser1", [p["pass"]]))


# -- wrong, used, expired, early, locked, revoked ---------------------------

def test_wrong_pass_is_auth_err_and_counted_with_delay(tap):
    p = tap.issue("tapuser1")
    wrong = "ABCD-EFGH-JK" if harness.normalize(p["pass"]) != "ABCDEFGHJK" else "ZZZZ-ZZZZ-ZZ"
    r = tap.auth("tapuser1", [wrong])
    assert r.rc == "PAM_AUTH_ERR" and r.outcome == "PAM_AUTH_ERR", r
    assert r.raw["fail_delay_usec"] and r.raw["fail_delay_usec"] > 0, r
    assert tap.show("tapuser1")["failures"] == 1


def test_one_time_pass_reuse_is_refused(tap):
    p = tap.issue("tapuser1", one_time=True)
    assert p["one_time"] is True
    assert_in(tap.auth("tapuser1", [p["pass"]]))
    s = tap.show("tapuser1")
    assert s["usable"] is False and s["reason"] == "OneTimeUsed", s
    r = tap.auth("tapuser1", [p["pass"]])
    assert_ignored(r)
    assert r.prompts == [], r  # no usable pass: not even asked
    r = tap.auth("tapuser1", [p["pass"]], stack="deny")
    assert r.rc == "PAM_AUTH_ERR", r


def test_expired_pass_is_refused(tap):
    p = tap.issue("tapuser1", lifetime="2s")
    assert_in(tap.auth("tapuser1", [p["pass"]]))
    time.sleep(3.2)
    s = tap.show("tapuser1")
    assert s["usable"] is False and s["reason"] == "Expired", s
    assert_ignored(tap.auth("tapuser1", [p["pass"]]))
    assert tap.auth("tapuser1", [p["pass"]], stack="deny").rc == "PAM_AUTH_ERR"


def test_not_yet_valid_pass_is_refused(tap):
    p = tap.issue("tapuser1", start="+1h")
    assert p["usable"] is False and p["reason"] == "NotYetValid", p
    assert_ignored(tap.auth("tapuser1", [p["pass"]]))
    assert tap.auth("tapuser1", [p["pass"]], stack="deny").rc == "PAM_AUTH_ERR"


def test_locked_after_max_failures_then_right_pass_fails(tap):
    # the test policy has max_failures = 3
    p = tap.issue("tapuser1")
    for i in range(3):
        r = tap.auth("tapuser1", ["WRONG-PASS-%d" % i])
        assert r.rc == "PAM_AUTH_ERR", r
    s = tap.show("tapuser1")
    assert s["usable"] is False and s["reason"] == "Locked" and s["failures"] == 3, s
    assert_ignored(tap.auth("tapuser1", [p["pass"]]))
    assert tap.auth("tapuser1", [p["pass"]], stack="deny").rc == "PAM_AUTH_ERR"
    assert tap.auth("tapuser1", [p["pass"]], stack="gate").fellthrough


def test_revoked_pass_is_refused(tap):
    p = tap.issue("tapuser1")
    tap.tapctl("revoke", "tapuser1")
    s = tap.show("tapuser1")
    assert s["usable"] is False and s["reason"] == "Revoked", s
    assert_ignored(tap.auth("tapuser1", [p["pass"]]))
    assert tap.auth("tapuser1", [p["pass"]], stack="deny").rc == "PAM_AUTH_ERR"


def test_issuing_again_replaces_the_old_pass(tap):
    old = tap.issue("tapuser1")
    new = tap.issue("tapuser1")
    r = tap.auth("tapuser1", [old["pass"]])
    assert r.rc == "PAM_AUTH_ERR", r
    assert_in(tap.auth("tapuser1", [new["pass"]]))


# -- nothing for this user: PAM_IGNORE ---------------------------------------

def test_no_pass_is_ignore(tap):
    r = tap.auth("tapuser3", ["ABCD-EFGH-JK"])
    assert_ignored(r)
    assert r.prompts == [], r


def test_policy_disabled_is_ignore(tap):
    p = tap.issue("tapuser1")
    off = tap.write_policy("disabled.toml", enabled=False)
    r = tap.auth("tapuser1", [p["pass"]], policy=off)
    assert_ignored(r)
    assert r.prompts == []
    assert tap.auth("tapuser1", [p["pass"]], policy=off, stack="deny").rc == "PAM_AUTH_ERR"


def out_of_scope(tap, user, scope):
    """Issue under the open test policy, then sign in under a scoped one."""
    p = tap.issue(user)
    scoped = tap.write_policy("scoped.toml", scope=scope)
    r = tap.auth(user, [p["pass"]], policy=scoped)
    assert_ignored(r)
    assert r.prompts == [], r
    assert tap.auth(user, [p["pass"]], policy=scoped, stack="deny").rc == "PAM_AUTH_ERR"
    # and tapctl will not issue a pass that could not be used
    refused = tap.tapctl("issue", user, policy=scoped, check=False)
    assert refused.returncode == 3, refused
    return scoped


def test_out_of_scope_excluded_user(tap):
    out_of_scope(tap, "tapout", {"exclude_users": ["tapout"]})


def test_out_of_scope_excluded_group_supplementary(tap):
    out_of_scope(tap, "tapexcl", {"exclude_groups": ["tapexcluded"]})


def test_out_of_scope_excluded_group_primary(tap):
    out_of_scope(tap, "tapprim", {"exclude_groups": ["tapexcluded"]})


def test_out_of_scope_not_in_include_users(tap):
    scoped = out_of_scope(tap, "tapuser1", {"include_users": ["tapuser2"]})
    p2 = tap.issue("tapuser2", policy=scoped)
    assert_in(tap.auth("tapuser2", [p2["pass"]], policy=scoped))


def test_out_of_scope_not_in_include_groups(tap):
    scoped = out_of_scope(tap, "tapuser1", {"include_groups": ["tapincluded"]})
    p = tap.issue("tapin", policy=scoped)
    assert_in(tap.auth("tapin", [p["pass"]], policy=scoped))


def test_exclude_wins_over_include(tap):
    out_of_scope(tap, "tapin", {"include_groups": ["tapincluded"], "exclude_users": ["tapin"]})


def test_unknown_user_is_user_unknown(tap):
    r = tap.auth("nosuchuser", ["ABCD-EFGH-JK"])
    assert r.rc == "PAM_USER_UNKNOWN" and not r.fellthrough, r
    r = tap.auth("nosuchuser", ["ABCD-EFGH-JK"], stack="gate")
    assert r.rc == "PAM_USER_UNKNOWN" and not r.fellthrough, r


# -- first pass, silence, input forms ----------------------------------------

def test_use_first_pass(tap):
    p = tap.issue("tapuser1")
    r = tap.auth("tapuser1", authtok=p["pass"], args="use_first_pass")
    assert_in(r)
    assert r.prompts == [], r
    r = tap.auth("tapuser1", authtok="WRONG-WRONG-1", args="use_first_pass")
    assert r.rc == "PAM_AUTH_ERR" and r.prompts == [], r
    # no earlier token: never prompts, never succeeds
    r = tap.auth("tapuser1", [p["pass"]], args="use_first_pass")
    assert r.rc != "PAM_SUCCESS" and r.prompts == [], r


def test_try_first_pass(tap):
    p = tap.issue("tapuser1")
    r = tap.auth("tapuser1", authtok=p["pass"], args="try_first_pass")
    assert_in(r)
    assert r.prompts == [], r
    # a token that cannot be the pass (a password): not asked again, not
    # counted; the stack goes on to the password module
    r = tap.auth("tapuser1", [p["pass"]], authtok="unix-password", args="try_first_pass")
    assert_ignored(r)
    assert r.prompts == [], r
    # a pass-shaped token the person typed elsewhere is a counted try
    r = tap.auth("tapuser1", authtok="WRONGPASS0", args="try_first_pass")
    assert r.outcome == "PAM_AUTH_ERR" and r.prompts == [], r
    assert tap.show("tapuser1")["failures"] == 1
    # no token: asked
    r = tap.auth("tapuser1", [p["pass"]], args="try_first_pass")
    assert_in(r)
    assert r.prompts == [PROMPT], r


def test_pam_silent_suppresses_text_info(tap):
    p = tap.issue("tapuser1")
    r = tap.auth("tapuser1", [p["pass"]], silent=True)
    assert_in(r)
    assert r.infos == [] and r.prompts == [PROMPT], r


def test_input_ignores_case_dashes_and_spaces(tap):
    p = tap.issue("tapuser1")
    canon = harness.normalize(p["pass"])
    assert "-" in p["pass"], p  # shown grouped
    variants = [
        canon,
        canon.lower(),
        " ".join(canon),
        "-".join(canon[i:i + 2] for i in range(0, len(canon), 2)),
        "  " + p["pass"].lower() + "  ",
    ]
    for v in variants:
        assert_in(tap.auth("tapuser1", [v]))
    assert tap.show("tapuser1")["failures"] == 0


def test_pass_over_512_bytes_is_refused(tap):
    p = tap.issue("tapuser1")
    canon = harness.normalize(p["pass"])
    padded_512 = canon + " " * (512 - len(canon))
    assert len(padded_512.encode()) == 512
    assert_in(tap.auth("tapuser1", [padded_512]))
    # over 512 bytes: no pass, never hashed, not counted (PAM_IGNORE)
    padded_513 = canon + " " * (513 - len(canon))
    assert_ignored(tap.auth("tapuser1", [padded_513]))
    assert_ignored(tap.auth("tapuser1", ["A" * 100_000]))
    assert tap.show("tapuser1")["failures"] == 0


def test_bad_input_is_no_pass_and_nothing_is_lost(tap):
    tap.policy = tap.write_policy(passes={"max_failures": 10})
    p = tap.issue("tapuser1", one_time=True)
    canon = harness.normalize(p["pass"])
    for hexed in (
        (canon[:5] + "\x07" + canon[5:]).encode().hex(),  # control character
        (canon.encode() + b"\xff\xfe"),  # not UTF-8
        "é".encode().hex() + canon.encode().hex(),  # a foreign symbol
    ):
        hexed = hexed.hex() if isinstance(hexed, bytes) else hexed
        assert_ignored(tap.auth("tapuser1", hex_answers=[hexed]))
    assert_ignored(tap.auth("tapuser1", [""]))  # an empty answer
    # nothing counted; the (one-time) pass is still there and still works
    s = tap.show("tapuser1")
    assert s["usable"] is True and s["failures"] == 0, s
    assert_in(tap.auth("tapuser1", [p["pass"]]))


def test_unknown_module_argument_and_debug_are_tolerated(tap):
    p = tap.issue("tapuser1")
    assert_in(tap.auth("tapuser1", [p["pass"]], args="debug no_such_argument"))
