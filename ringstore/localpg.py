"""A private PostgreSQL server from the machine's own binaries: what ``ringstore cluster up
--postgres`` runs and what the PostgreSQL store's tests start.

It lives in one directory (``initdb`` on first start, ``pg_ctl start`` after), listens on
127.0.0.1 only on the port given, trusts local connections (the server is reachable only from
this machine, as the rest of a local cluster), and runs with
``default_transaction_isolation = serializable`` so that every client sees the same isolation
the metadata store asks for. ``initdb`` and ``postgres`` refuse to run as root: as root, the
commands run as the ``postgres`` user (``runuser``) and the directory is handed to it.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import subprocess
from pathlib import Path

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
}


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

    def start(self) -> None:
        """Start the server (creating it first if needed) and wait until it accepts
        connections."""
        self.init()
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

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); quiet if not running."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        assert self.bin_dir is not None
        self._run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast"])

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
