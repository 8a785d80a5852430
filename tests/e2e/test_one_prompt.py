"""One prompt for the password or the pass (issue 11), through the stack
the package installs and every stack line the docs show, taken from the
docs' own text.

The `system` fixture (system_stack.py) runs the real pam-auth-update with
the package's profile in the namespace; common-auth then reads

    auth [success=2 default=ignore] pam_tap.so
    auth [success=1 default=ignore] pam_unix.so nullok try_first_pass
    auth requisite pam_deny.so
    auth required pam_permit.so

Users: tapuser1 has a password and a pass; tapuser2 a password and no
pass. Passwords are real SHA-512 crypt hashes in the private /etc/shadow.
"""

import re
import subprocess

import pytest

import harness
from conftest import WORLD

PROMPT = "Password or Temporary Access Pass: "
PASS_ONLY_PROMPT = "Temporary Access Pass: "
PASSWORDS = {f"tapuser{i}": f"correct horse {i}!" for i in range(1, 9)}
# a wrong answer that could be a pass (ten symbols of the alphabet)
PASS_SHAPED_WRONG = "ZZZZ-ZZZZ-ZZ"


@pytest.fixture(scope="module")
def stack(system):
    for user, password in PASSWORDS.items():
        system.set_password(user, password)
    return system


def common_service(name="e2e-common"):
    """A service that is nothing but the package's common-auth."""
    harness.write_service(name, ["@include common-auth", "account required pam_permit.so"])
    return name


def failures(tap, user):
    return tap.show(user)["failures"]


# -- the stack pam-auth-update writes ---------------------------------------

def doc_blocks(path):
    """Code blocks of a Markdown file or a man page, as lists of lines."""
    text = path.read_text()
    if path.suffix == ".md":
        return [b.strip("\n").splitlines() for b in re.findall(r"^```[a-z]*\n(.*?)^```", text,
                                                                  re.S | re.M)]
    return [b.strip("\n").splitlines() for b in re.findall(r"^\.nf\n(.*?)^\.fi", text,
                                                              re.S | re.M)]


DOCS = [harness.REPO / "README.md", harness.REPO / "packaging" / "README.md",
        harness.REPO / "packaging" / "common" / "man" / "pam_tap.8"]


def doc_stacks():
    """Every PAM stack fragment the docs show: blocks made only of `auth`
    lines, one of them pam_tap's."""
    out = []
    for path in DOCS:
        for block in doc_blocks(path):
            lines = [line for line in block if line.strip()]
            if (lines and all(line.split()[0] == "auth" for line in lines)
                    and any("pam_tap.so" in line for line in lines)):
                out.append((str(path.relative_to(harness.REPO)), lines))
    return out


def test_the_docs_show_stacks():
    """Guards the extraction: the stacks named in README and pam_tap(8)."""
    found = {name for name, _ in doc_stacks()}
    assert {"README.md", "packaging/README.md", "packaging/common/man/pam_tap.8"} <= found, \
        doc_stacks()
    assert any("pass_only" in " ".join(lines) for _, lines in doc_stacks())
    for _, lines in doc_stacks():
        assert not any("success=end" in line for line in lines), \
            f"`end` exists only inside pam-auth-update profiles: {lines}"


def test_pam_auth_update_writes_the_stack_the_docs_show(stack):
    written = stack.auth_lines()
    tap_at = next(i for i, line in enumerate(written) if line[-1] == "pam_tap.so")
    unix = next(line for line in written if "pam_unix.so" in line)
    assert tap_at < written.index(unix), written
    assert "try_first_pass" in unix, "pam_unix must reuse the one answer"
    shown = [lines for name, lines in doc_stacks() if any("pam_unix.so" in x for x in lines)
             and any(x.split()[1].startswith("[success=2") for x in lines)]
    assert shown, "the docs show the common-auth pam-auth-update writes"
    for lines in shown:
        assert [line.split() for line in lines] == written[tap_at:tap_at + len(lines)], \
            (lines, written)


@pytest.mark.parametrize("where,lines", doc_stacks(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_docs_stack_as_written(stack, where, lines):
    """Each stack from the docs, verbatim, with account permitted."""
    tap = stack.tap
    svc = f"e2e-doc-{abs(hash(tuple(lines))) % 10**8}"
    harness.write_service(svc, lines + ["account required pam_permit.so"])
    p = tap.issue("tapuser1")
    tap.tapctl("revoke", "tapuser2", check=False)
    pass_only = any("pass_only" in line for line in lines)
    with_pass = harness.drive(svc, "tapuser1", [p["pass"]])
    assert with_pass.rc == "PAM_SUCCESS", (where, lines, with_pass)
    assert with_pass.prompts == [PASS_ONLY_PROMPT if pass_only else PROMPT], with_pass
    password = harness.drive(svc, "tapuser1", [PASSWORDS["tapuser1"]])
    no_pass = harness.drive(svc, "tapuser2", [PASSWORDS["tapuser2"]])
    if pass_only:
        assert password.rc == "PAM_AUTH_ERR", password
        assert no_pass.rc == "PAM_AUTH_ERR" and no_pass.prompts == [], no_pass
    else:
        # the password of a pass holder, and of a user without one: one prompt each
        assert password.rc == "PAM_SUCCESS" and password.prompts == [PROMPT], password
        assert no_pass.rc == "PAM_SUCCESS" and no_pass.prompts == [PROMPT], no_pass
        wrong = harness.drive(svc, "tapuser2", ["not my password"])
        assert wrong.rc == "PAM_AUTH_ERR" and wrong.prompts == [PROMPT], wrong
    assert failures(tap, "tapuser1") == 0, "a password is never a counted pass try"


# -- the package's common-auth, with every kind of client --------------------

def test_common_auth_pass_and_password_one_prompt_each(stack):
    tap, svc = stack.tap, common_service()
    p = tap.issue("tapuser1")
    r = harness.drive(svc, "tapuser1", [p["pass"]])
    assert r.rc == "PAM_SUCCESS" and r.prompts == [PROMPT], r
    assert len(r.infos) == 1 and r.infos[0].endswith("run: tapctl enroll"), r
    assert "`" not in r.infos[0], "no markup in conversation text"
    r = harness.drive(svc, "tapuser1", [PASSWORDS["tapuser1"]])
    assert r.rc == "PAM_SUCCESS" and r.prompts == [PROMPT] and r.infos == [], r
    assert failures(tap, "tapuser1") == 0


def test_password_sign_ins_never_burn_pass_tries(stack, syslog):
    tap, svc = stack.tap, common_service()
    p = tap.issue("tapuser3")
    max_failures = 3  # harness.policy_text
    mark = syslog.mark()
    for _ in range(max_failures + 2):
        r = harness.drive(svc, "tapuser3", [PASSWORDS["tapuser3"]])
        assert r.rc == "PAM_SUCCESS", r
    s = tap.show("tapuser3")
    assert s["usable"] is True and s["failures"] == 0, s
    assert not [t for _, _, t in syslog.since(mark) if "wrong pass" in t]
    assert harness.drive(svc, "tapuser3", [p["pass"]]).rc == "PAM_SUCCESS"


def test_pass_shaped_wrong_answers_lock_the_pass(stack):
    tap, svc = stack.tap, common_service()
    p = tap.issue("tapuser4")
    for n in range(1, 4):
        r = harness.drive(svc, "tapuser4", [PASS_SHAPED_WRONG])
        assert r.rc == "PAM_AUTH_ERR" and r.prompts == [PROMPT], r
        assert failures(tap, "tapuser4") == n
    s = tap.show("tapuser4")
    assert s["usable"] is False and s["reason"] == "Locked", s
    # locked: the right pass no longer signs in; the password still does
    assert harness.drive(svc, "tapuser4", [p["pass"]]).rc == "PAM_AUTH_ERR"
    assert harness.drive(svc, "tapuser4", [PASSWORDS["tapuser4"]]).rc == "PAM_SUCCESS"
    events = [(a["event"], a["detail"]) for a in tap.audit("tapuser4")]
    assert ("signin.pass.failure", "right pass, but pass locked after too many wrong tries") \
        in events, events


def test_bad_input_is_not_counted(stack):
    tap, svc = stack.tap, common_service()
    tap.issue("tapuser5")
    for answer_hex in ["ff" * 600, "00", "41" * 513, "e4626364656667686a6b"]:
        r = harness.drive(svc, "tapuser5", hex_answers=[answer_hex])
        assert r.rc in ("PAM_AUTH_ERR", "PAM_AUTHTOK_ERR"), r
    assert failures(tap, "tapuser5") == 0


def test_a_used_one_time_pass_is_refused_and_the_audit_says_why(stack, syslog):
    tap, svc = stack.tap, common_service()
    p = tap.issue("tapuser6", one_time=True)
    assert harness.drive(svc, "tapuser6", [p["pass"]]).rc == "PAM_SUCCESS"
    mark = syslog.mark()
    r = harness.drive(svc, "tapuser6", [p["pass"]])
    assert r.rc == "PAM_AUTH_ERR" and r.prompts == [PROMPT], r
    assert tap.audit("tapuser6")[-1]["detail"] == "right pass, but one-time pass already used"
    lines = [t for fac, _, t in syslog.since(mark) if fac == harness.LOG_AUTHPRIV]
    assert any("one-time pass already used" in t and "tapuser6" in t for t in lines), lines


def test_pamtester_with_common_auth(stack):
    tap, svc = stack.tap, common_service()
    p = tap.issue("tapuser7")
    for answer in (p["pass"], PASSWORDS["tapuser7"]):
        out = subprocess.run(["pamtester", "-v", svc, "tapuser7", "authenticate"],
                             input=answer + "\n", capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        assert out.returncode == 0 and "successfully authenticated" in text, text
        assert text.count(PROMPT) == 1 and "Password: " not in text.replace(PROMPT, ""), text
    assert failures(tap, "tapuser7") == 0


# -- sshd, sudo -S and su with the package's common-auth ---------------------

SSHD_PAM = ["@include common-auth", "account required pam_permit.so",
            "session required pam_permit.so"]


@pytest.fixture(scope="module")
def sshd_password(stack):
    sshd = harness.Sshd(WORLD.base / "t" / "one-prompt-sshd-pw", SSHD_PAM,
                        method="password").start()
    yield sshd
    sshd.stop()


@pytest.fixture(scope="module")
def sshd_kbdint(stack):
    sshd = harness.Sshd(WORLD.base / "t" / "one-prompt-sshd-kbd", SSHD_PAM).start()
    yield sshd
    sshd.stop()


def test_sshd_password_authentication(stack, sshd_password):
    """sshd's PasswordAuthentication answers every hidden prompt with the
    password: a pass holder's password works and counts nothing; the pass
    works in the password box."""
    tap = stack.tap
    p = tap.issue("tapuser8")
    for _ in range(4):
        code, out, err, prompts = sshd_password.ssh("tapuser8", PASSWORDS["tapuser8"],
                                                    method="password")
        assert code == 0 and out.split() == ["ok", "tapuser8"], (code, out, err)
        assert len(prompts) == 1 and prompts[0].endswith("password: "), prompts
    assert failures(tap, "tapuser8") == 0 and tap.show("tapuser8")["usable"] is True
    code, out, err, _ = sshd_password.ssh("tapuser8", p["pass"], method="password")
    assert code == 0 and out.split() == ["ok", "tapuser8"], (code, out, err)
    code, out, err, _ = sshd_password.ssh("tapuser8", "wrong password", method="password")
    assert code == 255, (code, out, err)
    assert failures(tap, "tapuser8") == 0


def test_sshd_keyboard_interactive_one_prompt(stack, sshd_kbdint):
    tap = stack.tap
    p = tap.issue("tapuser1")
    for answer in (p["pass"], PASSWORDS["tapuser1"]):
        code, out, err, prompts = sshd_kbdint.ssh("tapuser1", answer)
        assert code == 0 and out.split() == ["ok", "tapuser1"], (code, out, err)
        assert len(prompts) == 1 and prompts[0].endswith(PROMPT), prompts
    # a user without a pass: the same one prompt, the password
    tap.tapctl("revoke", "tapuser2", check=False)
    code, out, err, prompts = sshd_kbdint.ssh("tapuser2", PASSWORDS["tapuser2"])
    assert code == 0 and len(prompts) == 1, (code, out, err, prompts)


@pytest.fixture
def su_sudo(stack):
    lines = SSHD_PAM
    for service in ("su", "sudo"):
        harness.write_service(service, lines)
    rules = "/etc/sudoers.d/pamtap-e2e-one-prompt"
    with open(rules, "w") as f:
        f.write("Defaults:tapuser3 !lecture, timestamp_timeout=0, passwd_tries=1\n"
                "tapuser3 ALL=(ALL) ALL\n")
    import os
    os.chmod(rules, 0o440)
    return stack


def test_sudo_dash_s_password_and_pass(su_sudo):
    tap = su_sudo.tap
    p = tap.issue("tapuser3")
    cmd = harness.as_user_prefix("tapuser3") + ["sudo", "-S", "-k", "-u", "tapuser6", "id", "-un"]
    for _ in range(4):
        out = subprocess.run(cmd, input=PASSWORDS["tapuser3"] + "\n", capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.strip() == "tapuser6", out
        assert out.stderr.count(PROMPT) == 1, out.stderr
    assert failures(tap, "tapuser3") == 0
    out = subprocess.run(cmd, input=p["pass"] + "\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "tapuser6", out


def test_su_password_and_pass(su_sudo):
    tap = su_sudo.tap
    p = tap.issue("tapuser5")
    for answer in (PASSWORDS["tapuser5"], p["pass"]):
        code, out = harness.run_on_pty(
            harness.as_user_prefix("tapuser2") + ["su", "tapuser5", "-c", "echo ok; id -un"],
            answer, re.escape(PROMPT))
        assert code == 0 and out.rstrip().endswith("tapuser5"), out
        assert out.count(PROMPT) == 1 and "Password:" not in out.replace(PROMPT, ""), out
    assert failures(tap, "tapuser5") == 0
