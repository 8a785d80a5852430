"""Every tapctl command that names a user exits 4 (not found, README "Exit
status") for a name the system does not know, after the permission check, as
root (an admin) runs it. The store's records outlive an account: a removed
user's audit trail is still shown and a pass left behind still revoked.
"""

import contextlib

import pytest

NOT_FOUND = 4
UNKNOWN = "nosuchuser"

COMMANDS = [
    ("issue", UNKNOWN),
    ("issue", UNKNOWN, "--one-time", "--json"),
    ("show", UNKNOWN),
    ("show", UNKNOWN, "--json"),
    ("revoke", UNKNOWN),
    ("audit", "--user", UNKNOWN),
    ("audit", "--user", UNKNOWN, "--json"),
    ("keys", UNKNOWN),
    ("keys", UNKNOWN, "--json"),
    ("keys", "remove", UNKNOWN, "abcdef"),
]


def out(proc):
    return f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_unknown_user_exits_4(tap, args):
    proc = tap.tapctl(*args, check=False)
    assert proc.returncode == NOT_FOUND, out(proc)
    assert f'no such user "{UNKNOWN}"' in proc.stderr, out(proc)
    assert proc.stdout == "", out(proc)


def test_known_user_without_records_is_not_an_error(tap):
    proc = tap.tapctl("audit", "--user", "tapuser2", check=False)
    assert proc.returncode == 0, out(proc)


@contextlib.contextmanager
def passwd_entry(line):
    """A temporary account in the namespace's private /etc/passwd."""
    with open("/etc/passwd") as f:
        before = f.read()
    with open("/etc/passwd", "a") as f:
        f.write(line + "\n")
    try:
        yield
    finally:
        with open("/etc/passwd", "w") as f:
            f.write(before)


def test_removed_account_keeps_its_trail_and_its_pass_can_be_revoked(tap):
    with passwd_entry("tapgone:x:4990:4990:removed later:/nonexistent:/usr/sbin/nologin"):
        tap.issue("tapgone")
    # the account is gone now; its pass and records are not
    audit = tap.tapctl("audit", "--user", "tapgone", check=False)
    assert audit.returncode == 0 and "pass.issued" in audit.stdout, out(audit)
    revoke = tap.tapctl("revoke", "tapgone", check=False)
    assert revoke.returncode == 0, out(revoke)
    again = tap.tapctl("revoke", "tapgone", check=False)
    assert again.returncode == NOT_FOUND and 'no such user "tapgone"' in again.stderr, out(again)
