#!/bin/bash
# Upgrade from pam_tap 0.1 (issue 12, Deliver 5), in a fresh Debian 12 root
# without systemd: install the 0.1 .deb, issue a pass, enroll a software
# security key; upgrade to the new .deb; start tapd as README.Debian shows;
# the pass and the key still sign in, the store is tapd's alone and tapctl
# is no longer set-group-id. Run by packaging/test.sh in private mount and
# pid namespaces (unshare -m -p -f): the mounts and the tapd it starts end
# with it, and nothing of the host's /etc is touched.
#
#   upgrade.sh ROOT DEB_0.1 DEB_NEW SOFTKEY
#
# SOFTKEY is pam_tap-softkey (tests/softkey), the software authenticator
# behind the key-helper protocol, copied into the root.
set -uo pipefail
root=$1 deb_old=$2 deb_new=$3 softkey=$4
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

mount_root
cp "$deb_old" "$root/tmp/old.deb"
cp "$deb_new" "$root/tmp/new.deb"
install -D -m 0755 "$softkey" "$root/usr/local/libexec/pam_tap-softkey"
helper=/usr/local/libexec/softkey-helper
state=/var/lib/softkey/alice.json

echo "# install pam_tap 0.1 ($(dpkg-deb -f "$deb_old" Version))"
check "apt installs 0.1" apt_get install /tmp/old.deb
check "0.1: tapctl is set-group-id root:pam-tap 2755" stat_is /usr/bin/tapctl "root:pam-tap 2755"
check "0.1: the store is root:pam-tap 0660" stat_is /var/lib/pam_tap/tap.db "root:pam-tap 660"

echo "# alice: a password, a pass, and a security key (pam_tap-softkey)"
R useradd -m -s /bin/bash alice
printf 'alice:Alice-pw-7\n' | R chpasswd
R install -d -m 0755 /var/lib/softkey
check "softkey --init makes alice's key" R /usr/local/libexec/pam_tap-softkey --state "$state" --init
R chown alice: "$state"
# plug [OPTS]: the helper runs alice's key (--no-device: the key is away).
plug() {
    printf '#!/bin/sh\nexec /usr/local/libexec/pam_tap-softkey --state %s %s "$@"\n' "$state" "$*" > "$root$helper.tmp"
    chmod 0755 "$root$helper.tmp"
    mv "$root$helper.tmp" "$root$helper"
}
plug
# A local policy change: the helper. dpkg keeps the changed policy (with
# 0.1's keys) across the upgrade, so it must still be read afterwards.
R sed -i "s|^# helper = .*|helper = \"$helper\"|" /etc/security/pam_tap.toml
check "the changed policy is valid (0.1)" R tapctl policy check
pass=$(issue alice) || pass=
check "0.1: tapctl issue alice gives a pass" test -n "$pass"
check "0.1: alice signs in with the pass (pamtester login)" pam_ok login alice "$pass"
check "0.1: alice enrolls the key (tapctl enroll, as alice)" R runuser -u alice -- tapctl enroll --label laptop
check "0.1: tapctl keys alice lists it" bash -c "chroot '$root' tapctl keys alice --json | grep -q laptop"
check "0.1: the key signs alice in (no answer typed)" bash -c "chroot '$root' pamtester -v login alice authenticate </dev/null"

echo "# upgrade to $(dpkg-deb -f "$deb_new" Version)"
check "apt upgrades to the new package" apt_get install /tmp/new.deb
cp "$out" "$out.apt"
check "postinst says tapd is not started without systemd" grep -q 'systemd is not running, so tapd is not started' "$out.apt"
check "version is the new one" bash -c "chroot '$root' dpkg-query -W -f '\${Version}' pam-tap | grep -qx '$(dpkg-deb -f "$deb_new" Version)'"
check "user pam-tap exists, primary group pam-tap" bash -c "[ \"\$(chroot '$root' id -gn pam-tap)\" = pam-tap ]"
check "tapctl is root:root 0755, no statoverride left" no_setgid_tapctl
check "tapd is /usr/sbin/tapd, root:root 0755" stat_is /usr/sbin/tapd "root:root 755"
check "the store moved to pam-tap: files 0600 in a 0700 directory" private_store
R find /var/lib/pam_tap -mindepth 1 -printf '       store: %p %u:%g %m\n'
check "the local policy change is kept" R grep -q "^helper = \"$helper\"" /etc/security/pam_tap.toml
check "the units are installed" R test -s /lib/systemd/system/pam-tap.socket -a -s /lib/systemd/system/pam-tap.service

echo "# tapd, started as README.Debian shows"
check "tapd starts as pam-tap and listens on /run/pam_tap/tapd.sock" start_tapd
check "tapctl policy check (the kept 0.1 policy)" R tapctl policy check
check "alice's pass is still usable" usable alice
check "tapctl keys alice still lists the key" bash -c "chroot '$root' tapctl keys alice --json | grep -q laptop"
check "alice's key still signs her in (no answer typed)" bash -c "chroot '$root' pamtester -v login alice authenticate </dev/null"
plug --no-device
check "key away: alice still signs in with her pass (pamtester login)" pam_ok login alice "$pass"
refute "key away: a wrong pass fails" pam_ok login alice WRONG-PASS-00
check "key away: alice's password still works" pam_ok login alice Alice-pw-7
plug
check "the store is still pam-tap's alone" private_store
check "tapd stops (pkill -u pam-tap -x tapd)" stop_tapd

rm -f "$out" "$out.apt"
echo "upgrade: $passed passed, $failed failed"
[ "$failed" = 0 ]
