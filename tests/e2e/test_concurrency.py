"""One one-time pass, many simultaneous sign-ins with it: exactly one gets in.

Each sign-in is its own process (as sshd forks one per connection), with the
realistic stack pam_tap + pam_deny; all of them are lined up after pam_start
and released together, so their Argon2 checks and store writes overlap.
"""

import os
import time

import harness

N = 20


def race(tap, user, pw, n=N):
    svc = tap.service("deny")
    go = tap.dir / f"go-{time.monotonic_ns()}"
    procs = [harness.drive(svc, user, [pw], wait_file=go, popen=True) for _ in range(n)]
    time.sleep(0.5)  # let every process reach its wait
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        results.append(harness.parse_driver(p.returncode, out, err))
    return results


def test_one_time_pass_parallel_signins_exactly_one_succeeds(tap):
    p = tap.issue("tapuser1", one_time=True)
    results = race(tap, "tapuser1", p["pass"])
    codes = [r.rc for r in results]
    raced = sum(1 for r in results if r.rc == "PAM_AUTH_ERR" and not r.fellthrough)
    print(f"{raced} sign-ins lost the race inside pam_tap; "
          f"{sum(r.fellthrough for r in results)} found the pass already used")
    assert codes.count("PAM_SUCCESS") == 1, codes
    assert codes.count("PAM_AUTH_ERR") == N - 1, codes  # no other error: no busy store, no crash
    s = tap.show("tapuser1")
    assert s["usable"] is False and s["reason"] == "OneTimeUsed", s
    # a failed racer is never counted as a wrong guess
    assert s["failures"] == 0, s
    audit = tap.audit("tapuser1")
    successes = [a for a in audit if "success" in a.get("event", "")]
    assert len(successes) == 1, audit


def test_reusable_pass_parallel_signins_all_succeed(tap):
    """The same race with a reusable pass: the store copes, everyone is in."""
    p = tap.issue("tapuser2")
    results = race(tap, "tapuser2", p["pass"], n=16)
    codes = [r.rc for r in results]
    assert codes == ["PAM_SUCCESS"] * 16, codes
    assert os.path.exists(tap.store)
