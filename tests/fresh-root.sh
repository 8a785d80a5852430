#!/bin/bash
# The newcomer test: the README's first command, exactly as written, on a
# fresh Debian 12 machine.
#
#   tests/fresh-root.sh
#
# 1. A debootstrap minbase Debian 12 root with only sudo, git and
#    ca-certificates added (packaging/test/rootfs.sh newcomer; cached as a
#    tarball in /var/cache/pam_tap-ci, so only the first run downloads it).
# 2. The host's rustup toolchain in the root's /root/.rustup and /root/.cargo,
#    as rustup installs it for root (overlays on the host's: the toolchain
#    and the crates the host already downloaded are read, and whatever the
#    build writes there stays in the test root), and /root/.cargo/bin on
#    root's PATH, as rustup's profile line puts it.
# 3. A clone of this repository's current commit in /root/pam_tap (/root is
#    0700, as on any machine).
# 4. The first line of the sh block under README.md's "## Two commands",
#    taken from the README's text, run literally by root in /root/pam_tap.
#    sudo's secure_path drops ~/.cargo/bin: the command must cope.
# 5. A pass sign-in with what it installed: tapctl issue, pamtester; and
#    `man tapctl` once man-db is there.
#
# Inside private mount, UTS and pid namespaces, in a chroot with its own /dev,
# /proc and /run; no systemd runs there, nothing of the host's /etc is
# touched. Needs root. Takes several minutes (a cold release build); the
# time of each step is printed. Ends with "fresh-root: N passed, N failed".
# PAM_TAP_KEEP_ROOT=1 keeps the root in packaging/.cache/fresh-root;
# PAM_TAP_REUSE_ROOT=1 runs again in a kept root, with the clone moved to the
# current commit (not cold: for working on this test).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=$repo/packaging/.cache
started=$(date +%s)
passed=0 failed=0

if [ "$(id -u)" != 0 ]; then
    echo "tests/fresh-root.sh: needs root (debootstrap, chroot, unshare)" >&2
    exit 1
fi

phase() { echo "# $* [$(( $(date +%s) - started ))s]"; }
result() { # result NAME STATUS [LOG]
    if [ "$2" = 0 ]; then
        passed=$((passed + 1)); echo "ok   - $1"
    else
        failed=$((failed + 1)); echo "FAIL - $1"
        [ -n "${3:-}" ] && [ -s "$3" ] && tail -n 40 "$3" | sed 's/^/       | /'
    fi
    return 0
}
finish() {
    echo "# tests/fresh-root.sh took $(( $(date +%s) - started ))s"
    echo "fresh-root: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# --- the host's toolchain ----------------------------------------------------
# shellcheck source=../scripts/cargo-env.sh
source "$repo/scripts/cargo-env.sh" "$repo" || { result "a rustup toolchain on the host" 1; finish; }
cargo_home=$(dirname "$(dirname "$PAM_TAP_CARGO")")
rustup_home=${PAM_TAP_RUSTUP_HOME:-$(dirname "$cargo_home")/.rustup}
if [ "$(basename "$cargo_home")" != .cargo ] || [ ! -d "$rustup_home/toolchains" ]; then
    echo "cargo is $PAM_TAP_CARGO, not a rustup toolchain (~/.cargo/bin and ~/.rustup)" >&2
    result "a rustup toolchain on the host" 1
    finish
fi

# --- the README's first command -----------------------------------------------
command=$(awk '
    /^## / { inside = ($0 == "## Two commands") }
    inside && /^```sh$/ { block = 1; next }
    block { print; exit }
' "$repo/README.md")
echo "# README.md, \"## Two commands\", first command: $command"
case "$command" in
    "sudo ./install.sh"*) result "the README's first command is sudo ./install.sh" 0 ;;
    *) result "the README's first command is sudo ./install.sh (found: $command)" 1; finish ;;
esac

# --- the root ------------------------------------------------------------------
phase "Debian 12 root: debootstrap minbase + sudo, git, ca-certificates"
tarball=$("$repo/packaging/test/rootfs.sh" newcomer 2> >(grep -v '^I: ' >&2))
[ -s "$tarball" ] || { result "debootstrap root is ready" 1; finish; }
result "debootstrap root is ready ($(basename "$tarball"))" 0
run=$cache/fresh-root
commit=$(git -C "$repo" rev-parse HEAD)
if [ "${PAM_TAP_REUSE_ROOT:-0}" = 1 ] && [ -d "$run/root/root/pam_tap/.git" ]; then
    phase "a kept root (PAM_TAP_REUSE_ROOT=1): its clone to $commit"
    git -C "$run/root/root/pam_tap" fetch --quiet "$repo" "$commit" &&
        git -C "$run/root/root/pam_tap" checkout --quiet --detach "$commit"
    result "the kept clone is at the current commit" $?
else
    rm -rf --one-file-system "$run"
    mkdir -p "$run/root" "$run/cargo-upper" "$run/rustup-upper" "$run/work-cargo" "$run/work-rustup"
    tar -C "$run/root" -xf "$tarball"
    phase "git clone of $commit into /root/pam_tap"
    git clone --quiet --no-hardlinks "$repo" "$run/root/root/pam_tap" &&
        git -C "$run/root/root/pam_tap" checkout --quiet --detach "$commit"
    result "git clone of the current commit into /root/pam_tap" $?
fi
result "/root is 0700" "$( [ "$(stat -c %a "$run/root/root")" = 700 ]; echo $?)"

# What follows runs in private mount and UTS namespaces.
inner() {
    set -uo pipefail
    root=$run/root
    hostname fresh-root
    grep -q fresh-root "$root/etc/hosts" 2>/dev/null || echo "127.0.1.1 fresh-root" >> "$root/etc/hosts"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    # A /dev of its own: the host's device nodes it needs, its own ptys.
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
    for node in null zero full random urandom tty; do
        touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"
    done
    mkdir "$root/dev/pts" "$root/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
    ln -s pts/ptmx "$root/dev/ptmx"
    ln -s /proc/self/fd "$root/dev/fd"
    mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
    # The host's rustup toolchain, for root; writes stay in the test root.
    mkdir -p "$root/root/.cargo" "$root/root/.rustup"
    mount -t overlay overlay -o "lowerdir=$cargo_home,upperdir=$run/cargo-upper,workdir=$run/work-cargo" "$root/root/.cargo"
    mount -t overlay overlay -o "lowerdir=$rustup_home,upperdir=$run/rustup-upper,workdir=$run/work-rustup" "$root/root/.rustup"
    # The root reaches the network as the host does: the host's local CA
    # certificates (an egress proxy's, say) are trusted there too.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null 2>&1
    fi
    # No service may start inside the test root.
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"

    # Root's login environment after rustup: ~/.cargo/bin on PATH.
    R() { chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb \
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
    out=$run/out

    echo "# in the root, as root, in /root/pam_tap: $command [$(( $(date +%s) - started ))s]"
    t0=$(date +%s)
    R bash -c "cd /root/pam_tap && $command" > "$out" 2>&1
    status=$?
    took=$(( $(date +%s) - t0 ))
    sed 's/^/       > /' "$out"
    cp "$out" "$run/install.out"
    result "README's first command succeeds, as written ($took s)" $status "$out"
    grep -q '^pam_tap is installed' "$out"
    result "install.sh ran to its end" $?
    grep -q 'Refused, as it must be' "$out" && grep -q 'pam_deny, refuses' "$out"
    result "its demo says why the used pass is refused" $?
    grep -q "as root, with /root/.cargo/bin/cargo" "$out"
    result "it found root's rustup cargo through sudo" $?
    # No systemd in the root: install.sh starts tapd itself and says so.
    grep -q 'so install.sh started tapd itself' "$out" && grep -q 'will not be started again after a reboot' "$out"
    result "it says it started tapd itself, and that a reboot will not" $?
    R pgrep -u pam-tap -x tapd > "$out" 2>&1
    result "tapd runs as pam-tap" $? "$out"
    R test -S /run/pam_tap/tapd.sock
    result "tapd listens on /run/pam_tap/tapd.sock" $?
    [ "$(R stat -c '%U:%G %a' /var/lib/pam_tap)" = "pam-tap:pam-tap 700" ]
    result "the store directory is pam-tap's, 0700" $?
    [ "$(R stat -c '%U:%G %a' /usr/local/bin/tapctl)" = "root:root 755" ]
    result "tapctl is root:root 0755 (not set-group-id)" $?

    echo "# a pass sign-in with what it installed [$(( $(date +%s) - started ))s]"
    R useradd --create-home --shell /bin/bash newcomer
    pass=$(R tapctl issue newcomer --one-time --lifetime 15m --json |
        sed -n 's/^ *"pass": "\(.*\)",$/\1/p')
    [ -n "$pass" ]
    result "tapctl issue newcomer gives a pass" $?
    printf 'WRONG-PASS-0\n' | R pamtester pam_tap-demo newcomer authenticate > "$out" 2>&1
    result "pamtester: a wrong pass is refused" "$( [ $? != 0 ]; echo $?)" "$out"
    printf '%s\n' "$pass" | R pamtester -v pam_tap-demo newcomer authenticate > "$out" 2>&1
    status=$?
    grep -q 'Temporary Access Pass' "$out" || status=1
    result "pamtester: the pass signs newcomer in" $status "$out"
    printf '%s\n' "$pass" | R pamtester pam_tap-demo newcomer authenticate > "$out" 2>&1
    result "pamtester: the used one-time pass is refused" "$( [ $? != 0 ]; echo $?)" "$out"
    R tapctl audit --user newcomer > "$out" 2>&1 && grep -q 'signin.pass.success' "$out"
    result "tapctl audit --user newcomer shows the sign-in" $? "$out"
    R tapctl audit --user nosuchuser > "$out" 2>&1
    result "tapctl audit --user nosuchuser exits 4" "$( [ $? = 4 ]; echo $?)" "$out"

    echo "# tapd stopped as install.sh says [$(( $(date +%s) - started ))s]"
    pass2=$(R tapctl issue newcomer --lifetime 15m --json | sed -n 's/^ *"pass": "\(.*\)",$/\1/p')
    [ -n "$pass2" ]
    result "tapctl issue newcomer gives a second, multi-use pass" $?
    stop=$(sed -n 's/.*It runs until stopped (\(pkill [^)]*\)).*/\1/p' "$run/install.out")
    [ "$stop" = "pkill -u pam-tap -x tapd" ]
    result "install.sh says how to stop tapd: $stop" $?
    R sh -c "$stop" > "$out" 2>&1
    result "its command, as printed, succeeds" $? "$out"
    for _ in $(seq 50); do R pgrep -u pam-tap -x tapd >/dev/null || break; sleep 0.1; done
    ! R pgrep -u pam-tap -x tapd >/dev/null
    result "no tapd runs any more" $?
    R tapctl status > "$out" 2>&1
    status=$?
    [ "$status" = 6 ] && grep -q 'systemctl start pam-tap.socket' "$out"
    result "with tapd down, tapctl exits 6 and says how to start it (exit $status)" $? "$out"
    printf '%s\n' "$pass2" | R pamtester -v pam_tap-demo newcomer authenticate > "$out" 2>&1
    result "with tapd down, the unused pass signs no one in" "$( [ $? != 0 ]; echo $?)" "$out"

    echo "# manual pages [$(( $(date +%s) - started ))s]"
    R env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db > "$out" 2>&1
    result "apt installs man-db" $? "$out"
    for page in tapctl tapd pam_tap pam_tap.toml tapctl-issue; do
        R man "$page" > "$out" 2>&1 && grep -q "$page" "$out"
        result "man $page" $? "$out"
    done
}
export -f inner result
export run command started cargo_home rustup_home passed failed
counts=$(mktemp)
phase "install and sign in, in private mount and UTS namespaces"
# The counters come back through a file: the namespaces are a child process.
# A pid namespace of its own: the tapd that install.sh starts ends with it.
unshare --mount --uts --pid --fork --propagation private -- bash -c 'inner; echo "$passed $failed" > "$1"' _ "$counts"
read -r passed failed < "$counts" || failed=$((failed + 1))
rm -f "$counts"
[ "${PAM_TAP_KEEP_ROOT:-0}" = 1 ] || rm -rf --one-file-system "$run"
finish
