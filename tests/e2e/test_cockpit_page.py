"""The Cockpit page (issue 15), in real Cockpit and real Chromium.

cockpit-ws runs as in test_cockpit.py (its own PID and mount namespace,
127.0.0.1, --no-tls); in that mount namespace only, the page as
cockpit/build.sh built it (cockpit/dist) is laid over /usr/share/cockpit as
pam-tap/, where the cockpit-pam-tap package installs it, and the tapctl
under test over /usr/local/bin, where install.sh puts it. The page runs
tapctl through cockpit.spawn: as the signed-in user, or as root through
Cockpit's superuser bridge (sudo) when the session has administrative
access. tapctl talks to the e2e session's tapd on the default socket.

  * admin run: an admin (tap-admins, sudo rights) issues a one-time pass in
    the page and the test reads it from the page; it signs in once through
    pamtester, then is refused; the admin revokes another user's pass and
    `tapctl show` agrees; a lifetime past the policy's bound shows tapctl's
    own message inline;
  * user run: a pass signs in to Cockpit; "My security info" shows it used
    (one-time) and the enrollment window open;
  * nothing of the clear pass lingers: not in the DOM after the dialog
    closes, not in browser storage or the browser's profile on disk, not in
    cockpit-ws's log, syslog or the browser console;
  * bad input: a user name with spaces and shell metacharacters reaches
    tapctl as one argument (its refusal names the whole string, exactly as
    tapctl's own when run with that one argument) and nothing is executed.

Screenshots of each view: target/run-all/artifacts/cockpit-page-*.png.
"""

import json
import os
import shutil
import subprocess
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

import cockpit  # needs python3-selenium (tests/install-deps.sh): missing, it fails, never skips
import harness
import hostview
from conftest import WORLD

ARTIFACTS = harness.REPO / "target" / "run-all" / "artifacts"
DIST = harness.REPO / "cockpit" / "dist"
HOST_LOGS = ("var/log/wtmp", "var/log/btmp", "var/log/lastlog")
PAGE_FRAME = "cockpit1:localhost/pam-tap"
ADMIN, USER, OTHER = "tapwebadm", "tapweb1", "tapweb2"
ACCOUNTS = {ADMIN: 61030, USER: 61031, OTHER: 61032}
PASSWORD = "Cockpit admin pw 2026!"  # not pass-shaped
_browsers = []


@pytest.fixture(scope="module")
def host_logs():
    view = hostview.HostView()
    before = {p: view.fingerprint(p) for p in HOST_LOGS}
    yield view
    after = {p: view.fingerprint(p) for p in HOST_LOGS}
    view.close()
    assert after == before, f"the host's login records changed: {before} -> {after}"


@pytest.fixture(scope="module")
def accounts(system):
    """Three accounts of this module's own in the namespace's private files:
    the admin (tap-admins, sudo rights, a password), a user and another."""
    saved = {p: Path(p).read_text() for p in ("/etc/passwd", "/etc/group", "/etc/shadow")}
    home_root = WORLD.base / "home"
    with open("/etc/passwd", "a") as pw, open("/etc/shadow", "a") as sh:
        for name, uid in ACCOUNTS.items():
            home = home_root / name
            home.mkdir(mode=0o700, exist_ok=True)
            os.chown(home, uid, harness.PRIMARY_GID)
            pw.write(f"{name}:x:{uid}:{harness.PRIMARY_GID}:cockpit page e2e:{home}:/bin/sh\n")
            sh.write(f"{name}:*:19000:0:99999:7:::\n")
    group = []
    for line in saved["/etc/group"].splitlines():
        f = line.split(":")
        if f[0] == "tap-admins":
            f[3] = ",".join([m for m in f[3].split(",") if m] + [ADMIN])
        group.append(":".join(f))
    Path("/etc/group").write_text("\n".join(group) + "\n")
    system.set_password(ADMIN, PASSWORD)
    sudoers = Path("/etc/sudoers.d/pamtap-e2e-cockpit-page")  # the namespace's /etc
    sudoers.write_text(f"{ADMIN} ALL=(ALL:ALL) ALL\n")
    os.chmod(sudoers, 0o440)
    yield system
    sudoers.unlink()
    for p, text in saved.items():
        Path(p).write_text(text)
    os.chmod("/etc/shadow", 0o640)


@pytest.fixture(scope="module")
def ws(host_logs, accounts):
    missing = cockpit.missing_pieces()
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (run tests/install-deps.sh)")
    if not (DIST / "index.js").is_file() or not (DIST / "manifest.json").is_file():
        pytest.fail(f"{DIST} is not built: run cockpit/build.sh")
    for old in ARTIFACTS.glob("cockpit-page-*.png"):
        old.unlink()
    # root-owned copies, as the package installs them
    share = WORLD.base / "cockpit-page-share"
    shutil.rmtree(share, ignore_errors=True)
    shutil.copytree(DIST, share / "pam-tap")
    for root, dirs, files in os.walk(share):
        for n in dirs + files + ["."]:
            os.chown(os.path.join(root, n), 0, 0)
    os.chmod(share, 0o755)
    bindir = WORLD.base / "cockpit-page-bin"
    bindir.mkdir(exist_ok=True, mode=0o755)
    harness.copy_root_owned(WORLD.tapctl, bindir / "tapctl", 0o755)
    server = cockpit.CockpitWs(WORLD.base / "cockpit-page",
                               overlays={"/usr/share/cockpit": [share],
                                         "/usr/local/bin": [bindir]}).start()
    yield server
    rc = server.stop()
    assert rc in (0, 143), f"cockpit-ws exited {rc}:\n{server.log_text()}"


@pytest.fixture
def browser():
    _browsers.append(None)
    b = cockpit.Browser(WORLD.base / "crp" / str(len(_browsers)))
    yield b
    b.quit()


@contextmanager
def evidence(browser, ws, name):
    try:
        yield
    except Exception as e:
        shot = ARTIFACTS / f"cockpit-page-{name}-failure.png"
        try:
            browser.driver.switch_to.default_content()
            browser.screenshot(shot)
        except Exception as s:  # noqa: BLE001 — the original failure matters more
            shot = f"(no screenshot: {s})"
        raise AssertionError(f"{e}\nscreenshot: {shot}\ncockpit-ws log:\n{ws.log_text()}") from e


# -- driving the page --------------------------------------------------------

def wait(browser, timeout=45):
    return WebDriverWait(browser.driver, timeout,
                         ignored_exceptions=(StaleElementReferenceException,))


def visible(browser, css, timeout=45):
    return wait(browser, timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def open_page(browser, ws, admin):
    """The page in the shell's frame; with admin, wait for the admin tabs
    (the superuser bridge is up)."""
    d = browser.driver
    d.switch_to.default_content()
    d.get(ws.url + "pam-tap")
    frame = wait(browser).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f'iframe[name="{PAGE_FRAME}"]')))
    d.switch_to.frame(frame)
    visible(browser, "#tap-tabs")
    if admin:
        tab(browser, "Passes")


def tab(browser, title):
    button = wait(browser).until(EC.element_to_be_clickable(
        (By.XPATH, f'//*[@id="tap-tabs"]//button[normalize-space(.)="{title}"]')))
    button.click()


def shot(browser, name):
    """A screenshot of the whole window (shell and page)."""
    d = browser.driver
    d.switch_to.default_content()
    path = browser.screenshot(ARTIFACTS / f"cockpit-page-{name}.png")
    d.switch_to.frame(d.find_element(By.CSS_SELECTOR, f'iframe[name="{PAGE_FRAME}"]'))
    return path


def type_into(browser, css, text):
    el = visible(browser, css)
    el.clear()
    el.send_keys(text)


def alert_text(browser, css):
    el = visible(browser, css)
    wait(browser).until(lambda _: el.get_attribute("textContent").strip())
    return el.get_attribute("textContent")


def admin_login(browser, ws):
    """Sign in as the admin with administrative access: the preference the
    shell keeps for "Administrative access" set before login, so the login
    starts the superuser bridge with the password (sudo)."""
    d = browser.driver
    d.get(ws.url)
    visible(browser, "#login-user-input")
    d.execute_script("window.localStorage.setItem(arguments[0], 'any')", f"superuser:{ADMIN}")
    out = browser.login(ws.url, ADMIN, PASSWORD)
    assert out.kind == "shell", out
    open_page(browser, ws, admin=True)


def issue_in_page(browser, user, lifetime="", one_time=False):
    visible(browser, "#issue-open").click()
    type_into(browser, "#issue-user", user)
    type_into(browser, "#issue-lifetime", lifetime)
    box = visible(browser, "#issue-one-time")
    if box.is_selected() != one_time:
        box.click()
    visible(browser, "#issue-submit").click()


def close_dialog(browser):
    d = browser.driver
    for css in ("#issued-close", "#issue-dialog button[aria-label='Close']"):
        els = [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
        if els:
            els[0].click()
            break
    wait(browser).until(lambda _: not d.find_elements(By.CSS_SELECTOR, "#issue-dialog"))


def tapctl_direct(argv):
    """tapctl run by the test itself with this argument vector (no shell)."""
    return subprocess.run([str(WORLD.tapctl), *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def pam_service():
    harness.write_service("e2e-cockpit-page", ["@include common-auth",
                                               "account required pam_permit.so"])
    return "e2e-cockpit-page"


def pamtester(user, answer):
    out = subprocess.run(["pamtester", "-v", pam_service(), user, "authenticate"],
                         input=answer + "\n", capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


# -- what could hold the pass ------------------------------------------------

STORAGE_JS = """
const done = arguments[arguments.length - 1];
const dump = {local: {...window.localStorage}, session: {...window.sessionStorage}, idb: {}};
(async () => {
    const dbs = indexedDB.databases ? await indexedDB.databases() : [];
    for (const info of dbs) {
        const db = await new Promise((ok, bad) => {
            const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = bad;
        });
        const stores = {};
        for (const name of db.objectStoreNames) {
            stores[name] = await new Promise((ok, bad) => {
                const r = db.transaction(name).objectStore(name).getAll();
                r.onsuccess = () => ok(r.result); r.onerror = bad;
            });
        }
        dump.idb[info.name] = stores;
        db.close();
    }
    done(JSON.stringify(dump));
})().catch(e => done(JSON.stringify({error: String(e)})));
"""


def pass_forms(p):
    """The pass as shown (grouped), without dashes, and lower case."""
    bare = p.replace("-", "")
    return {p, bare, p.lower(), bare.lower()}


def contains_pass(text, p):
    return [f for f in pass_forms(p) if f in text]


def storage_dump(browser):
    dump = browser.driver.execute_async_script(STORAGE_JS)
    assert "error" not in json.loads(dump), dump
    return dump


def profile_hits(profile, p):
    """Files under the browser's profile holding the pass (UTF-8 or UTF-16)."""
    needles = [f.encode() for f in pass_forms(p)] + [f.encode("utf-16-le") for f in pass_forms(p)]
    hits = []
    for root, _dirs, files in os.walk(profile):
        for n in files:
            path = os.path.join(root, n)
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            if any(x in data for x in needles):
                hits.append(path)
    return hits


# -- tests -------------------------------------------------------------------

def test_policy_check_json_is_the_effective_policy(accounts):
    """`tapctl policy check --json` (what the page reads the lifetime
    bounds from) is the same policy as the text form prints."""
    tap = accounts.tap
    as_json = json.loads(tap.tapctl("policy", "check", "--json", policy=False).stdout)
    text = tap.tapctl("policy", "check", policy=False).stdout
    assert as_json == tomllib.loads(text), (as_json, text)
    assert as_json["pass"]["min_lifetime"] and as_json["pass"]["max_lifetime"], as_json
    bad = tap.tapctl("--policy", "/nonexistent", "policy", "check", "--json", policy=False,
                     check=False)
    assert bad.returncode == 5 and bad.stdout == "", bad
    assert bad.stderr.startswith("tapctl: policy not usable"), bad.stderr


def test_admin_issues_a_one_time_pass_revokes_and_sees_errors(ws, accounts, browser, syslog):
    tap = accounts.tap
    tap.issue(OTHER)  # the pass the admin revokes
    policy = json.loads(tap.tapctl("policy", "check", "--json", policy=False).stdout)["pass"]
    mark = syslog.mark()
    with evidence(browser, ws, "admin"):
        admin_login(browser, ws)
        d = browser.driver
        row = visible(browser, f'#passes-table tr[data-user="{OTHER}"]')
        assert "usable" in row.text, row.text
        shot(browser, "passes")

        # the bounds the dialog shows are the policy's
        visible(browser, "#issue-open").click()
        bounds = visible(browser, "#issue-bounds").text
        assert policy["min_lifetime"] in bounds and policy["max_lifetime"] in bounds, bounds
        shot(browser, "issue-form")
        close_dialog(browser)

        # a one-time pass, read from the page
        issue_in_page(browser, USER, lifetime="30m", one_time=True)
        visible(browser, "#issued-pass")
        groups = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#issued-pass .tap-pass-group")]
        the_pass = "-".join(groups)
        assert len(harness.normalize(the_pass)) == policy["length"], groups
        until = visible(browser, "#issued-until").text
        assert "for one sign-in" in until, until
        shown = tap.show(USER)
        assert shown["one_time"] and shown["usable"] and shown["issued_by"] == "root", shown
        shot(browser, "issued")
        # the control for the checks below: while shown, the DOM holds it
        assert contains_pass(d.execute_script("return document.documentElement.textContent"),
                             the_pass), "the check below cannot see the pass"
        close_dialog(browser)

        # gone from the page: the DOM of the page and of the shell
        # (textContent joins the groups' elements, as the dialog showed them)
        page_dom = d.page_source + d.execute_script(
            "return document.documentElement.outerHTML + document.documentElement.textContent")
        assert not contains_pass(page_dom, the_pass), "the pass is still in the page's DOM"
        page_storage = storage_dump(browser)
        d.switch_to.default_content()
        assert not contains_pass(d.page_source + d.execute_script(
            "return document.documentElement.textContent"), the_pass), "the pass is in the shell's DOM"
        shell_storage = storage_dump(browser)
        for where, dump in (("page", page_storage), ("shell", shell_storage)):
            assert not contains_pass(dump, the_pass), f"the pass is in the {where}'s storage: {dump}"
        d.switch_to.frame(d.find_element(By.CSS_SELECTOR, f'iframe[name="{PAGE_FRAME}"]'))

        # it signs in once through PAM, then is refused
        rc, out = pamtester(USER, the_pass)
        assert rc == 0 and "successfully authenticated" in out, out
        rc, out = pamtester(USER, the_pass)
        assert rc != 0 and "successfully authenticated" not in out, out
        assert tap.show(USER)["reason"] == "OneTimeUsed"

        # a lifetime past the bound: tapctl's own message, inline
        assert policy["max_lifetime"] != "30d", policy  # 30d is past the bound
        issue_in_page(browser, OTHER, lifetime="30d")
        shown_error = alert_text(browser, "#issue-error")
        direct = tapctl_direct(["issue", "--json", "--lifetime=30d", "--", OTHER])
        assert direct.returncode == 2, direct
        message = direct.stderr.strip()
        assert message.startswith("tapctl: ") and message in shown_error, (message, shown_error)
        shot(browser, "issue-error")
        close_dialog(browser)
        assert tap.show(OTHER)["usable"], "a refused issue changed the pass"

        # revoke the other user's pass in the page; tapctl show agrees
        row = visible(browser, f'#passes-table tr[data-user="{OTHER}"]')
        row.find_element(By.CSS_SELECTOR, "button.revoke").click()
        visible(browser, "#revoke-confirm")
        shot(browser, "revoke")
        visible(browser, "#revoke-confirm").click()
        visible(browser, f'#passes-table tr[data-user="{OTHER}"] td[data-reason="Revoked"]')
        shown = tap.show(OTHER)
        assert (shown["reason"], shown["usable"]) == ("Revoked", False), shown

        # the passes table filters and sorts
        type_into(browser, "#passes-filter input", OTHER)
        wait(browser).until(lambda _: [r.get_attribute("data-user") for r in d.find_elements(
            By.CSS_SELECTOR, "#passes-table tbody tr")] == [OTHER])
        visible(browser, "#passes-filter button[aria-label='Reset']").click()

        # keys per user, and the audit log newest first
        tab(browser, "Keys")
        type_into(browser, "#keys-user", USER)
        visible(browser, "#keys-show").click()
        visible(browser, "#admin-no-keys")
        shot(browser, "keys")
        tab(browser, "Audit log")
        type_into(browser, "#audit-user", OTHER)
        visible(browser, "#audit-load").click()
        wait(browser).until(lambda _: "revoke" in visible(browser, "#audit-table").text)
        events = [r.find_elements(By.TAG_NAME, "td")[1].text
                  for r in d.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")]
        records = tap.audit(OTHER)
        assert events == [r["event"] for r in reversed(records)], (events, records)
        shot(browser, "audit")

        console = browser.driver.get_log("browser")
        profile = browser.profile
    browser.quit()

    # nothing of the pass in Cockpit's log, syslog, the console or the profile on disk
    assert not contains_pass(ws.log_text(tail=10 ** 9), the_pass), "the pass is in cockpit-ws's log"
    lines = [t for _fac, _ident, t in syslog.since(mark)]
    assert not [t for t in lines if contains_pass(t, the_pass)], "the pass is in syslog"
    assert not [m for m in console if contains_pass(json.dumps(m), the_pass)], console
    assert profile_hits(profile, the_pass) == [], "the pass is in the browser's profile"


def test_user_sees_my_security_info_after_a_pass_sign_in(ws, accounts, browser):
    tap = accounts.tap
    p = tap.issue(USER, one_time=True)
    with evidence(browser, ws, "user"):
        out = browser.login(ws.url, USER, p["pass"])
        assert out.kind == "shell", out
        open_page(browser, ws, admin=False)
        info = visible(browser, "#me-pass")
        wait(browser).until(lambda _: info.get_attribute("data-reason") == "OneTimeUsed")
        assert "used (one-time)" in visible(browser, "#me-pass-state").text
        assert visible(browser, "#me-pass-one-time").text.startswith("yes, used")
        window = visible(browser, "#me-window").text
        assert window.startswith("Open until"), window
        enroll = visible(browser, "#me-enroll").text
        assert "Your enrollment window is open until" in enroll, enroll
        assert 'tapctl enroll --label "my key"' in visible(browser, "#me-enroll-usb input").get_attribute("value")
        signins = visible(browser, "#me-signins").text
        assert "signin.pass.success" in signins and "cockpit" in signins, signins
        visible(browser, "#me-no-keys")
        # limited access: no admin tabs for a user without sudo
        assert not browser.driver.find_elements(
            By.XPATH, '//*[@id="tap-tabs"]//button[normalize-space(.)="Passes"]')
        shot(browser, "my-security-info")


def test_a_user_name_with_shell_metacharacters_is_one_argument(ws, accounts, browser):
    marks = [WORLD.base / f"cockpit-page-pwned-{i}" for i in range(3)]
    for m in marks:
        m.unlink(missing_ok=True)
    name = (f"evil user; touch {marks[0]} && $(touch {marks[1]}) `touch {marks[2]}` "
            "| cat > /dev/null & '*")
    with evidence(browser, ws, "bad-input"):
        admin_login(browser, ws)
        issue_in_page(browser, name, lifetime="30m")
        shown_error = alert_text(browser, "#issue-error")
        direct = tapctl_direct(["issue", "--json", "--lifetime=30m", "--", name])
        message = direct.stderr.strip()
        assert direct.returncode == 4, direct
        assert name in message, message  # tapctl names the whole string: one argument
        assert message in shown_error, (message, shown_error)
        shot(browser, "bad-input")
        close_dialog(browser)
    time.sleep(0.5)
    assert [m for m in marks if m.exists()] == [], "a shell ran the user name"
