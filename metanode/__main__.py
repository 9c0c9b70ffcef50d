"""The ``ringstore-metanode`` process: the Meta service, failure detection, repair and
rebalancing, anti-entropy and garbage collection.

Once serving, it reports SERVING for ``ringstore.v1.Meta`` on the health service and prints one
line to stdout: ``ringstore-metanode serving on <host:port> data <dir>``. Logs go to stderr.
It serves only callers that prove the cluster secret (``RINGSTORE_CLUSTER_SECRET`` or
``cluster.secret_file``; see :mod:`ringstore.cluster_auth`) and refuses to start without one.
Before serving it loads (or creates) the master key ``<data-dir>/master.key`` and makes sure
the cluster has its root key (RINGSTORE_ROOT_ACCESS_KEY_ID / RINGSTORE_ROOT_SECRET_ACCESS_KEY
when set, else generated when no admin key exists), writing it to the root credentials file.
SIGINT or SIGTERM stops the background tasks, stops the server with a 2 s grace, closes the
store and exits 0. Restarted on the same data directory, every committed record is back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from metanode import identity, leases, masterkey, telemetry
from metanode.anti_entropy import AntiEntropy
from metanode.gc import GarbageCollector, GrpcBlobClient
from metanode.leases import FencedStore, LeaseKeeper
from metanode.masterkey import MasterKey
from metanode.membership import FailureDetector
from metanode.repair import Activity, Repairer
from metanode.servicer import MetaServicer, add_to_server
from metanode.store import engines
from metanode.store.base import Store
from metanode.store.engines import redact
from metanode.telemetry import ClusterCollector, ClusterSampler
from ringstore import cluster_auth, credentials_file, logs, metrics, tls
from ringstore import config as config_module
from ringstore.config import Config
from ringstore.errors import InvalidArgument, RingstoreError
from ringstore.lifecycle import StartupError, Stopper, die_with_parent, run_service, tune_malloc
from ringstore.rpc import internal_channel, make_server, set_serving

log = logging.getLogger("metanode")

SERVICE_NAME = "ringstore.v1.Meta"
STOP_GRACE = 2.0  # seconds given to in-flight calls on shutdown
CREDENTIALS_NAME = "credentials"  # the root credentials file in the data dir, unless configured


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ringstore-metanode", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="cluster.yaml (defaults and environment otherwise)")
    p.add_argument("--listen", help="host:port to bind (port 0 picks a free one)")
    p.add_argument(
        "--data-dir", help="directory of the master key (and of the SQLite database by default)"
    )
    p.add_argument(
        "--metadata-url",
        metavar="URL",
        help="metadata.url: sqlite://DIR or postgresql://... (default: SQLite in --data-dir)",
    )
    p.add_argument("--replicas", type=int, help="N: copies of every chunk")
    p.add_argument("--write-quorum", type=int, help="W: acknowledged copies per write")
    p.add_argument("--chunk-size", type=int, help="bytes per chunk")
    p.add_argument("--heartbeat-timeout", type=float, help="seconds before a silent node is down")
    p.add_argument("--gc-interval", type=float, help="seconds between garbage-collection passes")
    p.add_argument("--orphan-grace", type=float, help="seconds before an uncommitted blob is swept")
    p.add_argument(
        "--gc-grace", type=float, help="seconds a replaced version's chunks stay readable"
    )
    p.add_argument(
        "--upload-expiry-interval",
        type=float,
        help="seconds between multipart-upload expiry passes",
    )
    p.add_argument(
        "--dead-grace", type=float, help="seconds a down node keeps its ring place before it leaves"
    )
    p.add_argument("--repair-interval", type=float, help="seconds between repair passes")
    p.add_argument("--repair-concurrency", type=int, help="blobs repaired at once")
    p.add_argument("--repair-rate", type=int, metavar="BYTES", help="bytes/s repair may copy")
    p.add_argument(
        "--anti-entropy-interval", type=float, help="seconds between anti-entropy slices"
    )
    p.add_argument(
        "--min-part-size", type=int, metavar="BYTES", help="smallest multipart part but the last"
    )
    p.add_argument(
        "--upload-max-age",
        type=float,
        metavar="SECONDS",
        help="age at which an open multipart upload is aborted",
    )
    p.add_argument(
        "--root-credentials-file",
        metavar="PATH",
        help="write the root key's export lines here (mode 0600) when generated or given",
    )
    p.add_argument(
        "--cluster-secret-file",
        metavar="PATH",
        help="file of the cluster secret (cluster.secret_file; else RINGSTORE_CLUSTER_SECRET)",
    )
    p.add_argument(
        "--master-key-file",
        metavar="PATH",
        help="the master key (metanode.master_key_file; the same file on every metanode)",
    )
    p.add_argument(
        "--lease-ttl", type=float, help="seconds a lease on background work lives unrenewed"
    )
    p.add_argument("--memory", action="store_true", help="keep metadata in memory (tests only)")
    tls.add_cluster_arguments(p)
    logs.add_arguments(p)
    metrics.add_arguments(p)
    p.add_argument(
        "--metrics-interval",
        type=float,
        default=telemetry.INTERVAL,
        metavar="SECONDS",
        help="seconds between two samples of the cluster's figures (metrics, status estimates)",
    )
    return p.parse_args(argv)


def _overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def build_config(args: argparse.Namespace) -> Config:
    """The configuration file and environment, then the flags on top."""
    cfg = config_module.load(args.config)
    cluster_names = ("replicas", "write_quorum", "chunk_size", "min_part_size")
    cluster = dataclasses.replace(cfg.cluster, **_overrides(args, cluster_names))
    if args.cluster_secret_file:
        cluster = dataclasses.replace(cluster, secret_file=args.cluster_secret_file)
    cluster = tls.with_cluster_arguments(args, cluster)
    meta_names = (
        "listen",
        "data_dir",
        "heartbeat_timeout",
        "gc_interval",
        "orphan_grace",
        "gc_grace",
        "upload_expiry_interval",
        "upload_max_age",
        "dead_grace",
        "repair_interval",
        "repair_concurrency",
        "repair_rate",
        "anti_entropy_interval",
        "root_credentials_file",
        "master_key_file",
        "lease_ttl",
    )
    metanode = dataclasses.replace(cfg.metanode, **_overrides(args, meta_names))
    metadata = cfg.metadata
    if args.metadata_url is not None:
        metadata = dataclasses.replace(metadata, url=args.metadata_url)
    cfg = dataclasses.replace(cfg, cluster=cluster, metanode=metanode, metadata=metadata)
    return check_metanode(cfg.validate())


def check_metanode(cfg: Config) -> Config:
    """The metanode's own rules on its keys; InvalidArgument naming the key otherwise."""
    m = cfg.metanode
    for name in (
        "dead_grace",
        "repair_interval",
        "anti_entropy_interval",
        "heartbeat_timeout",
        "lease_ttl",
    ):
        value = getattr(m, name)
        if not value > 0:
            raise InvalidArgument(
                f"metanode.{name} must be a positive number of seconds, got {value}"
            )
    if m.repair_concurrency < 1:
        raise InvalidArgument(
            f"metanode.repair_concurrency must be at least 1, got {m.repair_concurrency}"
        )
    if m.repair_rate < 0:
        raise InvalidArgument(
            f"metanode.repair_rate must be 0 (no limit) or more bytes/s, got {m.repair_rate}"
        )
    if not m.gc_grace >= 0:
        raise InvalidArgument(f"metanode.gc_grace must be 0 or more seconds, got {m.gc_grace}")
    engines.parse(cfg.metadata.url, m.data_dir)
    return cfg


def prepare_identity(
    cfg: Config, store: Store, *, memory: bool, env: Mapping[str, str]
) -> MasterKey:
    """The master key (``<data_dir>/master.key``, created on first start; a fresh one held in
    memory with ``--memory``), checked against the stored secrets; then the root key made sure
    of (:func:`metanode.identity.bootstrap_root`) and, when it was generated or given, its
    credentials written to the root credentials file. Never logs a secret."""
    m = cfg.metanode
    master = (
        MasterKey.ephemeral() if memory else masterkey.load_or_create(m.data_dir, m.master_key_file)
    )
    root = store.call(identity.bootstrap_root, master, identity.root_from_env(env))
    if root is None:
        return master
    how = "generated" if root.generated else "set from the environment"
    log.info("root access key %s %s", root.access_key_id, how)
    path = m.root_credentials_file or ("" if memory else str(Path(m.data_dir) / CREDENTIALS_NAME))
    if path:
        credentials_file.write(path, root.access_key_id, root.secret_access_key)
        log.info("root credentials written to %s (mode 0600)", path)
    elif root.generated:
        log.warning(
            "root access key %s was generated but no root credentials file is set: its secret "
            "is shown nowhere (use --root-credentials-file)",
            root.access_key_id,
        )
    return master


async def serve(
    cfg: Config,
    store: Store,
    stop: asyncio.Event,
    *,
    cluster_secret: bytes,
    master: MasterKey | None = None,
    cluster_tls: tls.ClusterTls | None = None,
    meter: metrics.Metrics | None = None,
    metrics_interval: float = telemetry.INTERVAL,
) -> None:
    """Serve until ``stop`` is set, then shut down the server and background tasks. Only
    callers proving ``cluster_secret`` are served (health checks excepted), and the metanode's
    own calls to datanodes prove it; with ``cluster_tls`` all of it over mutual TLS. ``meter``
    counts its calls and exports the cluster's figures (:mod:`metanode.telemetry`)."""
    server, health, port = make_server(
        cfg.metanode.listen,
        max_concurrent_calls=cfg.metanode.max_concurrent_calls,
        service="metanode",
        cluster_secret=cluster_secret,
        credentials=cluster_tls.server_credentials() if cluster_tls else None,
        metrics=meter,
    )
    m = cfg.metanode
    blob_client = GrpcBlobClient(
        timeout=m.rpc_timeout,
        connect=functools.partial(internal_channel, secret=cluster_secret, tls=cluster_tls),
    )
    # The background work runs in shares, each only while this metanode holds its lease, and
    # each writes through a store that checks the lease's fence in every transaction.
    # A restarted metanode (the same data directory) takes its previous life's leases at once.
    try:
        holder = leases.new_holder_id(leases.metanode_id(m.data_dir)) if m.data_dir else None
    except OSError as err:
        log.warning(
            "no metanode id in %s (%s): a restart waits for its old leases", m.data_dir, err
        )
        holder = None
    keeper = LeaseKeeper(store, holder, ttl=m.lease_ttl)

    def share(name: str) -> Store:
        return cast(Store, FencedStore(store, keeper, name))

    collector = GarbageCollector(
        share(leases.GC),
        blob_client,
        interval=m.gc_interval,
        expiry_interval=m.upload_expiry_interval,
        upload_max_age=m.upload_max_age,
        grace=m.gc_grace,
    )
    activity = Activity()
    repairer = Repairer(
        share(leases.REPAIR),
        blob_client,
        cfg.cluster,
        interval=m.repair_interval,
        concurrency=m.repair_concurrency,
        rate=m.repair_rate,
        activity=activity,
    )
    anti_entropy = AntiEntropy(
        share(leases.REPAIR),
        blob_client,
        cfg.cluster,
        interval=m.anti_entropy_interval,
        orphan_grace=m.orphan_grace,
        activity=activity,
        on_damage=repairer.wake,
    )
    servicer = MetaServicer(store, cfg, repairer=repairer, anti_entropy=anti_entropy, master=master)
    sampler = ClusterSampler(
        store,
        cfg.cluster,
        repairer=repairer,
        anti_entropy=anti_entropy,
        usage=blob_client.usage,
        interval=metrics_interval,
    )
    servicer.sampler = sampler  # ClusterStatus's progress estimates
    if meter is not None:
        meter.add(ClusterCollector(sampler))
    add_to_server(servicer, server)
    detector = FailureDetector(
        share(leases.DETECTOR), m.heartbeat_timeout, dead_grace=m.dead_grace, cluster=cfg.cluster
    )

    async def detect() -> None:
        # Taken over: every node gets a full heartbeat window from now, as after a restart.
        detector.started_ns = time.time_ns()
        await detector.run()

    keeper.assign(leases.DETECTOR, detect)
    keeper.assign(leases.REPAIR, repairer.run, anti_entropy.run)
    keeper.assign(leases.GC, collector.run_collector, collector.run_expiry)
    store.use_seq_slot(await keeper.start())
    await server.start()
    tasks = [
        asyncio.create_task(keeper.run(), name="leases"),
        asyncio.create_task(sampler.run(), name="cluster-sampler"),
    ]
    await set_serving(health, SERVICE_NAME)
    host = m.listen.rpartition(":")[0]
    print(f"ringstore-metanode serving on {host}:{port} data {m.data_dir}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await keeper.stop_work()
        with contextlib.suppress(Exception):  # a store that is gone: they expire instead
            await keeper.release_all()
        servicer.stop_holding()  # the gateways' held GetCluster calls answer now
        await server.stop(grace=STOP_GRACE)
        await blob_client.close()


async def _main(
    cfg: Config,
    store: Store,
    master: MasterKey,
    cluster_secret: bytes,
    cluster_tls: tls.ClusterTls | None = None,
    meter: metrics.Metrics | None = None,
    metrics_interval: float = telemetry.INTERVAL,
) -> str:
    stopper = Stopper(log)
    stopper.install()
    await serve(
        cfg,
        store,
        stopper.event,
        cluster_secret=cluster_secret,
        master=master,
        cluster_tls=cluster_tls,
        meter=meter,
        metrics_interval=metrics_interval,
    )
    return stopper.reason


def migrate(argv: Sequence[str]) -> int:
    """``ringstore-metanode migrate --from sqlite://DIR --to postgresql://...``: copy a SQLite
    store into an empty PostgreSQL one (offline) and verify it (metanode.store.copy)."""
    p = argparse.ArgumentParser(
        prog="ringstore-metanode migrate",
        description="Copy a SQLite metadata store into an empty PostgreSQL database, offline, "
        "and verify the copy by row counts and a SHA-256 of every table's records. Stop the "
        "metanode first (a running one is held off by SQLite's write lock during the copy).",
    )
    p.add_argument("--from", dest="source", required=True, metavar="sqlite://DIR")
    p.add_argument("--to", dest="target", required=True, metavar="postgresql://...")
    args = p.parse_args(argv)
    import psycopg

    from metanode.store.copy import copy_store

    try:
        source, target = engines.parse(args.source), engines.parse(args.target)
        if source.engine != "sqlite":
            raise InvalidArgument(f"--from must be a sqlite:// URL, got {redact(args.source)!r}")
        if target.engine != "postgresql":
            raise InvalidArgument(f"--to must be a postgresql:// URL, got {redact(args.target)!r}")
        digests = copy_store(source.target, target.target)
    except (RingstoreError, OSError, RuntimeError, psycopg.Error) as exc:
        print(f"ringstore-metanode migrate: {exc}", file=sys.stderr)
        return 2
    for d in digests:
        print(f"{d.table:<14} {d.rows:>10} rows  sha256 {d.sha256}")
    total = sum(d.rows for d in digests)
    print(f"copied and verified {total} records from {source} to {redact(target.target)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["migrate"]:
        return migrate(argv[1:])
    args = parse_args(argv)
    logs.setup("metanode", args.log_level, args.log_format)
    note = die_with_parent()
    if note:
        log.warning("%s", note)
    tune_malloc()
    return run_service("ringstore-metanode", log, functools.partial(_run, args))


def _run(args: argparse.Namespace) -> str:
    try:
        cfg = build_config(args)
        cluster_secret = cluster_auth.resolve(cfg.cluster.secret_file)
        cluster_tls = tls.cluster_tls(cfg.cluster)
        url = engines.parse("memory:" if args.memory else cfg.metadata.url, cfg.metanode.data_dir)
        store = engines.open_store(url)
        log.info("metadata in %s", redact(str(url)))
    except (RingstoreError, OSError, RuntimeError) as exc:
        raise StartupError(exc) from exc
    try:
        master = prepare_identity(cfg, store, memory=args.memory, env=os.environ)
    except (RingstoreError, OSError, RuntimeError) as exc:
        store.close()
        raise StartupError(exc) from exc
    try:
        with metrics.serving("metanode", args.metrics_listen) as meter:
            return asyncio.run(
                _main(cfg, store, master, cluster_secret, cluster_tls, meter, args.metrics_interval)
            )
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
