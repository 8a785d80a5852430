#!/usr/bin/env bash
# Build pam_tap, install it on this machine, and show a pass sign-in working.
#
#   sudo ./install.sh
#
# Installs: pam_tap.so into the PAM module directory, tapctl (setgid to the
# store's group pam-tap) into /usr/local/bin, the security-key helper into
# /usr/libexec/pam_tap, the policy
# /etc/security/pam_tap.toml (an existing one is kept), the store
# /var/lib/pam_tap/tap.db, and a demo PAM service /etc/pam.d/pam_tap-demo
# used by a demo account tap-demo. No existing PAM service is changed: to use
# pam_tap for login, sshd, su or sudo, add the stack lines from README.md.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi
command -v cargo >/dev/null || { echo "install.sh: cargo (Rust) is needed; see https://rustup.rs" >&2; exit 1; }

echo "==> build dependencies"
export DEBIAN_FRONTEND=noninteractive
need=()
for p in gcc libc6-dev pkg-config libpam0g-dev libudev-dev pamtester; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi

echo "==> build"
cargo build --release -p pam_tap -p tapctl -p tap-keyhelper

echo "==> install"
moddir="/usr/lib/$(gcc -print-multiarch)/security"
install -D -o root -g root -m 0644 target/release/libpam_tap.so "$moddir/pam_tap.so"
getent group pam-tap >/dev/null || groupadd --system pam-tap
install -o root -g pam-tap -m 2755 target/release/tapctl /usr/local/bin/tapctl
install -D -o root -g root -m 0755 target/release/pam_tap-keyhelper /usr/libexec/pam_tap/pam_tap-keyhelper
if [ ! -e /etc/security/pam_tap.toml ]; then
    install -D -o root -g root -m 0644 packaging/common/pam_tap.toml /etc/security/pam_tap.toml
fi
tapctl policy check >/dev/null
tapctl init
cat > /etc/pam.d/pam_tap-demo <<'PAM'
# Demo service for pam_tap: a Temporary Access Pass or nothing.
auth     [success=done default=die]  pam_tap.so
auth     requisite                   pam_deny.so
account  required                    pam_permit.so
PAM
id tap-demo >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tap-demo
echo "    pam_tap.so -> $moddir, tapctl -> /usr/local/bin, key helper -> /usr/libexec/pam_tap, policy /etc/security/pam_tap.toml"

echo
echo "==> demo: issue a one-time pass to tap-demo and sign in with it"
json=$(tapctl issue tap-demo --one-time --lifetime 10m --json)
pass=$(printf '%s\n' "$json" | sed -n 's/^ *"pass": "\(.*\)",$/\1/p')
echo "    tapctl issued: $pass"
echo "--- first sign-in (the pass):"
printf '%s\n' "$pass" | pamtester -v pam_tap-demo tap-demo authenticate
echo
echo "--- second sign-in (the same one-time pass, now used):"
if printf '%s\n' "$pass" | pamtester pam_tap-demo tap-demo authenticate; then
    echo "install.sh: a used one-time pass was accepted: this is a bug" >&2
    exit 1
fi
echo
tapctl show tap-demo
echo
tapctl audit --user tap-demo
echo
echo "pam_tap is installed. Next: README.md, 'Using it for login, sshd, su and sudo'."
