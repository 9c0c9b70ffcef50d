"""A whole ringstore cluster as local processes on loopback: what ``ringstore cluster up`` runs
and what the integration tests start.

Each service runs as its own command (``ringstore-metanode``, ``ringstore-datanode --id dn2``,
``ringstore-gateway``) so that ``ps`` tells them apart. Ports are fixed from the gateway's: the
metanode listens on PORT+1 and datanode i on PORT+1+i, so a cluster started again on the same
data directory finds everything where it was. Datanodes are spread over three zones.

The metanode keeps its records where ``metadata_url`` says (SQLite in ``<data-dir>/meta`` when
empty); with ``postgres=True`` the cluster runs its own PostgreSQL in ``<data-dir>/postgres``
on PORT+30 (:mod:`ringstore.localpg`), started before the metanode and stopped after it.
With ``metanodes=N`` (N > 1, PostgreSQL only) N metanodes serve over that one database: the
first on PORT+1, metanode k on PORT+20+k, each with its own data directory (``meta``,
``meta2``, ...) and all with the first's master key; datanodes and gateways are given the list.

The services share a cluster secret (see :mod:`ringstore.cluster_auth`): RINGSTORE_CLUSTER_SECRET
when it is set, else ``<data-dir>/cluster.secret``, made (mode 0600) on first start and handed to
every service with ``--cluster-secret-file``. :meth:`LocalCluster.internal_channel` is a channel
to the metanode or a datanode whose calls prove it.

With ``tls=True`` (``ringstore cluster up --tls``) the cluster runs TLS everywhere: a local CA
and certificates are made in ``<data-dir>/tls`` (:func:`ringstore.certs.init`; kept across
restarts), the public doors serve ``server.pem``, and each service talks to the others over
mutual TLS with its own ``<name>.pem``. Clients trust ``<data-dir>/tls/ca.pem`` (:attr:`ca_file`).
With ``inside_tls=False`` as well, only the public doors serve TLS and the services talk to each
other over plain TCP (still proving the cluster secret): TLS ended at the gateway, as behind a
load balancer, and what the benchmark's HTTPS door measures (bench/run.py ``--tls``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ringstore import certs, cluster_auth, credentials_file, logs, tls
from ringstore.errors import InvalidArgument, ServiceUnavailable
from ringstore.lifecycle import PARENT_ENV
from ringstore.localpg import LocalPostgres
from ringstore.rpc import internal_sync_channel, sync_channel
from ringstore.supervisor import RestartPolicy, Supervised, Supervisor
from ringstore.tls import ClusterTls
from ringstore.v1 import meta_pb2, meta_pb2_grpc

ZONES = ("z1", "z2", "z3")
HOST = "127.0.0.1"
CREDENTIALS_NAME = "credentials"  # in the cluster's data dir: the root key's export lines
PG_DATABASE = "ringstore"  # the database of a cluster's own PostgreSQL (--postgres)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


LOWEST_PORT = 10000  # free_port_block's blocks start here: above the usual fixed services
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_ports() -> range:
    """The ports the kernel hands out as the source ports of outgoing connections (and for
    binds to port 0); Linux's default where the system does not say."""
    try:
        low, high = (int(field) for field in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_port_block(size: int = 100) -> int:
    """A base port such that base .. base+size are all free on 127.0.0.1 right now.

    The block lies outside the kernel's ephemeral range: a port in it that is free when checked
    can be taken a moment later by any process's outgoing connection, and the service that then
    binds it cannot start."""
    ephemeral = ephemeral_ports()
    bases = [
        base
        for base in range(LOWEST_PORT, 65536 - size)
        if base + size <= ephemeral.start or base >= ephemeral.stop
    ]
    if not bases:
        raise OSError(f"no block of {size} ports outside the ephemeral range {ephemeral}")
    for _ in range(200):
        base = random.choice(bases)
        if all(_port_free(p) for p in range(base, base + size)):
            return base
    raise OSError("no free block of ports on 127.0.0.1")


def service_command(name: str) -> list[str]:
    """The command that runs service ``name`` (e.g. ``ringstore-datanode``) from this install."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    if found:
        return [found]
    module = name.removeprefix("ringstore-")
    return [sys.executable, "-m", module]


@dataclasses.dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    address: str
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        """Its exit code if it exited unasked (not by :meth:`stop` or :meth:`kill`), then
        forgotten, so that each exit is seen once; None while it runs or when stopped."""
        if self.popen is None or self.popen.poll() is None:
            return None
        code = self.popen.returncode
        self.popen = None
        return code

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.popen is not None:
            if self.alive():
                self.popen.kill()
            self.popen.wait()
            self.popen = None


def wait_healthy(
    address: str,
    service: str,
    timeout: float,
    proc: Process | None = None,
    channel: grpc.Channel | None = None,
) -> None:
    """Block until ``address`` reports ``service`` SERVING through the standard health check
    (asked on ``channel`` when given: a TLS port's; it is closed here)."""
    deadline = time.monotonic() + timeout
    with channel or grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc is not None and proc.popen is not None and not proc.alive():
                raise ServiceUnavailable(
                    f"{proc.name} exited with code {proc.popen.returncode}; see {proc.log_path}"
                )
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"{address} did not report {service} serving in {timeout}s"
                )
            time.sleep(0.05)


@dataclasses.dataclass
class LocalCluster:
    """Metanode, datanodes and gateway as child processes under one data directory."""

    data_dir: Path
    port: int = 7000
    datanodes: int = 3
    replicas: int = 3
    write_quorum: int = 2
    chunk_size: int = 8 * 1024 * 1024
    heartbeat_timeout: float = 10.0
    gc_interval: float = 2.0
    orphan_grace: float = 3600.0
    gc_grace: float = 600.0
    rpc_timeout: float = 10.0
    capacity: int = 0
    min_part_size: int | None = None  # None: the cluster default (5 MiB)
    fsync: bool = True
    gateways: int = 1
    s3_port: int | None = None  # the first gateway's S3 door; None: PORT+40 (one more per gateway)
    console_port: int | None = None  # the first gateway's web console; None: no console
    meta_args: list[str] = dataclasses.field(default_factory=list)
    datanode_args: list[str] = dataclasses.field(default_factory=list)
    gateway_args: list[str] = dataclasses.field(default_factory=list)  # added to each gateway's
    node_capacity: dict[int, int] = dataclasses.field(default_factory=dict)  # i -> bytes
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # added to every service's
    metadata_url: str = ""  # the metanode's metadata.url; "": SQLite in <data_dir>/meta
    postgres: bool = False  # run a PostgreSQL of our own in <data_dir>/postgres and use it
    metanodes: int = 1  # metanodes over one database (more than 1 needs PostgreSQL)
    pg: LocalPostgres | None = None
    log_format: str = "text"  # every service's --log-format: text or json
    metrics: bool = True  # every service serves Prometheus metrics (see metrics_address)
    tls: bool = False  # TLS on the public doors, mutual TLS inside (material in <data_dir>/tls)
    inside_tls: bool = True  # with tls: False keeps the services' own calls on plain TCP
    processes: dict[str, Process] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        logs.check_format(self.log_format)
        if self.metanodes < 1:
            raise InvalidArgument(f"metanodes must be at least 1, got {self.metanodes}")
        if self.metanodes > 1 and not (self.postgres or self.metadata_url.startswith("postgres")):
            raise InvalidArgument(
                f"{self.metanodes} metanodes need one shared database: give a postgresql:// "
                "metadata URL or --postgres (a SQLite file is one metanode's)"
            )

    @property
    def endpoint(self) -> str:
        return ",".join(self.gateway_address(i) for i in range(self.gateways))

    def gateway_address(self, index: int = 0) -> str:
        # Extra gateways sit well above the datanodes' ports, leaving room for nodes added later.
        return f"{HOST}:{self.port + 50 + index}" if index else f"{HOST}:{self.port}"

    def s3_address(self, index: int = 0) -> str:
        base = self.s3_port if self.s3_port is not None else self.port + 40
        return f"{HOST}:{base + index}"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def s3_endpoint(self) -> str:
        """The first gateway's S3 door as a URL (what boto3's endpoint_url takes)."""
        return f"{self.scheme}://{self.s3_address(0)}"

    @property
    def console_url(self) -> str | None:
        """The first gateway's web console, or None when it serves none."""
        if self.console_port is None:
            return None
        return f"{self.scheme}://{HOST}:{self.console_port}/"

    # -- TLS ---------------------------------------------------------------------------------

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca_file(self) -> str | None:
        """The CA clients trust (``<data-dir>/tls/ca.pem``), None without TLS."""
        return str(self.tls_dir / f"{tls.CA_NAME}.pem") if self.tls else None

    def _tls_args(self, service: str, *, public: bool = False) -> list[str]:
        """A service's TLS flags: its cluster certificate (made when missing), and the public
        doors' for a gateway."""
        if not self.tls:
            return []
        certs.init(self.tls_dir, [service] if self.inside_tls else [])
        args = []
        if self.inside_tls:
            ca, cert, key = tls.service_files(self.tls_dir, service)
            args += ["--cluster-ca", ca, "--cluster-cert", cert, "--cluster-key", key]
        if public:
            server_cert, server_key = tls.server_files(self.tls_dir)
            args += ["--tls-cert", server_cert, "--tls-key", server_key]
        return args

    @property
    def cluster_tls(self) -> ClusterTls | None:
        """The mutual-TLS material of a tool of this cluster (a ``tools`` certificate)."""
        if not (self.tls and self.inside_tls):
            return None
        certs.init(self.tls_dir, ["tools"])
        return tls.ClusterTls.load(*tls.service_files(self.tls_dir, "tools"))

    def _health_channel(self, address: str, public: bool) -> grpc.Channel | None:
        """A channel to ask ``address``'s health on: TLS when the cluster runs it."""
        if not self.tls or not (public or self.inside_tls):
            return None
        if public:
            assert self.ca_file is not None
            return sync_channel(address, tls.read_ca(self.ca_file))
        return internal_sync_channel(address, b"", self.cluster_tls)

    @property
    def metanode_address(self) -> str:
        """The first metanode's address."""
        return f"{HOST}:{self.port + 1}"

    def metrics_address(self, name: str) -> str:
        """Where service ``name`` (metanode, metanode<k>, dn<i>, gateway, gateway<k>) serves its
        metrics: the metanode at PORT+60, metanode k (from 2) at PORT+80+k, datanode i at
        PORT+60+i, gateway k at PORT+89+k."""
        if name == "metanode":
            return f"{HOST}:{self.port + 60}"
        if name.startswith("metanode") and name[8:].isdigit():
            return f"{HOST}:{self.port + 80 + int(name[8:])}"
        if name.startswith("dn") and name[2:].isdigit():
            return f"{HOST}:{self.port + 60 + int(name[2:])}"
        if name.startswith("gateway"):
            return f"{HOST}:{self.port + 89 + int(name[len('gateway') :] or 1)}"
        raise ValueError(f"no service {name!r} in a LocalCluster")

    def _metrics_args(self, name: str) -> list[str]:
        return ["--metrics-listen", self.metrics_address(name)] if self.metrics else []

    def metanode_name(self, k: int) -> str:
        """Metanode k's process name (k from 1): ``metanode``, ``metanode2``, ..."""
        return "metanode" if k == 1 else f"metanode{k}"

    @property
    def metanode_addresses(self) -> list[str]:
        return [self.metanode_address] + [
            f"{HOST}:{self.port + 20 + k}" for k in range(2, self.metanodes + 1)
        ]

    @property
    def metanode_target(self) -> str:
        """What datanodes and gateways are given: every metanode, comma-separated."""
        return ",".join(self.metanode_addresses)

    def datanode_id(self, i: int) -> str:
        return f"dn{i}"

    @property
    def secret_path(self) -> Path:
        """The cluster secret's file (when RINGSTORE_CLUSTER_SECRET does not give it)."""
        return self.data_dir / cluster_auth.SECRET_FILE_NAME

    def _secret_from_env(self) -> str:
        return self._env().get(cluster_auth.SECRET_ENV, "")

    @property
    def uses_env_secret(self) -> bool:
        """Whether RINGSTORE_CLUSTER_SECRET gives the secret (then no file is made)."""
        return bool(self._secret_from_env())

    @property
    def cluster_secret(self) -> bytes:
        """The secret the services share: from the environment, else its file (made on the
        first start)."""
        value = self._secret_from_env()
        if value:
            return cluster_auth.parse(value, cluster_auth.SECRET_ENV)
        return cluster_auth.load_or_create(self.secret_path)

    def _secret_args(self) -> list[str]:
        if self.uses_env_secret:
            return []
        cluster_auth.load_or_create(self.secret_path)
        return ["--cluster-secret-file", str(self.secret_path)]

    def internal_channel(self, address: str) -> grpc.Channel:
        """A blocking channel to ``address`` (the metanode's or a datanode's) whose calls prove
        the cluster secret, as the services' own calls do."""
        return internal_sync_channel(address, self.cluster_secret, self.cluster_tls)

    @property
    def credentials_path(self) -> Path:
        """Where the metanode writes the root key's export lines (mode 0600)."""
        return self.data_dir / CREDENTIALS_NAME

    def credentials(self, timeout: float = 30.0) -> tuple[str, str]:
        """The root key (access key id, secret) from :attr:`credentials_path`, waiting until the
        metanode has written it (on first start, or when the root key came from
        RINGSTORE_ROOT_ACCESS_KEY_ID / RINGSTORE_ROOT_SECRET_ACCESS_KEY)."""
        deadline = time.monotonic() + timeout
        while not self.credentials_path.exists():
            meta = self.processes.get("metanode")
            if meta is not None and meta.popen is not None and not meta.alive():
                raise ServiceUnavailable(
                    f"the metanode exited before writing {self.credentials_path}; "
                    f"see {meta.log_path}"
                )
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"the metanode wrote no root credentials to {self.credentials_path} in "
                    f"{timeout}s"
                )
            time.sleep(0.05)
        return credentials_file.read(self.credentials_path)

    def _log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _metanode(self, k: int = 1) -> Process:
        address = self.metanode_addresses[k - 1]
        argv = [
            *service_command("ringstore-metanode"),
            "--listen", address,
            "--data-dir", str(self.data_dir / ("meta" if k == 1 else f"meta{k}")),
            "--master-key-file", str(self.data_dir / "meta" / "master.key"),
            "--replicas", str(self.replicas),
            "--write-quorum", str(self.write_quorum),
            "--chunk-size", str(self.chunk_size),
            "--heartbeat-timeout", str(self.heartbeat_timeout),
            "--gc-interval", str(self.gc_interval),
            "--orphan-grace", str(self.orphan_grace),
            "--gc-grace", str(self.gc_grace),
            "--root-credentials-file", str(self.credentials_path),
            "--log-format", self.log_format,
            *self._secret_args(),
            *self._metrics_args(self.metanode_name(k)),
            *self._tls_args("metanode"),
            *self.meta_args,
        ]  # fmt: skip
        if self.metadata_url:
            argv += ["--metadata-url", self.metadata_url]
        if self.min_part_size is not None:
            argv += ["--min-part-size", str(self.min_part_size)]
        name = self.metanode_name(k)
        return Process(name, argv, self._log(name), address)

    def _datanode(self, i: int) -> Process:
        node_id = self.datanode_id(i)
        address = f"{HOST}:{self.port + 1 + i}"
        argv = [
            *service_command("ringstore-datanode"),
            "--id", node_id,
            "--listen", address,
            "--zone", ZONES[(i - 1) % len(ZONES)],
            "--data-dir", str(self.data_dir / node_id),
            "--metanode", self.metanode_target,
            "--log-format", self.log_format,
            *self._secret_args(),
            *self._metrics_args(node_id),
            *self._tls_args(node_id),
        ]  # fmt: skip
        capacity = self.node_capacity.get(i, self.capacity)
        if capacity:
            argv += ["--capacity", str(capacity)]
        argv += self.datanode_args
        if not self.fsync:
            argv.append("--no-fsync")
        return Process(node_id, argv, self._log(node_id), address)

    def _gateway(self, index: int) -> Process:
        name = f"gateway{index + 1}" if index else "gateway"
        address = self.gateway_address(index)
        argv = [
            *service_command("ringstore-gateway"),
            "--listen", address,
            "--s3-listen", self.s3_address(index),
            "--metanode", self.metanode_target,
            "--rpc-timeout", str(self.rpc_timeout),
            "--ring-refresh", "0.5",
            "--log-format", self.log_format,
            *self._secret_args(),
            *self._metrics_args(name),
            *self._tls_args(name, public=True),
            *self.gateway_args,
        ]  # fmt: skip
        if index == 0 and self.console_port is not None:
            argv += ["--console-listen", f"{HOST}:{self.console_port}"]
        return Process(name, argv, self._log(name), address)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env[PARENT_ENV] = str(os.getpid())  # the services end with this process
        env.update(self.env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        """Start every process and wait until the gateway serves and the ring holds every node."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.postgres:
            self._start_postgres()
        env = self._env()
        # The first alone, then the others: the first makes the schema and the master key.
        for k in range(1, self.metanodes + 1):
            meta = self._metanode(k)
            self.processes[meta.name] = meta
            meta.start(env)
            wait_healthy(
                meta.address,
                "ringstore.v1.Meta",
                timeout,
                meta,
                self._health_channel(meta.address, False),
            )
        for i in range(1, self.datanodes + 1):
            self.start_datanode(i, wait=False)
        for i in range(1, self.datanodes + 1):
            proc = self.processes[self.datanode_id(i)]
            wait_healthy(
                proc.address,
                "ringstore.v1.Blob",
                timeout,
                proc,
                self._health_channel(proc.address, False),
            )
        # The ring first: a gateway's first view of the cluster then holds every datanode (one
        # started earlier could see a single node up until its next refresh).
        self.wait_ring(self.datanodes, timeout)
        for index in range(self.gateways):
            gw = self._gateway(index)
            self.processes[gw.name] = gw
            gw.start(env)
        for gw in self.gateway_processes():
            wait_healthy(
                gw.address,
                "ringstore.v1.ObjectStore",
                timeout,
                gw,
                self._health_channel(gw.address, True),
            )

    @property
    def postgres_port(self) -> int:
        """The port of the cluster's own PostgreSQL (``--postgres``): PORT+30."""
        return self.port + 30

    def _start_postgres(self) -> None:
        """Create (first time) and start the cluster's own PostgreSQL in <data_dir>/postgres,
        and point the metanode at its ``ringstore`` database."""
        if self.metadata_url:
            raise InvalidArgument("give either a metadata URL or --postgres, not both")
        self.pg = LocalPostgres(self.data_dir / "postgres", self.postgres_port)
        self.pg.start()
        self.metadata_url = self.pg.url(PG_DATABASE)
        with psycopg.connect(self.pg.url(), autocommit=True) as conn:
            known = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
            ).fetchone()
            if known is None:
                conn.execute(f"CREATE DATABASE {PG_DATABASE}")

    def gateway_processes(self) -> list[Process]:
        return [p for name, p in self.processes.items() if name.startswith("gateway")]

    def start_datanode(self, i: int, *, wait: bool = True, timeout: float = 30.0) -> Process:
        proc = self._datanode(i)
        self.processes[proc.name] = proc
        proc.start(self._env())
        if wait:
            wait_healthy(
                proc.address,
                "ringstore.v1.Blob",
                timeout,
                proc,
                self._health_channel(proc.address, False),
            )
        return proc

    def restart(self, name: str, timeout: float = 30.0) -> Process:
        """Start process ``name`` again (after a stop or a kill) and wait until it serves."""
        old = self.processes[name]
        old.stop()
        service = "ringstore.v1.Meta" if name.startswith("metanode") else None
        if service is None:
            service = (
                "ringstore.v1.ObjectStore" if name.startswith("gateway") else "ringstore.v1.Blob"
            )
        old.start(self._env())
        public = name.startswith("gateway")
        wait_healthy(old.address, service, timeout, old, self._health_channel(old.address, public))
        return old

    def supervisor(
        self, report: Callable[[str, bool], None], policy: RestartPolicy | None = None
    ) -> Supervisor:
        """A supervisor that restarts this cluster's services when they exit unasked (see
        :mod:`ringstore.supervisor`), with the environment they were started with."""

        def start(proc: Supervised) -> None:
            assert isinstance(proc, Process)
            proc.start(self._env())

        return Supervisor(self.processes, start, report, policy)

    def cluster_state(self) -> meta_pb2.GetClusterResponse:
        """The cluster as the first metanode that answers sees it."""
        failure: grpc.RpcError | None = None
        for address in self.metanode_addresses:
            with self.internal_channel(address) as channel:
                stub = meta_pb2_grpc.MetaStub(channel)
                try:
                    return stub.GetCluster(meta_pb2.GetClusterRequest(known_epoch=0), timeout=5)
                except grpc.RpcError as exc:
                    failure = exc
        assert failure is not None
        raise failure

    def wait_ring(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` datanodes are up in the ring."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(grpc.RpcError):
                state = self.cluster_state()
                up = [n for n in state.nodes if n.state == "up"]
                if len(up) >= count and len(state.ring.node_ids) >= count:
                    return
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"the ring did not reach {count} up datanodes in {timeout}s"
                )
            time.sleep(0.1)

    def wait_state(self, node_id: str, state: str, timeout: float = 30.0) -> None:
        """Wait until the metanode reports ``node_id`` in ``state`` (e.g. "down")."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(grpc.RpcError):
                nodes = {n.id: n for n in self.cluster_state().nodes}
                if node_id in nodes and nodes[node_id].state == state:
                    return
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"{node_id} did not become {state} in {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop gateways, then datanodes, then the metanode (SIGTERM, then SIGKILL)."""
        order = sorted(
            self.processes.values(),
            key=lambda p: (
                0 if p.name.startswith("gateway") else 2 if p.name.startswith("metanode") else 1
            ),
        )
        for proc in order:
            proc.stop()
        if self.pg is not None:  # after the metanode: it was the database's only client
            self.pg.stop()

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
