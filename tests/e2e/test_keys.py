"""Security keys end to end (issue 3, item 7: enroll, sign in by touch, recover; the key rows of README.md's behaviour table).

The release pam_tap.so through real libpam (the PAM driver prints the exact
return code and every message), the release tapctl run by the test user
through a set-group-id copy as the package installs it, and pam_tap-softkey
(a software authenticator, tests/softkey/README.md) behind the key-helper
protocol. See keys_support.py for why the policy is at the default path.

Stacks (harness.Tap.service):
  gate:  pam_tap [success=done ignore=ignore default=die], then pam_permit.
         Result.rc is exactly what pam_tap returned, unless pam_tap returned
         PAM_IGNORE: then the stack falls through to pam_permit, the user is
         let in and Result.fellthrough is set. Every refusal is asserted on
         this stack, so a wrong PAM_IGNORE would show as a let-in, not pass.
  probe: pam_tap, then a marker that fails: Result.outcome shows PAM_IGNORE.
  deny:  pam_tap, then pam_deny, as a real login/sshd stack.

PAM codes asserted here:
  PAM_SUCCESS           the key's assertion verified (or the pass was right).
  PAM_AUTH_ERR          the key (or its helper) was tried and refused: bad
                        signature, flags, rp id, counter, unknown credential,
                        hung/dead/garbage helper, wrong PIN. Authentication
                        failed; the stack must stop (README.md behaviour table: PAM_AUTH_ERR).
  PAM_AUTHINFO_UNAVAIL  the module cannot reach its authentication source at
                        all (the helper program is missing): fail closed, not
                        IGNORE and not AUTH_ERR (§5 "unavailable" row).
  PAM_IGNORE            nothing for this user: no key plugged in and no
                        usable pass (§5 row 2).
  PAM_CONV_ERR          the application gave no answer to the PIN prompt.
"""

import json
import os
import pwd
import re
import subprocess
import time

import pytest

import harness
import keys_support as ks
from harness import PROMPT
from keys_support import PIN_PROMPT, TOUCH_CUE


@pytest.fixture
def kw(tap, world):
    if ks.softkey_built() is None:
        pytest.fail("pam_tap-softkey not built: run `cargo build --release --workspace`")
    k = ks.KeyWorld(tap, world)
    yield k
    k.close()


def ok(proc):
    return f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"


def assert_key_success(r):
    """Signed in by touch: exactly the cue, no prompt of any kind."""
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    assert r.messages == [{"style": "PAM_TEXT_INFO", "msg": TOUCH_CUE}], r
    assert r.raw["answers_used"] == 0 and not r.raw["exhausted"], r


def assert_refused(r, code="PAM_AUTH_ERR"):
    """Refused by pam_tap itself with `code`; the gate stack did not let the
    user in through a PAM_IGNORE, and the key path asked no pass."""
    assert r.rc == code and not r.fellthrough, r
    assert PROMPT not in r.prompts, r


def failure_details(kw, event="signin.key.failure"):
    return [rec["detail"] for rec in kw.audit() if rec["event"] == event]


# ---------------------------------------------------------------------------
# 1. the whole journey

@pytest.mark.parametrize("alg,name", [(ks.ES256, "ES256"), (ks.EDDSA, "EdDSA")])
def test_journey_pass_enroll_key_signin(kw, syslog, alg, name):
    mark = syslog.mark()
    kw.plug(kw.key, "--alg", str(alg))  # the key supports only this algorithm
    # admin issues a one-time pass; the user signs in with it (the real path)
    p = kw.tap.issue(kw.user, one_time=True)
    r = kw.tap.auth(kw.user, [p["pass"]], stack="deny")
    assert r.rc == "PAM_SUCCESS" and r.prompts == [PROMPT], r
    assert any("tapctl enroll" in i for i in r.infos), r

    # the user's own status shows the open window and no keys yet
    st = kw.user_tapctl("status", "--json")
    assert st.returncode == 0, ok(st)
    status = json.loads(st.stdout)
    assert status["user"] == kw.user and status["enroll_window_until"] and status["keys"] == [], status

    # the user (real uid tapuser1, setgid tapctl) enrolls the key
    proc = kw.enroll("blue key")
    assert proc.returncode == 0, ok(proc)
    assert "Registered security key" in proc.stdout and "blue key" in proc.stdout, ok(proc)
    assert "Touch your security key" in proc.stderr, ok(proc)
    [key] = kw.keys_json()
    assert key["label"] == "blue key" and key["algorithm"] == name, key
    assert key["model"] == ks.SOFTKEY_AAGUID and key["created"] and key["last_used"] is None, key
    [cred] = kw.key.credentials()
    assert cred["alg"] == alg and cred["rp_id"] == ks.RP_ID and cred["user_name"] == kw.user, cred
    enrolled = [rec for rec in kw.audit() if rec["event"] == "key.enrolled"]
    assert len(enrolled) == 1 and enrolled[0]["actor"] == kw.user, enrolled
    assert "blue key" in enrolled[0]["detail"], enrolled

    # key sign-in on a real deny stack: cue, no pass prompt, success
    before = key["sign_count"]
    r = kw.sign_in(stack="deny", args="")
    assert_key_success(r)
    [key] = kw.keys_json()
    assert key["last_used"] is not None and key["sign_count"] > before, key
    success = [rec for rec in kw.audit() if rec["event"] == "signin.key.success"]
    assert len(success) == 1 and "blue key" in success[0]["detail"], success
    assert success[0]["service"].startswith("e2e-"), success

    # and again (the counter moves on; a stored counter is no obstacle)
    assert_key_success(kw.sign_in())
    assert kw.keys_json()[0]["sign_count"] > key["sign_count"]

    # the user reads their own keys; syslog says who signed in by what
    own = kw.user_tapctl("keys", "--json")
    assert own.returncode == 0 and '"blue key"' in own.stdout, ok(own)
    lines = [t for fac, _, t in syslog.since(mark) if "pam_tap(" in t and fac == harness.LOG_AUTHPRIV]
    assert any("signed in with security key" in t and f"user={kw.user}" in t for t in lines), lines


def test_pin_key_enroll_and_signin_with_pin(kw):
    """Item 4: a key with a PIN, policy user_verification = "required"."""
    kw.write_policy(user_verification="required")
    kw.plug(kw.key, "--pin", "1234")
    kw.pass_sign_in()
    # tapctl asks for the PIN (no terminal here: it reads stdin)
    proc = kw.enroll("pin key", stdin="1234\n")
    assert proc.returncode == 0, ok(proc)
    assert PIN_PROMPT in proc.stderr, ok(proc)

    r = kw.sign_in(["1234"])
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    assert r.messages == [{"style": "PAM_TEXT_INFO", "msg": TOUCH_CUE},
                          {"style": "PAM_PROMPT_ECHO_OFF", "msg": PIN_PROMPT}], r
    assert kw.keys_json()[0]["last_used"] is not None

    # a wrong PIN: the key refuses (pin_invalid) -> PAM_AUTH_ERR, asked once
    r = kw.sign_in(["0000"])
    assert_refused(r)
    assert r.prompts == [PIN_PROMPT], r
    assert any("PinInvalid" in d for d in failure_details(kw)), kw.audit()
    # no answer to the PIN prompt -> PAM_CONV_ERR (never IGNORE)
    r = kw.sign_in([])
    assert_refused(r, "PAM_CONV_ERR")
    # the PIN never reaches the audit trail
    assert "1234" not in str(kw.audit()) and "0000" not in str(kw.audit())


def test_pin_key_with_uv_preferred_signs_in_without_pin(kw):
    """A PIN key under "preferred": presence is enough, no PIN prompt."""
    kw.plug(kw.key, "--pin", "1234")
    kw.write_policy(user_verification="required")
    kw.pass_sign_in()
    assert kw.enroll("pin key", stdin="1234\n").returncode == 0
    kw.write_policy(user_verification="preferred")
    assert_key_success(kw.sign_in())


def test_key_signin_under_pam_silent_shows_no_cue(kw):
    kw.enrolled()
    r = kw.sign_in(silent=True)
    assert r.rc == "PAM_SUCCESS" and r.messages == [], r


# ---------------------------------------------------------------------------
# 2. refused, with the right code

@pytest.fixture
def enrolled(kw):
    """A user with one enrolled key and still a usable pass (so a refusal
    that wrongly fell through to the pass would show as a pass prompt)."""
    kw.enrolled()
    return kw


def refuse_with(kw, *opts, code="PAM_AUTH_ERR"):
    before = kw.keys_json()
    kw.plug(kw.key, *opts)
    r = kw.sign_in()
    assert_refused(r, code)
    assert r.messages[0] == {"style": "PAM_TEXT_INFO", "msg": TOUCH_CUE}, r
    after = kw.keys_json()
    assert [k["last_used"] for k in after] == [k["last_used"] for k in before], after
    assert [k["sign_count"] for k in after] == [k["sign_count"] for k in before], after
    return r


# PAM_AUTH_ERR for every refused answer: the helper answered, the module
# verified the answer itself and it did not hold. The audit says why.
@pytest.mark.parametrize("fault,why", [
    ("--tamper-authdata", "signature_invalid"),  # authData changed after signing
    ("--tamper-signature", "signature_invalid"),
    ("--wrong-rp-id", "rp_id_mismatch"),  # signed for wrong-rp.invalid
    ("--no-up", "user_not_present"),  # UP is always required
    ("--other-key", "not enrolled"),  # a credential in no allow list
])
def test_refused_assertion(enrolled, fault, why):
    refuse_with(enrolled, fault)
    assert any(why in d for d in failure_details(enrolled)), enrolled.audit()
    # the fault was the key's, not the world's: the good key still signs in
    enrolled.plug(enrolled.key)
    assert_key_success(enrolled.sign_in())


def test_refused_without_nodelay_asks_for_the_fail_delay(enrolled):
    enrolled.plug(enrolled.key, "--tamper-signature")
    r = enrolled.sign_in(args="")
    assert_refused(r)
    # pam_tap asks for 2 s; libpam passes it on with its own random jitter
    assert r.raw["fail_delay_usec"] >= 1_000_000, r


def test_key_not_enrolled_another_authenticator(enrolled):
    """Another physical key (its own state): it holds none of the allowed
    credentials, answers no_credentials -> PAM_AUTH_ERR (not the pass, not
    IGNORE: a key was there and was not one of hers)."""
    stranger = enrolled.new_key("stranger")
    enrolled.plug(stranger)
    r = enrolled.sign_in()
    assert_refused(r)
    assert any("NoCredentials" in d for d in failure_details(enrolled)), enrolled.audit()


def test_rp_id_changed_in_policy_refuses_the_key(enrolled):
    """The key was registered for RP_ID; the policy now names another rp id:
    the authenticator has no credential for it -> PAM_AUTH_ERR."""
    enrolled.write_policy(rp_id="pam://another.host")
    r = enrolled.sign_in()
    assert_refused(r)


def test_missing_uv_flag_when_required(enrolled):
    """UV flag clear (validly signed) under user_verification = "required":
    the module's own check refuses it -> PAM_AUTH_ERR, user_not_verified."""
    enrolled.write_policy(user_verification="required")
    refuse_with(enrolled, "--no-uv-flag")
    assert any("user_not_verified" in d for d in failure_details(enrolled)), enrolled.audit()


def test_key_without_uv_when_required(kw):
    """A key that cannot verify its user at all (no PIN, no built-in UV),
    enrolled under "preferred"; the policy then requires UV: refused."""
    kw.plug(kw.key, "--no-uv")
    kw.enrolled()
    assert_key_success(kw.sign_in())  # preferred: presence is enough
    kw.write_policy(user_verification="required")
    refuse_with(kw, "--no-uv")


def test_counter_regression_refused_and_audited(enrolled, syslog):
    assert_key_success(enrolled.sign_in())  # key and store counters agree, > 0
    stored = enrolled.keys_json()[0]["sign_count"]
    mark = syslog.mark()
    refuse_with(enrolled, "--counter-regress")
    events = enrolled.events()
    assert "key.counter_regressed" in events, events
    [rec] = [r for r in enrolled.audit() if r["event"] == "key.counter_regressed"]
    assert "clone" in rec["detail"], rec
    assert enrolled.keys_json()[0]["sign_count"] == stored
    lines = [t for _, _, t in syslog.since(mark) if "pam_tap(" in t]
    assert any("security key refused" in t and "clone" in t for t in lines), lines


def test_helper_that_hangs_is_killed_at_touch_timeout(enrolled):
    enrolled.write_policy(touch_timeout="2s")
    enrolled.plug(enrolled.key, "--hang")
    r, took = ks.timed(enrolled.sign_in)
    # PAM_AUTH_ERR: the key path was taken and produced no valid answer in time
    assert_refused(r)
    assert 1.8 <= took < 5, took
    assert any("did not answer in time" in d for d in failure_details(enrolled))
    # the hung helper (and its process group) is gone
    time.sleep(0.2)
    assert ks.processes_mentioning(str(enrolled.key.path)) == []


@pytest.mark.parametrize("fault,why", [
    ("--die", "gave no answer"),  # exits 3 without a word: PAM_AUTH_ERR
    ("--garbage", "garbage"),  # a line that is not JSON: PAM_AUTH_ERR
    ("--bad-option-makes-it-exit-2", "gave no answer"),
])
def test_helper_that_dies_or_prints_garbage(enrolled, fault, why):
    r, took = ks.timed(refuse_with, enrolled, fault)
    assert took < 5, took  # no waiting for the touch timeout (10 s here)
    assert any(why in d for d in failure_details(enrolled)), enrolled.audit()


@pytest.mark.parametrize("what", ["missing", "not executable"])
def test_helper_unavailable_is_authinfo_unavail(enrolled, what):
    """PAM_AUTHINFO_UNAVAIL: the module cannot run its helper at all, so it
    cannot authenticate this user by key: fail closed (logged), never
    IGNORE (which the gate would turn into a let-in) and never the pass."""
    if what == "missing":
        enrolled.write_policy(helper=str(enrolled.tap.dir / "no-such-helper"))
    else:
        enrolled.helper.chmod(0o644)
    r = enrolled.sign_in()
    assert_refused(r, "PAM_AUTHINFO_UNAVAIL")
    assert r.prompts == [], r


@pytest.mark.parametrize("how", ["world-writable", "owned by the user", "group-writable"])
def test_helper_anyone_could_rewrite_is_never_run(enrolled, how):
    """The module runs the helper as root, so the helper must be as trusted
    as the policy: a helper someone else could rewrite is refused before it
    runs (PAM_AUTHINFO_UNAVAIL, fail closed), never run as root."""
    marker = enrolled.tap.dir / "helper-ran"
    body = enrolled.helper.read_text().replace("exec ", f"touch {marker}\nexec ", 1)
    enrolled.helper.write_text(body)
    if how == "world-writable":
        enrolled.helper.chmod(0o777)
    elif how == "group-writable":
        enrolled.helper.chmod(0o775)
    else:
        os.chown(enrolled.helper, pwd.getpwnam(enrolled.user).pw_uid, -1)
    r = enrolled.sign_in()
    assert_refused(r, "PAM_AUTHINFO_UNAVAIL")
    assert not marker.exists(), "the helper ran"


def helper_copy(enrolled, where, marker=None):
    """A root-owned copy of the test's helper at `where` (directories made,
    root's, 0755); with `marker`, the copy touches it when it runs."""
    where.parent.mkdir(parents=True, exist_ok=True)
    body = enrolled.helper.read_text()
    if marker:
        body = body.replace("exec ", f"touch {marker}\nexec ", 1)
    where.write_text(body)
    os.chown(where, 0, 0)
    os.chmod(where, 0o755)
    return where


def test_helper_below_a_directory_a_user_can_write_is_never_run(enrolled, syslog):
    """Every directory up to / counts, not only the helper's own: a user who
    can write the grandparent can move the root-owned parent away and put
    their own in its place. Refused before anything runs, whatever the user
    swaps in meanwhile (a loop as that user swaps the parent back and
    forth throughout): PAM_AUTHINFO_UNAVAIL, and the user's program never
    runs."""
    uid = harness.USERS["tapuser2"][0]
    grand = enrolled.tap.dir / "grand"
    helper = helper_copy(enrolled, grand / "parent" / "helper.sh")
    os.chown(grand, uid, -1)  # tapuser2's, 0755: theirs to write
    # tapuser2's own program, ready to be swapped in
    marker = enrolled.tap.dir / "user-program-ran"
    theirs = grand / "theirs"
    theirs.mkdir()
    (theirs / "helper.sh").write_text(f"#!/bin/sh\ntouch {marker}\n")
    os.chmod(theirs / "helper.sh", 0o755)
    for path in (theirs, theirs / "helper.sh"):
        os.chown(path, uid, -1)
    enrolled.write_policy(helper=str(helper))
    mark = syslog.mark()
    r = enrolled.sign_in()
    assert_refused(r, "PAM_AUTHINFO_UNAVAIL")
    assert r.prompts == [], r
    lines = [t for _, _, t in syslog.since(mark) if "pam_tap(" in t]
    assert any(f"{grand} is owned by uid {uid}" in t for t in lines), lines

    swap = (f"cd {grand} && while :; do mv parent real; mv theirs parent; "
            "mv parent theirs; mv real parent; done")
    swapper = subprocess.Popen(harness.as_user_prefix("tapuser2") + ["sh", "-c", swap],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(15):
            assert_refused(enrolled.sign_in(), "PAM_AUTHINFO_UNAVAIL")
    finally:
        swapper.kill()
        swapper.wait()
    assert not marker.exists(), "the user's program ran"


def test_symlinked_helper_into_a_directory_others_can_write_is_refused(enrolled):
    """A link is followed and where it leads is checked too: a root-owned
    link in a root-owned directory pointing into a directory a user may
    write is refused (PAM_AUTHINFO_UNAVAIL), and the target never runs."""
    marker = enrolled.tap.dir / "target-ran"
    open_dir = enrolled.tap.dir / "open"
    target = helper_copy(enrolled, open_dir / "helper.sh", marker)
    os.chown(open_dir, harness.USERS["tapuser2"][0], -1)
    link = enrolled.tap.dir / "helper-link"
    os.symlink(target, link)
    enrolled.write_policy(helper=str(link))
    assert_refused(enrolled.sign_in(), "PAM_AUTHINFO_UNAVAIL")
    assert not marker.exists(), "the helper ran"


def test_symlinked_helper_in_trusted_directories_works(enrolled):
    """A link to a helper whose every directory is root's alone is fine
    (packages install helpers through links; /bin itself is one on merged
    /usr): a relative link, through a linked directory."""
    marker = enrolled.tap.dir / "target-ran"
    helper_copy(enrolled, enrolled.tap.dir / "real" / "libexec" / "helper.sh", marker)
    os.symlink("real/libexec", enrolled.tap.dir / "libexec")
    link = enrolled.tap.dir / "helper-link"
    os.symlink("libexec/helper.sh", link)
    enrolled.write_policy(helper=str(link))
    assert_key_success(enrolled.sign_in())
    assert marker.exists()


# ---------------------------------------------------------------------------
# 3. no key plugged in

def test_no_device_falls_through_to_the_pass(enrolled):
    enrolled.plug(enrolled.key, "--no-device")
    p = enrolled.tap.issue(enrolled.user)
    r = enrolled.sign_in([p["pass"]])
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    assert r.messages[0] == {"style": "PAM_TEXT_INFO", "msg": TOUCH_CUE}, r
    assert r.prompts == [PROMPT], r
    # a wrong pass after it is a wrong pass: PAM_AUTH_ERR, counted
    r = enrolled.sign_in(["WRON-GPAS-S0"])
    assert r.rc == "PAM_AUTH_ERR" and not r.fellthrough and r.prompts == [PROMPT], r
    assert enrolled.tap.show(enrolled.user)["failures"] == 1


def test_no_device_and_no_pass_is_ignore(enrolled):
    enrolled.plug(enrolled.key, "--no-device")
    enrolled.tap.tapctl("revoke", enrolled.user)
    # PAM_IGNORE: nothing this module can do for the user (§5 row 2)
    r = enrolled.sign_in(stack="probe")
    assert r.outcome == "PAM_IGNORE" and r.rc != "PAM_SUCCESS", r
    assert r.prompts == [], r
    r = enrolled.sign_in(stack="deny", args="")
    assert r.rc == "PAM_AUTH_ERR" and r.fellthrough, r


# ---------------------------------------------------------------------------
# 5. tapctl refusals

def assert_no_window(proc, kw):
    assert proc.returncode == 3, ok(proc)
    assert "no enrollment window" in proc.stderr, ok(proc)
    # it says how to get a pass
    assert "Temporary Access Pass" in proc.stderr and f"tapctl issue {kw.user}" in proc.stderr, ok(proc)
    assert kw.keys_json() == []
    assert kw.key.credentials() == []  # the key was not even asked


def test_enroll_without_any_pass(kw):
    assert_no_window(kw.enroll("k"), kw)


def test_enroll_with_a_pass_not_yet_used(kw):
    kw.tap.issue(kw.user)
    assert_no_window(kw.enroll("k"), kw)


def test_enroll_after_one_time_window_closed(kw):
    kw.write_policy(passes={"enroll_window": "2s"})
    kw.pass_sign_in(one_time=True)
    time.sleep(3.1)
    assert_no_window(kw.enroll("k"), kw)
    assert "2s" in kw.enroll("k").stderr  # it names the window length


def test_enroll_window_never_outlives_the_pass(kw):
    kw.pass_sign_in(lifetime="2s")  # multi-use: window until expiry
    time.sleep(3.1)
    assert_no_window(kw.enroll("k"), kw)


def test_enroll_after_pass_revoked(kw):
    kw.pass_sign_in()
    kw.tap.tapctl("revoke", kw.user)
    assert_no_window(kw.enroll("k"), kw)


def test_enroll_inside_one_time_window(kw):
    kw.write_policy(passes={"enroll_window": "1m"})
    kw.enrolled(one_time=True)


def test_enroll_for_another_user_is_refused(kw):
    # tapuser2 even has an open window of their own
    p = kw.tap.issue("tapuser2")
    assert kw.tap.auth("tapuser2", [p["pass"]], stack="gate").rc == "PAM_SUCCESS"
    kw.pass_sign_in()
    proc = kw.enroll("theirs", extra=["tapuser2"])
    assert proc.returncode == 3, ok(proc)  # NotPermitted, not a usage error
    assert "only for yourself" in proc.stderr, ok(proc)
    # root cannot either
    proc = kw.tap.tapctl("enroll", "tapuser2", check=False)
    assert proc.returncode == 3 and "only for yourself" in proc.stderr, ok(proc)
    assert kw.keys_json("tapuser2") == [] and kw.keys_json() == []
    assert kw.key.credentials() == []
    # naming yourself is fine
    proc = kw.enroll("mine", extra=[kw.user])
    assert proc.returncode == 0, ok(proc)


def test_user_cannot_list_or_remove_another_users_keys(kw):
    key = kw.enrolled()
    for args in (["keys", kw.user, "--json"], ["keys", "remove", "--", kw.user, key["id"]]):
        proc = kw.user_tapctl(*args, user="tapuser2")
        assert proc.returncode == 3, ok(proc)
    assert len(kw.keys_json()) == 1


@pytest.mark.parametrize("listed", [False, True])
def test_allowed_aaguids(kw, listed):
    model = "0badc0de-0000-4000-8000-000000000001"
    kw.key = kw.new_key("model", aaguid=model)
    kw.plug(kw.key)
    allowed = [model] if listed else ["00112233-4455-6677-8899-aabbccddeeff"]
    kw.write_policy(allowed_aaguids=allowed)
    kw.pass_sign_in()
    proc = kw.enroll("k")
    if listed:
        assert proc.returncode == 0, ok(proc)
        assert kw.keys_json()[0]["model"] == model
        return
    assert proc.returncode == 3, ok(proc)
    assert "allowed_aaguids" in proc.stderr and model in proc.stderr, ok(proc)
    assert kw.keys_json() == []
    refused = [r for r in kw.audit() if r["event"] == "key.enroll_refused"]
    assert len(refused) == 1 and model in refused[0]["detail"], kw.audit()


def test_max_keys_reached(kw):
    kw.write_policy(max_keys=1)
    kw.enrolled("first")
    second = kw.new_key("second")
    kw.plug(second)
    proc = kw.enroll("second")
    assert proc.returncode == 3, ok(proc)
    assert "most the policy allows" in proc.stderr, ok(proc)
    assert [k["label"] for k in kw.keys_json()] == ["first"]
    assert second.credentials() == []  # refused before touching the key


def test_same_key_twice_is_refused(kw):
    kw.enrolled("first")
    proc = kw.enroll("again")
    assert proc.returncode == 3 and "already registered" in proc.stderr, ok(proc)
    assert [k["label"] for k in kw.keys_json()] == ["first"]


def test_second_key_after_proving_the_first(kw):
    kw.enrolled("first")
    kw.tap.tapctl("revoke", kw.user)  # no window from here on
    second = kw.new_key("second")
    kw.plug(kw.key, register=(second, ()))  # touch the first, then register the second
    proc = kw.enroll("second")
    assert proc.returncode == 0, ok(proc)
    assert "prove a key you already have" in proc.stderr, ok(proc)
    assert sorted(k["label"] for k in kw.keys_json()) == ["first", "second"]
    assert len(second.credentials()) == 1
    tapctl_success = [r for r in kw.audit()
                      if r["event"] == "signin.key.success" and r["service"] == "tapctl"]
    assert len(tapctl_success) == 1, kw.audit()
    # both keys sign in through PAM
    kw.plug(second)
    assert_key_success(kw.sign_in())
    kw.plug(kw.key)
    assert_key_success(kw.sign_in())


@pytest.mark.parametrize("fault,message", [
    ("--tamper-signature", "not accepted"),
    ("--no-device", "plug in a security key"),
])
def test_second_key_without_window_and_failed_proof(kw, fault, message):
    kw.enrolled("first")
    kw.tap.tapctl("revoke", kw.user)
    second = kw.new_key("second")
    kw.plug(kw.key, fault, register=(second, ()))
    proc = kw.enroll("second")
    assert proc.returncode == 3, ok(proc)
    assert message in proc.stderr, ok(proc)
    assert [k["label"] for k in kw.keys_json()] == ["first"]
    assert second.credentials() == []


def test_remove_own_only_key_outside_window_refused(kw):
    key = kw.enrolled()
    kw.tap.tapctl("revoke", kw.user)
    proc = kw.user_tapctl("keys", "remove", "--", key["id"][:12])
    assert proc.returncode == 3, ok(proc)
    assert "no enrollment window" in proc.stderr, ok(proc)
    assert len(kw.keys_json()) == 1
    assert "key.removed" not in kw.events()


def test_remove_own_key_inside_window(kw):
    key = kw.enrolled()
    proc = kw.user_tapctl("keys", "remove", "--", key["id"])
    assert proc.returncode == 0, ok(proc)
    assert kw.keys_json() == []


def test_remove_own_key_after_proving_another(kw):
    first = kw.enrolled("first")
    second = kw.new_key("second")
    kw.plug(second)
    assert kw.enroll("second").returncode == 0
    kw.tap.tapctl("revoke", kw.user)
    # prove "second", remove "first"
    proc = kw.user_tapctl("keys", "remove", "--", first["id"])
    assert proc.returncode == 0, ok(proc)
    assert [k["label"] for k in kw.keys_json()] == ["second"]


# Key ids are base64url: one in 64 starts with "-". Calls here pass ids after
# "--"; test_key_id_starting_with_a_dash_can_be_removed checks the bare form.

def test_admin_removes_a_users_key(kw):
    key = kw.enrolled()
    kw.tap.tapctl("revoke", kw.user)
    proc = kw.tap.tapctl("keys", "remove", "--", kw.user, key["id"][:8])
    assert "Removed" in proc.stdout, ok(proc)
    assert kw.keys_json() == []
    [rec] = [r for r in kw.audit() if r["event"] == "key.removed"]
    assert rec["actor"] == "root" and rec["user"] == kw.user, rec
    assert "laptop key" in rec["detail"], rec
    # the key no longer signs in: no key, no pass -> nothing for this user
    r = kw.sign_in(stack="probe")
    assert r.outcome == "PAM_IGNORE" and r.messages == [], r
    # recovery: a new pass signs in again (journey 5)
    p = kw.tap.issue(kw.user)
    r = kw.sign_in([p["pass"]])
    assert r.rc == "PAM_SUCCESS" and r.prompts == [PROMPT], r
    # a removal of a key that is gone: not found
    proc = kw.tap.tapctl("keys", "remove", "--", kw.user, key["id"], check=False)
    assert proc.returncode == 4, ok(proc)


def test_keys_json_shape_and_status(kw):
    key = kw.enrolled()
    for field in ("id", "label", "model", "algorithm", "created", "last_used"):
        assert field in key, key
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        key["model"]), key
    st = kw.user_tapctl("status")
    assert st.returncode == 0 and "laptop key" in st.stdout, ok(st)


# ---------------------------------------------------------------------------
# more of the key path: enrollment refused by the key's answer, the helper
# misbehaving in other ways, scope, a real sshd

@pytest.mark.parametrize("opts,event_detail,message", [
    (["--wrong-rp-id"], "rp_id_mismatch", "another relying party"),
    (["--no-up"], "user_not_present", "not touched"),
    (["--attestation", "packed", "--tamper-signature"], "attestation_signature_invalid",
     "attestation signature"),
])
def test_enroll_refuses_a_bad_registration(kw, opts, event_detail, message):
    kw.plug(kw.key, *opts)
    kw.pass_sign_in()
    proc = kw.enroll("bad")
    assert proc.returncode == 3, ok(proc)
    assert message in proc.stderr, ok(proc)
    assert kw.keys_json() == []
    refused = [r["detail"] for r in kw.audit() if r["event"] == "key.enroll_refused"]
    assert refused == [event_detail], kw.audit()


def test_enroll_with_packed_self_attestation(kw):
    kw.plug(kw.key, "--attestation", "packed")
    key = kw.enrolled()
    assert key["attestation"].startswith("packed"), key
    assert_key_success(kw.sign_in())


@pytest.mark.parametrize("opts,message", [
    (["--no-uv"], "cannot verify the user"),  # the key itself refuses
    (["--no-uv-flag"], "user verification"),  # our check of the UV flag
])
def test_enroll_without_uv_when_required(kw, opts, message):
    kw.write_policy(user_verification="required")
    kw.plug(kw.key, *opts)
    kw.pass_sign_in()
    proc = kw.enroll("no uv")
    assert proc.returncode == 3 and message in proc.stderr, ok(proc)
    assert kw.keys_json() == []


def test_enroll_wrong_pin(kw):
    kw.write_policy(user_verification="required")
    kw.plug(kw.key, "--pin", "1234")
    kw.pass_sign_in()
    proc = kw.enroll("k", stdin="9999\n")
    assert proc.returncode == 3 and "wrong PIN" in proc.stderr, ok(proc)
    assert kw.keys_json() == [] and kw.key.credentials() == []


@pytest.mark.parametrize("label", ["", "two\nlines", "x" * 65])
def test_enroll_bad_label_is_usage(kw, label):
    kw.pass_sign_in()
    proc = kw.user_tapctl("enroll", "--label", label)
    assert proc.returncode == 2 and "--label" in proc.stderr, ok(proc)
    assert kw.key.credentials() == []


def test_enroll_default_label_and_default_rp_id(kw):
    import socket
    kw.write_policy(rp_id=None)  # default: pam:// + this host's name
    kw.pass_sign_in()
    proc = kw.enroll()
    assert proc.returncode == 0, ok(proc)
    assert kw.keys_json()[0]["label"] == "key 1"
    assert kw.key.credentials()[0]["rp_id"] == "pam://" + socket.gethostname()
    assert_key_success(kw.sign_in())


@pytest.mark.parametrize("fault", ["--hang", "--die", "--garbage", "missing"])
def test_enroll_with_a_misbehaving_helper(kw, fault):
    """tapctl kills a hung helper at touch_timeout too, and stores nothing.
    (It exits 1, "internal error", for these: see the report.)"""
    kw.write_policy(touch_timeout="2s")
    kw.pass_sign_in()
    if fault == "missing":
        kw.write_policy(helper=str(kw.tap.dir / "no-such-helper"))
    else:
        kw.plug(kw.key, fault)
    proc, took = ks.timed(kw.enroll, "k")
    assert proc.returncode != 0 and "Registered" not in proc.stdout, ok(proc)
    assert took < 4.5, took
    assert kw.keys_json() == []
    time.sleep(0.2)
    assert ks.processes_mentioning(str(kw.key.path)) == []


def write_script(kw, body, lang="sh"):
    interp = {"sh": "/bin/sh", "py": "/usr/bin/python3"}[lang]
    tmp = kw.helper.with_suffix(".tmp")
    tmp.write_text(f"#!{interp}\n{body}\n")
    tmp.chmod(0o755)
    tmp.replace(kw.helper)


@pytest.mark.parametrize("name,body,why", [
    # a well-formed answer of the wrong kind: PAM_AUTH_ERR
    ("present", """echo '{"status":"present","pin_set":false}'""", "unexpected helper answer"),
    # the key says the person did not confirm: PAM_AUTH_ERR
    ("not confirmed", """echo '{"status":"failed","error":"not_confirmed","message":"x"}'""",
     "NotConfirmed"),
    # more than the 64 KiB a response may have: PAM_AUTH_ERR, without waiting
    ("huge", """head -c 200000 /dev/zero | tr '\\0' a""", "larger than"),
    # nothing at all, exit 0: PAM_AUTH_ERR
    ("silent exit 0", "exit 0", "gave no answer"),
    # killed by a signal: PAM_AUTH_ERR
    ("killed", "kill -9 $$", "killed by signal 9"),
    # a second message after the answer: garbage, PAM_AUTH_ERR
    ("two answers", """echo '{"status":"present","pin_set":false}'; echo '{"status":"present","pin_set":false}'""",
     "garbage"),
])
def test_helper_other_misbehaviour(enrolled, name, body, why):
    write_script(enrolled, body)
    r, took = ks.timed(enrolled.sign_in)
    assert_refused(r)
    assert took < 5, took  # none of these waits for the 10 s touch timeout
    assert any(why in d for d in failure_details(enrolled)), enrolled.audit()


def test_helper_that_always_wants_a_pin_is_asked_once(enrolled):
    """A helper that answers pin_required even with a PIN: the module asks
    once and then refuses (PAM_AUTH_ERR), it does not loop."""
    write_script(enrolled, """cat >/dev/null; echo '{"status":"failed","error":"pin_required","message":"x"}'""")
    r = enrolled.sign_in(["1234", "5678", "9012"])
    assert_refused(r)
    assert r.prompts == [PIN_PROMPT] and r.raw["answers_used"] == 1, r


def test_helper_that_answers_and_lingers_with_stdout_closed(enrolled):
    """It answered and closed stdout but keeps running: the answer counts
    (PAM_SUCCESS) and the helper's process group is killed after a short grace."""
    argv = " ".join(ks.harness_quote(a) for a in enrolled.key.argv())
    write_script(enrolled, f"{argv}\nexec >&-\nsleep 41")
    r, took = ks.timed(enrolled.sign_in)
    assert_key_success(r)
    assert took < 3, took
    time.sleep(0.2)
    assert ks.processes_mentioning("sleep 41") == []


def test_helper_child_holding_stdout_is_killed_at_timeout(enrolled):
    """(Regression: runner.kill_and_reap once returned without killing the
    group when the leader had already exited; fixed in 59c1c26.)"""
    """The helper leader exits but a child in its process group keeps
    stdout open: no EOF, so the runner waits until touch_timeout (2 s here)
    and refuses (PAM_AUTH_ERR). The runner promises to kill the whole
    process group then; the child must not outlive the sign-in (as root, in
    sshd's or login's context)."""
    enrolled.write_policy(touch_timeout="2s")
    write_script(enrolled, "sleep 43 &\necho garbage-before-exit")
    try:
        r, took = ks.timed(enrolled.sign_in)
        assert_refused(r)
        assert took < 4.5, took
        time.sleep(0.3)
        assert ks.processes_mentioning("sleep 43") == []
    finally:
        for pid in ks.processes_mentioning("sleep 43"):
            try:
                os.kill(pid, 9)  # only the sleep this test started
            except OSError:
                pass


def test_replayed_assertion_is_refused(enrolled):
    """A helper that replays a recorded, once-valid answer: the challenge is
    fresh every time, so the signature does not verify -> PAM_AUTH_ERR."""
    recorded = enrolled.tap.dir / "recorded.json"
    argv = " ".join(ks.harness_quote(a) for a in enrolled.key.argv())
    write_script(enrolled, f"{argv} > {recorded}\ncat {recorded}")
    assert_key_success(enrolled.sign_in())
    write_script(enrolled, f"cat {recorded}")
    r = enrolled.sign_in()
    assert_refused(r)
    assert any("signature_invalid" in d or "sign_count" in d for d in failure_details(enrolled)), \
        enrolled.audit()


def test_another_users_credential_is_not_accepted(kw):
    """tapuser1 and tapuser2 each enroll a credential on one shared key. A
    helper that answers tapuser2's sign-in with tapuser1's credential (a
    valid assertion, signed over the right challenge) is refused: the answer
    must name one of tapuser2's own credentials -> PAM_AUTH_ERR."""
    kw.enrolled("user1 key")
    [cred1] = kw.key.credentials()
    # tapuser2 uses the same physical key (its state file: writable by both)
    kw.key.path.chmod(0o666)
    kw2 = ks.KeyWorld.__new__(ks.KeyWorld)
    kw2.__dict__.update(kw.__dict__)
    kw2.user = "tapuser2"
    kw2.enrolled("user2 key")
    assert len(kw.key.credentials()) == 2
    # the module asks with tapuser2's allow list; the helper swaps in tapuser1's
    argv = ", ".join(repr(a) for a in kw.key.argv())

    def relay(swap):
        write_script(kw, f"""
import json, subprocess, sys
req = json.loads(sys.stdin.readline())
if {swap!r}:
    req["allow"] = [{cred1["id"]!r}]
out = subprocess.run([{argv}], input=json.dumps(req) + "\\n", capture_output=True, text=True)
sys.stdout.write(out.stdout)
""", lang="py")

    relay(False)  # control: the relay itself is faithful
    assert_key_success(kw2.sign_in())
    relay(True)
    r = kw2.sign_in()
    assert_refused(r)
    assert any("not enrolled" in d for d in failure_details(kw2)), kw2.audit()


def test_out_of_scope_or_disabled_user_with_a_key_is_ignored(enrolled):
    """PAM_IGNORE: policy disabled or the user outside [scope] — the key is
    not even asked (no cue, the helper is not run)."""
    marker = enrolled.tap.dir / "helper-ran"
    argv = " ".join(ks.harness_quote(a) for a in enrolled.key.argv())
    write_script(enrolled, f"touch {marker}\nexec {argv}")
    for change in ({"top": {"enabled": False}}, {"scope": {"exclude_users": [enrolled.user]}}):
        body = harness.policy_text(enrolled.tap.store, passes=enrolled.passes, **change)
        harness.copy_text_root_owned(body + ks.toml_keys(enrolled.keys), ks.DEFAULT_POLICY, 0o644)
        r = enrolled.sign_in(stack="probe")
        assert r.outcome == "PAM_IGNORE" and r.messages == [], (change, r)
        assert not marker.exists(), change


@pytest.mark.parametrize("helper", ["relative/helper", "directory"])
def test_unusable_helper_setting_fails_closed(enrolled, helper):
    """A relative helper path makes the policy invalid; a directory cannot be
    run. Either way PAM_AUTHINFO_UNAVAIL, never IGNORE."""
    if helper == "directory":
        enrolled.write_policy(helper=str(enrolled.tap.dir))
    else:
        enrolled.write_policy(helper=helper)
    assert_refused(enrolled.sign_in(), "PAM_AUTHINFO_UNAVAIL")


def test_key_signin_over_real_sshd(kw, world):
    """Journey 4 through sshd keyboard-interactive: no prompt to answer, the
    command runs as the user (askpass would answer a prompt with a wrong
    pass, and no prompt comes)."""
    kw.enrolled()
    sshd = harness.Sshd(kw.tap.dir / "sshd", [
        kw.tap.module_line("[success=done default=die]"),
        "auth required pam_deny.so",
        "account required pam_permit.so",
        "session required pam_permit.so",
        "password required pam_deny.so",
    ]).start()
    try:
        code, out, err, prompts = sshd.ssh(kw.user, "not-the-pass")
    finally:
        sshd.stop()
    assert code == 0 and out.split() == ["ok", kw.user], (code, out, err, sshd.log.read_text()[-2000:])
    assert prompts == [], prompts
    assert any(r["event"] == "signin.key.success" and r["service"] == "sshd" for r in kw.audit())


# ---------------------------------------------------------------------------
# regressions: bugs these tests found, fixed in 1ea363a (they were pinned as
# strict xfail until then)

def test_empty_pin_answer_is_not_sent_to_the_key(kw):
    """An empty answer to the PIN prompt (Enter) is no PIN guess: refused
    (PAM_AUTH_ERR, a failed key sign-in) without spending a PIN retry."""
    kw.write_policy(user_verification="required")
    kw.plug(kw.key, "--pin", "1234")
    kw.pass_sign_in()
    assert kw.enroll("k", stdin="1234\n").returncode == 0
    retries = kw.key.state()["pin_retries"]
    r = kw.sign_in([""])
    assert_refused(r)
    assert r.prompts == [PIN_PROMPT], r
    assert kw.key.state()["pin_retries"] == retries
    assert any("no usable PIN" in d for d in failure_details(kw)), kw.audit()


def test_enroll_without_a_pin_answer_says_no_pin_given(kw):
    """End of input at tapctl's PIN prompt is no answer: exit 2, "no PIN
    given", and no empty PIN reaches the key."""
    kw.write_policy(user_verification="required")
    kw.plug(kw.key, "--pin", "1234")
    kw.pass_sign_in()
    retries = kw.key.state()["pin_retries"]
    proc = kw.enroll("k", stdin="")
    assert proc.returncode == 2 and "no PIN given" in proc.stderr, ok(proc)
    assert kw.key.state()["pin_retries"] == retries
    assert kw.keys_json() == []


def test_tapctl_without_the_daemon_says_how_to_start_it(kw):
    """No tapd on the socket: exit 6, and the message says how to start it."""
    cmd = harness.as_user_prefix(kw.user) + [str(kw.world.tapctl), "--socket",
                                             "/run/pam_tap/none.sock", "status"]
    plain = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert plain.returncode == 6, ok(plain)
    assert "systemctl start pam-tap.socket" in plain.stderr, ok(plain)


def test_the_store_is_the_daemons_alone(kw):
    """A user cannot open the store at all (0600 in a 0700 directory, both
    tapd's); their tapctl works through the daemon all the same."""
    kw.pass_sign_in()
    store = kw.tap.store
    uid = harness.USERS[harness.DAEMON_USER][0]
    for path, mode in ((store, 0o600), (store.parent, 0o700)):
        st = path.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (uid, mode), (path, oct(st.st_mode))
    probe = subprocess.run(
        harness.as_user_prefix(kw.user) + ["/usr/bin/python3", "-c", f"open({str(store)!r}, 'rb')"],
        capture_output=True, text=True)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr, probe
    assert kw.user_tapctl("status").returncode == 0


def test_key_id_starting_with_a_dash_can_be_removed(kw):
    """Base64url ids may start with '-': without "--" such an id is still an
    id (here one nobody has: not found, 4), and a real id works bare too."""
    key = kw.enrolled()
    proc = kw.tap.tapctl("keys", "remove", kw.user, "-AbCdEfG", check=False)
    assert proc.returncode == 4 and "no key whose id starts with" in proc.stderr, ok(proc)
    proc = kw.tap.tapctl("keys", "remove", kw.user, key["id"])
    assert kw.keys_json() == []


def test_a_key_label_cannot_forge_log_fields(kw, syslog):
    """The label is the user's to choose and is quoted in log lines (the
    module's on sign-in, tapctl's on enrollment): it must not add a field."""
    label = 'x" user=root rhost=192.0.2.66 "'
    mark = syslog.mark()
    kw.pass_sign_in()
    proc = kw.enroll(label)
    assert proc.returncode == 0, ok(proc)
    assert_key_success(kw.sign_in(rhost="192.0.2.1"))
    lines = [t for _, _, t in syslog.since(mark) if "key" in t and ("pam_tap(" in t or "tapctl" in t)]
    signed = [t for t in lines if "signed in with security key" in t]
    enrolled = [t for t in lines if "key.enrolled" in t]
    assert signed and enrolled, lines
    assert harness.log_fields(signed[0]) == [("user", kw.user), ("rhost", "192.0.2.1")], signed
    fields = harness.log_fields(enrolled[0])
    assert [k for k, _ in fields] == ["user", "peer", "detail"], enrolled
    assert fields[0][1] == kw.user and fields[1][1].startswith("pid="), enrolled
    assert f"key {label} (" in fields[2][1], enrolled


def test_removing_another_users_key_says_nothing_about_their_keys(kw):
    """A user who is not an administrator asking to remove someone else's
    key is refused before the store is read: the same answer and exit code 3
    whether that user has a key with that id prefix, has one that does not
    match, or has no keys at all."""
    key = kw.enrolled()
    answers = set()
    for owner, prefix in [(kw.user, key["id"][:8]), (kw.user, key["id"]),
                          (kw.user, "AAAAAAAAAAAA"), ("tapuser3", "AAAAAAAAAAAA"),
                          ("tapuser3", key["id"][:8])]:
        proc = kw.user_tapctl("keys", "remove", "--", owner, prefix, user="tapuser2")
        assert proc.returncode == 3, ok(proc)
        answers.add((proc.stdout, proc.stderr.replace(owner, "OWNER")))
    assert len(answers) == 1, answers
    [(out, err)] = answers
    assert out == "" and "may remove another user's key" in err, answers
    assert [k["id"] for k in kw.keys_json()] == [key["id"]]


def test_admin_group_member_lists_and_removes_a_users_key(kw):
    """An administrator who is not root (a member of the policy's admin group
    tap-admins) lists and removes another user's key; audited with the actor."""
    key = kw.enrolled()
    saved = open("/etc/group").read()  # the namespace's private copy
    try:
        with open("/etc/group", "w") as f:
            f.write(re.sub(r"^(tap-admins:x:\d+:)$", r"\1tapuser8", saved, flags=re.M))
        listed = kw.user_tapctl("keys", kw.user, "--json", user="tapuser8")
        assert listed.returncode == 0 and key["id"] in listed.stdout, ok(listed)
        proc = kw.user_tapctl("keys", "remove", "--", kw.user, key["id"], user="tapuser8")
        assert proc.returncode == 0, ok(proc)
    finally:
        with open("/etc/group", "w") as f:
            f.write(saved)
    assert kw.keys_json() == []
    [rec] = [r for r in kw.audit() if r["event"] == "key.removed"]
    assert rec["actor"] == "tapuser8" and rec["user"] == kw.user, rec


def side_files(kw):
    return [kw.tap.store.with_name(kw.tap.store.name + suffix) for suffix in ("-wal", "-shm")]


def test_tapd_refuses_side_files_another_user_owns(kw):
    """Side files that are not the store owner's (left by 0.1's set-group-id
    tapctl, or planted by root by mistake) could be written by that user:
    tapd must not read through them, nor let SQLite take them over. Checked
    when the store is opened (here: tapd started again, as socket activation
    does after an idle exit). PAM_AUTHINFO_UNAVAIL on the gate stack (never
    IGNORE, never a sign-in); fine again once tapd owns them."""
    p = kw.pass_sign_in()
    uid = pwd.getpwnam(kw.user).pw_uid
    tapd_uid = harness.USERS[harness.DAEMON_USER][0]
    harness.stop_default_daemon()
    for f in side_files(kw):
        os.chown(f, uid, -1)
    assert_refused(kw.sign_in([p["pass"]]), "PAM_AUTHINFO_UNAVAIL")
    for f in side_files(kw):
        assert f.stat().st_uid == uid, "tapd took the user's side file over"
    st = kw.user_tapctl("status")
    assert st.returncode == 6 and "owner" in st.stderr, st
    harness.stop_default_daemon()
    for f in side_files(kw):
        os.chown(f, tapd_uid, -1)
    r = kw.sign_in([p["pass"]])
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r