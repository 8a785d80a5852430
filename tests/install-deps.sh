#!/usr/bin/env bash
# Install everything the pam_tap test tiers need on Debian 12.  Idempotent:
# when every package is already installed it changes nothing and needs no
# network.  Run as root.
#
#   tests/install-deps.sh
#
# Rust itself (cargo, rustfmt, clippy) comes with the machine's toolchain;
# this script only checks for it.
set -euo pipefail

PACKAGES=(
    # building: the PAM driver and helper module (gcc -lpam), rusqlite's bundled SQLite
    gcc libc6-dev libpam0g-dev pkg-config
    # the key helper (pam_tap-keyhelper): hidapi's hidraw backend links libudev
    libudev-dev
    # libpam itself and the stock modules the test stacks use (pam_permit, pam_deny, pam_unix)
    libpam0g libpam-modules libpam-runtime
    # tier 2: real libpam via pamtester; tier 3: a real sshd and ssh client
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
)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

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

# The Rust toolchain is the machine's (rustup); nothing can be downloaded for it here.
for tool in cargo rustc; do
    command -v "$tool" >/dev/null || { echo "install-deps: $tool not found (install Rust with rustup)" >&2; exit 1; }
done
for sub in fmt clippy; do
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null; then
            rustup component add "$( [ "$sub" = fmt ] && echo rustfmt || echo clippy )"
        else
            echo "install-deps: cargo $sub not available" >&2
            exit 1
        fi
    fi
done

/usr/bin/python3 -m pytest --version >/dev/null
echo "install-deps: ok"
