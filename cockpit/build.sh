#!/bin/bash
# Build the Cockpit page: cockpit/dist/ (index.html, index.js, index.css,
# manifest.json, fonts), what the cockpit-pam-tap package installs in
# /usr/share/cockpit/pam-tap/ and the e2e test (test_cockpit_page.py) serves.
#
#   cockpit/build.sh
#
# npm packages come from the registry at the versions package-lock.json pins
# (`npm ci`, run again only when the lock file changed); esbuild bundles them
# (build.js). Node and npm are Debian's (tests/install-deps.sh and
# packaging/build.sh install them). When root runs this in a clone someone
# else owns, npm runs as that owner, so node_modules/ and dist/ stay theirs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "cockpit/build.sh: $tool is missing (apt-get install nodejs npm)" >&2; exit 1; }
done
owner=$(stat -c %U "$here")
as_owner() {
    if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
        setpriv --reuid="$owner" --regid="$(id -g "$owner")" --init-groups \
            env HOME="$(getent passwd "$owner" | cut -d: -f6)" "$@"
    else
        "$@"
    fi
}
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    for attempt in 1 2 3; do
        if as_owner npm ci --no-audit --no-fund; then break; fi
        [ "$attempt" = 3 ] && { echo "cockpit/build.sh: npm ci failed" >&2; exit 1; }
        sleep $((attempt * 5))
    done
    as_owner sh -c 'printf "%s\n" "$1" > "$2"' _ "$want" "$stamp"
fi
as_owner node build.js
