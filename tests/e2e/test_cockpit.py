"""Cockpit as a real client (issue 11): Debian's cockpit-ws on 127.0.0.1
(--no-tls, its own PID and mount namespace), its setuid cockpit-session
through /etc/pam.d/cockpit as the package ships it, and real headless
Chromium typing into the login page.
"""

import os
import subprocess
import time
from contextlib import contextmanager

import pytest

import harness
from conftest import WORLD

cockpit = pytest.importorskip("cockpit", reason="python3-selenium missing: run tests/install-deps.sh")
import hostview  # noqa: E402

ARTIFACTS = harness.REPO / "target" / "run-all" / "artifacts"
HOST_LOGS = ("var/log/wtmp", "var/log/btmp", "var/log/lastlog")
BROWSERS = []


def set_password(user, password):
    """A SHA-512 crypt hash for user in the namespace's /etc/shadow."""
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                            capture_output=True, text=True, check=True).stdout.strip()
    lines = []
    with open("/etc/shadow") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == user:
                fields[1] = hashed
            lines.append(":".join(fields) + "\n")
    with open("/etc/shadow", "w") as f:
        f.writelines(lines)


@pytest.fixture(scope="module")
def host_logs():
    """The host's wtmp, btmp and lastlog must be the same after the module."""
    view = hostview.HostView()
    before = {p: view.fingerprint(p) for p in HOST_LOGS}
    yield view
    after = {p: view.fingerprint(p) for p in HOST_LOGS}
    view.close()
    assert after == before, f"the host's login records changed: {before} -> {after}"


@pytest.fixture(scope="module")
def ws(host_logs):
    missing = cockpit.missing_pieces()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (run tests/install-deps.sh)")
    server = cockpit.CockpitWs(WORLD.base / "cockpit").start()
    yield server
    rc = server.stop()
    assert rc is not None, server.log_text()


@pytest.fixture
def browser():
    BROWSERS.append(None)
    b = cockpit.Browser(WORLD.base / "cr" / str(len(BROWSERS)))
    yield b
    b.quit()


@contextmanager
def evidence(browser, ws, name):
    """On any failure, keep a screenshot and add cockpit-ws's log."""
    try:
        yield
    except Exception as e:
        shot = ARTIFACTS / f"cockpit-{name}-failure.png"
        try:
            browser.screenshot(shot)
        except Exception as s:  # noqa: BLE001 — the original failure matters more
            shot = f"(no screenshot: {s})"
        raise AssertionError(f"{e}\nscreenshot: {shot}\ncockpit-ws log:\n{ws.log_text()}") from e


def test_cockpit_plain_password(ws, browser):
    set_password("tapuser8", "correct horse battery")
    with evidence(browser, ws, "plain"):
        out = browser.login(ws.url, "tapuser8", "correct horse battery")
        assert out.kind == "shell", out
        machine_id = browser.overview()
        assert machine_id == open("/etc/machine-id").read().strip()
        shot = browser.screenshot(ARTIFACTS / "cockpit-overview.png")
        print("overview:", machine_id, "screenshot:", shot)
