#!/usr/bin/env bash
# Install everything the pam_tap test tiers need on Debian 12.  Idempotent:
# when every package is already installed it changes nothing and needs no
# network.  Run as root.
#
#   tests/install-deps.sh
#
# Rust itself (cargo, rustfmt, clippy) comes with the machine's toolchain
# (rustup: root's, or that of the user who ran sudo and owns the clone; see
# scripts/cargo-env.sh); this script only checks for it and adds rustfmt and
# clippy with rustup when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    # building: the PAM driver and helper module (gcc -lpam), rusqlite's bundled SQLite
    gcc libc6-dev libpam0g-dev pkg-config
    # the key helper (pam_tap-keyhelper): hidapi's hidraw backend links libudev
    libudev-dev
    # libpam itself and the stock modules the test stacks use (pam_permit, pam_deny, pam_unix)
    libpam0g libpam-modules libpam-runtime
    # tier 2: real libpam via pamtester; tier 3: a real sshd and ssh client
    # (openssh-client also brings ssh-keygen and ssh-sk-helper for tests/sk-provider)
    pamtester openssh-server openssh-client
    # the e2e runner (Debian's python3 and pytest, not pip)
    python3 python3-pytest
    # unshare, setpriv, mount (private mount namespace, dropping to a test user), script, su, sudo
    util-linux mount bsdutils login sudo
    procps ca-certificates
    # Cockpit as a real client (test_cockpit.py): cockpit-ws (the login page,
    # cockpit-session and /etc/pam.d/cockpit), cockpit-bridge and
    # cockpit-system (the overview page), driven by headless Chromium through
    # chromedriver and Selenium; a font so the screenshot shows text
    cockpit-ws cockpit-bridge cockpit-system
    chromium chromium-driver python3-selenium fonts-liberation
    # test_journald.py: a private systemd-journald and journalctl (never started as a service)
    systemd
    # the packaging and newcomer tiers' Debian roots
    debootstrap
    # the PostgreSQL store's tests (store/tests/postgres.rs): the server's
    # binaries (initdb, postgres, psql), started by the tests in a temporary
    # directory; never a cluster or service of the host (see below). libssl-dev:
    # the PostgreSQL client's TLS (openssl-sys links the system's OpenSSL)
    postgresql postgresql-client libssl-dev
    # docs/fleet.md's commands, run as written by test_fleet_ops.py: jq reads tapctl's JSON
    jq
    # tap-bench: valgrind for --callgrind (instructions per sign-in), and
    # pam_google_authenticator, the peer module case (a) is printed beside
    valgrind libpam-google-authenticator
    # the fuzz tier (fuzz/run.sh): libfuzzer-sys builds libFuzzer, which is C++
    g++
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi
# Before any apt work: without Rust nothing here can run, and it says what to do.
# shellcheck source=../scripts/cargo-env.sh
source scripts/cargo-env.sh "$(pwd)" || exit 1

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# The Cockpit page's build (cockpit/build.sh, test_cockpit_page.py):
# Debian's nodejs and npm. Checked by command, not by package: a nodejs
# that bundles its own npm (e.g. NodeSource's) conflicts with Debian's npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Never let a package start a service on the host (openssh-server would
    # start a real sshd on port 22): the tests start their own sshd, on
    # 127.0.0.1, inside a private namespace.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    # postgresql-common's postinst would also create a "main" cluster (with
    # its files under /etc/postgresql and /var/lib/postgresql): the tests make
    # their own, so ask it for none. Its createcluster.conf reads this directory.
    if printf '%s\n' "${missing[@]}" | grep -qx postgresql; then
        mkdir -p /etc/postgresql-common/createcluster.d
        printf '# pam_tap tests/install-deps.sh: the tests start their own clusters\ncreate_main_cluster = false\n' \
            > /etc/postgresql-common/createcluster.d/pam-tap-no-main-cluster.conf
    fi
    for attempt in 1 2 3; do
        if apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; then
            break
        fi
        if [ "$attempt" = 3 ]; then
            echo "install-deps: apt-get failed" >&2
            exit 1
        fi
        sleep $((attempt * 5))
    done
    # cockpit-ws's postinst enables cockpit.socket (port 9090) for the next
    # boot; the test starts its own cockpit-ws. Undo that only when this
    # script installed it, never an administrator's own Cockpit.
    if printf '%s\n' "${missing[@]}" | grep -qx cockpit-ws && command -v systemctl >/dev/null; then
        systemctl --no-reload disable cockpit.socket
    fi
else
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
fi

# The Rust toolchain is the machine's (rustup); only its components are added here.
rustup=$(dirname "$PAM_TAP_CARGO")/rustup
for sub in fmt clippy; do
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        component=$( [ "$sub" = fmt ] && echo rustfmt || echo clippy )
        if [ -x "$rustup" ] && [ -z "${PAM_TAP_RUSTUP_HOME:-}" ]; then
            as_cargo_user env HOME="$PAM_TAP_CARGO_HOME" "$rustup" component add "$component"
        else
            echo "install-deps: cargo $sub is not available; as the toolchain's owner run: rustup component add $component" >&2
            exit 1
        fi
    fi
done
echo "install-deps: cargo $(cargo --version | cut -d' ' -f2), run as $PAM_TAP_CARGO_USER ($PAM_TAP_CARGO)"

/usr/bin/python3 -m pytest --version >/dev/null
echo "install-deps: ok"
