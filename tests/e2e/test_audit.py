"""Every sign-in leaves an audit record in the store (tapctl audit) and an
authpriv syslog line (caught by the sink bound at the namespace's private
/dev/log) — for success, failure and lock — and neither ever holds the pass.
"""

import json
import re

import harness

RHOST, TTY = "192.0.2.7", "pts/9"


def forms_of(pw):
    canon = harness.normalize(pw)
    return {pw, pw.lower(), canon, canon.lower()}


def test_audit_and_syslog_for_success_failure_and_lock(tap, syslog):
    mark = syslog.mark()
    p = tap.issue("tapuser1")
    pw = p["pass"]
    r = tap.auth("tapuser1", [pw], rhost=RHOST, tty=TTY)
    assert r.rc == "PAM_SUCCESS", r
    wrong = ["WRONG-PASS-%d" % i for i in range(3)]  # max_failures = 3
    for w in wrong:
        r = tap.auth("tapuser1", [w], rhost=RHOST, tty=TTY)
        assert r.rc == "PAM_AUTH_ERR", r

    # -- the store's audit trail
    records = tap.audit("tapuser1")
    events = [rec["event"] for rec in records]
    assert any("issue" in e for e in events), events
    assert sum("success" in e for e in events) == 1, events
    assert sum("fail" in e for e in events) == 3, events
    assert sum("lock" in e for e in events) == 1, events
    signins = [rec for rec in records if rec["event"].startswith("signin")]
    for rec in signins:
        assert rec["user"] == "tapuser1" and rec["rhost"] == RHOST and rec["tty"] == TTY, rec
        assert rec["service"].startswith("e2e-"), rec
    dump = json.dumps(records)
    for form in forms_of(pw):
        assert form not in dump
    # other users' records are not shown with --user
    assert all(rec["user"] == "tapuser1" for rec in records), records

    # -- syslog, facility authpriv
    lines = syslog.since(mark)
    module = [(fac, text) for fac, _, text in lines if "pam_tap(" in text]
    assert module and all(fac == harness.LOG_AUTHPRIV for fac, _ in module), module
    texts = [t for _, t in module if "tapuser1" in t]
    assert any(re.search(r"signed in|success", t, re.I) for t in texts), texts
    assert sum(bool(re.search(r"wrong|fail", t, re.I)) for t in texts) >= 3, texts
    assert any(re.search(r"lock", t, re.I) for t in texts), texts
    assert all(f"rhost={RHOST}" in t and f"tty={TTY}" in t for t in texts), texts
    everything = "\n".join(t for _, _, t in lines)
    for form in forms_of(pw):
        assert form not in everything, "the pass reached syslog"
    for w in wrong:  # nor do wrong guesses
        assert w not in everything and harness.normalize(w) not in everything


def test_audit_of_tapctl_actions(tap):
    tap.issue("tapuser2")
    tap.tapctl("revoke", "tapuser2")
    events = [rec["event"] for rec in tap.audit("tapuser2")]
    assert any("issue" in e for e in events) and any("revoke" in e for e in events), events
    # all users
    assert len(tap.audit()) >= 2


def test_show_and_list_json_shape(tap):
    p = tap.issue("tapuser3", lifetime="30m", one_time=True)
    for key in ("user", "pass", "start", "expires", "one_time", "usable", "reason"):
        assert key in p, p
    s = tap.show("tapuser3")
    for key in ("user", "start", "expires", "one_time", "usable", "reason", "failures"):
        assert key in s, s
    assert "pass" not in s and s["one_time"] is True and s["failures"] == 0
    listed = harness.parse_json_records(tap.tapctl("list", "--json").stdout)
    assert [x["user"] for x in listed] == ["tapuser3"], listed
    assert p["pass"] not in json.dumps(listed)


def test_rhost_and_tty_cannot_forge_fields_or_reach_the_terminal(tap, syslog):
    """An rhost or tty is whatever the application was told (a reverse DNS
    name, a client's claim): one with spaces and `=` must not add a field
    to the syslog line, and one with an escape sequence must reach neither
    syslog nor the admin's terminal (`tapctl audit`) raw."""
    pw = tap.issue("tapuser1")["pass"]
    forged = "evil user=root"
    clear = "\x1b[2J\x1b]0;owned\x07host"
    mark = syslog.mark()
    r = tap.auth("tapuser1", [pw], rhost=forged, tty='pts/1 tty="x"')
    assert r.rc == "PAM_SUCCESS", r
    r = tap.auth("tapuser1", ["WRONG-PASS-0"], rhost=clear)
    assert r.rc == "PAM_AUTH_ERR", r
    lines = [t for _, _, t in syslog.since(mark) if "pam_tap(" in t]
    [success] = [t for t in lines if "signed in" in t]
    assert harness.log_fields(success) == [("user", "tapuser1"), ("rhost", forged), ("tty", 'pts/1 tty="x"')], success
    assert 'rhost="evil user=root"' in success, success
    [failure] = [t for t in lines if "wrong pass" in t]
    assert "\x1b" not in failure and "\x07" not in failure, repr(failure)
    assert r'rhost="\x1b[2J\x1b]0;owned\x07host"' in failure, failure

    table = tap.tapctl("audit").stdout
    assert "\x1b" not in table and "\x07" not in table, repr(table)
    assert r"\x1b[2J\x1b]0;owned\x07host" in table, table
    assert forged in table
    # the JSON keeps the value exactly, escaped by JSON itself
    assert clear in [rec["rhost"] for rec in tap.audit("tapuser1")]
