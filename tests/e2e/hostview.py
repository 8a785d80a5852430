"""A view of the host's files from inside the e2e namespace, to prove that a
test left them alone (e.g. that cockpit-session's wtmp, btmp and lastlog
records went to the namespace's /var overlay, not to the host's /var/log).

The view is the root of the nearest ancestor process that lives in another
mount namespace (the shell that started pytest): its /var is the real
directory the overlay stacks on. /proc/1/root is not used because pid 1 may
be hidden or foreign. Before the view is trusted, a sentinel written to our
/var/log must not show through it.
"""

import hashlib
import os
import secrets


class HostViewError(RuntimeError):
    pass


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        # the command name (field 2) may hold spaces: split after its ')'
        return int(f.read().rsplit(")", 1)[1].split()[1])


class HostView:
    def __init__(self):
        ours = os.readlink("/proc/self/ns/mnt")
        pid = os.getpid()
        while pid > 1:
            pid = _ppid(pid)
            try:
                if os.readlink(f"/proc/{pid}/ns/mnt") == ours:
                    continue
                # a handle on that root stays valid if the process exits
                self.root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
            except (PermissionError, FileNotFoundError):
                continue
            self.pid = pid
            break
        else:
            raise HostViewError("no ancestor process outside this mount namespace: "
                                "no view of the host's files")
        self._prove("var/log")

    def _prove(self, rel):
        name = f".pamtap-e2e-hostview-{secrets.token_hex(8)}"
        ours = os.path.join("/", rel, name)
        with open(ours, "w") as f:
            f.write("written inside the e2e namespace\n")
        try:
            if self.exists(os.path.join(rel, name)):
                raise HostViewError(f"pid {self.pid}'s root shows this namespace's /{rel}: "
                                    "not a view of the host")
            if not self.exists(rel):
                raise HostViewError(f"pid {self.pid}'s root has no /{rel}")
        finally:
            os.unlink(ours)

    def exists(self, rel):
        try:
            os.stat(rel, dir_fd=self.root, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def fingerprint(self, rel):
        """(inode, size, mtime, ctime, sha256 of the first 64 MiB) of the
        host's file, or None when it does not exist."""
        try:
            st = os.stat(rel, dir_fd=self.root, follow_symlinks=False)
        except FileNotFoundError:
            return None
        digest = hashlib.sha256()
        fd = os.open(rel, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=self.root)
        try:
            left = 64 << 20
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest.hexdigest())

    def close(self):
        os.close(self.root)
