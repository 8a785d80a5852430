"""Cockpit as a real client (issue 11): Debian's cockpit-ws on 127.0.0.1
(--no-tls, its own PID and mount namespace), its setuid cockpit-session
through /etc/pam.d/cockpit exactly as the package ships it, which includes
the common-auth that pam-auth-update wrote with pam_tap's profile (the
`system` fixture), and real headless Chromium typing into the login page.
The pass is typed in the Password box; there is no second prompt.

The host's /var/log/wtmp, btmp and lastlog are compared before and after
(through a view of the host's files, hostview.py); each scenario also
shows that cockpit-session did write its record, into the namespace's /var.
"""

import hashlib
import os
import subprocess
from contextlib import contextmanager

import pytest

import cockpit  # needs python3-selenium (tests/install-deps.sh): missing, it fails, never skips
import harness
import hostview
from conftest import WORLD

ARTIFACTS = harness.REPO / "target" / "run-all" / "artifacts"
HOST_LOGS = ("var/log/wtmp", "var/log/btmp", "var/log/lastlog")
WRONG = "Wrong user name or password"
PASSWORD = "Cockpit pw 2026!"  # not pass-shaped: '!' is no pass symbol, and it is too long
_browsers = []


def private_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def host_logs():
    """The host's wtmp, btmp and lastlog are the same after the module."""
    view = hostview.HostView()
    before = {p: view.fingerprint(p) for p in HOST_LOGS}
    yield view
    after = {p: view.fingerprint(p) for p in HOST_LOGS}
    view.close()
    assert after == before, f"the host's login records changed: {before} -> {after}"


@pytest.fixture(scope="module")
def shipped_pam_file():
    """/etc/pam.d/cockpit must be the file cockpit-ws ships (dpkg's conffile hash)."""
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", "cockpit-ws"],
                               capture_output=True, text=True, check=True).stdout
    shipped = {f.split()[0]: f.split()[1] for f in conffiles.splitlines() if f.strip()}
    text = open("/etc/pam.d/cockpit", "rb").read()
    assert hashlib.md5(text).hexdigest() == shipped.get("/etc/pam.d/cockpit"), (
        "/etc/pam.d/cockpit is not as cockpit-ws ships it (local edits on this host?):\n"
        + text.decode(errors="replace"))
    assert b"common-auth" in text, text
    return text.decode()


@pytest.fixture(scope="module")
def stack(system, shipped_pam_file):
    """The package's stack, and test users' passwords, restored afterwards."""
    lines = [" ".join(line) for line in system.auth_lines()]
    assert any("pam_tap.so" in line for line in lines), lines
    assert any("pam_unix.so" in line and "try_first_pass" in line for line in lines), lines
    shadow = open("/etc/shadow").read()
    yield system
    with open("/etc/shadow", "w") as f:
        f.write(shadow)


@pytest.fixture(scope="module")
def ws(host_logs, stack):
    missing = cockpit.missing_pieces()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (run tests/install-deps.sh)")
    for old in ARTIFACTS.glob("cockpit-*.png"):
        old.unlink()  # an earlier run's screenshots would mislead
    server = cockpit.CockpitWs(WORLD.base / "cockpit").start()
    yield server
    rc = server.stop()
    # 143: cockpit-ws ended by SIGTERM's default action, as under systemd
    assert rc in (0, 143), f"cockpit-ws exited {rc}:\n{server.log_text()}"


@pytest.fixture
def browser():
    _browsers.append(None)
    b = cockpit.Browser(WORLD.base / "cr" / str(len(_browsers)))
    yield b
    b.quit()


@contextmanager
def evidence(browser, ws, name):
    """On any failure: a screenshot under target/, and cockpit-ws's log."""
    try:
        yield
    except Exception as e:
        shot = ARTIFACTS / f"cockpit-{name}-failure.png"
        try:
            browser.screenshot(shot)
        except Exception as s:  # noqa: BLE001 — the original failure matters more
            shot = f"(no screenshot: {s})"
        raise AssertionError(f"{e}\nscreenshot: {shot}\ncockpit-ws log:\n{ws.log_text()}") from e


def cockpit_records(tap, user):
    return [r for r in tap.audit(user) if r["event"].startswith("signin") and r.get("service") == "cockpit"]


def test_cockpit_pass_signs_in_from_the_password_box(ws, stack, browser):
    tap, user = stack.tap, "tapuser5"
    p = tap.issue(user)
    wtmp, lastlog = private_size("/var/log/wtmp"), private_size("/var/log/lastlog")
    with evidence(browser, ws, "pass"):
        out = browser.login(ws.url, user, p["pass"])
        assert out.kind == "shell", out
        machine_id = browser.overview()
        assert machine_id == open("/etc/machine-id").read().strip()
        shot = browser.screenshot(ARTIFACTS / "cockpit-overview.png")
        print(f"signed-in overview: {shot}")
    assert [r["event"] for r in cockpit_records(tap, user)] == ["signin.pass.success"]
    # the records went to the namespace's /var (the host's are checked by host_logs)
    assert private_size("/var/log/wtmp") > wtmp, "cockpit-session wrote no wtmp record"
    assert private_size("/var/log/lastlog") > lastlog, "cockpit-session wrote no lastlog record"


def test_cockpit_password_of_a_pass_user_signs_in_and_counts_nothing(ws, stack, browser):
    tap, user = stack.tap, "tapuser6"
    tap.issue(user)
    stack.set_password(user, PASSWORD)
    with evidence(browser, ws, "password"):
        out = browser.login(ws.url, user, PASSWORD)
        assert out.kind == "shell", out
        browser.overview()
    shown = tap.show(user)
    assert shown["failures"] == 0, shown
    assert cockpit_records(tap, user) == [], "a password sign-in is no pass attempt"


def test_cockpit_reused_one_time_pass_is_refused_and_audited(ws, stack, browser, syslog):
    tap, user = stack.tap, "tapuser7"
    p = tap.issue(user, one_time=True)
    with evidence(browser, ws, "one-time-first"):
        out = browser.login(ws.url, user, p["pass"])
        assert out.kind == "shell", out
    browser.quit()
    second = cockpit.Browser(WORLD.base / "cr" / "one-time-again")
    mark = syslog.mark()
    btmp = private_size("/var/log/btmp")
    try:
        with evidence(second, ws, "one-time-again"):
            out = second.login(ws.url, user, p["pass"])
            assert (out.kind, out.text) == ("error", WRONG), out
    finally:
        second.quit()
    refused = [r for r in cockpit_records(tap, user) if r["event"] == "signin.pass.failure"]
    assert len(refused) == 1 and "one-time pass already used" in refused[0]["detail"], refused
    assert refused[0]["rhost"] == "127.0.0.1", refused
    lines = [t for fac, _, t in syslog.since(mark)
             if fac == harness.LOG_AUTHPRIV and "pam_tap(cockpit:auth)" in t]
    assert any(user in t and "one-time pass already used" in t for t in lines), lines
    assert tap.show(user)["failures"] == 0
    assert private_size("/var/log/btmp") > btmp, "cockpit-session wrote no btmp record"


def test_cockpit_wrong_pass_is_refused_and_counted(ws, stack, browser):
    tap, user = stack.tap, "tapuser8"
    p = tap.issue(user)
    real = harness.normalize(p["pass"])
    # same length, pass symbols only, one symbol changed: a pass-shaped guess
    wrong = ("1" if real[0] != "1" else "2") + real[1:]
    with evidence(browser, ws, "wrong"):
        out = browser.login(ws.url, user, wrong)
        assert (out.kind, out.text) == ("error", WRONG), out
    shown = tap.show(user)
    assert shown["failures"] == 1, shown
    failures = [r for r in cockpit_records(tap, user) if r["event"] == "signin.pass.failure"]
    assert len(failures) == 1 and "wrong pass" in failures[0]["detail"], failures
