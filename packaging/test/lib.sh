# Shared by scenario.sh and upgrade.sh (sourced): a Debian root at $root,
# mounted and used through chroot, with ok/FAIL lines and counts.
# shellcheck shell=bash
passed=0 failed=0
out=$(mktemp)
readme_debian=$(cd "$(dirname "${BASH_SOURCE[0]}")/../debian" && pwd)/README.Debian

# mount_root: /proc (of the caller's pid namespace), /dev, a private /run;
# no service may start inside (policy-rc.d).
mount_root() {
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/run"
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
}
R() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb "$@"; }
apt_get() { R env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"; }
# check NAME CMD...: CMD must succeed. Its output is kept in $out.
check() {
    local name=$1; shift
    if "$@" >"$out" 2>&1; then
        passed=$((passed + 1)); echo "ok   - $name"
    else
        failed=$((failed + 1)); echo "FAIL - $name"; sed 's/^/       | /' "$out" | tail -n 25
    fi
}
# refute NAME CMD...: CMD must fail.
refute() {
    local name=$1; shift
    if "$@" >"$out" 2>&1; then
        failed=$((failed + 1)); echo "FAIL - $name (unexpectedly succeeded)"; sed 's/^/       | /' "$out" | tail -n 25
    else
        passed=$((passed + 1)); echo "ok   - $name"
    fi
}
stat_is() { [ "$(R stat -c '%U:%G %a' "$1")" = "$2" ] || { R stat -c '%n is %U:%G %a' "$1"; echo "want $2"; false; }; }
absent() { ! R test -e "$1" || { echo "$1 still exists"; false; }; }
# pamtester with one answer on stdin (a single prompt)
pam_ok() { printf '%s\n' "$3" | R pamtester -v "$1" "$2" authenticate; }
issue() { R tapctl issue "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pass"])'; }
usable() { R tapctl show "$1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d); sys.exit(0 if d["usable"] else 1)'; }
no_setgid_tapctl() {
    stat_is /usr/bin/tapctl "root:root 755" &&
    { ! R dpkg-statoverride --list /usr/bin/tapctl || { echo "a statoverride is left"; false; }; }
}
private_store() { # the store directory and the files in it are pam-tap's only
    stat_is /var/lib/pam_tap "pam-tap:pam-tap 700" || return 1
    local f
    for f in $(R find /var/lib/pam_tap -mindepth 1); do
        stat_is "$f" "pam-tap:pam-tap 600" || return 1
    done
}

# readme_debian_block PATTERN: the first indented command block after the
# README.Debian line matching PATTERN (awk ERE), unindented.
readme_debian_block() {
    awk -v pat="$1" '
        !found { if ($0 ~ pat) found = 1; next }
        /^    / { sub(/^    /, ""); print; inside = 1; next }
        inside && /[^ ]/ { exit }
    ' "$readme_debian"
}

# start_tapd: where systemd is not running, start tapd with the very lines
# README.Debian shows (the indented block after "Start it by hand"), in the
# root; then wait for its socket.
start_tapd() {
    local lines
    lines=$(readme_debian_block 'Start it by hand, as root:')
    [ "$(printf '%s\n' "$lines" | wc -l)" = 2 ] || { echo "README.Debian: no two-line start block"; return 1; }
    printf '%s\n' "$lines" | sed 's/^/       run: /'
    R sh -ec "$lines" || return 1
    local i
    for i in $(seq 100); do R test -S /run/pam_tap/tapd.sock && break; sleep 0.1; done
    R test -S /run/pam_tap/tapd.sock || { echo "no socket; /var/log/tapd.log:"; R tail -n 20 /var/log/tapd.log; return 1; }
    R pgrep -u pam-tap -x tapd || { echo "no tapd runs as pam-tap"; return 1; }
}
# stop_tapd: as README.Debian says (this runs in a pid namespace of its own,
# so only the root's tapd can match).
stop_tapd() {
    R pkill -u pam-tap -x tapd || return 1
    local i
    for i in $(seq 50); do R pgrep -u pam-tap -x tapd >/dev/null || return 0; sleep 0.1; done
    echo "tapd still runs"; return 1
}
