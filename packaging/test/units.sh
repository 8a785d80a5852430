#!/bin/bash
# Check pam-tap.socket and pam-tap.service (packaging/common) with systemd's
# own tools:
#
#   packaging/test/units.sh [TAPD]
#
# * systemd-analyze verify on both units, in a scratch root that holds the
#   host's units (for sysinit.target, sockets.target, ...), ours, and tapd at
#   /usr/sbin/tapd (verify refuses a unit whose ExecStart is missing): the
#   binary TAPD when given (the release build), else an empty executable.
#   Any message at all fails: verify exits 0 on a value it cannot parse.
# * systemd-analyze security --offline=true: the exposure score must stay at
#   or under THRESHOLD (0.4, shown by systemd as 4 on its 0-100 scale), so
#   dropping any hardening setting fails.
#
# Needs systemd-analyze (systemd 252 or later); touches nothing outside its
# scratch directory. Prints "units: N passed, N failed" last.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
common=$here/../common
tapd=${1:-}
threshold=4
passed=0 failed=0
result() { if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   - $1"; else failed=$((failed + 1)); echo "FAIL - $1"; fi; }

units=$(systemd-analyze --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
if [ -z "$units" ] || [ "$units" -lt 252 ]; then
    echo "units: systemd-analyze 252 or later is needed (apt install systemd)"; echo "units: 0 passed, 1 failed"; exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
root=$scratch/root
mkdir -p "$root/usr/lib/systemd" "$root/usr/sbin" "$root/etc/systemd/system"
ln -s usr/lib "$root/lib"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install -m 0644 "$common/pam-tap.socket" "$common/pam-tap.service" "$root/usr/lib/systemd/system/"
if [ -n "$tapd" ]; then install -m 0755 "$tapd" "$root/usr/sbin/tapd"; else install -m 0755 /dev/null "$root/usr/sbin/tapd"; fi

out=$scratch/out
systemd-analyze verify --man=no --root="$root" pam-tap.socket pam-tap.service >"$out" 2>&1
status=$?
[ -s "$out" ] && { sed 's/^/       | /' "$out"; status=1; }
result "systemd-analyze verify pam-tap.socket pam-tap.service: no message" $status

systemd-analyze security --offline=true --root="$root" --threshold=$threshold pam-tap.service >"$out" 2>&1
status=$?
score=$(sed -n 's/^→ Overall exposure level for pam-tap.service: //p' "$out")
[ $status = 0 ] || grep '✗' "$out" | sed 's/^/       | /'
result "systemd-analyze security --offline=true --threshold=$threshold pam-tap.service: ${score:-no score}" $status
# The settings the daemon depends on, which the score alone would not catch.
for line in User=pam-tap Group=pam-tap StateDirectory=pam_tap StateDirectoryMode=0700 UMask=0077 \
            ProtectSystem=strict CapabilityBoundingSet= PrivateNetwork=yes RestrictAddressFamilies=AF_UNIX; do
    grep -qx "$line" "$common/pam-tap.service"; result "pam-tap.service has $line" $?
done
for line in ListenStream=/run/pam_tap/tapd.sock SocketMode=0666 SocketUser=root SocketGroup=root DirectoryMode=0755 Accept=no; do
    grep -qx "$line" "$common/pam-tap.socket"; result "pam-tap.socket has $line" $?
done
# PrivateUsers would map every other uid to nobody, so tapd could no longer
# see who a user is (NSS) or own the store.
! grep -q '^PrivateUsers=yes' "$common/pam-tap.service"; result "pam-tap.service has no PrivateUsers" $?

echo "units: $passed passed, $failed failed"
[ "$failed" = 0 ]
