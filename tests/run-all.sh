#!/usr/bin/env bash
# Every pam_tap test tier, in order:
#   1. cargo fmt --check
#   2. cargo clippy --workspace --all-targets -- -D warnings
#   3. cargo test --workspace                 (core unit tests, injected time);
#      then each cargo-fuzz target for FUZZ_SECONDS (20) from its seeds
#   4. cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper (the .so,
#      and tapctl under test, built as packaging/build.sh builds them: with
#      only the shipped crates' features), then -p tap-bench -p tap-softkey;
#      and the Cockpit page (cockpit/build.sh: npm ci, esbuild)
#   5. end-to-end: the release pam_tap.so through real libpam (PAM driver and
#      pamtester), real sshd + ssh, su and sudo — pytest in tests/e2e, inside a
#      private mount namespace (the host's /etc is never written)
#   6. packages: packaging/test.sh makes the .deb and .rpm from the release
#      build of step 4, installs the .deb with apt into a debootstrap root
#      and signs in there (not with --e2e-only)
#   7. newcomer: tests/fresh-root.sh runs the README's first command,
#      `sudo ./install.sh`, exactly as written, in a fresh debootstrap root
#      with a clone of this commit, and signs in there (not with --e2e-only)
#
# Usage: tests/run-all.sh [--e2e-only] [-- PYTEST ARGS...]
# Needs root (the e2e tier mounts and runs sshd); installs its own
# dependencies with tests/install-deps.sh. Run through sudo by the user who
# owns the clone, cargo runs as that user with their rustup toolchain
# (scripts/cargo-env.sh); everything else runs as root.
# Runs every step even after a failure; exits non-zero if any failed, and
# closes with "run-all: N passed, N failed" (tests counted across cargo test,
# the e2e tier, the packaging test and the newcomer test; a failed
# fmt/clippy/build step counts as one failure).
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR=never PYTHONDONTWRITEBYTECODE=1
if [ "$(id -u)" -ne 0 ]; then
    echo "run-all: run as root (sudo tests/run-all.sh)" >&2
    exit 1
fi
# shellcheck source=../scripts/cargo-env.sh
source scripts/cargo-env.sh "$ROOT" || exit 1
LOGDIR="$ROOT/target/run-all"
as_cargo_user mkdir -p "$LOGDIR"

E2E_ONLY=0
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --e2e-only) E2E_ONLY=1 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) echo "usage: $0 [--e2e-only] [-- PYTEST ARGS...]" >&2; exit 2 ;;
    esac
    shift
done

# Set-up is part of the one test command: a fresh Debian 12 machine needs
# nothing else (idempotent; no network once everything is installed).
tests/install-deps.sh || { echo "run-all: tests/install-deps.sh failed" >&2; exit 1; }

passed=0
failed=0
declare -a SUMMARY=()
START=$(date +%s)

step() { # name, command...
    local name=$1; shift
    local t0=$SECONDS
    echo
    echo "==> $name: $*"
    if "$@"; then
        SUMMARY+=("ok    $name ($((SECONDS - t0))s)")
        return 0
    else
        SUMMARY+=("FAIL  $name ($((SECONDS - t0))s)")
        return 1
    fi
}

count_cargo_tests() { # log file: adds up its "test result:" lines
    local p f
    read -r p f < <(awk '/^test result: /{for(i=1;i<NF;i++){if($(i+1)~/^passed/)p+=$i; if($(i+1)~/^failed/)f+=$i}} END{print p+0, f+0}' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
}

if [ "$E2E_ONLY" = 0 ]; then
    step "cargo fmt" cargo fmt --all -- --check || failed=$((failed + 1))
    step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings || failed=$((failed + 1))
    if step "cargo test" bash -c "set -o pipefail; cargo test --workspace 2>&1 | tee '$LOGDIR/cargo-test.log'"; then
        count_cargo_tests "$LOGDIR/cargo-test.log"
    else
        count_cargo_tests "$LOGDIR/cargo-test.log"
        # a build failure prints no "test result" line: count it once
        grep -qE '^test result: .* [1-9][0-9]* failed' "$LOGDIR/cargo-test.log" || failed=$((failed + 1))
    fi
    # Every fuzz target for a short while from the committed seeds: what
    # tapd, tapctl and the module read from untrusted hands (fuzz/README.md).
    # A crash or hang fails the tier; its input lands in fuzz/artifacts/.
    step "fuzz (each target ${FUZZ_SECONDS:-20} s, fuzz/run.sh)" \
        bash -c "set -o pipefail; fuzz/run.sh ${FUZZ_SECONDS:-20} 2>&1 | tee '$LOGDIR/fuzz.log'" ||
        failed=$((failed + 1))
fi
# The shipped crates on their own: with the whole workspace, test-only members
# would add features to their dependencies (serde_json's preserve_order, ...),
# and the binaries under test would not be the ones the packages ship.
step "cargo build --release (shipped crates)" cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper ||
    failed=$((failed + 1))
step "cargo build --release (bench, soft key)" cargo build --release -p tap-bench -p tap-softkey -p tap-sk-provider ||
    failed=$((failed + 1))
step "Cockpit page (cockpit/build.sh: npm ci, esbuild)" cockpit/build.sh ||
    failed=$((failed + 1))

# The e2e tier: pytest inside a private mount namespace (conftest.py also
# checks, overlays /etc, /run, /var and /dev, and proves the host's /etc is
# untouched before it adds users or PAM service files).
JUNIT="$LOGDIR/e2e-junit.xml"
rm -f "$JUNIT"
step "e2e (pytest, private mount namespace)" \
    unshare --mount --propagation private -- \
    /usr/bin/python3 -m pytest -c tests/e2e/pytest.ini tests/e2e -v \
    --junitxml="$JUNIT" "${PYTEST_ARGS[@]}"
e2e_rc=$?
if [ -f "$JUNIT" ]; then
    read -r jt jf je js < <(/usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
print(*(sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")))
' "$JUNIT")
    passed=$((passed + jt - jf - je - js))
    failed=$((failed + jf + je))
    if [ "$e2e_rc" != 0 ] && [ $((jf + je)) = 0 ]; then
        failed=$((failed + 1)) # e.g. no test collected (pytest exit 5) or set-up refused
    fi
else
    failed=$((failed + 1))
fi

# A tier script that ends with "NAME: N passed, N failed": run it, log it,
# add its counts.
counted_step() { # title, count name, log file, command...
    local title=$1 name=$2 log=$3 rc p f; shift 3
    step "$title" bash -c 'set -o pipefail; log=$1; shift; "$@" 2>&1 | tee "$log"' _ "$log" "$@"
    rc=$?
    read -r p f < <(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\1 \2/p" "$log" | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
        failed=$((failed + 1)) # the script stopped before its count
    fi
}

if [ "$E2E_ONLY" = 0 ]; then
    # Tier 6: packages made from the release build above (no second build),
    # the .deb installed with apt into a fresh Debian root (debootstrap,
    # cached in /var/cache/pam_tap-ci), the 0.1 upgrade, the .rpm inspected.
    counted_step "packaging (deb in a debootstrap root, rpm -qp)" packaging "$LOGDIR/packaging.log" \
        packaging/test.sh --reuse-release
    # Tier 7: the README's `sudo ./install.sh`, as a newcomer runs it.
    counted_step "newcomer (sudo ./install.sh in a fresh debootstrap root)" fresh-root "$LOGDIR/fresh-root.log" \
        tests/fresh-root.sh
fi

# Through sudo, the clone is the user's: what root wrote into it here (logs,
# packages, the debootstrap tarballs) is given back, symbolic links not
# followed; a Debian root kept for inspection (PAM_TAP_KEEP_ROOT) stays root's.
if [ "$PAM_TAP_CARGO_USER" != root ]; then
    for path in target/run-all target/packages packaging/dist; do
        [ -e "$path" ] && chown -R --no-dereference "$PAM_TAP_CARGO_USER:" "$path"
    done
    if [ -d packaging/.cache ]; then
        chown --no-dereference "$PAM_TAP_CARGO_USER:" packaging/.cache
        find packaging/.cache -mindepth 1 -maxdepth 1 ! -name run ! -name fresh-root \
            -exec chown -R --no-dereference "$PAM_TAP_CARGO_USER:" {} +
    fi
fi

echo
echo "==> summary ($(( $(date +%s) - START ))s)"
for line in "${SUMMARY[@]}"; do echo "    $line"; done
echo "run-all: $passed passed, $failed failed"
[ "$failed" = 0 ]
