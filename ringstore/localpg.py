"""A private PostgreSQL server from the machine's own binaries: what ``ringstore cluster up
--postgres`` runs and what the PostgreSQL store's tests start.

It lives in one directory (``initdb`` on first start, ``pg_ctl start`` after), listens on
127.0.0.1 only on the port given, trusts local connections (the server is reachable only from
this machine, as the rest of a local cluster), and runs with
``default_transaction_isolation = serializable`` so that every client sees the same isolation
the metadata store asks for. ``initdb`` and ``postgres`` refuse to run as root: as root, the
commands run as the ``postgres`` user (``runuser``) and the directory is handed to it.

:class:`ReplicatedPostgres` runs two of them as a primary and a synchronous streaming standby
(``pg_basebackup -R``; the primary's ``synchronous_standby_names`` names the standby and
``synchronous_commit = on``, so a COMMIT returns only once the standby has flushed it too), and
fails over: :meth:`LocalPostgres.kill` ends a server as a lost machine would (SIGKILL to the
postmaster and every backend), :meth:`LocalPostgres.promote` makes the standby the primary and
lets it commit alone (it has no standby left to wait for). Clients find whichever server is
the primary with the pair's multi-host URL (``target_session_attrs=read-write``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

from ringstore.errors import ServiceUnavailable

BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian's layout: one directory per major version
RUN_AS = "postgres"  # the user the server runs as when we are root
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",  # TCP only: no socket file in a shared /var/run
    "default_transaction_isolation": "'serializable'",
    "max_connections": "100",
    "fsync": "on",
    "synchronous_commit": "on",
    # Streaming replication (PostgreSQL 15's defaults, stated: a standby depends on them).
    "wal_level": "replica",
    "max_wal_senders": "10",
    "hot_standby": "on",
    "wal_log_hints": "on",  # so that pg_rewind can bring a failed primary back as a standby
}
STANDBY_TIMEOUT = 60.0  # seconds a new standby has to start streaming synchronously
KILL_TIMEOUT = 30.0  # seconds kill() waits for the killed processes to be reaped


def find_bin() -> Path | None:
    """The newest local PostgreSQL's bin directory (``$RINGSTORE_PG_BIN`` first), or None."""
    env = os.environ.get("RINGSTORE_PG_BIN")
    candidates = [env] if env else sorted(glob.glob(BIN_GLOB), key=_major, reverse=True)
    for found in candidates:
        if found and (Path(found) / "initdb").exists() and (Path(found) / "pg_ctl").exists():
            return Path(found)
    return None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


@dataclasses.dataclass
class LocalPostgres:
    """One PostgreSQL server in ``data_dir`` on 127.0.0.1:``port``."""

    data_dir: Path
    port: int
    bin_dir: Path | None = None
    user: str = "ringstore"  # the superuser initdb creates; the URL connects as it
    # The application_name of the standby every COMMIT waits for ("": commit alone).
    synchronous_standby: str = ""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.bin_dir is None:
            self.bin_dir = find_bin()
        if self.bin_dir is None:
            raise ServiceUnavailable(
                f"no PostgreSQL binaries (initdb, pg_ctl) under {BIN_GLOB}: install Debian's "
                "postgresql package (apt-get install -y postgresql) or set RINGSTORE_PG_BIN"
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["runuser", "-u", RUN_AS, "--", *argv]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, RUN_AS, RUN_AS)

    def _check_reachable(self) -> None:
        """As root the server runs as ``postgres``, which must reach the directory: every
        directory above it must let others through (mode o+x)."""
        if os.geteuid() != 0:
            return
        probe = subprocess.run(self._as_owner(["test", "-w", str(self.data_dir)]), check=False)
        if probe.returncode != 0:
            raise ServiceUnavailable(
                f"{self.data_dir}: the PostgreSQL server runs as the {RUN_AS} user (it refuses "
                f"root), and {RUN_AS} cannot reach this directory: every directory above it must "
                "be searchable by others (chmod o+x), or choose a data directory elsewhere"
            )

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(self._as_owner(argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceUnavailable(
                f"{' '.join(argv[:2])} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )

    def init(self) -> None:
        """Create the cluster (once: a directory that holds one is kept as it is)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        assert self.bin_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        self._check_reachable()
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )  # fmt: skip
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# ringstore (ringstore/localpg.py)\n")
            for name, value in SETTINGS.items():
                conf.write(f"{name} = {value}\n")
            if self.synchronous_standby:
                conf.write(f"synchronous_standby_names = '\"{self.synchronous_standby}\"'\n")

    def init_standby(self, primary: LocalPostgres, name: str) -> None:
        """Create this server as a streaming standby of ``primary`` (once): ``pg_basebackup
        -R`` copies the primary's files and writes ``standby.signal`` and a
        ``primary_conninfo`` that connects as ``application_name=name``, the name the
        primary's ``synchronous_standby_names`` waits for."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        assert self.bin_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown(self.data_dir)
        self._check_reachable()
        self._run(
            [
                str(self.bin_dir / "pg_basebackup"),
                "-D", str(self.data_dir),
                "-d", f"host=127.0.0.1 port={primary.port} user={primary.user} "
                      f"application_name={name}",
                "-R",  # write standby.signal and primary_conninfo
                "-X", "stream",  # with the WAL written while it copies
                "-c", "fast",  # checkpoint now rather than waiting for the next one
            ]
        )  # fmt: skip

    def start(self) -> None:
        """Start the server (creating it first if needed) and wait until it accepts
        connections; quiet if it runs already."""
        self.init()
        if self.postmaster_pid() is not None:
            return
        assert self.bin_dir is not None
        self.log_path.touch()
        self._chown(self.log_path)
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "-D", str(self.data_dir),
                "-l", str(self.log_path),
                "-o", f"-p {self.port}",
                "-w", "-t", str(START_TIMEOUT),
            ]
        )  # fmt: skip

    def postmaster_pid(self) -> int | None:
        """The running postmaster's process id, or None (no pid file, or a stale one)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def kill(self) -> None:
        """End the server as a lost machine would: SIGKILL to the postmaster and to every
        process it started (backends, WAL sender, writer), all at once. Open connections
        break without a reply; a COMMIT in flight may or may not have happened."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = [pid, *_children(pid)]
        for each in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        # Until they are reaped: the server cannot start again before (see _alive).
        deadline = time.monotonic() + KILL_TIMEOUT
        while any(_alive(each) for each in children) and time.monotonic() < deadline:
            time.sleep(0.02)

    def promote(self) -> None:
        """Make this standby the primary (``pg_ctl promote``, waiting until it accepts
        writes), and let it commit without a synchronous standby: it has none left, and
        waiting for one would stop every write. (``ALTER SYSTEM RESET
        synchronous_standby_names`` turns the wait back on once a standby has joined it.)"""
        assert self.bin_dir is not None
        self._run([str(self.bin_dir / "pg_ctl"), "promote", "-D", str(self.data_dir), "-w"])
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("SELECT pg_reload_conf()")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); quiet if not running."""
        if self.postmaster_pid() is None:
            return
        assert self.bin_dir is not None
        self._run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast"])

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists. A zombie (dead, not yet reaped by its parent) counts, as
    it does for PostgreSQL: a new postmaster refuses to start while the old one's pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # owned by the postgres user
    return True


@dataclasses.dataclass
class ReplicatedPostgres:
    """A primary in ``root/primary`` on ``port`` and its synchronous streaming standby in
    ``root/standby`` on ``port + 1``: an acknowledged COMMIT is flushed on both."""

    root: Path
    port: int
    bin_dir: Path | None = None
    standby_name: str = "standby"  # the standby's application_name

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.primary = LocalPostgres(
            self.root / "primary",
            self.port,
            self.bin_dir,
            synchronous_standby=self.standby_name,
        )
        self.standby = LocalPostgres(self.root / "standby", self.port + 1, self.primary.bin_dir)

    def url(self, database: str = "postgres") -> str:
        """The libpq multi-host URL of both servers that connects to whichever accepts
        writes (the primary, or the standby once promoted)."""
        user = self.primary.user
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://{user}@{hosts}/{database}?target_session_attrs=read-write"

    def start(self) -> None:
        """Start the primary, then the standby (made from the primary on first start), and
        wait until the primary sees it streaming as its synchronous standby."""
        self.primary.start()
        self.standby.init_standby(self.primary, self.standby_name)
        self.standby.start()
        self.wait_synchronous()

    def wait_synchronous(self, timeout: float = STANDBY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            with psycopg.connect(self.primary.url(), autocommit=True) as conn:
                state = conn.execute(
                    "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (self.standby_name,),
                ).fetchone()
            if state == ("streaming", "sync"):
                return
            time.sleep(0.1)
        raise ServiceUnavailable(
            f"the standby on port {self.standby.port} is not a synchronous standby of the "
            f"primary on port {self.primary.port} after {timeout}s (replication state {state})"
        )

    def stop(self) -> None:
        self.primary.stop()
        self.standby.stop()

    def __enter__(self) -> ReplicatedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
