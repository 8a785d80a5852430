"""Session set-up for the pam_tap end-to-end tests.

Before any test runs, this process enters (or is already in) a private mount
namespace, overlays /etc, /run, /var and /dev there, proves the host cannot
see writes to /etc, adds the test users and groups to the private
/etc/passwd, /etc/group and /etc/shadow, compiles the PAM driver and the
helper module, and binds a syslog sink at the private /dev/log.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness
import namespace
import system_stack


class World:
    base = None
    mounted = None  # the tmpfs's own mount point under /tmp, for clean-up
    syslog = None
    pam_tap_so = None
    tapctl = None
    missing = None
    system = None


WORLD = World()


def pytest_configure(config):
    try:
        namespace.ensure_private_namespace()
        WORLD.mounted, WORLD.base = namespace.isolate()
    except namespace.NamespaceError as e:
        pytest.exit(f"e2e set-up refused: {e}", returncode=3)
    # a host nscd would answer getpwnam from the host's /etc/passwd: hide it
    for sock in ("/run/nscd/socket", "/var/run/nscd/socket"):
        if os.path.exists(sock):
            os.unlink(sock)  # a whiteout in the namespace's overlay only
    harness.add_accounts(WORLD.base / "home")
    harness.build_helpers(WORLD.base / "bin")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    WORLD.syslog = harness.SyslogSink("/dev/log")

    so = harness.artifact("PAMTAP_SO", "target/release/libpam_tap.so")
    ctl = harness.artifact("PAMTAP_TAPCTL", "target/release/tapctl")
    tapd = harness.artifact("PAMTAP_TAPD", "target/release/tapd")
    missing = [n for n, p in (("libpam_tap.so", so), ("tapctl", ctl), ("tapd", tapd))
               if p is None]
    if missing:
        WORLD.missing = (f"{', '.join(missing)} not built: run `cargo build --release --workspace` "
                         "(or set PAMTAP_SO / PAMTAP_TAPCTL)")
        return
    lib = WORLD.base / "lib"
    lib.mkdir()
    # installed as pam_tap.so, root-owned, like the package will
    WORLD.pam_tap_so = harness.copy_root_owned(so, lib / "pam_tap.so", 0o644)
    WORLD.tapctl = harness.copy_root_owned(ctl, WORLD.base / "bin" / "tapctl", 0o755)
    harness.TAPD = str(harness.copy_root_owned(tapd, WORLD.base / "bin" / "tapd", 0o755))
    # tapd binds its own sockets here (short paths: sun_path holds 108 bytes)
    harness.Daemon.socket_dir = str(harness.store_dir(WORLD.base / "sock"))
    os.chmod(harness.Daemon.socket_dir, 0o755)
    # the default socket, for stacks written without socket= (the docs')
    harness.store_dir("/run/pam_tap")
    os.chmod("/run/pam_tap", 0o755)


def pytest_unconfigure(config):
    harness.stop_default_daemon()
    if WORLD.mounted is not None:
        subprocess.run(["umount", "-l", str(WORLD.base)], capture_output=True)
        subprocess.run(["umount", "-l", str(WORLD.mounted)], capture_output=True)
        try:
            os.rmdir(WORLD.mounted)
        except OSError:
            pass


def pytest_report_header(config):
    return [f"e2e world: {WORLD.base} (private mount namespace), module: {WORLD.pam_tap_so}"]


@pytest.fixture(scope="session")
def world():
    return WORLD


@pytest.fixture(scope="session")
def syslog():
    return WORLD.syslog


@pytest.fixture(scope="session")
def system():
    """pam_tap enabled the package's way (system_stack.py), once per session."""
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    if WORLD.system is None:
        WORLD.system = system_stack.SystemStack(WORLD.base, WORLD.pam_tap_so, WORLD.tapctl)
    return WORLD.system


@pytest.fixture
def tap(request):
    """A fresh policy + initialised store for one test."""
    if WORLD.missing:
        pytest.fail(WORLD.missing)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    workdir = WORLD.base / "t" / name
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.parent.mkdir(exist_ok=True, mode=0o755)
    t = harness.Tap(workdir, WORLD.pam_tap_so, WORLD.tapctl)
    t.init()
    yield t
    t.stop_daemons()


@pytest.fixture
def tmpdir_ns(request):
    """A scratch directory inside the namespace's tmpfs."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    d = WORLD.base / "scratch" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return Path(d)
