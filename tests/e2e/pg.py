"""A real PostgreSQL for the e2e tier, started by the tests: Debian's
server binaries, `initdb` in the namespace's tmpfs as the unprivileged
`nobody`, listening on 127.0.0.1 (a free port) and a private socket
directory, TLS on with a server certificate from a test CA made here with
the openssl CLI, scram-sha-256 over hostssl for pam_tap's two roles. The
database gets store/src/postgres/roles.sql as the docs say, and the roles
their passwords. Nothing of the host's clusters or services is touched.
"""

import glob
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import harness

OWNER = "nobody"
ROLES_SQL = harness.REPO / "store" / "src" / "postgres" / "roles.sql"


def server_bin():
    for bin_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.isfile(f"{bin_dir}/initdb") and os.path.isfile(f"{bin_dir}/postgres"):
            return Path(bin_dir)
    raise AssertionError("PostgreSQL server binaries not found under /usr/lib/postgresql: "
                         "run tests/install-deps.sh")


def as_owner(cmd):
    u = pwd.getpwnam(OWNER)
    return ["setpriv", f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--clear-groups",
            "--pdeathsig=KILL", "--"] + [str(c) for c in cmd]


def give(path, mode):
    u = pwd.getpwnam(OWNER)
    os.chown(path, u.pw_uid, u.pw_gid)
    os.chmod(path, mode)


def run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: {proc.stdout}{proc.stderr}")
    return proc.stdout


class Cluster:
    def __init__(self, workdir, conf="", hba=None, socket_dirs=(), setup=True, prepare=None):
        """conf: postgresql.conf lines after ours (later lines win); hba: the
        pg_hba.conf lines for pam_tap's roles instead of ours; socket_dirs:
        more socket directories (made, owned by OWNER); prepare(cluster):
        called before the server starts (its certificates are made);
        setup=False leaves the database, roles.sql and the passwords to the
        caller."""
        self.bin = server_bin()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, mode=0o755)
        self.server = self.dir / "server"
        self.server.mkdir(mode=0o700)
        give(self.server, 0o700)
        self.data = self.server / "data"
        run(as_owner([self.bin / "initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8",
                      "--auth-local=trust", "--auth-host=reject"]), cwd=self.server)
        self.ca = self.dir / "ca.pem"
        self._certificates()
        self.sock = self.server / "sock"
        self.sock.mkdir()
        give(self.sock, 0o700)
        for extra in socket_dirs:
            Path(extra).mkdir(parents=True, exist_ok=True)
            give(extra, 0o755)
        sockets = ", ".join(str(d) for d in (self.sock, *socket_dirs))
        self.port = harness.free_port()
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{sockets}'\nssl = on\n"
                    f"ssl_cert_file = '{self.server}/server.crt'\n"
                    f"ssl_key_file = '{self.server}/server.key'\n"
                    "password_encryption = 'scram-sha-256'\nmax_connections = 150\n"
                    "shared_buffers = 16MB\nfsync = off\nfull_page_writes = off\n" + conf)
        if hba is None:
            hba = "hostssl all pam_tap_admin,pam_tap_host 127.0.0.1/32 scram-sha-256\n"
        (self.data / "pg_hba.conf").write_text("local all postgres trust\n" + hba)
        self.log = self.dir / "postgres.log"
        self.proc = None
        if prepare is not None:
            prepare(self)
        self.start()
        self.database = "pam_tap"
        self.passwords = {}
        if not setup:
            return
        self.sql("postgres", f"CREATE DATABASE {self.database}")
        run(self.psql(self.database) + ["-v", "ON_ERROR_STOP=1", "-f", ROLES_SQL])
        for role in ("pam_tap_admin", "pam_tap_host"):
            secret = os.urandom(12).hex()
            self.passwords[role] = secret
            self.sql(self.database, f"ALTER ROLE {role} PASSWORD '{secret}'")

    def _certificates(self):
        """A test CA and a server certificate for 127.0.0.1 and localhost."""
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", d / "ca.key", "-out", self.ca, "-days", "2",
             "-subj", "/CN=pam_tap e2e test CA"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.server / "server.key", "-out", d / "server.csr",
             "-subj", "/CN=localhost"])
        (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run(["openssl", "x509", "-req", "-in", d / "server.csr", "-CA", self.ca, "-CAkey",
             d / "ca.key", "-CAcreateserial", "-out", self.server / "server.crt", "-days", "2",
             "-extfile", d / "ext"])
        for name in ("server.crt", "server.key"):
            give(self.server / name, 0o600)
        os.chmod(self.ca, 0o644)

    def start(self):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(as_owner([self.bin / "postgres", "-D", self.data]),
                                     cwd=self.server, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"postgres exited: {self.log.read_text()[-2000:]}")
            probe = subprocess.run(self.psql("postgres") + ["-c", "SELECT 1"],
                                   capture_output=True)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"postgres not ready: {self.log.read_text()[-2000:]}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def psql(self, db):
        return as_owner([self.bin / "psql", "-X", "-q", "-A", "-t",
                         "-h", self.sock, "-p", self.port, "-U", "postgres", "-d", db])

    def sql(self, db, statement):
        return run(self.psql(db) + ["-v", "ON_ERROR_STOP=1", "-c", statement]).strip()

    def url(self, role):
        return f"postgresql://{role}@127.0.0.1:{self.port}/{self.database}"

    def password_file(self, role, path, owner):
        """The role's password, in a file `owner` alone may read."""
        path = Path(path)
        path.write_text(self.passwords[role] + "\n")
        uid, gid = harness.USERS[owner] if owner in harness.USERS else (0, 0)
        os.chown(path, uid, gid)
        os.chmod(path, 0o600)
        return path

    def store_table(self, role, password_file, connect_timeout="2s"):
        return ("\n[store]\nbackend = \"postgresql\"\n"
                f"url = \"{self.url(role)}\"\npassword_file = \"{password_file}\"\n"
                f"ca_file = \"{self.ca}\"\nconnect_timeout = \"{connect_timeout}\"\n")


# --------------------------------------------------------------------------
# faults and failover (test_fleet_faults.py): additions only, the code above
# is shared with the other fleet tests.

def pids_of(cluster):
    """The postmaster and every process it started (backends, walsender,
    checkpointer, ...), postmaster first."""
    top = cluster.proc.pid  # setpriv execs postgres: the same pid
    children = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        # the command name may hold spaces: the fields after its ")"
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[1]) == top:
            children.append(int(stat.split("/")[2]))
    return [top] + children


def freeze(cluster):
    """The server stops answering, as a silently dropping network looks from
    tapd: SIGSTOP the postmaster (it can start no backend), then the rest.
    The kernel still completes TCP handshakes on the listening socket, so a
    new connection hangs after connect() instead of being refused."""
    stopped = []
    for pid in pids_of(cluster):
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
    return stopped


def thaw(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def url_for(role, clusters, database="pam_tap", **params):
    """A libpq URL naming several servers, in order (url.rs reads it)."""
    hosts = ",".join(f"127.0.0.1:{c.port}" for c in clusters)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"postgresql://{role}@{hosts}/{database}" + (f"?{query}" if query else "")


def store_section(url, password_file, ca_file, connect_timeout="1s", statement_timeout="2s"):
    """A policy's `[store]` table for any URL and timeouts."""
    return ("\n[store]\nbackend = \"postgresql\"\n"
            f"url = \"{url}\"\npassword_file = \"{password_file}\"\n"
            f"ca_file = \"{ca_file}\"\nconnect_timeout = \"{connect_timeout}\"\n"
            f"statement_timeout = \"{statement_timeout}\"\n")


def reload(cluster):
    cluster.sql("postgres", "SELECT pg_reload_conf()")


def expired_certificate(cluster):
    """A server certificate for 127.0.0.1 and localhost from the cluster's
    CA whose validity ended in 2020 (`openssl ca` sets the dates; `x509
    -req` cannot in OpenSSL 3.0)."""
    d = cluster.dir / "expired-ca"
    d.mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = here\n[here]\n"
        f"database = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\n"
        "default_md = sha256\npolicy = any\nunique_subject = no\n"
        "[any]\ncommonName = supplied\n")
    out = d / "server.crt"
    run(["openssl", "ca", "-batch", "-notext", "-config", d / "ca.cnf",
         "-cert", cluster.ca, "-keyfile", cluster.dir / "ca.key", "-in", cluster.dir / "server.csr",
         "-out", out, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
         "-extfile", cluster.dir / "ext"])
    return out


def serve_certificate(cluster, certificate):
    """The server presents `certificate` (same key) to new connections."""
    target = cluster.server / "server.crt"
    target.write_bytes(Path(certificate).read_bytes())
    give(target, 0o600)
    reload(cluster)


class Standby(Cluster):
    """A synchronous streaming standby of `primary`: `pg_basebackup -R` as
    the owner over the primary's socket, its own port and socket directory,
    the same server certificate (127.0.0.1 and localhost, so valid for
    both), and the primary waiting for it on every commit
    (`synchronous_standby_names`, `synchronous_commit = on`)."""

    NAME = "pam_tap_standby"

    def __init__(self, primary, workdir):
        self.bin = primary.bin
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, mode=0o755)
        self.server = self.dir / "server"
        self.server.mkdir(mode=0o700)
        give(self.server, 0o700)
        self.data = self.server / "data"
        self.ca = primary.ca
        for name in ("server.crt", "server.key"):
            (self.server / name).write_bytes((primary.server / name).read_bytes())
            give(self.server / name, 0o600)
        self.sock = self.server / "sock"
        self.sock.mkdir()
        give(self.sock, 0o700)
        self.port = harness.free_port()
        with open(primary.data / "pg_hba.conf", "a") as f:
            f.write("local replication postgres trust\n")
        reload(primary)
        run(as_owner([self.bin / "pg_basebackup", "-D", self.data, "-R", "-X", "stream",
                      "-c", "fast", "-d",
                      f"host={primary.sock} port={primary.port} user=postgres "
                      f"application_name={self.NAME}"]), cwd=self.server)
        with open(self.data / "postgresql.conf", "a") as f:
            # later lines win over the primary's, copied with the data
            f.write(f"port = {self.port}\nunix_socket_directories = '{self.sock}'\n"
                    f"ssl_cert_file = '{self.server}/server.crt'\n"
                    f"ssl_key_file = '{self.server}/server.key'\n"
                    # once promoted it has no standby of its own to wait for
                    "synchronous_standby_names = ''\n")
        self.log = self.dir / "postgres.log"
        self.proc = None
        self.start()
        self.database = primary.database
        self.passwords = primary.passwords
        try:
            with open(primary.data / "postgresql.conf", "a") as f:
                f.write(f"synchronous_standby_names = '\"{self.NAME}\"'\n"
                        "synchronous_commit = on\n")
            reload(primary)
            deadline = time.monotonic() + 30
            query = ("SELECT sync_state FROM pg_stat_replication "
                     f"WHERE application_name = '{self.NAME}'")
            while primary.sql("postgres", query) != "sync":
                if time.monotonic() > deadline:
                    raise AssertionError(
                        "the standby is not synchronous: "
                        f"{primary.sql('postgres', 'TABLE pg_stat_replication')}")
                time.sleep(0.1)
        except BaseException:
            self.stop()  # the caller never gets it to stop
            raise

    def promote(self):
        """`pg_ctl promote`, waiting until it takes writes."""
        run(as_owner([self.bin / "pg_ctl", "promote", "-w", "-t", "60", "-D", self.data]),
            cwd=self.server)
