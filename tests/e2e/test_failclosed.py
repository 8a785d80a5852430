"""Fail-closed rows of the behaviour table in README.md, each proven with the "gate" stack:

    auth [success=done ignore=ignore default=die] pam_tap.so policy=P
    auth optional pam_e2e.so mark=fellthrough
    auth required pam_permit.so

where a wrong PAM_IGNORE from pam_tap would let the user in (see
test_00_harness.py::test_gate_stack_lets_a_wrong_ignore_in).  In every case
the user holds a valid pass and types it: the only thing wrong is the
policy, the store or the conversation.  Each row asserts the exact code,
that the user is not let in, and that pam_tap logged an authpriv line.
"""

import os
import sqlite3
import subprocess
import threading
import time

import pytest

import harness

UNAVAIL = "PAM_AUTHINFO_UNAVAIL"


def assert_closed(r, code=UNAVAIL):
    assert r.rc != "PAM_SUCCESS", f"LET IN: {r}"
    assert not r.fellthrough, f"pam_tap returned PAM_IGNORE on an error path: {r}"
    assert r.rc == code, r


def signin_closed(tap, syslog, user="tapuser1", answers=None, code=UNAVAIL, policy=None, **kw):
    """Sign in with the gate stack; assert it failed closed and was logged."""
    mark = syslog.mark()
    r = tap.auth(user, answers if answers is not None else [tap.pw], stack="gate",
                 policy=policy, **kw)
    assert_closed(r, code)
    logged = [t for fac, sev, t in syslog.since(mark, settle=0.1)
              if fac == harness.LOG_AUTHPRIV and "pam_tap" in t]
    assert logged, f"no authpriv line from pam_tap for {r.rc}"
    if code == UNAVAIL:
        assert any(sev <= 3 for fac, sev, t in syslog.since(mark, settle=0)
                   if fac == harness.LOG_AUTHPRIV and "pam_tap" in t), logged
    return r


@pytest.fixture
def armed(tap):
    """A tap world in which tapuser1 holds a valid pass (tap.pw)."""
    tap.pw = tap.issue("tapuser1")["pass"]
    # sanity: the same stack lets the right pass in while nothing is broken
    r = tap.auth("tapuser1", [tap.pw], stack="gate")
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r
    return tap


# -- the policy ---------------------------------------------------------------

def test_policy_corrupt_toml(armed, syslog):
    armed.write_policy(text="enabled = true\n[pass\nlength = \n")
    signin_closed(armed, syslog)


def test_policy_unknown_top_level_key(armed, syslog):
    text = armed.policy.read_text()
    armed.write_policy(text="no_such_key = 1\n" + text)
    signin_closed(armed, syslog)


def test_policy_unknown_key_in_a_table(armed, syslog):
    text = armed.policy.read_text().replace("[pass]\n", "[pass]\nfrobnicate = true\n")
    armed.write_policy(text=text)
    signin_closed(armed, syslog)


@pytest.mark.parametrize("bad", [
    {"passes": {"length": 7}},
    {"passes": {"max_lifetime": "31d"}},
    {"passes": {"min_lifetime": "2h", "max_lifetime": "1h"}},
    {"passes": {"max_failures": 0}},
    {"passes": {"default_lifetime": "soon"}},
    {"top": {"store": "relative/tap.db"}},
    {"top": {"enabled": "yes"}},
], ids=["length7", "max31d", "min>max", "maxfail0", "baddur", "relstore", "enabledstr"])
def test_policy_invalid_value(armed, syslog, bad):
    armed.write_policy(**bad)
    signin_closed(armed, syslog)


def test_policy_not_root_owned(armed, syslog):
    os.chown(armed.policy, harness.USERS["tapuser1"][0], 0)
    signin_closed(armed, syslog)


def test_policy_group_writable(armed, syslog):
    os.chmod(armed.policy, 0o664)
    signin_closed(armed, syslog)


def test_policy_world_writable(armed, syslog):
    os.chmod(armed.policy, 0o646)
    signin_closed(armed, syslog)


def test_policy_in_a_world_writable_directory(armed, syslog):
    d = armed.dir / "open"
    d.mkdir()
    os.chmod(d, 0o1777)
    moved = d / "pam_tap.toml"
    os.rename(armed.policy, moved)
    signin_closed(armed, syslog, policy=moved)


def test_policy_below_a_directory_a_user_can_write(armed, syslog):
    """Every directory up to / counts: a user who may write the policy's
    grandparent could swap in a directory of their own. Refused (fail
    closed) though the file and its own directory are root's alone."""
    grand = armed.dir / "grand"
    (grand / "parent").mkdir(parents=True)
    moved = grand / "parent" / "pam_tap.toml"
    os.rename(armed.policy, moved)
    os.chown(grand, harness.USERS["tapuser2"][0], -1)
    signin_closed(armed, syslog, policy=moved)


def test_policy_through_a_link_into_a_directory_a_user_can_write(armed, syslog):
    """A link's target is checked too, and every directory on its way."""
    d = armed.dir / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    os.rename(armed.policy, d / "pam_tap.toml")
    link = armed.dir / "linked.toml"
    os.symlink(d / "pam_tap.toml", link)
    signin_closed(armed, syslog, policy=link)


def test_policy_through_a_trusted_link_works(armed):
    real = armed.dir / "real"
    real.mkdir()
    os.rename(armed.policy, real / "pam_tap.toml")
    link = armed.dir / "linked.toml"
    os.symlink("real/pam_tap.toml", link)
    r = armed.auth("tapuser1", [armed.pw], stack="gate", policy=link)
    assert r.rc == "PAM_SUCCESS" and not r.fellthrough, r


def test_policy_is_a_fifo(armed, syslog):
    """Nothing is read from a FIFO and opening it does not wait for a
    writer: refused at once."""
    os.unlink(armed.policy)
    os.mkfifo(armed.policy, 0o644)
    t0 = time.monotonic()
    signin_closed(armed, syslog)
    assert time.monotonic() - t0 < 5


def test_policy_missing(armed, syslog):
    os.unlink(armed.policy)
    signin_closed(armed, syslog)


def test_policy_is_a_directory(armed, syslog):
    os.unlink(armed.policy)
    os.mkdir(armed.policy)
    signin_closed(armed, syslog)


def test_policy_relative_path_argument(armed, syslog):
    signin_closed(armed, syslog, policy="pam_tap.toml")


def test_policy_huge(armed, syslog):
    text = armed.policy.read_text()
    armed.write_policy(text=text + ("# padding padding padding padding padding\n" * 50_000))
    signin_closed(armed, syslog)


def test_policy_not_utf8(armed, syslog):
    armed.policy.write_bytes(armed.policy.read_bytes() + b"# \xff\xfe\n")
    signin_closed(armed, syslog)


def test_policy_with_nul_byte(armed, syslog):
    armed.policy.write_bytes(b"enabled = true\x00\n" + armed.policy.read_bytes())
    signin_closed(armed, syslog)


# -- the store ----------------------------------------------------------------

def wipe_sidecars(store):
    for suffix in ("-wal", "-shm", "-journal"):
        try:
            os.unlink(str(store) + suffix)
        except FileNotFoundError:
            pass


def test_a_missing_store_is_created_only_where_tapd_owns_the_directory(armed, syslog):
    """tapd creates a missing store, private to itself, in its own state
    directory; a store named in a directory it does not own (here root's,
    as a typo would) fails closed and nothing is created."""
    elsewhere = armed.dir / "nowhere" / "tap.db"
    pol = armed.write_policy("missing-store.toml", top={"store": str(elsewhere)})
    signin_closed(armed, syslog, policy=pol)
    assert not elsewhere.exists() and not elsewhere.parent.exists()
    fresh = armed.dir / "store" / "fresh.db"
    pol = armed.write_policy("fresh-store.toml", top={"store": str(fresh)})
    r = armed.auth("tapuser1", [armed.pw], stack="probe", policy=pol)
    assert r.outcome == "PAM_IGNORE", r  # a new store holds no pass
    st = fresh.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (harness.USERS[harness.DAEMON_USER][0], 0o600)


def test_store_garbage(armed, syslog):
    wipe_sidecars(armed.store)
    armed.store.write_bytes(os.urandom(8192))
    signin_closed(armed, syslog)


def test_store_empty_file(armed, syslog):
    """A zero-length file is an empty SQLite database: no tables is not 'no pass'."""
    st = os.stat(armed.store)
    wipe_sidecars(armed.store)
    armed.store.write_bytes(b"")
    assert os.stat(armed.store)[4:6] == st[4:6] and os.stat(armed.store).st_mode == st.st_mode
    signin_closed(armed, syslog)


def checkpoint(store):
    """Move everything from the WAL into the main file (as a clean shutdown would)."""
    con = sqlite3.connect(store)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def test_store_truncated(armed, syslog):
    checkpoint(armed.store)
    data = armed.store.read_bytes()
    page = int.from_bytes(data[16:18], "big")  # the header's page size
    assert len(data) >= 4 * page, (len(data), page)
    wipe_sidecars(armed.store)
    armed.store.write_bytes(data[: max(len(data) // 3, 200)])
    signin_closed(armed, syslog)


def test_store_foreign_sqlite_database(armed, syslog):
    st = os.stat(armed.store)
    wipe_sidecars(armed.store)
    os.unlink(armed.store)
    con = sqlite3.connect(armed.store)
    con.execute("CREATE TABLE something_else (x)")
    con.commit()
    con.close()
    os.chown(armed.store, st.st_uid, st.st_gid)  # the store's owner and mode: only the content is foreign
    os.chmod(armed.store, st.st_mode & 0o7777)
    signin_closed(armed, syslog)


def test_store_is_a_directory(armed, syslog):
    wipe_sidecars(armed.store)
    os.unlink(armed.store)
    os.mkdir(armed.store)
    signin_closed(armed, syslog)


def test_store_owned_by_another_user(armed, syslog):
    """Checked at every request, not only when tapd opened the store."""
    os.chown(armed.store, harness.USERS["tapuser1"][0], os.stat(armed.store).st_gid)
    signin_closed(armed, syslog)


def test_store_world_writable(armed, syslog):
    os.chmod(armed.store, 0o666)
    signin_closed(armed, syslog)


def test_store_unreadable_to_an_unprivileged_process(tap, syslog):
    """pam_tap in a non-root host process (e.g. a screen locker) cannot read
    the store: it says so and fails closed."""
    tap.pw = tap.issue("tapuser2")["pass"]
    signin_closed(tap, syslog, user="tapuser2", as_user="tapuser2")


def test_store_locked_by_another_writer(tap, syslog):
    """A store held locked: the one-time pass cannot be consumed, so it must
    not sign in — and once the lock is gone nothing is lost."""
    tap.pw = tap.issue("tapuser1", one_time=True)["pass"]
    con = sqlite3.connect(tap.store, timeout=1, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")  # the write lock; tapd's reads go on
    con.execute("CREATE TABLE IF NOT EXISTS e2e_lock_holder (x)")
    try:
        t0 = time.monotonic()
        signin_closed(tap, syslog, timeout=120)
        assert time.monotonic() - t0 < 60, "the busy timeout should be bounded"
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert tap.show("tapuser1")["usable"] is True
    r = tap.auth("tapuser1", [tap.pw])
    assert r.rc == "PAM_SUCCESS", r


# -- the conversation -----------------------------------------------------------

@pytest.mark.parametrize("conv", ["fail", "null", "nullresp"])
def test_conversation_failure(armed, syslog, conv):
    r = signin_closed(armed, syslog, answers=[], conv=conv, code="PAM_CONV_ERR")
    assert r.prompts == [harness.PROMPT], r
    assert armed.show("tapuser1")["failures"] == 0


def test_conversation_with_no_answer_left(armed, syslog):
    r = signin_closed(armed, syslog, answers=[], code="PAM_CONV_ERR")
    assert r.raw["exhausted"], r


def test_conversation_failure_with_try_first_pass_and_no_token(armed, syslog):
    """try_first_pass asks when no earlier module collected a token."""
    signin_closed(armed, syslog, answers=[], conv="fail", code="PAM_CONV_ERR",
                  args="try_first_pass")
