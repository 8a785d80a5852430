#!/bin/bash
# Build (once) the 0.1 package that the upgrade test installs first: the
# .deb of the last commit before tapd, made by that commit's own
# packaging/build.sh from a `git archive` of it, and cached.
#
#   packaging/test/old-deb.sh [COMMIT]   -> prints the path of the .deb
#
# COMMIT defaults to 8999913 (pam_tap 0.1: the module and a set-group-id
# tapctl open the store themselves). The .deb is cached outside the clone,
# in $PAM_TAP_CI_CACHE/old-<commit>/dist/ (default /var/cache/pam_tap-ci:
# CI runs in a fresh clone each time, and the build takes about 13 minutes
# on 2 busy cores; later runs cost nothing). The key is the full commit id,
# so a cached .deb is always that commit's. Needs the commit in this clone
# (not a shallow one) and, the first time, the crates of its Cargo.lock in
# cargo's cache or on crates.io.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PAM_TAP_CI_CACHE:-/var/cache/pam_tap-ci}
commit=${1:-8999913}
full=$(git -C "$repo" rev-parse --verify --quiet "$commit^{commit}") ||
    { echo "old-deb: commit $commit is not in $repo (a shallow clone? git fetch --unshallow)" >&2; exit 1; }
out=$cache/old-${full:0:12}
found=$(ls "$out"/dist/pam-tap_*.deb 2>/dev/null | head -n1 || true)
if [ -n "$found" ]; then echo "$found"; exit 0; fi

mkdir -p "$out"
rm -rf "$out/src" "$out/dist" "$out/dist.tmp"
mkdir -p "$out/src"
git -C "$repo" archive "$full" | tar -x -C "$out/src"
echo "old-deb: building pam-tap from ${full:0:12} with its own packaging/build.sh (one-time, cached in $out)" >&2
PAM_TAP_DIST=$out/dist.tmp PAM_TAP_TARGET_DIR=$out/target \
    "$out/src/packaging/build.sh" --deb-only > "$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >&2; exit 1; }
# Only a finished build counts as cached: dist/ appears whole, at the end.
mv "$out/dist.tmp" "$out/dist"
# The sources and the build tree are not needed once the .deb is made.
rm -rf "$out/src" "$out/target"
ls "$out"/dist/pam-tap_*.deb
