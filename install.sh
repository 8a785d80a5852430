#!/usr/bin/env bash
# Build pam_tap, install it on this machine, and show a pass sign-in working.
#
#   sudo ./install.sh
#
# Installs: pam_tap.so into the PAM module directory, tapctl into
# /usr/local/bin, the daemon tapd into /usr/local/sbin, the security-key
# helper into /usr/libexec/pam_tap, the manual pages tapctl(1) (with one page
# per subcommand), tapd(8), pam_tap(8) and pam_tap.toml(5) into
# /usr/local/share/man, the policy /etc/security/pam_tap.toml (an existing
# one is kept), the system user pam-tap that tapd runs as and its store
# directory /var/lib/pam_tap (0700), and a demo PAM service
# /etc/pam.d/pam_tap-demo used by a demo account tap-demo. No existing PAM
# service is changed: to use pam_tap for login, sshd, su or sudo, add the
# stack lines from README.md.
#
# tapd: with systemd running, pam-tap.socket and pam-tap.service go to
# /etc/systemd/system (ExecStart= pointing at /usr/local/sbin/tapd) and the
# socket is enabled and started. Without systemd (a container, a chroot),
# install.sh starts tapd itself in the background as pam-tap, and says so: it
# then runs until stopped and does not come back after a reboot.
#
# Rust: cargo is found where rustup puts it, for root or for the user who ran
# sudo (scripts/cargo-env.sh). When that user owns this clone, the build runs
# as them, with their toolchain, and root only installs.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi
# shellcheck source=scripts/cargo-env.sh
source scripts/cargo-env.sh "$repo" || exit 1

echo "==> build dependencies (apt, only what is missing)"
export DEBIAN_FRONTEND=noninteractive
need=()
for p in gcc libc6-dev pkg-config libpam0g-dev libudev-dev libssl-dev pamtester ca-certificates procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    echo "    installing ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> build (cargo build --release, as $PAM_TAP_CARGO_USER, with $PAM_TAP_CARGO)"
cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper
# tapctl's manual pages are written from its command-line definition by
# packaging/gen (as for the packages); its own lock file starts as the
# workspace's, so it reads the very crates just built.
as_cargo_user cp --remove-destination Cargo.lock packaging/gen/Cargo.lock
cargo build --release --manifest-path packaging/gen/Cargo.toml --target-dir target

echo "==> install"
moddir="/usr/lib/$(gcc -print-multiarch)/security"
install -D -o root -g root -m 0644 target/release/libpam_tap.so "$moddir/pam_tap.so"
# tapd's system user and group (an earlier install made the group only).
getent group pam-tap >/dev/null || groupadd --system pam-tap
getent passwd pam-tap >/dev/null ||
    useradd --system --gid pam-tap --home-dir /var/lib/pam_tap --no-create-home \
        --shell /usr/sbin/nologin --comment "pam_tap daemon (tapd)" pam-tap
# sshd's AuthorizedKeysCommandUser for `tapctl authorized-keys` (pam_tap(8)).
getent passwd pam-tap-ssh >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin --comment "pam_tap AuthorizedKeysCommand user" pam-tap-ssh
# tapctl is a plain client of tapd (an earlier install made it set-group-id).
install -o root -g root -m 0755 target/release/tapctl /usr/local/bin/tapctl
install -o root -g root -m 0755 target/release/tapd /usr/local/sbin/tapd
install -D -o root -g root -m 0755 target/release/pam_tap-keyhelper /usr/libexec/pam_tap/pam_tap-keyhelper
if [ ! -e /etc/security/pam_tap.toml ]; then
    install -D -o root -g root -m 0644 packaging/common/pam_tap.toml /etc/security/pam_tap.toml
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
target/release/pam-tap-gen "$pages" "$version" "$(date -u +%Y-%m-%d)"
mandir=/usr/local/share/man
install -d -m 0755 "$mandir/man1" "$mandir/man5" "$mandir/man8"
install -o root -g root -m 0644 "$pages"/man/*.1 "$mandir/man1/"
for page in packaging/common/man/*; do
    sed "s/@VERSION@/$version/g" "$page" > "$pages/$(basename "$page")"
    section=${page##*.}
    install -o root -g root -m 0644 "$pages/$(basename "$page")" "$mandir/man$section/"
done
command -v mandb >/dev/null && mandb -q "$mandir" 2>/dev/null || true
# The store is private to tapd: pam-tap's directory (0700), files 0600. An
# earlier install left it root:pam-tap 0770 (files 0660): root holds the
# directory while the files change hands, so none can become a link meanwhile.
statedir=/var/lib/pam_tap
[ -d "$statedir" ] || mkdir -m 0700 "$statedir"
if [ "$(stat -c '%U:%G %a' "$statedir")" != "pam-tap:pam-tap 700" ]; then
    chown root:root "$statedir"
    chmod 0700 "$statedir"
    for f in "$statedir"/tap.db "$statedir"/tap.db-wal "$statedir"/tap.db-shm "$statedir"/tap.db-journal; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then chown pam-tap:pam-tap "$f"; chmod 0600 "$f"; fi
    done
    chown pam-tap:pam-tap "$statedir"
fi
tapctl policy check >/dev/null

echo "==> tapd"
sock=/run/pam_tap/tapd.sock
if [ -d /run/systemd/system ]; then
    for unit in pam-tap.socket pam-tap.service; do
        sed 's|^ExecStart=/usr/sbin/tapd|ExecStart=/usr/local/sbin/tapd|' "packaging/common/$unit" > "/etc/systemd/system/$unit"
        chmod 0644 "/etc/systemd/system/$unit"
    done
    systemctl daemon-reload
    systemctl enable --now pam-tap.socket
    # A tapd from an earlier install restarts on the new binary.
    systemctl try-restart pam-tap.service
    echo "    pam-tap.socket listens on $sock and starts pam-tap.service (tapd as pam-tap) on demand"
else
    # No init system here: start tapd now, as pam-tap, the way README.Debian
    # shows for the package, and say so.
    if pgrep -u pam-tap -x tapd >/dev/null; then
        echo "    stopping the tapd an earlier run started (pkill -u pam-tap -x tapd)"
        pkill -u pam-tap -x tapd
        for _ in $(seq 50); do pgrep -u pam-tap -x tapd >/dev/null || break; sleep 0.1; done
    fi
    install -d -o pam-tap -g pam-tap -m 0755 /run/pam_tap
    (umask 077; setsid -f setpriv --reuid=pam-tap --regid=pam-tap --init-groups --no-new-privs \
        /usr/local/sbin/tapd --socket "$sock" </dev/null >>/var/log/tapd.log 2>&1)
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    if [ ! -S "$sock" ]; then
        echo "install.sh: tapd did not start; see /var/log/tapd.log" >&2
        tail -n 20 /var/log/tapd.log >&2 || true
        exit 1
    fi
    echo "    systemd is not running here (a container or a chroot), so install.sh started tapd itself:"
    echo "      setpriv --reuid=pam-tap ... /usr/local/sbin/tapd --socket $sock  (pid $(pgrep -u pam-tap -x tapd | head -n1), output in /var/log/tapd.log)"
    echo "    It runs until stopped (pkill -u pam-tap -x tapd) and will not be started again after a reboot."
fi
cat > /etc/pam.d/pam_tap-demo <<'PAM'
# Demo service for pam_tap: a Temporary Access Pass or nothing.
auth     [success=done ignore=ignore default=die]  pam_tap.so pass_only
auth     requisite                                 pam_deny.so
account  required                                  pam_permit.so
PAM
id tap-demo >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tap-demo
echo "    pam_tap.so -> $moddir"
echo "    tapctl -> /usr/local/bin, tapd -> /usr/local/sbin (runs as pam-tap), key helper -> /usr/libexec/pam_tap"
echo "    man pages -> $mandir (man tapctl, man tapd, man pam_tap, man pam_tap.toml)"
echo "    policy /etc/security/pam_tap.toml, store /var/lib/pam_tap/tap.db (pam-tap's, 0600)"
echo "    demo service /etc/pam.d/pam_tap-demo (pam_tap pass_only, then pam_deny), demo account tap-demo"

echo
echo "==> demo: issue a one-time pass to tap-demo and sign in with it"
json=$(tapctl issue tap-demo --one-time --lifetime 10m --json)
pass=$(printf '%s\n' "$json" | sed -n 's/^ *"pass": "\(.*\)",$/\1/p')
echo "    tapctl issue tap-demo --one-time --lifetime 10m gave the pass: $pass"
echo "    (an administrator reads it to the user once; only its Argon2id hash is stored)"
echo
echo "--- first sign-in: pamtester answers pam_tap's prompt with the pass"
printf '%s\n' "$pass" | pamtester -v pam_tap-demo tap-demo authenticate
echo "    pam_tap checked the pass and used it up (one-time): signed in."
echo
echo "--- second sign-in with the same pass:"
if printf '%s\n' "$pass" | pamtester pam_tap-demo tap-demo authenticate; then
    echo "install.sh: a used one-time pass was accepted: this is a bug" >&2
    exit 1
fi
echo "    Refused, as it must be. The pass is used, so pam_tap steps aside"
echo "    (PAM_IGNORE: no prompt, nothing to check) and the next module in"
echo "    /etc/pam.d/pam_tap-demo, pam_deny, refuses. In a stack with pam_unix"
echo "    after pam_tap (README: 'Using it for login, sshd, su and sudo'), one"
echo "    prompt takes the password or the pass, and the password still works."
echo
echo "--- tapctl show tap-demo: the pass, and why it is no longer usable"
tapctl show tap-demo
echo
echo "--- tapctl audit --user tap-demo: what happened (syslog authpriv has the same lines)"
tapctl audit --user tap-demo
echo
echo "pam_tap is installed. Next: README.md, 'Using it for login, sshd, su and sudo'."
