"""An all-in-one OpenStack Swift on loopback, to measure beside ringstore with the same tool.

    python -m bench.swift start DIR     # prints the proxy's URL; pids in DIR/pids
    python -m bench.swift stop DIR

Swift from Debian's packages (``apt-get install swift swift-proxy swift-object swift-container
swift-account memcached``), laid out like ringstore's own bench cluster: one proxy, three
object servers with one device each (directories under DIR, ``mount_check = false``), one
account and one container server, every ring with 3 replicas, tempauth with memcached for
tokens. Every config, ring and device lives under DIR (``swift_dir`` points there, so
/etc/swift is never read). Servers log at WARNING (no per-request access lines), and the
background daemons (replicators, auditors, updaters) are not started: only the request path
is measured, as for ringstore. Workers: the proxy forks one per core (Swift's ``auto``); each
storage server one. CPU of a server is the sum over its process tree (``tree_cpu``).

Swift fsyncs each object before renaming it into place and acknowledges a PUT once a quorum
(2 of 3) of object servers have, as ringstore does with W=2.

With ``tls_dir`` (a directory ``ringstore.certs.init`` made), the proxy serves HTTPS itself (its
``cert_file`` and ``key_file``) with the public doors' certificate there, as ringstore's gateway
does when it ends TLS, and clients trust that directory's CA; its servers behind it talk plain
HTTP, as ringstore's services do inside then.
"""

from __future__ import annotations

import concurrent.futures
import getpass
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ringstore import tls

PROXY = "swift-proxy-server"
NEEDS = (PROXY, "swift-object-server", "swift-container-server", "swift-account-server",
         "swift-ring-builder", "memcached")  # fmt: skip
USER, KEY = "test:tester", "testing"
OBJECT_SERVERS = 3
TICKS = os.sysconf("SC_CLK_TCK")


def missing() -> list[str]:
    """The commands this harness needs that are not on the PATH (empty when Swift can run)."""
    return [name for name in NEEDS if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args!r} did not listen on {port} within {timeout:.0f} s")


def _conf(common: dict[str, str], sections: dict[str, dict[str, str]]) -> str:
    lines = ["[DEFAULT]", *(f"{k} = {v}" for k, v in common.items())]
    for name, items in sections.items():
        lines += ["", f"[{name}]", *(f"{k} = {v}" for k, v in items.items())]
    return "\n".join(lines) + "\n"


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Swift's forked workers),
    plus what its reaped children used."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, parent in parents.items() if parent == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0.0
    for p in tree:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15]) / TICKS  # utime stime cutime cstime
    return total


@dataclass
class SwiftAIO:
    """Swift's servers as child processes under ``root``; a context manager."""

    root: Path
    proxy_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    tls_dir: Path | None = None  # TLS material (ringstore.certs.init): the proxy serves HTTPS
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    proxy_port: int = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_dir else 'http'}://127.0.0.1:{self.proxy_port}"

    def connect(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        """A new connection to the proxy: HTTPS trusting the CA of ``tls_dir`` when it serves
        TLS."""
        if self.tls_dir is None:
            return http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.tls_dir / f"{tls.CA_NAME}.pem"))
        return http.client.HTTPSConnection(
            "127.0.0.1", self.proxy_port, timeout=timeout, context=context
        )

    def pids(self) -> dict[str, int]:
        """Name to pid of every Swift server (the parent of its workers) and memcached."""
        return {name: p.pid for name, p in self.procs.items()}

    def _ring(self, ring: str, server_ports: list[int]) -> None:
        builder = str(self.root / f"{ring}.builder")
        run = ["swift-ring-builder", builder]
        subprocess.run([*run, "create", "8", "3", "0"], check=True, capture_output=True)
        for i, port in enumerate(server_ports):
            dev = f"r1z{i + 1}-127.0.0.1:{port}/d{i + 1}"
            subprocess.run([*run, "add", dev, "100"], check=True, capture_output=True)
        # rebalance exits 1 on warnings (e.g. one zone per replica is fine here)
        done = subprocess.run([*run, "rebalance"], capture_output=True)
        if done.returncode > 1:
            raise RuntimeError(f"swift-ring-builder {ring} rebalance: {done.stderr!r}")

    def _rings(self, ports: dict[str, list[int]]) -> None:
        # The three rings at once: each ring-builder command is a second of Python start-up.
        with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
            for done in [pool.submit(self._ring, ring, p) for ring, p in ports.items()]:
                done.result()

    def start(self) -> None:
        if gone := missing():
            raise RuntimeError(f"Swift is not installed (missing {', '.join(gone)})")
        self.root.mkdir(parents=True, exist_ok=True)
        devices = self.root / "srv"
        for i in range(OBJECT_SERVERS):
            (devices / f"d{i + 1}").mkdir(parents=True, exist_ok=True)
        (self.root / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_suffix = bench\nswift_hash_path_prefix = bench\n\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        obj_ports = [_free_port() for _ in range(OBJECT_SERVERS)]
        account_port, container_port = _free_port(), _free_port()
        self.proxy_port = _free_port()
        memcache_port = _free_port()
        self._rings({
            "object": obj_ports,
            "account": [account_port] * OBJECT_SERVERS,
            "container": [container_port] * OBJECT_SERVERS,
        })  # fmt: skip
        user = getpass.getuser()
        common = {"swift_dir": str(self.root), "user": user, "log_level": "WARNING",
                  "devices": str(devices), "mount_check": "false",
                  "bind_ip": "127.0.0.1"}  # fmt: skip
        confs: dict[str, tuple[str, str]] = {}
        servers = [("object", obj_ports), ("account", [account_port]),
                   ("container", [container_port])]  # fmt: skip
        for kind, server_ports in servers:
            for i, port in enumerate(server_ports):
                name = f"swift-{kind}-{i + 1}" if kind == "object" else f"swift-{kind}"
                text = _conf(
                    {**common, "bind_port": str(port), "workers": "1"},
                    {"pipeline:main": {"pipeline": f"{kind}-server"},
                     f"app:{kind}-server": {"use": f"egg:swift#{kind}"}},
                )  # fmt: skip
                confs[name] = (f"swift-{kind}-server", text)
        proxy = {**common, "bind_port": str(self.proxy_port), "workers": str(self.proxy_workers)}
        if self.tls_dir is not None:
            proxy["cert_file"], proxy["key_file"] = tls.server_files(self.tls_dir)
        confs["swift-proxy"] = (
            PROXY,
            _conf(
                proxy,
                {
                    "pipeline:main": {
                        "pipeline": "catch_errors gatekeeper healthcheck "
                        "proxy-logging cache tempauth proxy-logging proxy-server"
                    },
                    "app:proxy-server": {"use": "egg:swift#proxy", "account_autocreate": "true"},
                    "filter:tempauth": {
                        "use": "egg:swift#tempauth",
                        "user_test_tester": f"{KEY} .admin",
                    },
                    "filter:cache": {
                        "use": "egg:swift#memcache",
                        "memcache_servers": f"127.0.0.1:{memcache_port}",
                    },
                    "filter:catch_errors": {"use": "egg:swift#catch_errors"},
                    "filter:gatekeeper": {"use": "egg:swift#gatekeeper"},
                    "filter:healthcheck": {"use": "egg:swift#healthcheck"},
                    "filter:proxy-logging": {"use": "egg:swift#proxy_logging"},
                },
            ),
        )
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        try:
            memcached = ["memcached", "-l", "127.0.0.1", "-p", str(memcache_port), "-U", "0",
                         "-u", user, "-m", "64"]  # fmt: skip
            self._spawn("memcached", memcached)
            _wait_port(memcache_port, self.procs["memcached"])
            listen = {**{f"swift-object-{i + 1}": p for i, p in enumerate(obj_ports)},
                     "swift-account": account_port, "swift-container": container_port,
                     "swift-proxy": self.proxy_port}  # fmt: skip
            for name, (command, text) in confs.items():
                conf = self.root / f"{name}.conf"
                conf.write_text(text)
                self._spawn(name, [command, str(conf)])
            for name, port in listen.items():  # all started first: each takes seconds to listen
                _wait_port(port, self.procs[name])
            (self.root / "pids").write_text(
                "".join(f"{n} {p.pid}\n" for n, p in self.procs.items())
            )
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.root / "logs" / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc

    def token(self) -> tuple[str, str]:
        """(storage URL path, auth token) of the bench account from tempauth."""
        conn = self.connect()
        try:
            conn.request("GET", "/auth/v1.0", headers={"X-Auth-User": USER, "X-Auth-Key": KEY})
            resp = conn.getresponse()
            resp.read()
            if resp.status // 100 != 2:
                raise RuntimeError(f"tempauth answered {resp.status} {resp.reason}")
            storage = resp.headers["X-Storage-Url"]
            path = "/" + storage.split("/", 3)[3]
            return path, resp.headers["X-Auth-Token"]
        finally:
            conn.close()

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                # each server is its own session leader: the group holds its forked workers
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()

    def __enter__(self) -> SwiftAIO:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
