#!/bin/bash
# Build (once) and cache a minimal Debian 12 root for packaging/test.sh.
#
#   packaging/test/rootfs.sh            -> prints the path of the cached tarball
#   packaging/test/rootfs.sh newcomer   -> the same for tests/fresh-root.sh: a
#                                          minbase root with only sudo, git and
#                                          ca-certificates added
#
# The tarball lives outside the clone, in $PAM_TAP_CI_CACHE (default
# /var/cache/pam_tap-ci), so that a fresh clone (CI) finds it.  Its name
# carries the flavour and a hash of everything that decides its contents, so
# changing a package list below makes a new one; delete the tarball to force
# a rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${PAM_TAP_CI_CACHE:-/var/cache/pam_tap-ci}
suite=bookworm
# The host's own Debian mirror (first URIs:/deb line of its apt sources).
mirror=${DEBIAN_MIRROR:-$(sed -n -E 's/^URIs:[[:space:]]*(http[^ ]*\/debian)\/?$/\1/p; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(http[^ ]*\/debian)\/?[[:space:]]+bookworm[[:space:]].*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)}
[ -n "$mirror" ] || { echo "rootfs: no Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2; exit 1; }
flavour=${1:-minbase}
case "$flavour" in
    minbase)
        # What packaging/test.sh uses inside the root: pam-auth-update
        # (libpam-runtime), login, su (util-linux), sudo, pamtester,
        # useradd/chpasswd (passwd), addgroup (adduser, the package's
        # fallback when systemd-sysusers is absent), pgrep/pkill (procps: the
        # test starts and stops tapd as README.Debian shows).
        include=libpam-runtime,libpam-modules,libpam-modules-bin,login,util-linux,passwd,adduser,sudo,pamtester,ca-certificates,procps
        # Downloaded into the root's apt cache but not installed: the second test pass
        # installs systemd (sysusers.d/tmpfiles.d path) and openssh-server (for its
        # /etc/pam.d/sshd), and cockpit-bridge (cockpit-pam-tap's dependency), offline.
        predownload="systemd openssh-server cockpit-bridge"
        name=debian-$suite-minbase
        ;;
    newcomer)
        # A fresh machine as issue 10 describes it; everything else is what
        # the README's commands install themselves.
        include=sudo,git,ca-certificates
        predownload=""
        name=debian-$suite-newcomer
        ;;
    *) echo "rootfs: unknown flavour $flavour (minbase, newcomer)" >&2; exit 2 ;;
esac
key=$(printf '%s\n' "$suite" "$include" "$predownload" v1 | sha256sum | cut -c1-12)
tarball=$cache/$name-$key.tar
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi

command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/root.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
echo "rootfs: debootstrap $suite from $mirror (one-time, cached in $tarball)" >&2
# Private mount namespace: debootstrap's /proc and /sys mounts die with it.
unshare -m --propagation private -- debootstrap --variant=minbase --include="$include" \
    "$suite" "$work/root" "$mirror" >&2
[ -z "$predownload" ] || unshare -m --propagation private -- bash -euc '
    r=$1; shift
    mount -t proc proc "$r/proc"
    chroot "$r" apt-get update -qq
    chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only --no-install-recommends "$@"
' _ "$work/root" $predownload >&2
tar -C "$work/root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
# Older tarballs (another package list) are of no further use.
find "$cache" -maxdepth 1 -name "$name-*.tar" ! -name "$(basename "$tarball")" -delete
echo "$tarball"
