"""Typed cluster configuration, loaded once from ``cluster.yaml`` and the environment.

Every key has a default; ``deploy/cluster.yaml`` documents each one (a test keeps the two in
step). Precedence, lowest first: defaults, the YAML file, environment variables named
``RINGSTORE_<SECTION>_<KEY>`` (for example ``RINGSTORE_DATANODE_ID=dn2``; ``RINGSTORE_CONFIG``
names the file when no ``--config`` flag does), then command-line
flags, which each service applies with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ringstore.errors import InvalidArgument

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """Cluster-wide replication settings."""

    replicas: int = 3  # N: copies of every chunk
    write_quorum: int = 2  # W: fsynced copies before a write is acknowledged
    chunk_size: int = 8 * MiB  # bytes per chunk
    partition_power: int = 14  # the ring has 2**partition_power partitions
    min_part_size: int = 5 * MiB  # bytes: every multipart part but the last is at least this
    secret_file: str = ""  # file of the cluster secret (hex); "": RINGSTORE_CLUSTER_SECRET
    tls_ca: str = ""  # PEM of the cluster CA: internal ports use mutual TLS; "": plain TCP inside
    tls_cert: str = ""  # PEM of this service's certificate, signed by tls_ca (with tls_ca)
    tls_key: str = ""  # PEM of that certificate's key (with tls_ca)


@dataclasses.dataclass(frozen=True)
class MetanodeConfig:
    """The metadata service."""

    listen: str = "127.0.0.1:7100"  # host:port to bind
    address: str = "127.0.0.1:7100"  # host:port (or several, comma-separated) of the metanode(s)
    balance: str = "round_robin"  # how clients spread calls over several: or pick_first
    data_dir: str = "data/meta"  # directory of the SQLite database
    heartbeat_timeout: float = 10.0  # seconds without a heartbeat before a node is down
    gc_interval: float = 2.0  # seconds between garbage-collection passes
    orphan_grace: float = 3600.0  # seconds before a blob no record knows is deleted
    gc_grace: float = 600.0  # seconds a replaced or deleted version stays readable (open GETs)
    upload_expiry_interval: float = 300.0  # seconds between passes aborting expired uploads
    rpc_timeout: float = 10.0  # seconds: deadline of the metanode's calls to datanodes
    upload_max_age: float = 7 * 86400.0  # seconds an open multipart upload lives before abort
    dead_grace: float = 600.0  # seconds a node may stay down before it leaves the ring
    repair_interval: float = 1.0  # seconds between repair passes
    repair_concurrency: int = 4  # blob copies in flight at once
    repair_rate: int = 64 * MiB  # bytes per second repair and rebalancing may copy
    anti_entropy_interval: float = 10.0  # seconds between anti-entropy slices (1/16 of ids each)
    max_concurrent_calls: int = 1024  # calls served at once; more are refused (UNAVAILABLE)
    root_credentials_file: str = ""  # root key's export lines; "": <data_dir>/credentials
    master_key_file: str = (
        ""  # the master key, the same on every metanode; "": <data_dir>/master.key
    )
    lease_ttl: float = 6.0  # seconds a metanode's lease on background work lives unrenewed


@dataclasses.dataclass(frozen=True)
class MetadataConfig:
    """Where the metanode keeps its records (see metanode.store.engines)."""

    # sqlite://DIR or postgresql://... (a libpq URL); "": SQLite in metanode.data_dir
    url: str = ""


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    """The public, stateless gateway."""

    listen: str = "127.0.0.1:7000"  # host:port to bind
    s3_listen: str = "127.0.0.1:9000"  # host:port of the S3 door; "" serves none
    s3_region: str = "us-east-1"  # the region GetBucketLocation and HeadBucket report
    s3_domain: str = ""  # a Host of <bucket>.<s3_domain> names the bucket; "": path-style only
    console_listen: str = ""  # host:port of the web console (needs the S3 door); "" serves none
    tls_cert: str = ""  # PEM certificate (chain) of the public doors; "": plain TCP
    tls_key: str = ""  # PEM key of tls_cert (with tls_cert)
    rpc_timeout: float = 10.0  # seconds: deadline of every internal call
    ring_refresh: float = 1.0  # seconds between checks for a new ring or node states
    max_concurrent_chunks: int = 2  # chunks in flight per PUT (bounds memory)
    max_concurrent_calls: int = 256  # calls served at once; more are refused (UNAVAILABLE)
    stream_idle_timeout: float = 30.0  # seconds a put or part stream may send nothing
    max_body_bytes: int = 512 * MiB  # body bytes all puts and parts may hold at once
    body_wait: float = 5.0  # seconds a put waits for room under max_body_bytes before refusal


@dataclasses.dataclass(frozen=True)
class DatanodeConfig:
    """One datanode; in a multi-node file, each process overrides id, ports and data_dir."""

    id: str = "dn1"  # unique, stable node id
    listen: str = "127.0.0.1:7201"  # host:port to bind
    advertise: str = ""  # host:port others use to reach it; defaults to listen
    zone: str = "z1"  # failure domain
    weight: float = 1.0  # relative share of data
    data_dir: str = "data/dn1"  # where blobs live
    capacity: int = 0  # bytes offered; 0 means the size of the disk
    heartbeat_interval: float = 1.0  # seconds between heartbeats
    fsync: bool = True  # fsync every blob before acknowledging (only tests turn it off)
    full_reserve: int = 64 * MiB  # bytes kept free: below this the node refuses new blobs
    scrub_rate: int = 8 * MiB  # bytes per second the scrubber re-reads (0 turns it off)
    scrub_interval: float = 3600.0  # seconds between the starts of two full scrub passes
    small_blob_max: int = 1 * MiB  # blobs up to this many bytes are packed into volume files
    volume_size: int = 1024 * MiB  # bytes past which a volume file is sealed
    max_concurrent_calls: int = 1024  # calls served at once; more are refused (UNAVAILABLE)
    bulk_port: int = 0  # port of the bulk data path on the listen host; 0 any free one, -1 off


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole ``cluster.yaml``."""

    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    metanode: MetanodeConfig = dataclasses.field(default_factory=MetanodeConfig)
    metadata: MetadataConfig = dataclasses.field(default_factory=MetadataConfig)
    gateway: GatewayConfig = dataclasses.field(default_factory=GatewayConfig)
    datanode: DatanodeConfig = dataclasses.field(default_factory=DatanodeConfig)

    def validate(self) -> Config:
        """Raise :class:`InvalidArgument` naming the first key that breaks a rule."""
        c = self.cluster
        if c.replicas < 1:
            raise InvalidArgument(f"cluster.replicas must be at least 1, got {c.replicas}")
        if not 1 <= c.write_quorum <= c.replicas:
            raise InvalidArgument(
                f"cluster.write_quorum must be between 1 and cluster.replicas ({c.replicas}), "
                f"got {c.write_quorum}"
            )
        if not 64 * 1024 <= c.chunk_size <= 64 * MiB:
            raise InvalidArgument(
                f"cluster.chunk_size must be between 64 KiB and 64 MiB, got {c.chunk_size}"
            )
        if not 4 <= c.partition_power <= 16:
            raise InvalidArgument(
                f"cluster.partition_power must be between 4 and 16, got {c.partition_power}"
            )
        if not 1 <= c.min_part_size <= 5 * 1024 * MiB:
            raise InvalidArgument(
                f"cluster.min_part_size must be between 1 byte and 5 GiB, got {c.min_part_size}"
            )
        if self.datanode.weight <= 0:
            raise InvalidArgument(f"datanode.weight must be positive, got {self.datanode.weight}")
        for name, value in (
            ("metanode.max_concurrent_calls", self.metanode.max_concurrent_calls),
            ("gateway.max_concurrent_calls", self.gateway.max_concurrent_calls),
            ("datanode.max_concurrent_calls", self.datanode.max_concurrent_calls),
            ("gateway.stream_idle_timeout", self.gateway.stream_idle_timeout),
            ("gateway.max_body_bytes", self.gateway.max_body_bytes),
            ("gateway.body_wait", self.gateway.body_wait),
        ):
            if value <= 0:
                raise InvalidArgument(f"{name} must be positive, got {value}")
        return self


SECTIONS: dict[str, type] = {
    "cluster": ClusterConfig,
    "metanode": MetanodeConfig,
    "metadata": MetadataConfig,
    "gateway": GatewayConfig,
    "datanode": DatanodeConfig,
}


def _coerce(section: str, name: str, field_type: Any, value: Any) -> Any:
    kind = field_type if isinstance(field_type, str) else field_type.__name__
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{section}.{name} must be a {kind}, got {value!r}") from None


def _section(section: str, cls: type, values: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        if name not in fields:
            raise InvalidArgument(
                f"unknown configuration key {section}.{name}; known keys: {', '.join(fields)}"
            )
        kwargs[name] = _coerce(section, name, fields[name].type, value)
    return cls(**kwargs)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration from ``path`` (default: the file ``RINGSTORE_CONFIG`` names, if
    any) and ``env`` (default: os.environ)."""
    env = os.environ if env is None else env
    if path is None and env.get("RINGSTORE_CONFIG"):
        path = env["RINGSTORE_CONFIG"]
    raw: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise InvalidArgument(f"{path}: the top level must be a mapping of sections")
        raw = loaded
    for name in raw:
        if name not in SECTIONS:
            raise InvalidArgument(
                f"{path}: unknown section {name!r}; known sections: {', '.join(SECTIONS)}"
            )
    merged: dict[str, dict[str, Any]] = {}
    for section, cls in SECTIONS.items():
        values = dict(raw.get(section) or {})
        for f in dataclasses.fields(cls):
            env_name = f"RINGSTORE_{section.upper()}_{f.name.upper()}"
            if env_name in env:
                values[f.name] = env[env_name]
        merged[section] = values
    return Config(**{s: _section(s, SECTIONS[s], merged[s]) for s in SECTIONS}).validate()
