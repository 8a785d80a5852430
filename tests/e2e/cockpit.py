"""Cockpit as a real client: Debian's cockpit-ws on 127.0.0.1 and headless
Chromium (chromedriver + Selenium) typing into its login page.

cockpit-ws runs as the package's unprivileged cockpit-wsinstance user, as
its systemd unit runs it, but started by the test: in its own PID and mount
namespace nested inside the e2e namespace, so the setuid cockpit-session it
starts for each login reads the namespace's private /etc/pam.d/cockpit,
/etc/passwd and /etc/shadow and writes utmp, wtmp, btmp and lastlog into the
namespace's /run and /var overlays. The namespace's PID 1 is nsinit.py,
which passes SIGTERM on to cockpit-ws and every session and bridge.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import harness

HERE = Path(__file__).resolve().parent

COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
COCKPIT_SESSION = "/usr/lib/cockpit/cockpit-session"
WS_USER = "cockpit-wsinstance"  # the user cockpit-wsinstance-http.service runs cockpit-ws as
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# loopback only: no update checks, field trials, QUIC or sync
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900")
SYSTEM_FRAME = "cockpit1:localhost/system"  # the shell's iframe for the overview page


class CockpitError(AssertionError):
    pass


def missing_pieces():
    """The installed files the test needs, as a list of those absent."""
    need = (COCKPIT_WS, COCKPIT_SESSION, "/usr/bin/cockpit-bridge",
            "/usr/share/cockpit/systemd/manifest.json", CHROMIUM, CHROMEDRIVER)
    return [p for p in need if not os.path.exists(p)]


class CockpitWs:
    """cockpit-ws --no-tls on 127.0.0.1:port, in its own PID and mount namespace."""

    def __init__(self, workdir, overlays=None):
        """overlays: {directory: [dirs laid over it]}, read-only overlay
        mounts made inside cockpit-ws's own mount namespace only (e.g. a
        page under /usr/share/cockpit, a program in /usr/local/bin)."""
        self.overlays = dict(overlays or {})
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.port = harness.free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = self.dir / "cockpit-ws.log"
        self.proc = None

    def start(self, timeout=20):
        # mounts first, then exec: nsinit.py stays PID 1
        mounts = ['mount -t overlay overlay -o "lowerdir=$1" "$2" || exit 1; shift 2'
                  for _ in self.overlays]
        mount_args = [a for target, dirs in self.overlays.items()
                      for a in (":".join([str(d) for d in dirs] + [str(target)]), str(target))]
        cmd = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
               "--mount", "--propagation", "private", "--",
               "/bin/sh", "-c", "; ".join(mounts + ['exec "$@"']), "sh", *mount_args,
               sys.executable, str(HERE / "nsinit.py"),
               "setpriv", f"--reuid={WS_USER}", f"--regid={WS_USER}", "--clear-groups", "--",
               COCKPIT_WS, "--no-tls", "--address", "127.0.0.1", "--port", str(self.port)]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CockpitError(f"cockpit-ws exited {self.proc.returncode}:\n{self.log_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise CockpitError(f"cockpit-ws did not listen on {self.port}:\n{self.log_text()}")
        # the login page itself, over plain HTTP
        try:
            with urllib.request.urlopen(self.url, timeout=10) as r:
                status, body = r.status, r.read().decode(errors="replace")
        except OSError as e:
            raise CockpitError(f"GET {self.url}: {e}\n{self.log_text()}") from e
        if status != 200 or "login-password-input" not in body:
            raise CockpitError(f"GET {self.url}: {status}, not the login page:\n{body[:500]}")
        return self

    def log_text(self, tail=6000):
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError as e:
            return f"(no log: {e})"

    def _init_pid(self):
        """Our view of the namespace's PID 1 (nsinit.py): unshare's only child."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            kids = f.read().split()
        if len(kids) != 1:
            raise CockpitError(f"unshare {self.proc.pid} has children {kids}, not one init")
        return int(kids[0])

    def stop(self, timeout=15):
        """SIGTERM, as systemd stops cockpit-ws: nsinit passes it to cockpit-ws
        and every session and bridge, and exits when all are gone (unshare
        itself ignores SIGTERM). Returns the exit status (143: SIGTERM)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self._init_pid(), signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # unshare --kill-child takes PID 1 down, and the kernel the rest
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise CockpitError(f"cockpit-ws did not stop on SIGTERM:\n{self.log_text()}")


@dataclass
class Outcome:
    """What the login page ended in: "shell" (signed in), "error" (the
    page's error line), "conversation" (Cockpit asks a further PAM prompt)
    or "fatal"."""
    kind: str
    text: str


class Browser:
    """One headless Chromium with a fresh profile, driven by chromedriver."""

    def __init__(self, workdir):
        self.driver = None
        self.dir = Path(workdir)
        self.profile = self.dir / "p"
        if self.dir.exists():
            shutil.rmtree(self.dir)
        # short: Chromium's singleton socket path under TMPDIR must fit in sun_path
        profile, home = self.dir / "p", self.dir / "h"
        for d in (profile, home):
            d.mkdir(parents=True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        # the pages' console messages, for tests that check what they log
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # HOME and TMPDIR inside the namespace's tmpfs: Chromium writes
        # ~/.pki and temporary files there, not into the host's /root or /tmp
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home),
               "LANG": "C.UTF-8"}
        self.driver_log = self.dir / "chromedriver.log"
        service = Service(CHROMEDRIVER, log_path=str(self.driver_log), env=env,
                          service_args=["--verbose"])
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except WebDriverException as e:
            raise CockpitError(f"Chromium did not start: {e.msg}\nchromedriver log:\n"
                               f"{self.driver_log.read_text(errors='replace')[-4000:]}") from e
        self.driver.set_page_load_timeout(30)

    def quit(self):
        if self.driver is None:
            return
        try:
            self.driver.quit()
        except WebDriverException:
            pass
        self.driver = None

    def screenshot(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise CockpitError(f"could not save a screenshot to {path}")
        return path

    def _visible(self, css):
        for el in self.driver.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed():
                return el
        return None

    def login(self, url, user, password, timeout=45):
        """Type user and password into Cockpit's login page, press Log in,
        and wait for the shell, the error line, a further prompt or a fatal page."""
        d = self.driver
        d.get(url)
        # the page reloads into the shell: an element found a moment ago may be gone
        wait = WebDriverWait(d, timeout, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(EC.visibility_of_element_located((By.ID, "login-user-input")))
        d.find_element(By.ID, "login-user-input").send_keys(user)
        d.find_element(By.ID, "login-password-input").send_keys(password)
        d.find_element(By.ID, "login-button").click()

        def settled(_):
            if self._visible("#topnav") and d.find_elements(
                    By.CSS_SELECTOR, f'iframe[name="{SYSTEM_FRAME}"]'):
                return Outcome("shell", d.title)
            el = self._visible("#login-error-message")
            if el is not None and el.text.strip():
                return Outcome("error", el.text.strip())
            el = self._visible("#conversation-prompt")
            if el is not None:
                msg = self._visible("#conversation-message")
                return Outcome("conversation",
                               el.text.strip() + (f" ({msg.text.strip()})" if msg else ""))
            el = self._visible("#login-fatal-message")
            if el is not None and el.text.strip():
                return Outcome("fatal", el.text.strip())
            return False

        return wait.until(settled, f"the login page did not settle within {timeout}s")

    def overview(self, timeout=45):
        """Wait in the shell's overview frame for the "System information"
        card's machine ID (read through the bridge the login started);
        return it."""
        d = self.driver
        frame = WebDriverWait(d, timeout).until(EC.presence_of_element_located(
            (By.CSS_SELECTOR, f'iframe[name="{SYSTEM_FRAME}"]')))
        d.switch_to.frame(frame)
        try:
            el = WebDriverWait(d, timeout).until(EC.visibility_of_element_located(
                (By.ID, "system_machine_id")))
            WebDriverWait(d, timeout).until(lambda _: el.text.strip())
            return el.text.strip()
        finally:
            d.switch_to.default_content()
