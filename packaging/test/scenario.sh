#!/bin/bash
# The .deb's life in a fresh Debian 12 root: install, sign in, upgrade,
# remove, purge, reinstall with systemd. Run by packaging/test.sh inside
# private mount and pid namespaces (unshare -m -p -f), so the mounts below and
# the tapd it starts end with it, and nothing of the host's /etc is touched.
#
#   scenario.sh ROOT DEB_OLD DEB_NEW COCKPIT_DEB
set -uo pipefail
root=$1 deb_old=$2 deb_new=$3 cockpit_deb=$4
here=$(cd "$(dirname "$0")" && pwd)
expect=$here/pty_expect.py
# shellcheck source=lib.sh
source "$here/lib.sh"

mount_root
cp "$deb_old" "$deb_new" "$cockpit_deb" "$root/tmp/"
old=/tmp/$(basename "$deb_old") new=/tmp/$(basename "$deb_new") cockpit=/tmp/$(basename "$cockpit_deb")

# one_prompt CMD...: CMD succeeds, and its output (in $out, which check
# writes as it runs) shows the one prompt exactly once.
one_prompt() {
    "$@" || return 1
    [ "$(grep -o 'Password or Temporary Access Pass: ' "$out" | wc -l)" = 1 ] || { echo "not exactly one prompt"; return 1; }
}
saw_pass_prompt() { grep -q 'Temporary Access Pass' "$out" || { echo "no pass prompt"; false; }; }
common_auth_has_tap() {
    # pam_tap first, jumping over pam_unix to pam_permit on success.
    R grep -E '^auth[[:space:]]+\[success=2 default=ignore\][[:space:]]+pam_tap\.so' /etc/pam.d/common-auth &&
    [ "$(R grep -c pam_tap /etc/pam.d/common-auth)" = 1 ] &&
    [ "$(R grep -n -m1 -E 'pam_(tap|unix)\.so' /etc/pam.d/common-auth | grep -c pam_tap)" = 1 ]
}
no_tap_in_pam() { ! R grep -rn pam_tap /etc/pam.d || { echo "pam_tap still in /etc/pam.d"; false; }; }
# su from the unprivileged user carol, on a terminal.
su_as_carol() { "$expect" --timeout 60 "${@:2}" -- chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
    runuser -u carol -- su "$1" -c 'echo "signed-in-as=$(id -un)"'; }

echo "# install $(basename "$deb_old") (no systemd: adduser/mkdir fallback)"
# packaging/README.md's install command, run as written, in the directory
# that holds the .deb; its file name must be the one build.sh makes.
readme_install=$(sed -n 's/^\(apt install \.\/pam-tap_[^ ]*\.deb\)$/\1/p' "$here/../README.md" | head -n1)
check "packaging/README.md shows apt install ./$(basename "$deb_old")" test "$readme_install" = "apt install ./$(basename "$deb_old")"
check "apt installs the package: $readme_install" R env DEBIAN_FRONTEND=noninteractive sh -c "cd /tmp && $readme_install" </dev/null
cp "$out" "$out.apt"
check "postinst says tapd is not started without systemd" grep -q 'systemd is not running, so tapd is not started' "$out.apt"
check "package is installed" R dpkg-query -W -f '${Status} ${Version}\n' pam-tap
check "user pam-tap is a system user with group pam-tap" bash -c "uid=\$(chroot '$root' id -u pam-tap) && [ \"\$uid\" -lt 1000 ] && [ \"\$(chroot '$root' id -gn pam-tap)\" = pam-tap ]"
check "tapctl is root:root 0755 (not set-group-id), no statoverride" no_setgid_tapctl
check "tapd is /usr/sbin/tapd root:root 0755" stat_is /usr/sbin/tapd "root:root 755"
check "units in /lib/systemd/system" R test -s /lib/systemd/system/pam-tap.socket -a -s /lib/systemd/system/pam-tap.service
check "module in the multiarch PAM dir" stat_is /usr/lib/x86_64-linux-gnu/security/pam_tap.so "root:root 644"
check "key helper at the policy's default path" stat_is /usr/libexec/pam_tap/pam_tap-keyhelper "root:root 755"
check "key helper runs and finds no key here" bash -c "echo '{\"op\":\"probe\"}' | chroot '$root' /usr/libexec/pam_tap/pam_tap-keyhelper | grep -q '\"no_device\"'"
check "policy is root:root 0644" stat_is /etc/security/pam_tap.toml "root:root 644"
check "policy is a conffile" bash -c "chroot '$root' dpkg-query -W -f '\${Conffiles}' pam-tap | grep -q '/etc/security/pam_tap.toml '"
check "store dir is pam-tap:pam-tap 0700" stat_is /var/lib/pam_tap "pam-tap:pam-tap 700"
check "tmpfiles.d and sysusers.d entries" R test -s /usr/lib/tmpfiles.d/pam_tap.conf -a -s /usr/lib/sysusers.d/pam_tap.conf
check "man pages" R test -s /usr/share/man/man8/pam_tap.8.gz -a -s /usr/share/man/man8/tapd.8.gz -a -s /usr/share/man/man1/tapctl.1.gz -a -s /usr/share/man/man5/pam_tap.toml.5.gz
check "completions" R test -s /usr/share/bash-completion/completions/tapctl -a -s /usr/share/zsh/vendor-completions/_tapctl -a -s /usr/share/fish/vendor_completions.d/tapctl.fish
check "copyright and changelog" R test -s /usr/share/doc/pam-tap/copyright -a -s /usr/share/doc/pam-tap/changelog.Debian.gz
check "a fleet's roles.sql, as the source has it" cmp "$root/usr/share/pam_tap/roles.sql" "$here/../../store/src/postgres/roles.sql"
check "docs/fleet.md in the docs" bash -c "zcat '$root/usr/share/doc/pam-tap/fleet.md.gz' | cmp - '$here/../../docs/fleet.md'"
check "the shipped policy is valid" R tapctl policy check
check "pam-auth-update put pam_tap first in common-auth" common_auth_has_tap
R cat /etc/pam.d/common-auth | grep -E '^auth' | sed 's/^/       common-auth: /'

echo "# tapd, started as README.Debian shows (no systemd here)"
check "tapd starts as pam-tap and listens on /run/pam_tap/tapd.sock" start_tapd

echo "# users: alice (a password and a pass), bob (password only), carol (runs su)"
R useradd -m -s /bin/bash alice
R useradd -m -s /bin/bash bob
R useradd -m -s /bin/bash carol
printf 'alice:Alice-pw-7\nbob:Bob-pw-42\n' | R chpasswd
printf 'alice ALL=(ALL) ALL\n' > "$root/etc/sudoers.d/alice"; chmod 0440 "$root/etc/sudoers.d/alice"
# README.Debian's own commands, as written.
issue_block=$(readme_debian_block '^Issue a pass')
check "README.Debian: $issue_block (prints the pass)" bash -c "[ \"\$(printf '%s\n' \"\$1\" | wc -l)\" = 1 ] && chroot '$root' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -ec \"\$1\" | grep -q 'Temporary Access Pass for alice'" _ "$issue_block"
toggle_block=$(readme_debian_block '^Turn pass sign-in off')
check "README.Debian shows pam-auth-update --disable and --enable" test "$toggle_block" = "$(printf 'pam-auth-update --disable pam_tap\npam-auth-update --enable pam_tap')"
check "README.Debian: $(sed -n 1p <<<"$toggle_block") takes pam_tap out of common-auth" bash -c "chroot '$root' sh -ec \"\$1\" && ! chroot '$root' grep -q pam_tap /etc/pam.d/common-auth" _ "$(sed -n 1p <<<"$toggle_block")"
check "README.Debian: $(sed -n 2p <<<"$toggle_block") puts it back" bash -c "chroot '$root' sh -ec \"\$1\"" _ "$(sed -n 2p <<<"$toggle_block")"
check "pam_tap is first in common-auth again" common_auth_has_tap
pass=$(issue alice) || pass=
check "tapctl issue alice --json gives a pass (replacing the first)" test -n "$pass"
check "tapctl show: alice's pass is usable" usable alice
check "the store tapd made is pam-tap's alone (0600 in 0700)" private_store

echo "# sign in"
# (pamtester runs as root, and /etc/pam.d/su lets root through with
# pam_rootok, so su is tested for real below, from carol on a terminal.)
for svc in login sudo; do
    check "pamtester $svc: alice with her pass" pam_ok "$svc" alice "$pass"
    saw_pass_prompt >/dev/null || { failed=$((failed + 1)); echo "FAIL - $svc: no pass prompt"; }
done
check "pamtester login: alice with her password, at the same one prompt, once" one_prompt pam_ok login alice Alice-pw-7
check "alice's password sign-in counted no pass try" bash -c "chroot '$root' tapctl show alice --json | grep -q '\"failures\": 0'"
refute "pamtester login: a wrong pass fails" pam_ok login alice "WRONG-PASS-00"
check "pamtester login: bob (no pass) with his password, at the one prompt, once" one_prompt pam_ok login bob Bob-pw-42
refute "pamtester login: bob with a wrong password fails" pam_ok login bob nope
check "su from carol to alice with the pass (pty)" su_as_carol alice --expect 'Temporary Access Pass' --send "$pass" --expect 'signed-in-as=alice'
check "su from carol to bob with his password (pty), one prompt" one_prompt su_as_carol bob --expect '[Pp]assword' --send Bob-pw-42 --expect 'signed-in-as=bob'
refute "su to alice with a wrong pass fails (pty)" su_as_carol alice --expect 'Temporary Access Pass' --send WRONG-PASS-00 --expect '[Pp]assword' --send x --expect 'signed-in-as=alice'
check "sudo as alice with her pass (pty)" "$expect" --timeout 60 --expect 'Temporary Access Pass' --send "$pass" --expect '(^|\n)root' \
    -- chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb runuser -u alice -- sudo -k id -un
check "audit trail has the sign-ins" bash -c "chroot '$root' tapctl audit --user alice | grep -qi alice"
check "alice's own tapctl status (her uid, through tapd)" bash -c "chroot '$root' runuser -u alice -- tapctl status | grep -q 'Temporary Access Pass for alice'"

echo "# fail closed: an unsafe policy turns pass sign-in off, passwords still work"
R chmod 0664 /etc/security/pam_tap.toml
refute "pamtester login: alice's pass refused with a group-writable policy" pam_ok login alice "$pass"
check "pamtester login: bob still signs in" pam_ok login bob Bob-pw-42
R chmod 0644 /etc/security/pam_tap.toml

echo "# upgrade to $(basename "$deb_new"), with a locally changed policy"
R sed -i -e 's/^max_failures = 5 /max_failures = 4 /' -e '1i # local change kept across upgrades' /etc/security/pam_tap.toml
check "local policy change is valid" R tapctl policy check
check "apt upgrades the package" apt_get install "$new"
check "version is the new one" bash -c "chroot '$root' dpkg-query -W -f '\${Version}' pam-tap | grep -qx '$(dpkg-deb -f "$deb_new" Version)'"
check "local policy change kept" R grep -q '^max_failures = 4 ' /etc/security/pam_tap.toml
check "store kept: alice's pass still usable" usable alice
check "pamtester login: alice's pass still works" pam_ok login alice "$pass"
check "tapctl still root:root 0755" no_setgid_tapctl
check "the store is still pam-tap's alone" private_store
check "common-auth still has pam_tap once" common_auth_has_tap

echo "# remove"
check "tapd stops (pkill -u pam-tap -x tapd, as README.Debian says)" stop_tapd
check "apt removes the package" apt_get remove pam-tap
check "no pam_tap line left in /etc/pam.d" no_tap_in_pam
check "module is gone" absent /usr/lib/x86_64-linux-gnu/security/pam_tap.so
check "pamtester login: bob signs in with his password" pam_ok login bob Bob-pw-42
refute "pamtester login: alice's pass no longer signs in" pam_ok login alice "$pass"
check "su from carol to bob still works (pty)" su_as_carol bob --expect '[Pp]assword' --send Bob-pw-42 --expect 'signed-in-as=bob'
check "remove keeps the store" R test -f /var/lib/pam_tap/tap.db
check "remove keeps the policy" R test -f /etc/security/pam_tap.toml

echo "# purge"
check "apt purges the package" apt_get purge pam-tap
check "package is gone" bash -c "! chroot '$root' dpkg-query -W -f '\${Status}' pam-tap 2>/dev/null | grep -q installed"
check "store dir is gone" absent /var/lib/pam_tap
check "policy is gone" absent /etc/security/pam_tap.toml
check "statoverride is gone" bash -c "! chroot '$root' dpkg-statoverride --list /usr/bin/tapctl"
check "no pam_tap line left in /etc/pam.d" no_tap_in_pam
check "pam-auth-update runs cleanly after purge" R pam-auth-update --package
check "pamtester login: bob signs in with his password" pam_ok login bob Bob-pw-42
check "user and group pam-tap are kept on purge (by design)" R getent passwd pam-tap

echo "# with systemd (sysusers.d, tmpfiles.d) and openssh-server: reinstall after purge"
check "apt installs systemd and openssh-server from the cache" apt_get install --no-install-recommends systemd openssh-server
# Take the user and group away and hide adduser/addgroup: only
# systemd-sysusers can make them now.
R userdel pam-tap
R groupdel pam-tap 2>/dev/null
R mv /usr/sbin/addgroup /usr/sbin/addgroup.hidden
R mv /usr/sbin/adduser /usr/sbin/adduser.hidden
check "apt installs $(basename "$deb_new")" apt_get install "$new"
R mv /usr/sbin/addgroup.hidden /usr/sbin/addgroup
R mv /usr/sbin/adduser.hidden /usr/sbin/adduser
check "systemd-sysusers made user pam-tap, group pam-tap" bash -c "[ \"\$(chroot '$root' id -gn pam-tap)\" = pam-tap ]"
check "store dir is pam-tap:pam-tap 0700" stat_is /var/lib/pam_tap "pam-tap:pam-tap 700"
check "tapctl is root:root 0755" no_setgid_tapctl
check "common-auth has pam_tap" common_auth_has_tap
# --man=no: the root has no man-db (the pages are checked above); any
# message fails, as verify exits 0 on a value it cannot parse.
check "systemd-analyze verify on the installed units: no message" bash -c "v=\$(chroot '$root' systemd-analyze verify --man=no pam-tap.socket pam-tap.service 2>&1) && [ -z \"\$v\" ] || { printf '%s\n' \"\$v\"; false; }"
check "tapd starts as pam-tap (as README.Debian shows)" start_tapd
pass=$(issue alice) || pass=
check "pamtester sshd: alice with a new pass" pam_ok sshd alice "$pass"
check "pamtester sshd: bob with his password" pam_ok sshd bob Bob-pw-42
check "the new store is pam-tap's alone" private_store

echo "# SSH keys: the sshd drop-in, shipped disabled, enabled as pam_tap(8) and the README say"
dropin=/etc/ssh/sshd_config.d/pam_tap.conf
check "the drop-in is a conffile, root:root 0644" bash -c "chroot '$root' dpkg-query -W -f '\${Conffiles}' pam-tap | grep -q '$dropin ' && [ \"\$(stat -c '%U:%G %a' '$root$dropin')\" = 'root:root 644' ]"
check "user pam-tap-ssh is a system user" bash -c "uid=\$(chroot '$root' id -u pam-tap-ssh) && [ \"\$uid\" -lt 1000 ]"
check "pam-auth-update put 'session optional pam_tap.so' in common-session" R grep -Eq '^session[[:space:]]+optional[[:space:]]+pam_tap\.so' /etc/pam.d/common-session
R mkdir -p /run/sshd
check "as shipped, sshd runs no AuthorizedKeysCommand" bash -c "! chroot '$root' /usr/sbin/sshd -T -C user=alice,host=h,addr=127.0.0.1 | grep -qi '^authorizedkeyscommand /'"
enable_cmd=$(sed -n 's/^#   \(sed -i .*pam_tap.conf\)$/\1/p' "$here/../common/sshd-pam_tap.conf")
check "the drop-in names its enable command: $enable_cmd" test "$enable_cmd" = "sed -i 's/^#enable: //' /etc/ssh/sshd_config.d/pam_tap.conf"
for doc in README.md packaging/README.md; do
    check "$doc shows that command" grep -qF "$enable_cmd" "$here/../../$doc"
done
check "pam_tap(8) shows that command" grep -qF "$(sed 's/-/\\-/g' <<<"$enable_cmd")" "$here/../common/man/pam_tap.8"
check "enable: $enable_cmd" R sh -ec "$enable_cmd"
check "sshd -T: AuthorizedKeysCommand /usr/bin/tapctl authorized-keys %u" bash -c "chroot '$root' /usr/sbin/sshd -T -C user=alice,host=h,addr=127.0.0.1 | grep -qx 'authorizedkeyscommand /usr/bin/tapctl authorized-keys %u'"
check "sshd -T: AuthorizedKeysCommandUser pam-tap-ssh" bash -c "chroot '$root' /usr/sbin/sshd -T -C user=alice,host=h,addr=127.0.0.1 | grep -qx 'authorizedkeyscommanduser pam-tap-ssh'"
check "as pam-tap-ssh, authorized-keys alice prints nothing while [ssh] is off" bash -c "out=\$(chroot '$root' runuser -u pam-tap-ssh -- /usr/bin/tapctl authorized-keys alice) && [ -z \"\$out\" ]"
R sed -i '/^\[ssh\]/,$ s/^enabled = false/enabled = true/; /^\[ssh\]/,$ s/^key_types = \[/key_types = ["ssh-ed25519", /' /etc/security/pam_tap.toml
check "policy with [ssh] on is valid" R tapctl policy check
R ssh-keygen -q -t ed25519 -N '' -C laptop -f /root/alice_key
check "root adds a key for alice (tapctl ssh-keys add --user alice)" R tapctl ssh-keys add --user alice --label laptop /root/alice_key.pub
check "as pam-tap-ssh, authorized-keys alice prints her key" bash -c "[ \"\$(chroot '$root' runuser -u pam-tap-ssh -- /usr/bin/tapctl authorized-keys alice)\" = \"\$(cut -d' ' -f1,2 '$root/root/alice_key.pub') pam_tap\" ]"
refute "as bob, authorized-keys alice is refused" R runuser -u bob -- /usr/bin/tapctl authorized-keys alice
echo "# the Cockpit page: cockpit-pam-tap"
check "apt installs $(basename "$cockpit_deb") (cockpit-bridge from the cache)" apt_get install --no-install-recommends "$cockpit"
for f in manifest.json index.html index.js index.css; do
    check "/usr/share/cockpit/pam-tap/$f is root:root 0644" stat_is "/usr/share/cockpit/pam-tap/$f" "root:root 644"
done
check "index.html loads Cockpit's base1 cockpit.js and the bundle" R grep -q 'src="../base1/cockpit.js".*' /usr/share/cockpit/pam-tap/index.html
check "cockpit-bridge --packages lists pam-tap" bash -c "chroot '$root' cockpit-bridge --packages | grep -E '^pam-tap[[:space:]]'"
check "apt removes cockpit-pam-tap" apt_get purge cockpit-pam-tap
check "its directory is gone" absent /usr/share/cockpit/pam-tap
check "tapd stops" stop_tapd
check "apt purges the package again" apt_get purge pam-tap
check "no pam_tap line left in /etc/pam.d" no_tap_in_pam
check "purge removes the sshd drop-in" absent /etc/ssh/sshd_config.d/pam_tap.conf
check "pamtester sshd: bob still signs in" pam_ok sshd bob Bob-pw-42

rm -f "$out" "$out.apt"
echo "scenario: $passed passed, $failed failed"
[ "$failed" = 0 ]
