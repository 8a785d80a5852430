"""The stack a Debian host gets from the package: the real pam-auth-update
with the package's profile (packaging/common/pam-config) writes the
namespace's /etc/pam.d/common-*, and `pam_tap.so` is found by name in the
PAM module directory, as on an installed host.

Inside the e2e namespace only: the module directory and
/usr/share/pam-configs get overlays of their own (namespace.overlay), so
the host's files are never written.
"""

import os
import subprocess
from pathlib import Path

import harness
import namespace

PROFILE = harness.REPO / "packaging" / "common" / "pam-config"
POLICY = Path("/etc/security/pam_tap.toml")


def module_dir():
    arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return Path(f"/usr/lib/{arch}/security")


class SystemStack:
    """pam_tap enabled by pam-auth-update, policy at its default path."""

    def __init__(self, base, pam_tap_so, tapctl):
        mod = module_dir()
        for path in (str(mod), "/usr/share/pam-configs"):
            namespace.overlay(path, base)
        harness.copy_root_owned(pam_tap_so, mod / "pam_tap.so", 0o644)
        harness.copy_root_owned(PROFILE, Path("/usr/share/pam-configs/pam_tap"), 0o644)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # --force: the host's common-* may carry local edits; the copies
        # written here live in the namespace's /etc overlay only.
        subprocess.run(["pam-auth-update", "--package", "--force", "--enable", "pam_tap"],
                       check=True, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        self.common_auth = Path("/etc/pam.d/common-auth").read_text()
        # the default policy path; its store lives in the namespace's tmpfs
        self.tap = harness.Tap(base / "t" / "system-stack", pam_tap_so, tapctl)
        harness.copy_text_root_owned(self.tap.policy.read_text(), str(POLICY), 0o644)
        self.tap.policy = POLICY
        self.tap.init()

    def auth_lines(self):
        """The auth lines of common-auth, comments and blanks dropped."""
        return [line.split() for line in self.common_auth.splitlines()
                if line.strip() and not line.lstrip().startswith("#")
                and line.split()[0] == "auth"]

    @staticmethod
    def set_password(user, password):
        """Give a test user a real SHA-512 crypt password in the private /etc/shadow."""
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password,
                                capture_output=True, text=True, check=True).stdout.strip()
        lines = Path("/etc/shadow").read_text().splitlines(keepends=True)
        out = []
        for line in lines:
            fields = line.rstrip("\n").split(":")
            if fields[0] == user:
                fields[1] = hashed
                line = ":".join(fields) + "\n"
            out.append(line)
        Path("/etc/shadow").write_text("".join(out))
        os.chmod("/etc/shadow", 0o640)
