#!/bin/bash
# Test the pam-tap packages end to end:
#
#   packaging/test.sh [--reuse-release]
#
# 1. packaging/build.sh --lint: the .deb and .rpm, lintian and rpmlint clean
#    (--reuse-release: made from the workspace's release build in
#    target/release, as tests/run-all.sh does, instead of a second build);
#    then the same .deb with the next package revision, to upgrade to
#    (PAM_TAP_OLD_DEB=path.deb upgrades from that build instead).
# 2. The .rpm's contents, modes, owners, config flags, scripts and
#    dependencies, with rpm -qp.
# 3. A minimal Debian 12 root from debootstrap (cached as a tarball in
#    /var/cache/pam_tap-ci, outside the clone, so only the first run
#    downloads), where
#    test/scenario.sh installs the .deb with apt, enables pam_tap, signs in
#    with pamtester and with su/sudo on a pty, upgrades, removes and purges.
#    All of it runs in private mount and pid namespaces (unshare -m -p -f) in
#    a chroot; the host's /etc is never touched, and the tapd it starts ends
#    with the namespace.
# 4. test/units.sh: systemd-analyze verify and security on the units.
# 5. test/upgrade.sh, in another fresh root: the 0.1 package (built once by
#    test/old-deb.sh from commit 8999913 and cached in /var/cache/pam_tap-ci;
#    PAM_TAP_OLD01_DEB=path
#    uses that .deb instead), a pass and an enrolled software key
#    (pam_tap-softkey from target/release, built if missing), the upgrade to
#    the new .deb (this build's revision), and both still sign in through tapd.
#
# Needs root. PAM_TAP_KEEP_ROOT=1 keeps the test root in packaging/.cache/run
# (scratch: logs and test roots stay in the clone; the caches do not).
# Prints "N passed, N failed" last; exit status 0 if none failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$here/.cache
started=$(date +%s)
passed=0 failed=0
[ "$(id -u)" = 0 ] || { echo "packaging/test.sh: needs root (debootstrap, chroot, unshare)" >&2; exit 1; }
build_from=()
case "${1:-}" in
    --reuse-release) build_from=(--reuse-release) ;;
    "") ;;
    *) echo "usage: packaging/test.sh [--reuse-release]" >&2; exit 2 ;;
esac
mkdir -p "$cache"

need=()
for tool in debootstrap:debootstrap unshare:util-linux rpm:rpm lintian:lintian rpmlint:rpmlint; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

phase() { echo "# $* [$(( $(date +%s) - started ))s]"; }
result() { # result NAME STATUS
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   - $1"; else failed=$((failed + 1)); echo "FAIL - $1"; fi
}

phase "units (test/units.sh)"
"$here/test/units.sh" | tee "$cache/units.log"
counts=$(sed -n 's/^units: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$cache/units.log")
if [ -n "$counts" ]; then passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* })); else result "units.sh ran to the end" 1; fi

phase "build (packaging/build.sh --lint)"
# The debootstrap root is made (or found in the cache) meanwhile.
rootfs_log=$(mktemp)
"$here/test/rootfs.sh" >"$rootfs_log.out" 2>"$rootfs_log" &
rootfs_pid=$!
set +e
rm -rf "$cache/bin"
"$here/build.sh" --lint "${build_from[@]}" --save-bin "$cache/bin" > "$cache/build.log" 2>&1; status=$?
set -e
sed -n '/^== lintian/,$p' "$cache/build.log"
[ $status = 0 ] || tail -n 40 "$cache/build.log"
result "build.sh builds both packages, lintian and rpmlint clean" $status
deb=$(grep -E '/pam-tap_.*\.deb$' "$cache/build.log" | tail -n1)
rpm=$(grep -E '/pam-tap-.*\.rpm$' "$cache/build.log" | tail -n1)
cdeb=$(grep -E '/cockpit-pam-tap_.*_all\.deb$' "$cache/build.log" | tail -n1)
crpm=$(grep -E '/cockpit-pam-tap-.*\.noarch\.rpm$' "$cache/build.log" | tail -n1)
[ -s "$deb" ] && [ -s "$rpm" ] && [ -s "$cdeb" ] && [ -s "$crpm" ] || { echo "no packages built; see $cache/build.log"; echo "packaging: $passed passed, $((failed + 1)) failed"; exit 1; }

if [ -n "${PAM_TAP_OLD_DEB:-}" ]; then
    old_deb=$PAM_TAP_OLD_DEB new_deb=$deb
else
    rev=$(dpkg-deb -f "$deb" Version); rev=${rev##*-}
    set +e
    PAM_TAP_DIST=$cache/next "$here/build.sh" --deb-only --revision $((rev + 1)) --prebuilt "$cache/bin" \
        > "$cache/build-next.log" 2>&1; status=$?
    set -e
    result "build.sh --revision $((rev + 1)) builds the upgrade .deb" $status
    old_deb=$deb new_deb=$(grep -E '/pam-tap_.*\.deb$' "$cache/build-next.log" | tail -n1)
fi

phase "rpm -qp $(basename "$rpm")"
rpmq() { rpm -qp --nosignature "$@" "$rpm" 2>/dev/null; }
has_line() { # has_line NAME PATTERN CMD...: a line of CMD's output matches PATTERN (ERE)
    local name=$1 pattern=$2; shift 2
    if "$@" | grep -Eq -- "$pattern"; then result "$name" 0; else result "$name" 1; "$@" | sed 's/^/       | /' | head -n 40; fi
}
has_line "name, version, arch" '^pam-tap [0-9.]+-[0-9]+ x86_64$' rpmq --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n'
has_line "license tag names the project's and the crates' licenses" '^\(MIT OR Apache-2\.0\) AND .*BSD-3-Clause' rpmq --qf '%{LICENSE}\n'
lsv() { rpmq -lv | awk '{ print $1, $3, $4, $NF }'; }
has_line "/usr/lib64/security/pam_tap.so 0755 root:root" '^-rwxr-xr-x root root /usr/lib64/security/pam_tap\.so$' lsv
has_line "/usr/bin/tapctl 0755 root:root (not set-group-id)" '^-rwxr-xr-x root root /usr/bin/tapctl$' lsv
has_line "/usr/sbin/tapd 0755 root:root" '^-rwxr-xr-x root root /usr/sbin/tapd$' lsv
has_line "tapd(8)" '^-rw-r--r-- root root /usr/share/man/man8/tapd\.8\.gz$' lsv
has_line "/usr/libexec/pam_tap/pam_tap-keyhelper 0755 root:root" '^-rwxr-xr-x root root /usr/libexec/pam_tap/pam_tap-keyhelper$' lsv
has_line "requires libudev (key helper)" '^libudev\.so\.1' rpmq --requires
has_line "/etc/security/pam_tap.toml 0644 root:root" '^-rw-r--r-- root root /etc/security/pam_tap\.toml$' lsv
has_line "/var/lib/pam_tap 0700 pam-tap:pam-tap" '^drwx------ pam-tap pam-tap /var/lib/pam_tap$' lsv
has_line "policy is %config(noreplace)" '^/etc/security/pam_tap\.toml cn$' rpmq --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]'
has_line "/etc/ssh/sshd_config.d/pam_tap.conf 0644 root:root" '^-rw-r--r-- root root /etc/ssh/sshd_config\.d/pam_tap\.conf$' lsv
has_line "the sshd drop-in is %config(noreplace)" '^/etc/ssh/sshd_config\.d/pam_tap\.conf cn$' rpmq --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]'
has_line "%pre creates sshd's AuthorizedKeysCommandUser (useradd -r ... pam-tap-ssh)" 'useradd -r -U .* pam-tap-ssh$' rpmq --scripts
for f in /usr/lib/tmpfiles.d/pam_tap.conf /usr/lib/sysusers.d/pam_tap.conf \
         /usr/lib/systemd/system/pam-tap.socket /usr/lib/systemd/system/pam-tap.service \
         /usr/share/man/man8/pam_tap.8.gz /usr/share/man/man1/tapctl.1.gz /usr/share/man/man5/pam_tap.toml.5.gz \
         /usr/share/bash-completion/completions/tapctl /usr/share/zsh/site-functions/_tapctl \
         /usr/share/fish/vendor_completions.d/tapctl.fish /usr/share/licenses/pam-tap/LICENSE-MIT \
         /usr/share/pam_tap/roles.sql /usr/share/doc/pam-tap/fleet.md; do
    has_line "ships $f" "^-rw-r--r-- root root $f\$" lsv
done
has_line "%pre creates the group (groupadd -r pam-tap)" 'groupadd -r pam-tap' rpmq --scripts
has_line "%pre creates the user (useradd -r ... pam-tap)" 'useradd -r -g pam-tap .* pam-tap$' rpmq --scripts
has_line "%post gives a 0.1 store to pam-tap" 'chown pam-tap:pam-tap "\$f"; chmod 0600' rpmq --scripts
has_line "%post presets pam-tap.socket" 'preset pam-tap\.socket' rpmq --scripts
has_line "%preun disables and stops the units on erase" 'disable --now pam-tap\.socket pam-tap\.service' rpmq --scripts
has_line "%postun restarts a running tapd on upgrade" 'try-restart pam-tap\.service' rpmq --scripts
has_line "%preun warns if /etc/pam.d still names the module" "grep -qs 'pam_tap" rpmq --scripts
has_line "requires libpam" '^libpam\.so\.0\(\)\(64bit\)' rpmq --requires
has_line "requires glibc" '^libc\.so\.6\(GLIBC_' rpmq --requires
has_line "requires groupadd for %pre" '^/usr/sbin/groupadd' rpmq --requires
has_line "requires useradd for %pre" '^/usr/sbin/useradd' rpmq --requires
has_line "requires pam" '^pam$' rpmq --requires

phase "rpm -qp $(basename "$crpm")"
crpmq() { rpm -qp --nosignature "$@" "$crpm" 2>/dev/null; }
clsv() { crpmq -lv | awk '{ print $1, $3, $4, $NF }'; }
has_line "cockpit-pam-tap: name, version, arch" '^cockpit-pam-tap [0-9.]+-[0-9]+ noarch$' crpmq --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n'
has_line "cockpit-pam-tap requires cockpit-bridge" '^cockpit-bridge$' crpmq --requires
has_line "cockpit-pam-tap requires pam-tap of its version" '^pam-tap = [0-9.]+-[0-9]+$' crpmq --requires
for f in manifest.json index.html index.js index.css; do
    has_line "cockpit-pam-tap ships /usr/share/cockpit/pam-tap/$f" "^-rw-r--r-- root root /usr/share/cockpit/pam-tap/$f\$" clsv
done
has_line "cockpit-pam-tap ships nothing outside /usr/share/cockpit/pam-tap" '^0$' bash -c "rpm -qpl --nosignature '$crpm' | grep -v '^/usr/share/cockpit/pam-tap\(/\|\$\)' | wc -l"
cdeb_list() { dpkg-deb -c "$cdeb" | awk '{ print $1, $2, $NF }'; }
has_line "cockpit-pam-tap .deb: Architecture all" '^all$' dpkg-deb -f "$cdeb" Architecture
has_line "cockpit-pam-tap .deb depends on cockpit-bridge and pam-tap" '^cockpit-bridge, pam-tap \(>= [0-9.]+-[0-9]+\)$' dpkg-deb -f "$cdeb" Depends
for f in manifest.json index.html index.js index.css; do
    has_line "cockpit-pam-tap .deb ships /usr/share/cockpit/pam-tap/$f" "^-rw-r--r-- root/root \./usr/share/cockpit/pam-tap/$f\$" cdeb_list
done
has_line "cockpit-pam-tap .deb: nothing outside /usr/share/cockpit/pam-tap and its doc" '^0$' bash -c "dpkg-deb -c '$cdeb' | awk '{ print \$NF }' | grep -Ev '^\./(usr/(share/(cockpit/(pam-tap/.*)?|doc/(cockpit-pam-tap/.*)?)?)?)?$' | wc -l"

phase "Debian 12 root"
set +e
wait $rootfs_pid; status=$?
set -e
cat "$rootfs_log" | grep -v '^I: ' || true
result "debootstrap root is ready" $status
if [ $status = 0 ]; then
    tarball=$(cat "$rootfs_log.out")
    run=$cache/run
    rm -rf --one-file-system "$run"
    mkdir -p "$run/root"
    tar -C "$run/root" -xf "$tarball"
    set +e
    unshare -m -p -f --propagation private -- "$here/test/scenario.sh" "$run/root" "$old_deb" "$new_deb" "$cdeb" | tee "$cache/scenario.log"
    status=${PIPESTATUS[0]}
    set -e
    counts=$(sed -n 's/^scenario: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$cache/scenario.log")
    if [ -n "$counts" ]; then
        passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* }))
    else
        result "scenario ran to the end" 1
    fi
    [ $status = 0 ] || [ "${counts#* }" != 0 ] || result "scenario exit status" $status
    [ "${PAM_TAP_KEEP_ROOT:-0}" = 1 ] || rm -rf --one-file-system "$run"

    phase "upgrade from 0.1 (test/upgrade.sh)"
    set +e
    if [ -n "${PAM_TAP_OLD01_DEB:-}" ]; then old01=$PAM_TAP_OLD01_DEB; else old01=$("$here/test/old-deb.sh"); fi
    status=$?
    set -e
    result "the 0.1 package is built (test/old-deb.sh, cached)" $status
    softkey=$here/../target/release/pam_tap-softkey
    if [ ! -x "$softkey" ]; then
        # shellcheck source=../scripts/cargo-env.sh
        (source "$here/../scripts/cargo-env.sh" "$here/.." && cd "$here/.." && cargo build --release -p tap-softkey) >"$cache/softkey.log" 2>&1
        result "cargo build --release -p tap-softkey" $?
    fi
    if [ $status = 0 ] && [ -x "$softkey" ]; then
        upgrade=$cache/upgrade
        rm -rf --one-file-system "$upgrade"
        mkdir -p "$upgrade/root"
        tar -C "$upgrade/root" -xf "$tarball"
        set +e
        unshare -m -p -f --propagation private -- "$here/test/upgrade.sh" "$upgrade/root" "$old01" "$deb" "$softkey" | tee "$cache/upgrade.log"
        status=${PIPESTATUS[0]}
        set -e
        counts=$(sed -n 's/^upgrade: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$cache/upgrade.log")
        if [ -n "$counts" ]; then
            passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* }))
        else
            result "upgrade.sh ran to the end" 1
        fi
        [ "${PAM_TAP_KEEP_ROOT:-0}" = 1 ] || rm -rf --one-file-system "$upgrade"
    fi
fi
rm -f "$rootfs_log" "$rootfs_log.out"

echo "# packaging/test.sh took $(( $(date +%s) - started ))s"
echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
