#!/bin/bash
# Build the pam-tap packages:
#
#   packaging/build.sh [--revision N] [--lint] [--deb-only|--rpm-only]
#                      [--save-bin DIR] [--prebuilt DIR | --reuse-release]
#
#   -> packaging/dist/pam-tap_<version>-<N>_amd64.deb
#      packaging/dist/cockpit-pam-tap_<version>-<N>_all.deb
#      packaging/dist/pam-tap-<version>-<N>.x86_64.rpm
#      packaging/dist/cockpit-pam-tap-<version>-<N>.noarch.rpm
#
# <version> is the workspace version (Cargo.toml); the package revision N
# defaults to the one at the top of packaging/debian/changelog. A different
# revision (or a workspace version the changelog does not have yet) gets a
# generated changelog entry in the build copy only.
# --lint runs lintian and rpmlint on the results and fails on any warning.
# --save-bin DIR keeps a copy of the compiled binaries (libpam_tap.so,
# tapctl, tapd, pam_tap-keyhelper, pam-tap-gen) in DIR; --prebuilt DIR packages those instead of
# compiling (test.sh builds its upgrade .deb from the same binaries so).
# --reuse-release packages the workspace's own release build instead
# (<repo>/target/release, as tests/run-all.sh builds it and its end-to-end
# tier tests it): the same cargo build runs there, without the hardening
# flags, which is a no-op when that build is fresh, and pam-tap-gen is built
# beside it in the release profile.
#
# Steps: install the build tools (apt) if missing; cargo build --release
# -p pam_tap -p tapctl -p tapd -p tap-keyhelper; build packaging/gen and generate tapctl's man pages and
# completions from its clap definition; stage everything; dpkg-buildpackage
# (debhelper) for the .deb; rpmbuild for the .rpm.
#
# The C code that crates compile in (SQLite in all three programs, HIDAPI in
# the key helper) is built with Debian's hardening flags (dpkg-buildflags,
# hardening=+all: fortify, stack protector, stack-clash and CET protection).
# As the C flags are part of the build, the packages have their own cargo
# target directory, so that this build and the workspace's plain one do not
# keep rebuilding each other's C code.
#
# Environment: PAM_TAP_DIST (output dir), PAM_TAP_NO_APT=1 (do not apt-get),
# PAM_TAP_TARGET_DIR (cargo target dir; default <repo>/target/packages).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dist=${PAM_TAP_DIST:-$here/dist}
export CARGO_TARGET_DIR=${PAM_TAP_TARGET_DIR:-$repo/target/packages}
# shellcheck source=../scripts/cargo-env.sh
source "$repo/scripts/cargo-env.sh" "$repo" || exit 1

revision= lint=0 want_deb=1 want_rpm=1 save_bin= prebuilt= reuse=0
while [ $# -gt 0 ]; do
    case "$1" in
        --reuse-release) reuse=1; shift ;;
        --revision) revision=$2; shift 2 ;;
        --revision=*) revision=${1#*=}; shift ;;
        --lint) lint=1; shift ;;
        --save-bin) save_bin=$2; shift 2 ;;
        --prebuilt) prebuilt=$2; shift 2 ;;
        --deb-only) want_rpm=0; shift ;;
        --rpm-only) want_deb=0; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

started=$(date +%s)
log() { printf '\n== %s [%ss]\n' "$*" "$(( $(date +%s) - started ))" >&2; }

# --- build tools -------------------------------------------------------------
need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# dpkg-buildpackage checks for build-essential:native itself (a fresh
# machine may have gcc without it).
installed build-essential || need+=(build-essential)
command -v dpkg-buildpackage >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
[ -e /usr/include/security/pam_modules.h ] || need+=(libpam0g-dev)
command -v python3 >/dev/null || need+=(python3)
# The key helper's hidapi (hidraw backend) builds against libudev.
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -e /usr/include/libudev.h ] || need+=(libudev-dev)
# tapd's PostgreSQL backend speaks TLS through the system's OpenSSL.
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ $want_rpm = 1 ] && ! command -v rpmbuild >/dev/null && need+=(rpm)
# The Cockpit page (cockpit/build.sh): Debian's node and npm, unless a node
# with its own npm is there (NodeSource's nodejs conflicts with Debian's npm).
{ command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
if [ $lint = 1 ]; then
    command -v lintian >/dev/null || need+=(lintian)
    [ $want_rpm = 1 ] && ! command -v rpmlint >/dev/null && need+=(rpmlint)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "${PAM_TAP_NO_APT:-0}" = 1 ]; then echo "build.sh: missing ${need[*]}" >&2; exit 1; fi
    log "installing build tools: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- versions ----------------------------------------------------------------
upstream=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="tapctl"))')
top=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
if [ -z "$revision" ]; then
    if [ "${top%-*}" = "$upstream" ]; then revision=${top##*-}; else revision=1; fi
fi
version=$upstream-$revision
# The repository URL: tapctl's own, else the workspace's [workspace.package].
url=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys,tomllib
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "tapctl")
print(p["repository"] or tomllib.load(open("Cargo.toml", "rb")).get("workspace", {}).get("package", {}).get("repository", ""))')
log "pam-tap $version"

# --- compile -----------------------------------------------------------------
work=$CARGO_TARGET_DIR/stage
if [ -n "$prebuilt" ]; then
    bin=$(cd "$prebuilt" && pwd)
    log "prebuilt binaries from $bin"
elif [ $reuse = 1 ]; then
    release=$repo/target
    log "the workspace's release build ($release/release): cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper"
    (cd "$repo" && CARGO_TARGET_DIR=$release cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper)
    log "man pages and completions (packaging/gen, release profile, beside it)"
    as_cargo_user cp --remove-destination "$repo/Cargo.lock" "$here/gen/Cargo.lock"
    (cd "$repo" && CARGO_TARGET_DIR=$release cargo build --release --manifest-path "$here/gen/Cargo.toml")
    bin=${save_bin:-$work-bin}
    mkdir -p "$bin"
    cp "$release/release/libpam_tap.so" "$release/release/tapctl" "$release/release/tapd" \
        "$release/release/pam_tap-keyhelper" "$release/release/pam-tap-gen" "$bin/"
    bin=$(cd "$bin" && pwd)
else
    # Only the shipped crates: their features are then exactly what ships, and
    # a test-only workspace member cannot break or change the packages.
    log "cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper"
    (
        eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
        # cc-rs reads CFLAGS, not CPPFLAGS (where _FORTIFY_SOURCE is).
        export CFLAGS="$CFLAGS $CPPFLAGS"
        unset LDFLAGS CPPFLAGS CXXFLAGS
        cd "$repo" && cargo build --release -p pam_tap -p tapctl -p tapd -p tap-keyhelper
    )
    log "man pages and completions (packaging/gen)"
    # The generator has its own lock file, seeded from the workspace's so that
    # it reads tapctl's clap definition with the very crate versions that
    # ship. A dev build: its speed does not matter, its build time does.
    as_cargo_user cp --remove-destination "$repo/Cargo.lock" "$here/gen/Cargo.lock"
    (cd "$here/gen" && cargo build --quiet)
    bin=${save_bin:-$work-bin}
    mkdir -p "$bin"
    cp "$CARGO_TARGET_DIR/release/libpam_tap.so" "$CARGO_TARGET_DIR/release/tapctl" "$CARGO_TARGET_DIR/release/tapd" \
        "$CARGO_TARGET_DIR/release/pam_tap-keyhelper" "$CARGO_TARGET_DIR/debug/pam-tap-gen" "$bin/"
    bin=$(cd "$bin" && pwd)
fi
for f in libpam_tap.so tapctl tapd pam_tap-keyhelper pam-tap-gen; do
    [ -s "$bin/$f" ] || { echo "build.sh: $bin/$f is missing" >&2; exit 1; }
done

# --- the Cockpit page ----------------------------------------------------------
log "the Cockpit page (cockpit/build.sh: npm ci, esbuild)"
"$repo/cockpit/build.sh"

# --- stage -------------------------------------------------------------------
rm -rf "$work"
src=$work/pam-tap-$upstream
stage=$src/stage
mkdir -p "$stage"/{man,completions,pam-configs,tmpfiles.d,sysusers.d,systemd,rpm-doc,sshd_config.d} "$dist"
cp -r "$here/debian" "$src/debian"
rm -f "$src/debian/copyright.in"

# A changelog entry for a version the committed changelog does not have.
if [ "$top" != "$version" ]; then
    entry=$(mktemp)
    {
        echo "pam-tap ($version) unstable; urgency=medium"
        echo
        echo "  * Build of pam_tap $upstream, package revision $revision."
        echo
        echo " -- $(dpkg-parsechangelog -l "$here/debian/changelog" -S Maintainer)  $(date -u -R)"
        echo
        cat "$here/debian/changelog"
    } > "$entry"
    mv "$entry" "$src/debian/changelog"
fi
export SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp)
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

mkdir -p "$stage/cockpit"
cp -r "$repo/cockpit/dist" "$stage/cockpit/pam-tap"
chmod -R u=rwX,go=rX "$stage/cockpit"
install -m 0755 "$bin/libpam_tap.so" "$stage/pam_tap.so"
install -m 0755 "$bin/tapctl" "$stage/tapctl"
install -m 0755 "$bin/tapd" "$stage/tapd"
install -m 0755 "$bin/pam_tap-keyhelper" "$stage/pam_tap-keyhelper"
# Strip as dh_strip does, for both packages (rpmbuild's brp-strip only drops
# debug info, and no -debuginfo package is built).
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$stage/pam_tap.so"
strip --remove-section=.comment --remove-section=.note "$stage/tapctl" "$stage/tapd" "$stage/pam_tap-keyhelper"
"$bin/pam-tap-gen" "$stage" "$upstream" "$date"
mv "$stage/completions/tapctl.bash" "$stage/completions/tapctl"
for page in "$here"/common/man/*; do
    sed -e "s/@VERSION@/$upstream/g" -e "s/^\(\.TH [^ ]* [0-9] \)\"[^\"]*\"/\1\"$date\"/" "$page" > "$stage/man/$(basename "$page")"
done
install -m 0644 "$here/common/pam_tap.toml" "$stage/pam_tap.toml"
install -m 0644 "$here/common/pam-config" "$stage/pam-configs/pam_tap"
install -m 0644 "$here/common/tmpfiles.conf" "$stage/tmpfiles.d/pam_tap.conf"
install -m 0644 "$here/common/sysusers.conf" "$stage/sysusers.d/pam_tap.conf"
install -m 0644 "$here/common/sshd-pam_tap.conf" "$stage/sshd_config.d/pam_tap.conf"
# The units: for the .rpm from stage/, for dh_installsystemd as debian/pam-tap.*.
for unit in pam-tap.socket pam-tap.service; do
    install -m 0644 "$here/common/$unit" "$stage/systemd/$unit"
    install -m 0644 "$here/common/$unit" "$src/debian/$unit"
done

# Licenses of what is linked in.
"$here/tools/crate-licenses.py" "$repo" list > "$stage/rpm-doc/crates.txt"
"$here/tools/crate-licenses.py" "$repo" notices > "$stage/crate-licenses.txt"
spdx=$("$here/tools/crate-licenses.py" "$repo" spdx)
python3 - "$here/debian/copyright.in" "$src/debian/copyright" "$stage/rpm-doc/crates.txt" "$here/licenses/LICENSE-MIT" "${url:-unknown}" <<'PY'
import sys
tmpl, out, crates, mit, url = sys.argv[1:]
def para(text):  # DEP-5 continuation lines
    return "\n".join(" " + l if l.strip() else " ." for l in text.rstrip("\n").split("\n"))
t = open(tmpl).read()
t = t.replace("@SOURCE_URL@", url)
t = t.replace("@CRATES@", para(open(crates).read()))
t = t.replace("@MIT@", para(open(mit).read()))
open(out, "w").write(t)
PY
echo "stage/crate-licenses.txt usr/share/doc/pam-tap" >> "$src/debian/pam-tap.install"
for f in LICENSE-MIT LICENSE-APACHE; do
    if [ -e "$repo/$f" ]; then cp "$repo/$f" "$stage/rpm-doc/$f"; else cp "$here/licenses/$f" "$stage/rpm-doc/$f"; fi
done
cp "$here/README.md" "$stage/rpm-doc/README.pam-tap"
# A fleet's database: the roles and schema SQL its docs/fleet.md runs (data
# a setup needs, so not under /usr/share/doc, which minimal systems drop).
install -m 0644 "$repo/store/src/postgres/roles.sql" "$stage/roles.sql"
install -m 0644 "$repo/docs/fleet.md" "$stage/rpm-doc/fleet.md"

# --- .deb --------------------------------------------------------------------
if [ $want_deb = 1 ]; then
    log "dpkg-buildpackage"
    (cd "$src" && DEB_BUILD_OPTIONS="noddebs nocheck ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -b -us -uc --no-sign >"$work/dpkg-buildpackage.log" 2>&1) ||
        { tail -n 40 "$work/dpkg-buildpackage.log" >&2; exit 1; }
    deb=pam-tap_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
    cp "$work/$deb" "$dist/$deb"
    echo "$dist/$deb"
    cdeb=cockpit-pam-tap_${version}_all.deb
    cp "$work/$cdeb" "$dist/$cdeb"
    echo "$dist/$cdeb"
fi

# --- .rpm --------------------------------------------------------------------
if [ $want_rpm = 1 ]; then
    log "rpmbuild"
    spec=$work/pam-tap.spec
    cp "$here/rpm/pam-tap.spec" "$spec"
    # %changelog from debian/changelog, newest first.
    python3 - "$src/debian/changelog" >> "$spec" <<'PY'
import email.utils, re, subprocess, sys
out = subprocess.check_output(["dpkg-parsechangelog", "-l", sys.argv[1], "--all", "--format", "rfc822"], text=True)
for block in out.strip().split("\n\n"):
    fields, key = {}, None
    for line in block.split("\n"):
        if line.startswith(" ") and key:
            fields[key] += "\n" + line[1:]
        else:
            key, _, val = line.partition(":")
            fields[key] = val.strip()
    when = email.utils.parsedate_to_datetime(fields["Date"])
    print(f"* {when.strftime('%a %b %d %Y')} {fields['Maintainer']} - {fields['Version']}")
    for line in fields["Changes"].split("\n")[2:]:
        line = line.strip()
        if line.startswith("* "):
            print("- " + line[2:])
        elif line and line != ".":
            print("  " + line)
    print()
PY
    rm -rf "$work/rpm"
    rpmbuild -bb "$spec" --quiet \
        --define "_topdir $work/rpm" \
        --define "stagedir $stage" \
        --define "pkgversion $upstream" \
        --define "pkgrelease $revision" \
        --define "pkglicense $spdx" \
        --define "pkgurl ${url:-https://example.invalid/pam_tap}" \
        --define "_buildhost reproducible" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        >"$work/rpmbuild.log" 2>&1 || { tail -n 40 "$work/rpmbuild.log" >&2; exit 1; }
    rpm=pam-tap-$version.x86_64.rpm
    cp "$work/rpm/RPMS/x86_64/$rpm" "$dist/$rpm"
    echo "$dist/$rpm"
    crpm=cockpit-pam-tap-$version.noarch.rpm
    cp "$work/rpm/RPMS/noarch/$crpm" "$dist/$crpm"
    echo "$dist/$crpm"
fi

# --- lint --------------------------------------------------------------------
if [ $lint = 1 ]; then
    status=0
    if [ $want_deb = 1 ]; then
        log "lintian $deb"
        # Overrides, each with its reason, are in debian/pam-tap.lintian-overrides.
        # (Shown with the overrides first; lintian 2.116 exits 2 when
        # --show-overrides prints any, so the verdict is a second run.)
        lintian --display-info --show-overrides "$dist/$deb" "$dist/$cdeb" | grep -v '^N: ' || true
        lintian --fail-on error,warning --display-info "$dist/$deb" "$dist/$cdeb" || status=1
    fi
    if [ $want_rpm = 1 ]; then
        log "rpmlint $rpm"
        # Settings and filters, each with its reason, are in rpm/rpmlint.toml.
        rpmlint -c "$here/rpm/rpmlint.toml" "$dist/$rpm" "$dist/$crpm" || status=1
    fi
    exit $status
fi
