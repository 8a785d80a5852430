"""A private mount namespace in which the e2e tests may change /etc freely.

The host's /etc/pam.d, /etc/passwd, /etc/group, /etc/shadow (and the rest of
/etc, /run, /var, /dev) are never written: inside a private mount namespace
each of those directories gets an overlayfs whose upper layer lives on a
tmpfs that vanishes with the namespace.  Before anything is written the
isolation is proven: a sentinel written through the overlay must not be
visible through a directory handle opened on the host's /etc before the
overlay was mounted.
"""

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path

CLONE_NEWNS = 0x00020000
OVERLAID = ("/etc", "/run", "/var", "/dev")
TRUSTED_WORLD = "/run/pamtap-e2e"


class NamespaceError(RuntimeError):
    pass


def _run(*cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NamespaceError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


def _mount_points():
    """Mount points of this namespace, in mount order (unescaped)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            points.append(mp.encode().decode("unicode_escape"))
    return points


def _same_ns_as_init():
    try:
        return os.readlink("/proc/self/ns/mnt") == os.readlink("/proc/1/ns/mnt")
    except PermissionError:
        # pid 1 hidden from us: we cannot compare, so assume the worst.
        return True


def ensure_private_namespace():
    """Enter a private mount namespace unless we already are in one."""
    if os.geteuid() != 0:
        raise NamespaceError("the e2e tests must run as root (they mount and run sshd)")
    if _same_ns_as_init():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(f"unshare(CLONE_NEWNS) failed: {os.strerror(err)}")
    # Whatever we mount from here on must never propagate back to the host.
    _run("mount", "--make-rprivate", "/")


def overlay(path, base):
    """Overlay one more directory (a tmpfs upper layer under base)."""
    name = path.strip("/").replace("/", "_") or "root"
    root = base / "ovl" / name
    upper, work, orig = root / "upper", root / "work", root / "orig"
    for d in (upper, work, orig):
        d.mkdir(parents=True)
    prefix = path.rstrip("/") + "/"
    subs = [mp for mp in _mount_points() if mp.startswith(prefix)]
    # only the outermost submounts: --rbind brings their children along
    tops = []
    for mp in subs:
        if not any(mp != t and mp.startswith(t.rstrip("/") + "/") for t in subs) and mp not in tops:
            tops.append(mp)
    if tops:
        _run("mount", "--rbind", path, str(orig))
    _run(
        "mount", "-t", "overlay", "overlay",
        "-o", f"lowerdir={path},upperdir={upper},workdir={work}", path,
    )
    for mp in tops:
        rel = mp[len(prefix):]
        _run("mount", "--rbind", str(orig / rel), mp)


def isolate():
    """Overlay /etc, /run, /var and /dev; return the tmpfs base directory
    (for clean-up) and the path the tests use it by (TRUSTED_WORLD).

    Must be called after ensure_private_namespace().
    """
    host_etc = os.open("/etc", os.O_RDONLY | os.O_DIRECTORY)
    base = Path(tempfile.mkdtemp(prefix="pamtap-e2e-"))
    _run("mount", "-t", "tmpfs", "-o", "mode=0755,size=2g", "tmpfs", str(base))
    for path in OVERLAID:
        overlay(path, base)
    sentinel = "pamtap-e2e-sentinel"
    Path("/etc", sentinel).write_text("written inside the e2e namespace\n")
    leaked = os.path.exists(f"/proc/self/fd/{host_etc}/{sentinel}")
    os.close(host_etc)
    if leaked:
        os.unlink(f"/etc/{sentinel}")
        raise NamespaceError("overlay isolation failed: a write to /etc reached the host")
    mounted = _mount_points()
    for path in OVERLAID:
        if path not in mounted:
            raise NamespaceError(f"{path} is not overlaid")
    # The tests' files are used through a path whose every directory is
    # root's alone, as pam_tap requires of its policy and key helper (a
    # sticky /tmp is not): the same tmpfs, bound under the private /run.
    world = Path(TRUSTED_WORLD)
    world.mkdir(mode=0o755)
    _run("mount", "--bind", str(base), str(world))
    return base, world
