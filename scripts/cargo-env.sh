# Sourced (bash) by install.sh, tests/run-all.sh, tests/install-deps.sh and
# packaging/build.sh, which run as root, usually through sudo. Finds the Rust
# toolchain and decides who runs cargo, then defines a `cargo` function
# (exported, so the scripts these start use the same one).
#
#   source scripts/cargo-env.sh REPO
#
# Where cargo is looked for: PATH; then where rustup puts it, in the home of
# root and of the user who ran sudo (sudo's secure_path drops ~/.cargo/bin).
# Who runs it: when the user who ran sudo owns the clone, cargo runs as that
# user with their own toolchain (or the system's), so target/ stays theirs and
# root only installs and runs the tests. Otherwise cargo runs as root; a
# toolchain found in another user's home is then only read (RUSTUP_HOME),
# and crates go to root's own ~/.cargo.
#
# Puts scripts/bin (a `cargo` that does the same) first on PATH for programs
# that are not bash. Sets PAM_TAP_CARGO (the cargo program), PAM_TAP_CARGO_USER (who runs it),
# PAM_TAP_CARGO_HOME (their home) and PAM_TAP_RUSTUP_HOME (set when root uses
# another user's rustup toolchain). When no cargo is found it prints what to
# run and returns 1.

# scripts/bin/cargo calls back here: never take it for the real cargo.
pam_tap_bin=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bin

# Already done by the script that started this one: keep its answer.
if [ -z "${PAM_TAP_CARGO:-}" ]; then
    pam_tap_cargo_env() {
        local repo=$1 user=root home=${HOME:-/root} owner="" found="" candidate=""
        owner=$(stat -c %U "$repo")
        if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ "$owner" = "$SUDO_USER" ]; then
            user=$SUDO_USER
            home=$(getent passwd "$user" | cut -d: -f6)
            # The user's own rustup toolchain, else a cargo on the system's PATH.
            for candidate in "$home/.cargo/bin/cargo" $(type -P -a cargo); do
                if [ -x "$candidate" ] && [ "$candidate" != "$pam_tap_bin/cargo" ] && setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
                    env HOME="$home" "$candidate" --version >/dev/null 2>&1; then
                    found=$candidate
                    break
                fi
            done
        else
            local roots=("${CARGO_HOME:-$home/.cargo}/bin/cargo" /root/.cargo/bin/cargo)
            [ -n "${SUDO_USER:-}" ] && roots+=("$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin/cargo")
            for candidate in $(type -P -a cargo) "${roots[@]}"; do
                [ -x "$candidate" ] && [ "$candidate" != "$pam_tap_bin/cargo" ] || continue
                found=$candidate
                # rustup's proxies in another user's home: read that toolchain.
                case "$candidate" in
                    "$home"/*|/root/*|/usr/*|/bin/*) ;;
                    */.cargo/bin/cargo) export PAM_TAP_RUSTUP_HOME=${candidate%/.cargo/bin/cargo}/.rustup ;;
                esac
                break
            done
        fi
        if [ -z "$found" ]; then
            echo "cargo (Rust) was not found for $user: not on PATH, not in $home/.cargo/bin." >&2
            if [ "$user" = root ]; then
                echo "Install Rust with rustup, then run the command again:" >&2
                echo "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy" >&2
            else
                echo "Install Rust with rustup as $user (not as root), then run the command again:" >&2
                echo "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy" >&2
            fi
            return 1
        fi
        # An earlier build as root leaves target/ the user's cargo cannot write.
        if [ "$user" != root ] && [ -d "$repo/target" ] &&
            [ -n "$(find "$repo/target" -maxdepth 2 ! -user "$user" -print -quit)" ]; then
            echo "$repo/target holds files of another user (an earlier build as root); cargo runs as $user here." >&2
            echo "Give them back, then run the command again:" >&2
            echo "    sudo chown -R --no-dereference $user: $repo/target" >&2
            return 1
        fi
        export PAM_TAP_CARGO=$found PAM_TAP_CARGO_USER=$user PAM_TAP_CARGO_HOME=$home
    }
    pam_tap_cargo_env "$1" || return 1
    unset -f pam_tap_cargo_env
fi

cargo() {
    # cargo's directory first on PATH: rustup puts cargo-fmt, cargo-clippy
    # and rustc beside it.
    if [ "$PAM_TAP_CARGO_USER" = root ]; then
        if [ -n "${PAM_TAP_RUSTUP_HOME:-}" ]; then
            RUSTUP_HOME=$PAM_TAP_RUSTUP_HOME PATH="$(dirname "$PAM_TAP_CARGO"):$PATH" "$PAM_TAP_CARGO" "$@"
        else
            PATH="$(dirname "$PAM_TAP_CARGO"):$PATH" "$PAM_TAP_CARGO" "$@"
        fi
    else
        # The user's environment for their toolchain; the rest (CARGO_TARGET_DIR,
        # CFLAGS, ...) passes through.
        setpriv --reuid="$PAM_TAP_CARGO_USER" --regid="$(id -g "$PAM_TAP_CARGO_USER")" --init-groups \
            env -u CARGO_HOME -u RUSTUP_HOME HOME="$PAM_TAP_CARGO_HOME" USER="$PAM_TAP_CARGO_USER" \
            LOGNAME="$PAM_TAP_CARGO_USER" PATH="$(dirname "$PAM_TAP_CARGO"):$PATH" "$PAM_TAP_CARGO" "$@"
    fi
}
# Runs a command as the user who runs cargo (for files that must stay theirs).
as_cargo_user() {
    if [ "$PAM_TAP_CARGO_USER" = root ]; then
        "$@"
    else
        setpriv --reuid="$PAM_TAP_CARGO_USER" --regid="$(id -g "$PAM_TAP_CARGO_USER")" --init-groups "$@"
    fi
}
export -f cargo as_cargo_user
# The same for programs that are not bash: scripts/bin/cargo.
case ":$PATH:" in
    *":$pam_tap_bin:"*) ;;
    *) PATH="$pam_tap_bin:$PATH"; export PATH ;;
esac
unset pam_tap_bin
