"""The console's pages and actions: each one calls the public API as the signed-in key.

Every call goes through the session's SDK client (signed as the key, run in a worker thread),
so the gateway's authorizer decides each one. What this module reads from the in-process
:class:`Authorizer` (a key's grants, a bucket's anonymous flag) only decides which buttons a
page shows; a forged request for a hidden button is still refused by the API.

Uploads: the browser asks ``/uploads/start`` for presigned ``PUT`` URLs on the console's origin
(one for a small file; for a file over :data:`MULTIPART_THRESHOLD`, a multipart upload created
here and one URL per :data:`PART_SIZE` part), sends the bytes itself, and asks
``/uploads/complete`` to finish. Downloads and share links are presigned ``GET`` URLs on the
S3 door's port.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from gateway import auth
from gateway.console import presign
from gateway.console.sessions import Session
from gateway.console.web import Request
from ringstore.client import Client
from ringstore.errors import InvalidArgument

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # bytes of each part of a browser's multipart upload
MULTIPART_THRESHOLD = 16 * MiB  # files larger than this go up in parts
PAGE_SIZE = 100  # entries (objects and folders) per page of a listing
VERSIONS_SHOWN = 100  # versions of one object on its details page
UPLOAD_EXPIRES = 3600  # seconds a presigned upload URL lives
DOWNLOAD_EXPIRES = 300  # seconds the URL behind a download link lives
SHARE_EXPIRIES = {"1 hour": 3600, "1 day": 86400, "7 days": 7 * 86400}  # the share form's choices


@dataclass
class Page:
    template: str
    values: dict[str, Any]
    partial: bool = False  # a fragment (the cluster page's live part), without the frame


@dataclass
class Redirect:
    location: str


@dataclass
class Json:
    value: Any
    status: int = 200


Reply = Page | Redirect | Json


@dataclass
class Context:
    req: Request
    session: Session
    client: Client
    form: dict[str, Any] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        value = self.form.get(name, self.req.query.get(name, default))
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
        return value

    async def api(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the SDK (blocking) off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


Handler = Callable[[Context], Awaitable[Reply]]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def objects_url(bucket: str, prefix: str = "") -> str:
    return "/objects?" + urlencode({"bucket": bucket, "prefix": prefix})


def object_url(bucket: str, key: str) -> str:
    return "/object?" + urlencode({"bucket": bucket, "key": key})


class Pages:
    def __init__(
        self,
        *,
        authorizer: auth.Authorizer,
        region: str,
        s3_port: int,
        part_size: int,
        multipart_threshold: int,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.authorizer = authorizer
        self.region = region
        self.s3_port = s3_port
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self.clock = clock
        self.views: dict[str, Handler] = {
            "/buckets": self.buckets,
            "/objects": self.objects,
            "/object": self.object,
            "/download": self.download,
            "/cluster": self.cluster,
            "/cluster/live": self.cluster_live,
            "/keys": self.keys,
        }
        self.actions: dict[str, Handler] = {
            "/buckets/create": self.create_bucket,
            "/buckets/delete": self.delete_bucket,
            "/buckets/versioning": self.set_versioning,
            "/buckets/anonymous": self.set_anonymous,
            "/objects/delete": self.delete_object,
            "/objects/share": self.share,
            "/objects/rename": self.rename_folder,
            "/uploads/start": self.start_upload,
            "/uploads/complete": self.complete_upload,
            "/uploads/abort": self.abort_upload,
            "/keys/create": self.create_key,
            "/keys/delete": self.delete_key,
            "/keys/grant": self.grant,
        }

    async def _identity(self, ctx: Context) -> auth.Identity:
        identity, _ = await self.authorizer.key(ctx.session.access_key_id)
        return identity

    async def _may(self, ctx: Context, action: str, bucket: str) -> bool:
        """Whether a page shows the buttons of ``action`` (the API decides anyway)."""
        return auth.allows(await self._identity(ctx), action, bucket)

    def _presign(self, ctx: Context, method: str, host: str, path: str, **kw: Any) -> str:
        return presign.presign(
            method,
            host,
            path,
            access_key_id=ctx.session.access_key_id,
            secret=ctx.session.secret,
            region=self.region,
            now=self.clock(),
            scheme=ctx.req.scheme,
            **kw,
        )

    def _s3_host(self, ctx: Context) -> str:
        return f"{ctx.req.hostname}:{self.s3_port}"

    # -- buckets -----------------------------------------------------------------------------

    async def buckets(self, ctx: Context) -> Reply:
        identity = await self._identity(ctx)
        rows = []
        for b in await ctx.api(ctx.client.list_buckets):
            rows.append(
                {
                    "name": b.name,
                    "created": b.created,
                    "versioning": b.versioning,
                    "anonymous": await self.authorizer.anonymous_read(b.name),
                    "owner": auth.allows(identity, auth.OWNER, b.name),
                    "url": objects_url(b.name),
                }
            )
        may_create = auth.allows(identity, auth.CREATE_BUCKET)
        return Page("buckets.html", {"buckets": rows, "may_create": may_create})

    async def create_bucket(self, ctx: Context) -> Reply:
        name = ctx.arg("name").strip()
        await ctx.api(ctx.client.create_bucket, name)
        ctx.session.say("ok", f"Bucket {name} created.")
        return Redirect("/buckets")

    async def delete_bucket(self, ctx: Context) -> Reply:
        name = ctx.arg("bucket")
        await ctx.api(ctx.client.delete_bucket, name)
        ctx.session.say("ok", f"Bucket {name} deleted.")
        return Redirect("/buckets")

    async def set_versioning(self, ctx: Context) -> Reply:
        name, status = ctx.arg("bucket"), ctx.arg("status")
        await ctx.api(ctx.client.set_bucket_versioning, name, status)
        ctx.session.say("ok", f"Versioning of {name} is now {status}.")
        return Redirect("/buckets")

    async def set_anonymous(self, ctx: Context) -> Reply:
        name, enabled = ctx.arg("bucket"), ctx.arg("enabled") == "true"
        await ctx.api(ctx.client.set_bucket_anonymous_read, name, enabled)
        self.authorizer.forget_bucket(name)
        ctx.session.say("ok", f"Anonymous read of {name} is now {'on' if enabled else 'off'}.")
        return Redirect("/buckets")

    # -- objects -----------------------------------------------------------------------------

    async def objects(self, ctx: Context) -> Reply:
        bucket, prefix, search = ctx.arg("bucket"), ctx.arg("prefix"), ctx.arg("search")
        token = ctx.arg("page") or None
        flat = bool(search)
        listing = await ctx.api(
            ctx.client.list_objects,
            bucket,
            prefix=search if flat else prefix,
            delimiter="" if flat else "/",
            continuation_token=token,
            max_keys=PAGE_SIZE,
        )
        crumbs = [{"name": bucket, "url": objects_url(bucket)}]
        parts = prefix.split("/")[:-1]
        for i, part in enumerate(parts):
            crumbs.append(
                {"name": part, "url": objects_url(bucket, "/".join(parts[: i + 1]) + "/")}
            )
        next_url = None
        if listing.is_truncated and listing.next_continuation_token:
            query = {"bucket": bucket, "prefix": prefix, "search": search}
            query["page"] = listing.next_continuation_token
            next_url = "/objects?" + urlencode(query)
        here = objects_url(bucket, prefix)
        if search:
            here = "/objects?" + urlencode({"bucket": bucket, "prefix": prefix, "search": search})
        return Page(
            "objects.html",
            {
                "bucket": bucket,
                "prefix": prefix,
                "search": search,
                "crumbs": crumbs,
                "folders": [
                    {"name": p[len(prefix) :], "url": objects_url(bucket, p)}
                    for p in listing.common_prefixes
                ],
                "objects": [
                    {
                        "info": o,
                        "name": o.key if flat else o.key[len(prefix) :],
                        "url": object_url(bucket, o.key),
                    }
                    for o in listing.objects
                ],
                "next_url": next_url,
                "here": here,
                "may_write": await self._may(ctx, auth.WRITE, bucket),
            },
        )

    async def object(self, ctx: Context) -> Reply:
        bucket, key = ctx.arg("bucket"), ctx.arg("key")
        version = ctx.arg("version") or None
        info = await ctx.api(ctx.client.head_object, bucket, key, version_id=version)
        page = await ctx.api(
            ctx.client.list_object_versions, bucket, prefix=key, max_keys=VERSIONS_SHOWN
        )
        versions = [v for v in page.versions if v.key == key]
        folder = key.rpartition("/")[0]
        query = {"bucket": bucket, "key": key, **({"version": version} if version else {})}
        return Page(
            "object.html",
            {
                "bucket": bucket,
                "key": key,
                "info": info,
                "versions": versions,
                "version": version,
                "download_url": "/download?" + urlencode(query),
                "folder_url": objects_url(bucket, folder + "/" if folder else ""),
                "here": "/object?" + urlencode(query),
                "share_expiries": list(SHARE_EXPIRIES),
                "may_write": await self._may(ctx, auth.WRITE, bucket),
            },
        )

    async def download(self, ctx: Context) -> Reply:
        bucket, key = ctx.arg("bucket"), ctx.arg("key")
        version = ctx.arg("version")
        filename = key.rpartition("/")[2] or "download"
        query = [
            ("response-content-disposition", f"attachment; filename*=UTF-8''{quote(filename)}")
        ]
        if version:
            query.append(("versionId", version))
        return Redirect(
            self._presign(
                ctx,
                "GET",
                self._s3_host(ctx),
                presign.object_path(bucket, key),
                expires=DOWNLOAD_EXPIRES,
                query=query,
            )
        )

    async def share(self, ctx: Context) -> Reply:
        bucket, key = ctx.arg("bucket"), ctx.arg("key")
        choice = ctx.arg("expires")
        if choice not in SHARE_EXPIRIES:
            raise InvalidArgument(f"expires must be one of {list(SHARE_EXPIRIES)}, got {choice!r}")
        await ctx.api(ctx.client.head_object, bucket, key)  # the key may read it, and it exists
        url = self._presign(
            ctx,
            "GET",
            self._s3_host(ctx),
            presign.object_path(bucket, key),
            expires=SHARE_EXPIRIES[choice],
        )
        ctx.session.say("ok", f"Share link for {key}, valid {choice}:")
        ctx.session.say("share", url)
        return Redirect(object_url(bucket, key))

    async def delete_object(self, ctx: Context) -> Reply:
        bucket, key = ctx.arg("bucket"), ctx.arg("key")
        version = ctx.arg("version") or None
        await ctx.api(ctx.client.delete_object, bucket, key, version_id=version)
        what = f"version {version} of {key}" if version else key
        ctx.session.say("ok", f"Deleted {what}.")
        folder = key.rpartition("/")[0]
        return Redirect(objects_url(bucket, folder + "/" if folder else ""))

    async def rename_folder(self, ctx: Context) -> Reply:
        bucket, src, dst = ctx.arg("bucket"), ctx.arg("prefix"), ctx.arg("to").strip()
        if dst and not dst.endswith("/"):
            dst += "/"
        moved = await ctx.api(ctx.client.rename_prefix, bucket, src, dst)
        ctx.session.say("ok", f"Moved {moved} objects from {src} to {dst}.")
        return Redirect(objects_url(bucket, dst))

    # -- uploads (JSON, from console.js) ---------------------------------------------------

    async def start_upload(self, ctx: Context) -> Reply:
        bucket, key = ctx.arg("bucket"), ctx.arg("key")
        size = ctx.form.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"size must be a whole number of bytes, got {size!r}")
        path = presign.object_path(bucket, key)
        host = ctx.req.host
        if size <= self.multipart_threshold:
            url = self._presign(ctx, "PUT", host, path, expires=UPLOAD_EXPIRES)
            return Json({"mode": "single", "url": url})
        content_type = ctx.arg("content_type") or None
        upload_id = await ctx.api(
            ctx.client.create_multipart_upload, bucket, key, content_type=content_type
        )
        urls = [
            self._presign(
                ctx,
                "PUT",
                host,
                path,
                expires=UPLOAD_EXPIRES,
                query=[("partNumber", str(n)), ("uploadId", upload_id)],
            )
            for n in range(1, math.ceil(size / self.part_size) + 1)
        ]
        return Json(
            {"mode": "multipart", "upload_id": upload_id, "part_size": self.part_size, "urls": urls}
        )

    async def complete_upload(self, ctx: Context) -> Reply:
        bucket, key, upload_id = ctx.arg("bucket"), ctx.arg("key"), ctx.arg("upload_id")
        raw = ctx.form.get("parts")
        if not isinstance(raw, list):
            raise InvalidArgument("parts must be a list of [part number, ETag] pairs")
        parts = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
                raise InvalidArgument(f"a part must be [part number, ETag], got {item!r}")
            parts.append((item[0], str(item[1]).strip('"')))
        info = await ctx.api(ctx.client.complete_multipart_upload, bucket, key, upload_id, parts)
        return Json({"etag": info.etag, "size": info.size})

    async def abort_upload(self, ctx: Context) -> Reply:
        bucket, key, upload_id = ctx.arg("bucket"), ctx.arg("key"), ctx.arg("upload_id")
        await ctx.api(ctx.client.abort_multipart_upload, bucket, key, upload_id)
        return Json({"aborted": upload_id})

    # -- cluster -----------------------------------------------------------------------------

    async def cluster(self, ctx: Context) -> Reply:
        return Page("cluster.html", await self._cluster_values(ctx))

    async def cluster_live(self, ctx: Context) -> Reply:
        return Page("cluster_live.html", await self._cluster_values(ctx), partial=True)

    async def _cluster_values(self, ctx: Context) -> dict[str, Any]:
        status = await ctx.api(ctx.client.cluster_status)
        zones: dict[str, list[Any]] = {}
        for node in sorted(status.nodes, key=lambda n: (n.zone, n.id)):
            zones.setdefault(node.zone, []).append(node)
        return {"status": status, "zones": zones, "now": self.clock()}

    # -- keys (admin) ------------------------------------------------------------------------

    async def keys(self, ctx: Context) -> Reply:
        keys = await ctx.api(ctx.client.list_keys)
        buckets = await ctx.api(ctx.client.list_buckets)
        return Page("keys.html", {"keys": keys, "buckets": [b.name for b in buckets]})

    async def create_key(self, ctx: Context) -> Reply:
        name = ctx.arg("name").strip()
        key = await ctx.api(
            ctx.client.create_key,
            name,
            admin=ctx.arg("admin") == "on",
            create_buckets=ctx.arg("create_buckets") == "on",
        )
        ctx.session.say("secret", f"{key.access_key_id}\n{key.secret_access_key}")
        return Redirect("/keys")

    async def delete_key(self, ctx: Context) -> Reply:
        key_id = ctx.arg("access_key_id")
        await ctx.api(ctx.client.delete_key, key_id)
        self.authorizer.forget_key(key_id)
        ctx.session.say("ok", f"Key {key_id} deleted.")
        return Redirect("/keys")

    async def grant(self, ctx: Context) -> Reply:
        key_id, bucket = ctx.arg("access_key_id"), ctx.arg("bucket")
        powers = {p: ctx.arg(p) == "on" for p in ("read", "write", "owner")}
        await ctx.api(ctx.client.grant, bucket, key_id, **powers)
        self.authorizer.forget_key(key_id)
        held = ", ".join(p for p, on in powers.items() if on) or "nothing"
        ctx.session.say("ok", f"Key {key_id} now holds {held} on {bucket}.")
        return Redirect("/keys")
