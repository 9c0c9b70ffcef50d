"""``ringstore-gateway``: serve the public ObjectStore API in front of a metanode and datanodes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import sys

from gateway.auth import Authorizer
from gateway.bulk_client import BulkClient
from gateway.cluster_view import ClusterView
from gateway.grpc_auth import Authenticator
from gateway.intake import ByteBudget, Intake
from gateway.meta_client import MetaClient
from gateway.objects import ObjectService
from gateway.s3.app import S3App
from gateway.s3.server import S3Server
from gateway.servicer import ObjectStoreServicer, add_to_server
from ringstore import cluster_auth, logs, metanodes, metrics, tls
from ringstore import config as config_mod
from ringstore.errors import RingstoreError
from ringstore.lifecycle import StartupError, Stopper, die_with_parent, run_service, tune_malloc
from ringstore.rpc import internal_channel, make_server, set_serving
from ringstore.v1 import meta_pb2_grpc

log = logging.getLogger("ringstore.gateway")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ringstore-gateway", description=__doc__)
    p.add_argument("--config", help="cluster.yaml (defaults apply without it)")
    p.add_argument("--listen", help="host:port to serve on (gateway.listen)")
    p.add_argument("--s3-listen", help="host:port of the S3 door (gateway.s3_listen); '' for none")
    p.add_argument(
        "--s3-domain", help="virtual-hosted style: Host <bucket>.<domain> (gateway.s3_domain)"
    )
    p.add_argument(
        "--console-listen",
        help="host:port of the web console (gateway.console_listen); '' for none",
    )
    p.add_argument("--metanode", help="host:port of the metanode (metanode.address)")
    p.add_argument("--rpc-timeout", type=float, help="seconds: deadline of internal calls")
    p.add_argument("--ring-refresh", type=float, help="seconds between cluster-view refreshes")
    p.add_argument(
        "--cluster-secret-file",
        metavar="PATH",
        help="file of the cluster secret (cluster.secret_file; else RINGSTORE_CLUSTER_SECRET)",
    )
    p.add_argument("--tls-cert", metavar="PEM", help="public doors' certificate (gateway.tls_cert)")
    p.add_argument("--tls-key", metavar="PEM", help="its private key (gateway.tls_key)")
    tls.add_cluster_arguments(p)
    logs.add_arguments(p)
    metrics.add_arguments(p)
    return p.parse_args(argv)


def load_config(args: argparse.Namespace) -> config_mod.Config:
    cfg = config_mod.load(args.config)
    gw = cfg.gateway
    if args.listen:
        gw = dataclasses.replace(gw, listen=args.listen)
    if args.s3_listen is not None:
        gw = dataclasses.replace(gw, s3_listen=args.s3_listen)
    if args.console_listen is not None:
        gw = dataclasses.replace(gw, console_listen=args.console_listen)
    if args.s3_domain is not None:
        gw = dataclasses.replace(gw, s3_domain=args.s3_domain)
    if args.rpc_timeout:
        gw = dataclasses.replace(gw, rpc_timeout=args.rpc_timeout)
    if args.ring_refresh:
        gw = dataclasses.replace(gw, ring_refresh=args.ring_refresh)
    if args.tls_cert is not None:
        gw = dataclasses.replace(gw, tls_cert=args.tls_cert)
    if args.tls_key is not None:
        gw = dataclasses.replace(gw, tls_key=args.tls_key)
    meta = cfg.metanode
    if args.metanode:
        meta = dataclasses.replace(meta, address=args.metanode)
    cluster = cfg.cluster
    if args.cluster_secret_file:
        cluster = dataclasses.replace(cluster, secret_file=args.cluster_secret_file)
    cluster = tls.with_cluster_arguments(args, cluster)
    return dataclasses.replace(cfg, gateway=gw, metanode=meta, cluster=cluster)


async def serve(
    cfg: config_mod.Config,
    cluster_secret: bytes,
    cluster_tls: tls.ClusterTls | None = None,
    public_tls: tls.PublicTls | None = None,
    meter: metrics.Metrics | None = None,
) -> str:
    """Serve until SIGINT or SIGTERM; returns the signal's name. ``cluster_secret`` proves the
    gateway's calls to the metanode and the datanodes (over mutual TLS with ``cluster_tls``);
    the public ports check callers' own keys instead, and serve TLS with ``public_tls``.
    ``meter`` counts the requests of both doors."""
    gw = cfg.gateway
    channel = internal_channel(
        metanodes.target(cfg.metanode.address),
        cluster_secret,
        cluster_tls,
        metanodes.channel_options(cfg.metanode.balance),
    )
    meta = meta_pb2_grpc.MetaStub(channel)
    view = ClusterView(
        meta,
        rpc_timeout=gw.rpc_timeout,
        connect=functools.partial(internal_channel, secret=cluster_secret, tls=cluster_tls),
        bulk=BulkClient(cluster_secret, tls=cluster_tls.client_context() if cluster_tls else None),
    )
    objects = ObjectService(
        MetaClient(meta, rpc_timeout=gw.rpc_timeout),
        view,
        rpc_timeout=gw.rpc_timeout,
        max_concurrent_chunks=gw.max_concurrent_chunks,
    )
    authorizer = Authorizer(meta, rpc_timeout=gw.rpc_timeout)
    # What has started is stopped in reverse once serving ends, or when a later step fails.
    async with contextlib.AsyncExitStack() as started:
        started.push_async_callback(channel.close, grace=None)
        if view.bulk is not None:
            started.callback(view.bulk.close)
        server, health, port = make_server(
            gw.listen,
            max_concurrent_calls=gw.max_concurrent_calls,
            service="gateway",
            interceptors=[Authenticator(authorizer)],
            credentials=public_tls.server_credentials() if public_tls else None,
            metrics=meter,
        )
        intake = Intake(ByteBudget(gw.max_body_bytes, gw.body_wait), gw.stream_idle_timeout)
        add_to_server(ObjectStoreServicer(objects, intake, authorizer=authorizer), server)
        await server.start()
        started.push_async_callback(server.stop, grace=2)
        s3 = None
        if gw.s3_listen:
            app = S3App(
                objects,
                authorizer,
                region=gw.s3_region,
                domain=gw.s3_domain,
                intake=intake,
                max_concurrent_calls=gw.max_concurrent_calls,
            )
            s3 = S3Server(app, gw.s3_listen, tls=public_tls, metrics=meter)
            await s3.start()
            started.push_async_callback(s3.stop)
        console = None
        if gw.console_listen:
            if s3 is None:
                raise StartupError("gateway.console_listen needs the S3 door (gateway.s3_listen)")
            # Imported only for a gateway that serves it: jinja2 and the SDK it brings are
            # about 3 MiB of memory that a gateway without a console does not hold.
            from gateway.console.app import ConsoleApp
            from gateway.console.server import ConsoleServer

            console = ConsoleServer(
                ConsoleApp(
                    api_endpoint=f"{_loopback(gw.listen)}:{port}",
                    s3_app=app,
                    s3_port=s3.port,
                    authorizer=authorizer,
                    region=gw.s3_region,
                    ca_file=public_tls.cert_file if public_tls else None,
                ),
                gw.console_listen,
                tls=public_tls,
            )
            await console.start()
            started.push_async_callback(console.stop)
        # Healthy only while the gateway's view of the cluster is fresh: not before it has
        # heard from the metanode (it knows no ring), not when its ring has been stale for long.
        follower = asyncio.create_task(
            view.follow(
                gw.ring_refresh,
                on_health=lambda fresh: set_serving(health, "ringstore.v1.ObjectStore", fresh),
            )
        )
        started.push_async_callback(_cancel_and_wait, follower)
        while not view.synced:
            await asyncio.sleep(0.05)
        host = gw.listen.rpartition(":")[0]
        s3_note = f" s3 {gw.s3_listen.rpartition(':')[0]}:{s3.port}" if s3 is not None else ""
        if console is not None:
            s3_note += f" console http://{gw.console_listen.rpartition(':')[0]}:{console.port}/"
        print(
            f"ringstore-gateway serving on {host}:{port}{s3_note} metanode {cfg.metanode.address}",
            flush=True,
        )

        stopper = Stopper(log)
        stopper.install()
        await stopper.event.wait()
        return stopper.reason


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _loopback(listen: str) -> str:
    """The host the console's API client dials: the listen host, or loopback for a wildcard."""
    host = listen.rpartition(":")[0]
    return "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs.setup("gateway", args.log_level, args.log_format)
    note = die_with_parent()
    if note:
        log.warning("%s", note)
    tune_malloc()
    sys.exit(run_service("ringstore-gateway", log, functools.partial(_start, args)))


def _start(args: argparse.Namespace) -> str:
    try:
        cfg = load_config(args)
        secret = cluster_auth.resolve(cfg.cluster.secret_file)
        cluster_tls = tls.cluster_tls(cfg.cluster)
        public_tls = tls.PublicTls.load(cfg.gateway.tls_cert, cfg.gateway.tls_key)
    except (RingstoreError, OSError) as exc:
        raise StartupError(exc) from exc
    if cluster_tls is None:
        log.warning("%s", tls.plain_tcp_note("gateway", "its calls to the metanode and datanodes"))
    with metrics.serving("gateway", args.metrics_listen) as meter:
        return asyncio.run(serve(cfg, secret, cluster_tls, public_tls, meter))


if __name__ == "__main__":
    main()
