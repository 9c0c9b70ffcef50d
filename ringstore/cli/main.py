"""``ringstore``: the command line for a ringstore cluster.

Every command talks to a gateway through the SDK (``--endpoint`` or ``RINGSTORE_ENDPOINT``),
signing its calls with ``RINGSTORE_ACCESS_KEY_ID`` and ``RINGSTORE_SECRET_ACCESS_KEY``,
except ``cluster up``, which starts a local cluster. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click
from tqdm import tqdm

from ringstore import certs, cluster_auth, credentials_file, healthcheck, logs, tls
from ringstore.cli import status as status_view
from ringstore.client import Client
from ringstore.errors import RingstoreError
from ringstore.localcluster import LocalCluster

PROGRESS_MIN = 4 * 1024 * 1024  # bytes: transfers at least this large show a progress bar
PIECE = 1024 * 1024
SUPERVISE_INTERVAL = 0.2  # seconds between two looks at the services of `cluster up`
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    click.echo(f"ringstore: {message}", err=True)
    sys.exit(code)


def errors(fn: F) -> F:
    """One line on stderr and exit code 1 for any ringstore error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RingstoreError as err:
            fail(str(err))
        except OSError as err:
            fail(f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))

    return wrapper  # type: ignore[return-value]


def split_path(path: str, *, need_key: bool) -> tuple[str, str]:
    """``bucket/key`` → (bucket, key); the key may hold further slashes."""
    path = path.removeprefix("rs://")
    bucket, _, key = path.partition("/")
    if not bucket:
        raise click.BadParameter(f"{path!r} names no bucket (want bucket/key)")
    if need_key and not key:
        raise click.BadParameter(f"{path!r} names no key (want bucket/key)")
    return bucket, key


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.group()
@click.option(
    "--endpoint",
    envvar="RINGSTORE_ENDPOINT",
    default="127.0.0.1:7000",
    show_default=True,
    help="gateway host:port (a comma-separated list to spread over several)",
)
@click.option("--timeout", default=30.0, show_default=True, help="seconds per call")
@click.option(
    "--ca-file",
    envvar=tls.CA_FILE_ENV,
    default=None,
    type=click.Path(dir_okay=False),
    help="PEM bundle of the CA(s) to trust: talk TLS to the gateway "
    "(`cluster up --tls` writes DATA_DIR/tls/ca.pem)",
)
@click.pass_context
def cli(ctx: click.Context, endpoint: str, timeout: float, ca_file: str | None) -> None:
    """ringstore: a distributed object store with S3's model."""
    ctx.obj = {"endpoint": endpoint, "timeout": timeout, "ca_file": ca_file or None}


def client(ctx: click.Context) -> Client:
    return Client(ctx.obj["endpoint"], timeout=ctx.obj["timeout"], ca_file=ctx.obj["ca_file"])


# -- cluster ------------------------------------------------------------------------------


@cli.group()
def cluster() -> None:
    """Start a local cluster or look at one."""


@cluster.command("up")
@click.option(
    "--data-dir", required=True, type=click.Path(file_okay=False), help="where all data lives"
)
@click.option("--port", default=7000, show_default=True, help="the gateway's port on 127.0.0.1")
@click.option(
    "--s3-port", type=int, default=None, help="the S3 door's port on 127.0.0.1 [default: PORT+40]"
)
@click.option(
    "--console-port",
    type=int,
    default=None,
    help="the web console's port on 127.0.0.1 [default: PORT+49]; 0 for none",
)
@click.option("--datanodes", default=3, show_default=True, help="datanodes to start (over 3 zones)")
@click.option("--replicas", default=3, show_default=True, help="N: copies of every chunk")
@click.option("--write-quorum", default=2, show_default=True, help="W: copies before an ack")
@click.option(
    "--metadata-url",
    default="",
    help="the metanode's records: sqlite://DIR or postgresql://... [default: SQLite in DATA_DIR]",
)
@click.option(
    "--postgres",
    is_flag=True,
    help="run a local PostgreSQL (initdb, pg_ctl) in DATA_DIR/postgres on PORT+30 for the metadata",
)
@click.option(
    "--metanodes",
    default=1,
    show_default=True,
    help="metanodes serving at once over one database (more than 1 needs PostgreSQL)",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="text",
    show_default=True,
    help="the services' logs (and the supervisor's reports): text, or one JSON object a line",
)
@click.option(
    "--tls",
    "use_tls",
    is_flag=True,
    help="TLS on the public doors and mutual TLS inside, with a CA and certificates made in "
    "DATA_DIR/tls (kept across restarts); clients trust DATA_DIR/tls/ca.pem",
)
def cluster_up(
    data_dir: str,
    port: int,
    s3_port: int | None,
    console_port: int | None,
    datanodes: int,
    replicas: int,
    write_quorum: int,
    metadata_url: str,
    postgres: bool,
    metanodes: int,
    log_format: str,
    use_tls: bool,
) -> None:
    """Run a metanode, DATANODES datanodes and a gateway as local processes, in the foreground.

    A service that exits unasked is started again after a backoff (0.5 s, doubling up to 30 s);
    one that exits 5 times within 2 minutes is left down and reported with the end of its log,
    while the others keep running. Reports go to stderr.

    Ctrl-C (or SIGTERM) stops them all. Started again on the same --data-dir, every object is back.
    """
    if datanodes < 1:
        fail(f"--datanodes must be at least 1, got {datanodes}", 2)
    if metanodes < 1:
        fail(f"--metanodes must be at least 1, got {metanodes}", 2)
    if metanodes > 1 and not (postgres or metadata_url.startswith("postgres")):
        fail(
            f"--metanodes {metanodes} needs one shared database: give --postgres or a "
            "postgresql:// --metadata-url (a SQLite file serves one metanode)",
            2,
        )
    lc = LocalCluster(
        Path(data_dir),
        port=port,
        s3_port=s3_port,
        console_port=(port + 49 if console_port is None else console_port) or None,
        datanodes=datanodes,
        replicas=replicas,
        write_quorum=write_quorum,
        metadata_url=metadata_url,
        postgres=postgres,
        metanodes=metanodes,
        log_format=log_format,
        tls=use_tls,
    )
    if postgres and metadata_url:
        fail("give either --metadata-url or --postgres, not both", 2)
    logs.setup("supervisor", "INFO", log_format)
    supervision = logging.getLogger("ringstore.supervisor")

    def report(message: str, warning: bool) -> None:
        supervision.log(logging.WARNING if warning else logging.INFO, "%s", message)

    supervisor = lc.supervisor(report)
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        click.echo(f"starting ringstore in {lc.data_dir} ...")
        lc.start()
        for k in range(1, metanodes + 1):
            m = lc.processes[lc.metanode_name(k)]
            click.echo(f"{m.name:<10} {m.address}  pid {m.pid}")
        if lc.pg is not None:
            click.echo(f"postgres   {lc.metadata_url}  data {lc.pg.data_dir}")
        for i in range(1, datanodes + 1):
            p = lc.processes[lc.datanode_id(i)]
            click.echo(f"{p.name:<10} {p.address}  pid {p.pid}  data {lc.data_dir / p.name}")
        gw = lc.processes["gateway"]
        click.echo(f"gateway    {gw.address}  pid {gw.pid}")
        click.echo(f"s3         {lc.s3_endpoint}  (AWS SigV4; --endpoint-url for the AWS CLI)")
        if lc.console_url:
            click.echo(f"console    {lc.console_url}")
        if lc.metrics:
            where = "  ".join(f"{n} {lc.metrics_address(n)}" for n in lc.processes)
            click.echo(f"metrics    http://HOST:PORT/metrics of each: {where}")
        click.echo(f"logs       {lc.data_dir / 'logs'}")
        if lc.ca_file:
            click.echo(f"tls        {lc.ca_file}  (the CA to trust: --ca-file, RINGSTORE_CA_FILE)")
        else:
            click.echo("tls        off: every port serves plain TCP (--tls turns it on)")
        if not lc.uses_env_secret:
            click.echo(f"secret     {lc.secret_path}  (the cluster secret internal ports check)")
        access_key_id, secret = lc.credentials()
        click.echo(f"root credentials ({lc.credentials_path}); paste these into your shell:")
        click.echo(credentials_file.export_lines(access_key_id, secret), nl=False)
        click.echo(f"ready: export RINGSTORE_ENDPOINT={lc.endpoint}   (Ctrl-C stops the cluster)")
        if lc.ca_file:
            click.echo(f"       export {tls.CA_FILE_ENV}={lc.ca_file}  AWS_CA_BUNDLE={lc.ca_file}")
        click.echo(f"       S3 endpoint {lc.s3_endpoint}")
        if lc.console_url:
            click.echo(f"       web console {lc.console_url}  (sign in with the key above)")
        while not stopping:
            supervisor.poll()
            time.sleep(SUPERVISE_INTERVAL)
    except RingstoreError as err:
        lc.stop()
        fail(str(err))
    click.echo("stopping ...")
    lc.stop()
    click.echo("stopped")


@cli.command("health")
@click.argument("endpoint", required=False)
@click.option(
    "--service",
    default="",
    help="the service to ask about (ringstore.v1.ObjectStore, ringstore.v1.Meta, "
    "ringstore.v1.Blob); default: the server as a whole",
)
@click.option(
    "--wait",
    "wait",
    type=float,
    default=healthcheck.DEFAULT_WAIT,
    show_default=True,
    help="seconds to wait for an answer",
)
@click.option(
    "--cert",
    type=click.Path(dir_okay=False),
    help="a cluster certificate to show (an internal port under mutual TLS); needs --key and "
    "the cluster CA as --ca-file",
)
@click.option("--key", type=click.Path(dir_okay=False), help="the private key of --cert")
@click.pass_context
def health_command(
    ctx: click.Context,
    endpoint: str | None,
    service: str,
    wait: float,
    cert: str | None,
    key: str | None,
) -> None:
    """Exit 0 when ENDPOINT (host:port of a gateway, the metanode or a datanode; default
    --endpoint) answers SERVING on the standard gRPC health service; otherwise print why and
    exit 1. Needs no credentials: the health service is open on every port. With --ca-file it
    talks TLS; an internal port under mutual TLS also wants --cert and --key."""
    address = endpoint or ctx.obj["endpoint"].split(",")[0]
    try:
        ok, line = healthcheck.check(
            address, service=service, wait=wait, ca_file=ctx.obj["ca_file"], cert=cert, key=key
        )
    except healthcheck.BadArguments as err:
        fail(str(err), 2)
    if not ok:
        fail(line)
    click.echo(line)


@cli.group("tls")
def tls_group() -> None:
    """Make a CA and certificates for a cluster."""


@tls_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--service",
    "services",
    multiple=True,
    help="a service to make a mutual-TLS certificate for (repeat); its name is also a DNS "
    "name of the certificate",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="a DNS name or IP address the public doors' server.pem also names (repeat); "
    "127.0.0.1 and localhost always",
)
def tls_init(directory: str, services: tuple[str, ...], hosts: tuple[str, ...]) -> None:
    """Make what is missing in DIRECTORY: a CA (ca.pem, ca.key), the public doors'
    certificate (server.pem, server.key) and one NAME.pem / NAME.key per --service, every key
    mode 0600. Files already there are kept, so running it again is safe."""
    try:
        made = certs.init(directory, services, public_hosts=hosts)
    except (RingstoreError, OSError) as err:
        fail(str(err), 2)
    click.echo(f"CA {made / 'ca.pem'}; server.pem; {len(services)} service certificate(s)")


@cluster.command("secret")
@click.argument("path", type=click.Path(dir_okay=False))
def cluster_secret(path: str) -> None:
    """Make sure PATH holds a cluster secret (mode 0600): RINGSTORE_CLUSTER_SECRET's when set,
    else a new random one; a secret already there is kept. Shows the path, never the secret.

    Every metanode, datanode and gateway of a cluster is then given the file
    (--cluster-secret-file or cluster.secret_file)."""
    value = os.environ.get(cluster_auth.SECRET_ENV) or None
    try:
        cluster_auth.load_or_create(path, value)
    except (RingstoreError, OSError) as err:
        fail(str(err), 2)
    click.echo(f"cluster secret in {path}")


@cluster.command("status")
@click.option("--json", "as_json", is_flag=True, help="one JSON document with stable keys")
@click.pass_context
@errors
def cluster_status(ctx: click.Context, as_json: bool) -> None:
    """Nodes, zones, states, usage, the ring's epoch, and the progress of repair,
    anti-entropy and each datanode's scrub with the time left at the rate of the last five
    minutes."""
    with client(ctx) as c:
        st = c.cluster_status()
    if as_json:
        click.echo(json.dumps(status_view.document(st), indent=2, sort_keys=True))
        return
    click.echo(
        f"ring epoch {st.ring_epoch}  replicas N={st.replicas} W={st.write_quorum}  "
        f"buckets {st.buckets}  objects {st.objects}  stored {human(st.stored_bytes)}  "
        f"pending gc {st.pending_gc_blobs}"
    )
    click.echo(
        f"{'NODE':<10} {'ZONE':<8} {'STATE':<9} {'ADDRESS':<22} {'USED':>10} {'CAPACITY':>10} BLOBS"
    )
    for n in st.nodes:
        click.echo(
            f"{n.id:<10} {n.zone:<8} {n.state:<9} {n.address:<22} {human(n.used_bytes):>10} "
            f"{human(n.capacity_bytes):>10} {n.blob_count}"
        )
    zones = sorted({n.zone for n in st.nodes})
    click.echo(f"zones: {len(zones)} ({', '.join(zones)})")
    for z in st.zones:
        click.echo(
            f"  {z.zone:<8} nodes {z.nodes}  placements {z.share:.1%}  weight {z.weight_share:.1%}"
        )
    click.echo(f"balance {st.balance:.3f} (max node share / weight share)  {st.balance_note}")
    click.echo(
        f"repair: under-replicated {st.under_replicated_blobs}  misplaced {st.misplaced_blobs}  "
        f"lost {st.lost_blobs}  done {st.repairs_done} ({human(st.repair_bytes)})  "
        f"failed {st.repairs_failed}"
    )
    if st.progress:
        click.echo("progress (rates over the last 5 minutes):")
        for p in st.progress:
            click.echo(status_view.progress_line(p, human))


@cli.group()
def node() -> None:
    """Operate on datanodes: drain one before it leaves, remove a dead one."""


@node.command("drain")
@click.argument("node_id")
@click.option("--force", is_flag=True, help="drain even if fewer than W up nodes stay in the ring")
@click.pass_context
@errors
def node_drain(ctx: click.Context, node_id: str, force: bool) -> None:
    """Move everything off NODE_ID (it keeps serving reads until it holds nothing).

    Refused when fewer than W up nodes would stay in the ring to take writes, unless --force."""
    with client(ctx) as c:
        info = c.drain_node(node_id, force=force)
    click.echo(f"{info.id} is {info.state}: its chunks move to other nodes in the background")


@node.command("remove")
@click.argument("node_id")
@click.option(
    "--force",
    is_flag=True,
    help="remove even if it leaves fewer than W up nodes or loses the last copy of a chunk",
)
@click.pass_context
@errors
def node_remove(ctx: click.Context, node_id: str, force: bool) -> None:
    """Forget NODE_ID and re-replicate what it held from the other copies.

    Refused when it would leave fewer than W up nodes, or when NODE_ID holds the last copy of
    some chunk (drain it instead: that copies everything off first), unless --force."""
    with client(ctx) as c:
        info = c.remove_node(node_id, force=force)
    click.echo(f"{info.id} is {info.state}: its chunks are re-replicated in the background")


# -- identity -----------------------------------------------------------------------------


@cli.group()
def key() -> None:
    """Access keys (admin only): create, list, delete."""


@key.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="the key may do everything, keys included")
@click.option("--create-buckets", is_flag=True, help="the key may create buckets (and owns them)")
@click.pass_context
@errors
def key_create(ctx: click.Context, name: str, admin: bool, create_buckets: bool) -> None:
    """Create a key named NAME; prints its secret, the only time it is shown."""
    with client(ctx) as c:
        made = c.create_key(name, admin=admin, create_buckets=create_buckets)
    click.echo(f"created key {made.access_key_id} ({made.name}); its secret is shown only now:")
    click.echo(f"export RINGSTORE_ACCESS_KEY_ID={made.access_key_id}")
    click.echo(f"export RINGSTORE_SECRET_ACCESS_KEY={made.secret_access_key}")


def _powers(admin: bool, create_buckets: bool) -> str:
    return ",".join(p for p, on in (("admin", admin), ("create-buckets", create_buckets)) if on)


@key.command("list")
@click.pass_context
@errors
def key_list(ctx: click.Context) -> None:
    """Every key: id, name, powers, grants (never secrets)."""
    with client(ctx) as c:
        keys = c.list_keys()
    click.echo(f"{'ACCESS KEY ID':<24} {'NAME':<16} {'POWERS':<22} {'CREATED':<20} GRANTS")
    for k in keys:
        grants = " ".join(f"{b}:{'+'.join(sorted(held))}" for b, held in sorted(k.grants.items()))
        created = k.created.strftime("%Y-%m-%d %H:%M:%S")
        powers = _powers(k.admin, k.create_buckets) or "-"
        click.echo(f"{k.access_key_id:<24} {k.name:<16} {powers:<22} {created:<20} {grants}")


@key.command("delete")
@click.argument("access_key_id")
@click.pass_context
@errors
def key_delete(ctx: click.Context, access_key_id: str) -> None:
    """Delete a key: calls signed with it are refused (within seconds on every gateway)."""
    with client(ctx) as c:
        c.delete_key(access_key_id)
    click.echo(f"deleted key {access_key_id}")


@cli.command("grant")
@click.argument("bucket")
@click.argument("access_key_id")
@click.option("--read", is_flag=True, help="get, head, list objects and versions")
@click.option("--write", is_flag=True, help="put, delete, multipart, copy into, rename within")
@click.option("--owner", is_flag=True, help="read, write, versioning, grants, delete the bucket")
@click.pass_context
@errors
def grant_command(
    ctx: click.Context, bucket: str, access_key_id: str, read: bool, write: bool, owner: bool
) -> None:
    """Set ACCESS_KEY_ID's grant on BUCKET (replacing the one it had)."""
    if not (read or write or owner):
        fail("grant needs at least one of --read, --write, --owner (revoke removes a grant)", 2)
    with client(ctx) as c:
        c.grant(bucket, access_key_id, read=read, write=write, owner=owner)
    held = "+".join(n for n, on in (("read", read), ("write", write), ("owner", owner)) if on)
    click.echo(f"granted {held} on {bucket} to {access_key_id}")


@cli.command("revoke")
@click.argument("bucket")
@click.argument("access_key_id")
@click.pass_context
@errors
def revoke_command(ctx: click.Context, bucket: str, access_key_id: str) -> None:
    """Remove ACCESS_KEY_ID's grant on BUCKET."""
    with client(ctx) as c:
        c.revoke(bucket, access_key_id)
    click.echo(f"revoked {access_key_id}'s grant on {bucket}")


@cli.group()
def bucket() -> None:
    """Settings of a bucket."""


@bucket.command("anonymous-read")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.pass_context
@errors
def bucket_anonymous_read(ctx: click.Context, name: str, state: str) -> None:
    """Let anyone, without credentials, read bucket NAME (on), or no longer (off)."""
    with client(ctx) as c:
        c.set_bucket_anonymous_read(name, state == "on")
    click.echo(f"anonymous read of {name} is {state}")


# -- buckets ------------------------------------------------------------------------------


@cli.command("mb")
@click.argument("bucket")
@click.pass_context
@errors
def make_bucket(ctx: click.Context, bucket: str) -> None:
    """Make a bucket."""
    with client(ctx) as c:
        c.create_bucket(bucket.removeprefix("rs://").rstrip("/"))
    click.echo(f"made bucket {bucket}")


@cli.command("rb")
@click.argument("bucket")
@click.pass_context
@errors
def remove_bucket(ctx: click.Context, bucket: str) -> None:
    """Remove an empty bucket."""
    with client(ctx) as c:
        c.delete_bucket(bucket.removeprefix("rs://").rstrip("/"))
    click.echo(f"removed bucket {bucket}")


@cli.command("ls")
@click.argument("path", required=False)
@click.option("-r", "--recursive", is_flag=True, help="every key, not folder by folder")
@click.pass_context
@errors
def list_command(ctx: click.Context, path: str | None, recursive: bool) -> None:
    """List buckets, or the keys and folders under bucket[/prefix]."""
    with client(ctx) as c:
        if not path:
            for b in c.list_buckets():
                click.echo(f"{b.created:%Y-%m-%d %H:%M:%S}  {b.name}")
            return
        bucket, prefix = split_path(path, need_key=False)
        token = None
        while True:
            page = c.list_objects(
                bucket, prefix=prefix, delimiter="" if recursive else "/", continuation_token=token
            )
            for cp in page.common_prefixes:
                click.echo(f"{'':19}  {'PRE':>12}  {cp}")
            for o in page.objects:
                click.echo(f"{o.last_modified:%Y-%m-%d %H:%M:%S}  {o.size:>12}  {o.key}")
            if not page.is_truncated:
                return
            token = page.next_continuation_token


# -- objects ------------------------------------------------------------------------------


def _read_with_progress(f: BinaryIO, bar: tqdm | None) -> Iterator[bytes]:
    while True:
        piece = f.read(PIECE)
        if not piece:
            return
        if bar is not None:
            bar.update(len(piece))
        yield piece


def _bar(total: int | None, desc: str) -> tqdm | None:
    """A progress bar for transfers of at least PROGRESS_MIN bytes; of unknown size (stdin),
    one that appears only if the transfer lasts more than a second."""
    if total is not None and total < PROGRESS_MIN:
        return None
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        delay=1.0 if total is None else 0.0,
    )


class _BarProgress:
    """Feeds an SDK ``progress`` callback (running totals) into a tqdm bar (increments)."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = _bar(total, desc)
        self.seen = 0

    def __call__(self, total: int) -> None:
        if self.bar is not None:
            self.bar.update(total - self.seen)
        self.seen = total

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@cli.command("put")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("dest")
@click.option("--content-type", help="the object's Content-Type")
@click.option("-m", "--meta", multiple=True, help="user metadata NAME=VALUE (repeatable)")
@click.option(
    "--part-size",
    default=8,
    show_default=True,
    help="MiB per part above which, and in which, files upload as multipart",
)
@click.option("--concurrency", default=4, show_default=True, help="parts in flight at once")
@click.pass_context
@errors
def put_command(
    ctx: click.Context,
    file: str,
    dest: str,
    content_type: str | None,
    meta: tuple[str, ...],
    part_size: int,
    concurrency: int,
) -> None:
    """Upload FILE ('-' for stdin) to bucket/key; large files go up in parallel parts."""
    bucket, key = split_path(dest, need_key=True)
    metadata = {}
    for item in meta:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"metadata {item!r} must be NAME=VALUE")
        metadata[name] = value
    with client(ctx) as c:
        if file == "-":
            info = c.put_object(
                bucket,
                key,
                _read_with_progress(sys.stdin.buffer, _bar(None, key)),
                content_type=content_type,
                metadata=metadata or None,
            )
        else:
            bar = _BarProgress(Path(file).stat().st_size, key)
            try:
                info = c.upload_file(
                    bucket,
                    key,
                    file,
                    part_size=part_size * 1024 * 1024,
                    concurrency=concurrency,
                    progress=bar,
                    content_type=content_type,
                    metadata=metadata or None,
                )
            finally:
                bar.close()
    click.echo(f"uploaded {info.size} bytes to {bucket}/{key}  etag {info.etag}")


@cli.command("get")
@click.argument("src")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--version-id", help="a version other than the latest")
@click.option("--concurrency", default=4, show_default=True, help="ranges in flight at once")
@click.pass_context
@errors
def get_command(
    ctx: click.Context, src: str, file: str, version_id: str | None, concurrency: int
) -> None:
    """Download bucket/key to FILE ('-' for stdout); large objects come in parallel ranges."""
    bucket, key = split_path(src, need_key=True)
    with client(ctx) as c:
        if file == "-":
            with c.get_object(bucket, key, version_id=version_id) as reader:
                for piece in reader:
                    sys.stdout.buffer.write(piece)
            sys.stdout.buffer.flush()
            return
        size = c.head_object(bucket, key, version_id=version_id).size
        bar = _BarProgress(size, key)
        try:
            info = c.download_file(
                bucket, key, file, version_id=version_id, concurrency=concurrency, progress=bar
            )
        finally:
            bar.close()
    click.echo(f"downloaded {info.size} bytes to {file}", err=True)


@cli.command("mv")
@click.argument("src")
@click.argument("dest")
@click.pass_context
@errors
def move_command(ctx: click.Context, src: str, dest: str) -> None:
    """Move a key (bucket/key) or a folder (bucket/prefix/, ending in '/') within a bucket.

    A folder moves with rename_prefix: metadata only, each object's move atomic, safe to re-run.
    A key moves by a metadata-only copy and a delete, so a key moved onto itself is refused
    before anything is sent: the delete would remove the copy it just made.
    """
    src_bucket, src_key = split_path(src, need_key=True)
    dst_bucket, dst_key = split_path(dest, need_key=True)
    if (src_bucket, src_key) == (dst_bucket, dst_key):
        raise click.BadParameter(
            f"{src_bucket}/{src_key} is both source and destination: a key or folder cannot "
            "be moved onto itself (nothing was changed)"
        )
    with client(ctx) as c:
        if src_key.endswith("/"):
            if dst_bucket != src_bucket:
                raise click.BadParameter("a folder moves within its bucket only")
            if not dst_key.endswith("/"):
                raise click.BadParameter(f"moving folder {src_key!r}: end {dst_key!r} with '/'")
            moved = c.rename_prefix(src_bucket, src_key, dst_key)
            click.echo(f"moved {moved} objects from {src} to {dest}")
            return
        c.copy_object(src_bucket, src_key, dst_bucket, dst_key)
        c.delete_object(src_bucket, src_key)
    click.echo(f"moved {src} to {dest}")


@cli.command("cat")
@click.argument("src")
@click.pass_context
@errors
def cat_command(ctx: click.Context, src: str) -> None:
    """Write bucket/key to stdout."""
    bucket, key = split_path(src, need_key=True)
    with client(ctx) as c, c.get_object(bucket, key) as reader:
        for piece in reader:
            sys.stdout.buffer.write(piece)
    sys.stdout.buffer.flush()


@cli.command("rm")
@click.argument("path")
@click.pass_context
@errors
def remove_command(ctx: click.Context, path: str) -> None:
    """Delete bucket/key."""
    bucket, key = split_path(path, need_key=True)
    with client(ctx) as c:
        c.delete_object(bucket, key)
    click.echo(f"deleted {bucket}/{key}")


@cli.command("stat")
@click.argument("path")
@click.pass_context
@errors
def stat_command(ctx: click.Context, path: str) -> None:
    """Show an object's size, ETag, type, metadata and time."""
    bucket, key = split_path(path, need_key=True)
    with client(ctx) as c:
        info = c.head_object(bucket, key)
    click.echo(f"bucket        {info.bucket}")
    click.echo(f"key           {info.key}")
    click.echo(f"size          {info.size} ({human(info.size)})")
    click.echo(f"etag          {info.etag}")
    click.echo(f"content-type  {info.content_type}")
    click.echo(f"last-modified {info.last_modified.isoformat()}")
    if info.version_id is not None:
        click.echo(f"version-id    {info.version_id}")
    for name, value in sorted(info.metadata.items()):
        click.echo(f"meta          {name}={value}")


def main() -> None:
    cli(prog_name="ringstore")


if __name__ == "__main__":
    main()
