"""``ringstore-datanode``: run one datanode.

Serves ``ringstore.v1.Blob`` over the blobs under its data directory, registers and heartbeats to
the metanode, scrubs its blobs in the background and reports the corrupt ones to the metanode,
prints one line to stdout once it serves::

    ringstore-datanode <id> serving on <host:port> zone <zone> data <dir>

and stops cleanly (exit code 0) on SIGINT or SIGTERM. Settings come from ``cluster.yaml`` (its
``datanode`` and ``metanode`` sections), then ``RINGSTORE_*`` environment variables, then flags.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from datanode.blobstore import DiskBlobStore
from datanode.bulk import BulkServer
from datanode.damage import DamageReporter
from datanode.heartbeat import Heartbeater, NodeIdentity
from datanode.scrubber import Scrubber
from datanode.servicer import BlobService
from datanode.telemetry import DatanodeCollector
from ringstore import cluster_auth, logs, metanodes, metrics, tls
from ringstore import config as config_module
from ringstore.config import Config
from ringstore.errors import InvalidArgument, RingstoreError
from ringstore.lifecycle import StartupError, Stopper, die_with_parent, run_service, tune_malloc
from ringstore.rpc import internal_channel, make_server, set_serving
from ringstore.v1 import blob_pb2_grpc, meta_pb2_grpc

log = logging.getLogger("datanode")

SERVICE = "ringstore.v1.Blob"
STOP_GRACE = 2.0  # seconds given to calls in flight at shutdown
COMPACT_INTERVAL = 60.0  # seconds between two looks for volumes worth compacting
MiB = 1024 * 1024
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; every flag overrides the configuration file."""
    parser = argparse.ArgumentParser(
        prog="ringstore-datanode",
        description="Run a ringstore datanode: stores blobs, serves ringstore.v1.Blob, "
        "heartbeats to the metanode.",
    )
    parser.add_argument("--config", metavar="PATH", help="cluster.yaml to read")
    parser.add_argument("--id", help="unique, stable node id (datanode.id)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to bind; port 0 picks one")
    parser.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="address others reach this node at (default: the listen address, bound port)",
    )
    parser.add_argument("--zone", help="failure domain (datanode.zone)")
    parser.add_argument("--weight", type=float, help="relative share of data (datanode.weight)")
    parser.add_argument("--data-dir", metavar="DIR", help="where blobs live (datanode.data_dir)")
    parser.add_argument("--capacity", type=int, help="bytes offered; 0 for the disk's size")
    parser.add_argument(
        "--metanode", metavar="HOST:PORT", help="metanode address (metanode.address)"
    )
    parser.add_argument(
        "--full-reserve",
        type=int,
        metavar="BYTES",
        help="bytes kept free: with less, the node refuses new blobs (datanode.full_reserve)",
    )
    parser.add_argument(
        "--scrub-rate",
        type=int,
        metavar="BYTES_PER_S",
        help="bytes per second the scrubber re-reads; 0 turns it off (datanode.scrub_rate)",
    )
    parser.add_argument(
        "--scrub-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between the starts of two scrub passes (datanode.scrub_interval)",
    )
    parser.add_argument(
        "--small-blob-max",
        type=int,
        metavar="BYTES",
        help="blobs up to this size go into volume files; 0: none (datanode.small_blob_max)",
    )
    parser.add_argument(
        "--volume-size",
        type=int,
        metavar="BYTES",
        help="bytes past which a volume file is sealed (datanode.volume_size)",
    )
    parser.add_argument(
        "--cluster-secret-file",
        metavar="PATH",
        help="file of the cluster secret (cluster.secret_file; else RINGSTORE_CLUSTER_SECRET)",
    )
    parser.add_argument(
        "--bulk-port",
        type=int,
        metavar="PORT",
        help="port of the bulk data path; 0 any free one, -1 off (datanode.bulk_port)",
    )
    parser.add_argument(
        "--no-fsync", action="store_true", help="skip fsync (tests only: not crash-safe)"
    )
    tls.add_cluster_arguments(parser)
    logs.add_arguments(parser)
    metrics.add_arguments(parser)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    """The configuration file and environment, overridden by the flags that were given."""
    cfg = config_module.load(args.config)
    flags = {
        "id": args.id,
        "listen": args.listen,
        "advertise": args.advertise,
        "zone": args.zone,
        "weight": args.weight,
        "data_dir": args.data_dir,
        "capacity": args.capacity,
        "full_reserve": args.full_reserve,
        "scrub_rate": args.scrub_rate,
        "scrub_interval": args.scrub_interval,
        "small_blob_max": args.small_blob_max,
        "volume_size": args.volume_size,
        "bulk_port": args.bulk_port,
    }
    datanode = dataclasses.replace(
        cfg.datanode, **{k: v for k, v in flags.items() if v is not None}
    )
    if args.no_fsync:
        datanode = dataclasses.replace(datanode, fsync=False)
    metanode = cfg.metanode
    if args.metanode:
        metanode = dataclasses.replace(metanode, address=args.metanode)
    cluster = cfg.cluster
    if args.cluster_secret_file:
        cluster = dataclasses.replace(cluster, secret_file=args.cluster_secret_file)
    cluster = tls.with_cluster_arguments(args, cluster)
    cfg = dataclasses.replace(cfg, datanode=datanode, metanode=metanode, cluster=cluster).validate()
    _check_datanode(cfg)
    return cfg


def _check_datanode(cfg: Config) -> None:
    """The datanode keys the shared validation does not cover."""
    dn = cfg.datanode
    if dn.full_reserve < 0:
        raise InvalidArgument(f"datanode.full_reserve must be >= 0 bytes, got {dn.full_reserve}")
    if dn.scrub_rate < 0:
        raise InvalidArgument(
            f"datanode.scrub_rate must be >= 0 bytes per second (0: off), got {dn.scrub_rate}"
        )
    if dn.scrub_interval <= 0:
        raise InvalidArgument(
            f"datanode.scrub_interval must be a positive number of seconds, got {dn.scrub_interval}"
        )
    if not 0 <= dn.small_blob_max <= 64 * MiB:
        raise InvalidArgument(
            f"datanode.small_blob_max must be between 0 and 64 MiB, got {dn.small_blob_max}"
        )
    if dn.volume_size < MiB:
        raise InvalidArgument(f"datanode.volume_size must be at least 1 MiB, got {dn.volume_size}")
    if not -1 <= dn.bulk_port <= 65535:
        raise InvalidArgument(
            f"datanode.bulk_port must be a port (0: any free one, -1: off), got {dn.bulk_port}"
        )


def listen_host(listen: str) -> str:
    """The host part of a ``host:port`` listen address (``[v6]`` brackets removed)."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return host.strip("[]")


def advertised_address(listen: str, port: int) -> str:
    """The listen address with the bound ``port``; a wildcard host becomes this host's name."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    if host in _WILDCARD_HOSTS:
        host = socket.gethostname()
    return f"{host}:{port}"


async def serve(
    cfg: Config,
    stop: asyncio.Event,
    cluster_secret: bytes,
    cluster_tls: tls.ClusterTls | None = None,
    meter: metrics.Metrics | None = None,
) -> None:
    """Run the datanode until ``stop`` is set. It serves only callers that prove
    ``cluster_secret`` (health checks excepted) and proves it in its own calls (to the
    metanode, and to the datanodes it copies blobs from); with ``cluster_tls`` its ports (gRPC
    and bulk) and its calls use mutual TLS with the cluster CA. ``meter`` counts its calls and
    exports its gauges (:class:`~datanode.telemetry.DatanodeCollector`)."""
    dn = cfg.datanode
    if not dn.id:
        raise InvalidArgument("datanode.id must not be empty")
    data_dir = Path(dn.data_dir).resolve()
    channel = internal_channel(
        metanodes.target(cfg.metanode.address),
        cluster_secret,
        cluster_tls,
        metanodes.channel_options(cfg.metanode.balance),
    )
    meta = meta_pb2_grpc.MetaStub(channel)
    reporter = DamageReporter(meta, dn.id)
    store = await asyncio.to_thread(
        DiskBlobStore,
        data_dir,
        capacity=dn.capacity,
        fsync=dn.fsync,
        full_reserve=dn.full_reserve,
        on_quarantine=reporter.note,
        small_blob_max=dn.small_blob_max,
        volume_size=dn.volume_size,
    )
    scrubber = Scrubber(store, rate=dn.scrub_rate, interval=dn.scrub_interval)
    bulk_server = None
    if dn.bulk_port >= 0:
        bulk_server = BulkServer(
            store,
            cluster_secret,
            host=listen_host(dn.listen),
            port=dn.bulk_port,
            tls=cluster_tls.server_context() if cluster_tls else None,
        )
        bulk_server.start()
    server, health, port = make_server(
        dn.listen,
        max_concurrent_calls=dn.max_concurrent_calls,
        service=f"datanode {dn.id}",
        cluster_secret=cluster_secret,
        credentials=cluster_tls.server_credentials() if cluster_tls else None,
        metrics=meter,
    )
    if meter is not None:
        meter.add(DatanodeCollector(store, scrubber, bulk_server))
    service = BlobService(
        store,
        scrubbed_bytes=lambda: scrubber.scrubbed_bytes,
        scrub_state=lambda: (scrubber.enabled, scrubber.pass_bytes, scrubber.rate.rate() or 0.0),
        connect=functools.partial(internal_channel, secret=cluster_secret, tls=cluster_tls),
        bulk=bulk_server,
    )
    blob_pb2_grpc.add_BlobServicer_to_server(service, server)
    await server.start()
    await set_serving(health, SERVICE)
    address = dn.advertise or advertised_address(dn.listen, port)
    heartbeater = Heartbeater(
        meta,
        NodeIdentity(dn.id, address, dn.zone, dn.weight),
        store.usage,
        interval=dn.heartbeat_interval,
    )
    heartbeater.start()
    reporter.start()
    scrubber.start()
    compactor = asyncio.create_task(compact_forever(store))
    print(f"ringstore-datanode {dn.id} serving on {address} zone {dn.zone} data {data_dir}")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        log.info("stopping datanode %s", dn.id)
        compactor.cancel()
        await scrubber.stop()
        await heartbeater.stop()
        await server.stop(grace=STOP_GRACE)
        if bulk_server is not None:
            await asyncio.to_thread(bulk_server.stop)
        await reporter.stop()
        await channel.close(grace=None)
        await asyncio.gather(compactor, return_exceptions=True)
        store.close()


async def compact_forever(store: DiskBlobStore, interval: float = COMPACT_INTERVAL) -> None:
    """Reclaim the space of deleted small blobs now and then (see DiskBlobStore.compact)."""
    while True:
        await asyncio.sleep(interval)
        try:
            freed = await asyncio.to_thread(store.compact)
        except OSError:
            log.exception("compacting the volumes failed; retrying in %.0f s", interval)
            continue
        if freed:
            log.info("compaction freed %d bytes", freed)


async def _run(
    cfg: Config,
    cluster_secret: bytes,
    cluster_tls: tls.ClusterTls | None,
    meter: metrics.Metrics | None = None,
) -> str:
    stopper = Stopper(log)
    stopper.install()
    await serve(cfg, stopper.event, cluster_secret, cluster_tls, meter)
    return stopper.reason


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ringstore-datanode`` console script."""
    args = parse_args(argv)
    logs.setup(f"datanode {args.id}" if args.id else "datanode", args.log_level, args.log_format)
    note = die_with_parent()
    if note:
        log.warning("%s", note)
    tune_malloc()
    return run_service("ringstore-datanode", log, functools.partial(_start, args))


def _start(args: argparse.Namespace) -> str:
    try:
        cfg = build_config(args)
        cluster_secret = cluster_auth.resolve(cfg.cluster.secret_file)
        cluster_tls = tls.cluster_tls(cfg.cluster)
    except (RingstoreError, OSError) as err:
        raise StartupError(err) from err
    try:
        with metrics.serving("datanode", args.metrics_listen, cfg.datanode.id) as meter:
            return asyncio.run(_run(cfg, cluster_secret, cluster_tls, meter))
    except RingstoreError as err:  # a check made while starting (an id, a data directory)
        raise StartupError(err) from err


if __name__ == "__main__":
    sys.exit(main())
