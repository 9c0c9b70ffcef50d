"""The S3 operations: decode the HTTP request, call the core (:class:`ObjectService`,
:class:`MultipartService`), encode S3's answer. No storage logic lives here.

Each handler runs only after :mod:`gateway.s3.app` has authenticated the request and
authorized its action, and reads the body only then (so ``Expect: 100-continue`` is answered
only for a request that may proceed).
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from gateway import auth
from gateway.intake import Intake, footprint
from gateway.model import DeleteResult, ObjectInfo, ObjectListing
from gateway.multipart import CopySource, MultipartService, PartTarget
from gateway.objects import ByteRange, ObjectService, PutRequest, Reading, part_span
from gateway.s3 import body, sigv4, stored
from gateway.s3 import multipart as mp
from gateway.s3 import xml as x
from gateway.s3.errors import BucketAlreadyOwnedByYou, InvalidRequest, MissingContentLength
from gateway.s3.http import Request, Responder
from ringstore import etags
from ringstore.errors import (
    BucketAlreadyExists,
    InvalidArgument,
    NoSuchKey,
    NotModified,
    PreconditionFailed,
    RingstoreError,
)

COPY_SOURCE_IF = "x-amz-copy-source-if-"
MAX_LIST_KEYS = 1000
MAX_BUCKETS = 10_000  # what ListBuckets' max-buckets may ask for at most
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


@dataclass
class Call:
    """One authorized request."""

    req: Request
    resp: Responder
    identity: auth.Identity
    verified: sigv4.Verified

    @property
    def bucket(self) -> str:
        return self.req.bucket

    @property
    def key(self) -> str:
        return self.req.key


class Handlers:
    def __init__(
        self,
        objects: ObjectService,
        authorizer: auth.Authorizer,
        region: str = "us-east-1",
        intake: Intake | None = None,
    ) -> None:
        self.objects = objects
        self.intake = intake if intake is not None else Intake()
        self.multipart = MultipartService(objects)
        self.auth = authorizer
        self.region = region

    # -- service and buckets ---------------------------------------------------------------

    async def ListBuckets(self, c: Call) -> None:
        p = c.req.params
        prefix, after = p.get("prefix", ""), p.get("continuation-token", "")
        limit = _max_buckets(p.get("max-buckets"))
        identity = c.identity
        if identity.access_key_id is not None and not identity.admin:
            # The grants afresh: a bucket created a moment ago (through any gateway) is listed.
            self.auth.forget_key(identity.access_key_id)
            identity, _ = await self.auth.key(identity.access_key_id)
        buckets = [
            b
            for b in await self.objects.list_buckets()
            if self.auth.visible(identity, b.name) and b.name.startswith(prefix) and b.name > after
        ]
        buckets.sort(key=lambda b: b.name)
        page = buckets[:limit] if limit else buckets
        more = len(page) < len(buckets)
        owner = _owner(c.identity)
        entries = x.join(
            x.element(
                "Bucket", x.leaf("Name", b.name), x.leaf("CreationDate", x.timestamp(b.created_ns))
            )
            for b in page
        )
        doc = x.document(
            "ListAllMyBucketsResult",
            owner,
            x.element("Buckets", entries),
            x.optional("ContinuationToken", page[-1].name if more else ""),
            x.optional("Prefix", prefix),
        )
        await c.resp.send(200, doc)

    async def CreateBucket(self, c: Call) -> None:
        x.location_constraint(await c.req.read(x.MAX_XML_BYTES))
        try:
            await self.objects.create_bucket(c.bucket, owner=c.identity.access_key_id or "")
        except BucketAlreadyExists:
            if not await self._owns(c):
                raise
            if self.region != "us-east-1":
                raise BucketAlreadyOwnedByYou(f"you already own the bucket {c.bucket!r}") from None
            # S3 in us-east-1: re-creating one's own bucket succeeds and changes nothing.
        await c.resp.send(200, headers={"Location": f"/{c.bucket}"})

    async def _owns(self, c: Call) -> bool:
        """Whether the caller holds the owner grant on ``c.bucket`` (looked up afresh: the
        grant of a bucket created a moment ago may be newer than the cached key)."""
        if c.identity.access_key_id is None:
            return False
        self.auth.forget_key(c.identity.access_key_id)
        identity, _ = await self.auth.key(c.identity.access_key_id)
        return auth.OWNER in identity.grants.get(c.bucket, frozenset())

    async def HeadBucket(self, c: Call) -> None:
        await self.objects.head_bucket(c.bucket)
        await c.resp.send(200, headers={"x-amz-bucket-region": self.region})

    async def DeleteBucket(self, c: Call) -> None:
        await self.objects.delete_bucket(c.bucket)
        await c.resp.send(204)

    async def GetBucketLocation(self, c: Call) -> None:
        await self.objects.head_bucket(c.bucket)
        region = "" if self.region == "us-east-1" else self.region
        await c.resp.send(200, x.document("LocationConstraint", x.join([region])))

    async def PutBucketVersioning(self, c: Call) -> None:
        status = x.versioning_status(await c.req.read(x.MAX_XML_BYTES))
        await self.objects.set_bucket_versioning(c.bucket, status)
        await c.resp.send(200)

    async def GetBucketVersioning(self, c: Call) -> None:
        status = await self.objects.get_bucket_versioning(c.bucket)
        shown = x.leaf("Status", status) if status in ("Enabled", "Suspended") else None
        await c.resp.send(200, x.document("VersioningConfiguration", shown))

    # -- listing ----------------------------------------------------------------------------

    async def _list(self, c: Call, start_after: str, token: str) -> tuple[ObjectListing, int]:
        max_keys = _max_keys(c.req.params.get("max-keys"))
        if max_keys == 0:
            return ObjectListing((), (), False, ""), 0
        page = await self.objects.list_objects(
            c.bucket,
            prefix=c.req.params.get("prefix", ""),
            delimiter=c.req.params.get("delimiter", ""),
            start_after=start_after,
            continuation_token=token,
            max_keys=max_keys,
        )
        return page, max_keys

    def _listing(self, c: Call, page: ObjectListing, max_keys: int) -> list[str | None]:
        p = c.req.params
        enc = p.get("encoding-type", "")
        owner = (
            _owner(c.identity) if p.get("fetch-owner") == "true" or "list-type" not in p else None
        )
        contents = [
            x.element(
                "Contents",
                x.leaf("Key", x.encode_key(o.key, enc)),
                x.leaf("LastModified", x.timestamp(o.last_modified_ns)),
                x.leaf("ETag", x.quoted_etag(o.etag)),
                x.leaf("Size", o.size),
                x.leaf("StorageClass", "STANDARD"),
                owner,
            )
            for o in page.objects
        ]
        prefixes = [
            x.element("CommonPrefixes", x.leaf("Prefix", x.encode_key(cp, enc)))
            for cp in page.common_prefixes
        ]
        v2 = "list-type" in p  # ListObjects (v1) answers its Prefix unencoded, as S3 does
        return [
            x.leaf("Name", c.bucket),
            x.leaf("Prefix", x.encode_key(p.get("prefix", ""), enc if v2 else "")),
            x.optional("Delimiter", x.encode_key(p.get("delimiter", ""), enc)),
            x.leaf("MaxKeys", max_keys if "max-keys" in p else MAX_LIST_KEYS),
            x.optional("EncodingType", enc),
            x.leaf("IsTruncated", page.is_truncated),
            *contents,
            *prefixes,
        ]

    async def ListObjects(self, c: Call) -> None:
        marker = c.req.params.get("marker", "")
        page, max_keys = await self._list(c, marker, "")
        last = max([o.key for o in page.objects] + list(page.common_prefixes), default="")
        enc = c.req.params.get("encoding-type", "")
        doc = x.document(
            "ListBucketResult",
            *self._listing(c, page, max_keys),
            x.leaf("Marker", x.encode_key(marker, enc)),
            x.optional("NextMarker", x.encode_key(last, enc) if page.is_truncated else ""),
        )
        await c.resp.send(200, doc)

    async def ListObjectsV2(self, c: Call) -> None:
        p = c.req.params
        token = p.get("continuation-token", "")
        page, max_keys = await self._list(c, p.get("start-after", ""), token)
        enc = p.get("encoding-type", "")
        doc = x.document(
            "ListBucketResult",
            *self._listing(c, page, max_keys),
            x.leaf("KeyCount", len(page.objects) + len(page.common_prefixes)),
            # Echoed when sent, even empty, as S3 does.
            x.leaf("ContinuationToken", token) if "continuation-token" in p else None,
            x.optional("NextContinuationToken", page.next_continuation_token),
            x.optional("StartAfter", x.encode_key(p.get("start-after", ""), enc)),
        )
        await c.resp.send(200, doc)

    async def ListObjectVersions(self, c: Call) -> None:
        p = c.req.params
        if p.get("delimiter"):
            raise InvalidArgument("ListObjectVersions with a delimiter is not supported yet")
        max_keys = _max_keys(p.get("max-keys"))
        page = await self.objects.list_object_versions(
            c.bucket,
            prefix=p.get("prefix", ""),
            key_marker=p.get("key-marker", ""),
            version_id_marker=p.get("version-id-marker", ""),
            max_keys=max(max_keys, 1),
        )
        enc = p.get("encoding-type", "")
        owner = _owner(c.identity)
        entries = []
        for v in page.versions:
            common = [
                x.leaf("Key", x.encode_key(v.key, enc)),
                x.leaf("VersionId", v.version_id or "null"),
                x.leaf("IsLatest", v.is_latest),
                x.leaf("LastModified", x.timestamp(v.last_modified_ns)),
            ]
            if v.is_delete_marker:
                entries.append(x.element("DeleteMarker", *common, owner))
            else:
                entries.append(
                    x.element(
                        "Version",
                        *common,
                        x.leaf("ETag", x.quoted_etag(v.etag)),
                        x.leaf("Size", v.size),
                        x.leaf("StorageClass", "STANDARD"),
                        owner,
                    )
                )
        doc = x.document(
            "ListVersionsResult",
            x.leaf("Name", c.bucket),
            # Under encoding-type=url S3 encodes these too (and botocore decodes them).
            x.leaf("Prefix", x.encode_key(p.get("prefix", ""), enc)),
            x.leaf("KeyMarker", x.encode_key(p.get("key-marker", ""), enc)),
            x.leaf("VersionIdMarker", p.get("version-id-marker", "")),
            x.leaf("MaxKeys", max_keys),
            x.optional("EncodingType", enc),
            x.leaf("IsTruncated", page.is_truncated),
            x.optional("NextKeyMarker", x.encode_key(page.next_key_marker, enc)),
            x.optional("NextVersionIdMarker", page.next_version_id_marker),
            *entries,
        )
        await c.resp.send(200, doc)

    # -- objects ----------------------------------------------------------------------------

    def _body(
        self, c: Call, found: body.BodyChecksum | None = None
    ) -> AsyncIterator[bytes | memoryview]:
        h = c.req.headers
        if "content-length" not in h and "chunked" not in h.get("transfer-encoding", ""):
            raise MissingContentLength("a body needs Content-Length or chunked transfer encoding")
        return body.decoded(c.req.receive, h, c.verified, found)

    @contextlib.asynccontextmanager
    async def _admitted(
        self, c: Call, operation: str, found: body.BodyChecksum | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The body of a put or part, under the gateway's intake bounds (the byte budget the
        gRPC door's bodies share, and the idle timeout); ``found`` receives the checksum the
        body was verified against."""
        stream = self.intake.stream(self._body(c, found), operation)
        most = footprint(self.objects.view.chunk_size, self.objects.max_concurrent_chunks)
        async with self.intake.admit(stream, _announced_size(c), most):
            yield stream

    async def PutObject(self, c: Call) -> None:
        h = c.req.headers
        verified = body.BodyChecksum()
        put = PutRequest(
            bucket=c.bucket,
            key=c.key,
            content_type=h.get("content-type", ""),
            metadata=stored.request_metadata(h),
            if_match=h.get("if-match", ""),
            if_none_match=h.get("if-none-match", ""),
            headers=stored.request_headers(h),
            checksum=verified.get,
            md5=lambda: verified.md5,
            size=_announced_size(c),
        )
        try:
            async with self._admitted(c, "PutObject", verified) as stream:
                info = await self.objects.put_object(put, stream)
        except PreconditionFailed:
            if put.if_match:
                await self._require_key(c)  # S3: If-Match on a missing key is 404 NoSuchKey
            raise
        headers = {
            "ETag": x.quoted_etag(info.etag),
            **_written_version(info),
            **stored.checksum_headers(info),
        }
        await c.resp.send(200, headers=headers)

    async def _require_key(self, c: Call) -> None:
        """Raise :class:`NoSuchKey` when ``c.key`` has no current version."""
        await self.objects.head_object(c.bucket, c.key)

    async def _open(self, c: Call) -> Reading:
        h = c.req.headers
        version_id = c.req.params.get("versionId", "")
        part_number = mp.part_number(c.req.params, h)
        try:
            reading = await self.objects.get_object(
                c.bucket,
                c.key,
                version_id=version_id,
                byte_range=_range(h.get("range", "")),
                if_match=h.get("if-match", ""),
                if_none_match=h.get("if-none-match", ""),
                part_number=part_number,
            )
        except NotModified:
            info = await self.objects.head_object(c.bucket, c.key, version_id)
            c.resp.error_headers.update(_validators(info))
            raise
        except NoSuchKey:
            await self._mark_deleted(c)
            raise
        try:
            _check_dates(h, reading.info)
        except RingstoreError as err:
            await reading.body.aclose()  # type: ignore[attr-defined]
            if isinstance(err, NotModified):
                c.resp.error_headers.update(_validators(reading.info))
            raise
        return reading

    async def _mark_deleted(self, c: Call) -> None:
        """On a 404 for a key, say as S3 does whether its current version is a delete marker
        (``x-amz-delete-marker: true`` with the marker's version id) or not (``false``)."""
        if c.req.params.get("versionId"):
            return
        with contextlib.suppress(RingstoreError):  # the 404 stands even if this cannot tell
            page = await self.objects.list_object_versions(c.bucket, prefix=c.key, max_keys=1)
            latest = page.versions[0] if page.versions else None
            if latest is not None and latest.key == c.key and latest.is_delete_marker:
                c.resp.error_headers["x-amz-delete-marker"] = "true"
                if latest.version_id:
                    c.resp.error_headers["x-amz-version-id"] = latest.version_id
            else:
                c.resp.error_headers["x-amz-delete-marker"] = "false"

    async def GetObject(self, c: Call) -> None:
        reading = await self._open(c)
        info = reading.info
        ranged = "range" in c.req.headers and _range(c.req.headers["range"]) is not None
        part_number = mp.part_number(c.req.params, c.req.headers)
        requested = stored.checksum_requested(c.req.headers)
        headers = stored.object_headers(info, checksum=requested and not ranged and not part_number)
        status = 200
        if part_number:
            status, part_headers = mp.part_read_headers(
                info, part_number, reading.offset, reading.length, requested
            )
            headers.update(part_headers)
        elif ranged:
            status = 206
            last = reading.offset + reading.length - 1
            headers["Content-Range"] = f"bytes {reading.offset}-{last}/{info.size}"
        for param, header in RESPONSE_OVERRIDES.items():
            if param in c.req.params:
                headers[header] = c.req.params[param]
        await c.resp.stream(status, reading.length, reading.body, headers)

    async def HeadObject(self, c: Call) -> None:
        try:
            info = await self.objects.head_object(
                c.bucket, c.key, c.req.params.get("versionId", "")
            )
        except NoSuchKey:
            await self._mark_deleted(c)
            raise
        try:
            _check_conditions(c.req.headers, info)
        except NotModified:
            c.resp.error_headers.update(_validators(info))
            raise
        part_number = mp.part_number(c.req.params, c.req.headers)
        requested = stored.checksum_requested(c.req.headers)
        headers = stored.object_headers(info, checksum=requested and not part_number)
        status, length = 200, info.size
        if part_number:
            offset, length = part_span(info, part_number)
            status, part_headers = mp.part_read_headers(
                info, part_number, offset, length, requested
            )
            headers.update(part_headers)
        await c.resp.stream(status, length, _nothing(), headers)

    async def GetObjectAttributes(self, c: Call) -> None:
        try:
            info = await self.objects.head_object(
                c.bucket, c.key, c.req.params.get("versionId", "")
            )
        except NoSuchKey:
            await self._mark_deleted(c)
            raise
        headers = {
            "Last-Modified": x.http_date(info.last_modified_ns),
            **stored.version_header(info),
        }
        await c.resp.send(200, mp.object_attributes(info, c.req.headers), headers)

    async def DeleteObject(self, c: Call) -> None:
        resp = await self.objects.delete_object(c.bucket, c.key, c.req.params.get("versionId", ""))
        headers = {}
        if resp.has_version_id:
            headers["x-amz-version-id"] = resp.version_id or "null"
        if resp.delete_marker:
            headers["x-amz-delete-marker"] = "true"
        await c.resp.send(204, headers=headers)

    async def DeleteObjects(self, c: Call) -> None:
        if "content-md5" not in c.req.headers and not body.checksum_algorithm(c.req.headers):
            raise InvalidRequest("DeleteObjects needs Content-MD5 or an x-amz-checksum-* header")
        data = b"".join([piece async for piece in self._body(c)])
        items, quiet = x.delete_request(data)
        results = []
        for key, version_id in items:
            try:
                resp = await self.objects.delete_object(c.bucket, key, version_id)
            except NoSuchKey:
                resp = DeleteResult(version_id="", has_version_id=False, delete_marker=False)
            except RingstoreError as err:
                results.append(
                    x.element(
                        "Error",
                        x.leaf("Key", key),
                        x.optional("VersionId", version_id),
                        x.leaf("Code", err.code),
                        x.leaf("Message", err.message),
                    )
                )
                continue
            if not quiet:
                results.append(
                    x.element(
                        "Deleted",
                        x.leaf("Key", key),
                        x.optional("VersionId", version_id),
                        x.leaf("DeleteMarker", True) if resp.delete_marker else None,
                        x.optional(
                            "DeleteMarkerVersionId",
                            resp.version_id if resp.delete_marker else "",
                        ),
                    )
                )
        await c.resp.send(200, x.document("DeleteResult", *results))

    async def CopyObject(self, c: Call) -> None:
        h = c.req.headers
        src_bucket, src_key, src_version = _copy_source(h["x-amz-copy-source"])
        await self.auth.check(c.identity, auth.READ, src_bucket)
        directive = h.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument(
                f"x-amz-metadata-directive must be COPY or REPLACE, got {directive[:20]!r}"
            )
        replace = directive == "REPLACE"
        if not replace and not src_version and (src_bucket, src_key) == (c.bucket, c.key):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata (use x-amz-metadata-directive: REPLACE)"
            )
        src_etag = await self._copy_source_conditions(h, src_bucket, src_key, src_version)
        info = await self.objects.copy_object(
            src_bucket,
            src_key,
            c.bucket,
            c.key,
            src_version_id=src_version,
            replace_metadata=replace,
            metadata=stored.request_metadata(h) if replace else {},
            content_type=h.get("content-type", "") if replace else "",
            src_if_match=src_etag,
            headers=stored.request_headers(h) if replace else {},
        )
        headers = _written_version(info)
        if src_version:
            headers["x-amz-copy-source-version-id"] = src_version
        doc = x.document(
            "CopyObjectResult",
            x.leaf("LastModified", x.timestamp(info.last_modified_ns)),
            x.leaf("ETag", x.quoted_etag(info.etag)),
            *stored.checksum_elements(info),
        )
        await c.resp.send(200, doc, headers)

    async def _copy_source_conditions(
        self, h: dict[str, str], bucket: str, key: str, version_id: str
    ) -> str:
        """Check the ``x-amz-copy-source-if-*`` headers against the source; returns the ETag
        they were checked against ("" when there are none), which the copy then requires, so
        the version checked is the version copied. Every failure is 412, as S3 answers."""
        if not any(name.startswith(COPY_SOURCE_IF) for name in h):
            return ""
        info = await self.objects.head_object(bucket, key, version_id)
        if_match = h.get(COPY_SOURCE_IF + "match", "")
        if_none = h.get(COPY_SOURCE_IF + "none-match", "")
        source = f"the copy source {bucket}/{key}"
        if if_match and not etags.if_match_holds(if_match, info.etag):
            raise PreconditionFailed(f"{source}: x-amz-copy-source-if-match does not match")
        if if_none and not etags.if_none_match_holds(if_none, info.etag):
            raise PreconditionFailed(f"{source}: x-amz-copy-source-if-none-match matches")
        modified = info.last_modified_ns // 1_000_000_000
        since = _date(h.get(COPY_SOURCE_IF + "unmodified-since", ""))
        if not if_match and since is not None and modified > since:
            raise PreconditionFailed(f"{source} was modified after the unmodified-since date")
        since = _date(h.get(COPY_SOURCE_IF + "modified-since", ""))
        if not if_none and since is not None and modified <= since:
            raise PreconditionFailed(f"{source} was not modified since the modified-since date")
        return info.etag

    # -- multipart --------------------------------------------------------------------------

    async def CreateMultipartUpload(self, c: Call) -> None:
        h = c.req.headers
        algorithm, kind = mp.checksum_request(h)
        upload_id = await self.multipart.create(
            c.bucket,
            c.key,
            h.get("content-type", ""),
            stored.request_metadata(h),
            headers=stored.request_headers(h),
            checksum_algorithm=algorithm,
            checksum_type=kind,
        )
        headers = {}
        if algorithm:  # the type as the metanode defaulted it
            upload = await self.multipart.head(c.bucket, c.key, upload_id)
            headers[mp.CHECKSUM_ALGORITHM] = upload.checksum_algorithm
            headers[mp.CHECKSUM_TYPE] = upload.checksum_type
        doc = x.document(
            "InitiateMultipartUploadResult",
            x.leaf("Bucket", c.bucket),
            x.leaf("Key", c.key),
            x.leaf("UploadId", upload_id),
        )
        await c.resp.send(200, doc, headers)

    def _part_header(self, c: Call) -> PartTarget:
        number = c.req.params["partNumber"]
        if not number.isdigit():
            raise InvalidArgument(f"partNumber {number[:20]!r} is not a number")
        return PartTarget(
            bucket=c.bucket,
            key=c.key,
            upload_id=c.req.params["uploadId"],
            part_number=min(int(number), 2**32 - 1),
        )

    async def UploadPart(self, c: Call) -> None:
        header = self._part_header(c)
        sent = body.checksum_algorithm(c.req.headers)
        verified = body.BodyChecksum()  # the part's MD5, hashed once, with the door's digests
        async with self._admitted(c, "UploadPart", verified) as stream:
            part = await self.multipart.store_part(
                header,
                stream,
                sent_algorithm=sent,
                md5=lambda: verified.md5,
                size=_announced_size(c),
            )
        headers = {"ETag": x.quoted_etag(part.etag)}
        if part.checksum:
            headers.update(mp.checksum_headers(part.checksum_algorithm, part.checksum, ""))
            headers.pop(mp.CHECKSUM_TYPE)
        elif sent and body.CHECKSUM_HEADER + sent in c.req.headers:
            name = body.CHECKSUM_HEADER + sent
            headers[name] = c.req.headers[name]
        await c.resp.send(200, headers=headers)

    async def UploadPartCopy(self, c: Call) -> None:
        h = c.req.headers
        src_bucket, src_key, src_version = _copy_source(h["x-amz-copy-source"])
        await self.auth.check(c.identity, auth.READ, src_bucket)
        header = self._part_header(c)
        source_range = h.get("x-amz-copy-source-range")
        byte_range = mp.copy_source_range(source_range) if source_range is not None else None
        src_etag = await self._copy_source_conditions(h, src_bucket, src_key, src_version)
        part, source = await self.multipart.copy_part(
            header, CopySource(src_bucket, src_key, src_version, byte_range, src_etag)
        )
        headers = {}
        if src_version:
            headers["x-amz-copy-source-version-id"] = source.version_id or "null"
        doc = x.document(
            "CopyPartResult",
            x.leaf("LastModified", x.timestamp(source.last_modified_ns)),
            x.leaf("ETag", x.quoted_etag(part.etag)),
            *mp.checksum_elements(part.checksum_algorithm, part.checksum),
        )
        await c.resp.send(200, doc, headers)

    async def CompleteMultipartUpload(self, c: Call) -> None:
        h = c.req.headers
        parts = mp.completed_parts(await c.req.read(x.MAX_XML_BYTES))
        try:
            info = await self.multipart.complete(
                c.bucket,
                c.key,
                c.req.params["uploadId"],
                parts,
                if_match=h.get("if-match", ""),
                if_none_match=h.get("if-none-match", ""),
                asserted_checksum=mp.asserted_checksum(h),
            )
        except PreconditionFailed:
            if h.get("if-match"):
                await self._require_key(c)  # S3: If-Match on a missing key is 404 NoSuchKey
            raise
        doc = x.document(
            "CompleteMultipartUploadResult",
            x.leaf("Location", f"/{c.bucket}/{c.key}"),
            x.leaf("Bucket", c.bucket),
            x.leaf("Key", c.key),
            x.leaf("ETag", x.quoted_etag(info.etag)),
            *stored.checksum_elements(info),
        )
        await c.resp.send(200, doc, _written_version(info))

    async def AbortMultipartUpload(self, c: Call) -> None:
        await self.multipart.abort(c.bucket, c.key, c.req.params["uploadId"])
        await c.resp.send(204)

    async def ListParts(self, c: Call) -> None:
        p = c.req.params
        upload = await self.multipart.head(c.bucket, c.key, p["uploadId"])
        parts = await self.multipart.list_parts(c.bucket, c.key, p["uploadId"])
        marker = int(p["part-number-marker"]) if p.get("part-number-marker", "").isdigit() else 0
        max_parts = _max_keys(p.get("max-parts"))
        after = [part for part in parts if part.part_number > marker]
        page, truncated = after[:max_parts], len(after) > max_parts
        doc = x.document(
            "ListPartsResult",
            x.leaf("Bucket", c.bucket),
            x.leaf("Key", c.key),
            x.leaf("UploadId", p["uploadId"]),
            x.leaf("PartNumberMarker", marker),
            x.leaf("NextPartNumberMarker", page[-1].part_number if page else marker),
            x.leaf("MaxParts", max_parts),
            x.leaf("IsTruncated", truncated),
            x.leaf("StorageClass", "STANDARD"),
            x.optional("ChecksumAlgorithm", upload.checksum_algorithm),
            x.optional("ChecksumType", upload.checksum_type),
            *[mp.part_element(part, upload.checksum_algorithm) for part in page],
        )
        await c.resp.send(200, doc)

    async def ListMultipartUploads(self, c: Call) -> None:
        p = c.req.params
        resp = await self.multipart.list_uploads(
            c.bucket,
            prefix=p.get("prefix", ""),
            max_uploads=max(_max_keys(p.get("max-uploads")), 1),
            key_marker=p.get("key-marker", ""),
            upload_id_marker=p.get("upload-id-marker", ""),
            delimiter=p.get("delimiter", ""),
        )
        enc = p.get("encoding-type", "")
        uploads = [
            x.element(
                "Upload",
                x.leaf("Key", x.encode_key(u.key, enc)),
                x.leaf("UploadId", u.upload_id),
                x.leaf("Initiated", x.timestamp(u.initiated_ns)),
                x.leaf("StorageClass", "STANDARD"),
            )
            for u in resp.uploads
        ]
        prefixes = [
            x.element("CommonPrefixes", x.leaf("Prefix", x.encode_key(cp, enc)))
            for cp in resp.common_prefixes
        ]
        doc = x.document(
            "ListMultipartUploadsResult",
            x.leaf("Bucket", c.bucket),
            x.leaf("KeyMarker", p.get("key-marker", "")),
            x.leaf("UploadIdMarker", p.get("upload-id-marker", "")),
            x.optional("NextKeyMarker", resp.next_key_marker),
            x.optional("NextUploadIdMarker", resp.next_upload_id_marker),
            x.leaf("Prefix", p.get("prefix", "")),
            x.optional("Delimiter", p.get("delimiter", "")),
            x.leaf("MaxUploads", _max_keys(p.get("max-uploads"))),
            x.optional("EncodingType", enc),
            x.leaf("IsTruncated", resp.is_truncated),
            *uploads,
            *prefixes,
        )
        await c.resp.send(200, doc)


# -- decoding helpers ---------------------------------------------------------------------------


def _announced_size(c: Call) -> int:
    """The object bytes the request announces (-1: unknown): the decoded length of an
    aws-chunked body, else Content-Length."""
    h = c.req.headers
    if c.verified.payload_hash in sigv4.STREAMING_MODES:
        value = h.get("x-amz-decoded-content-length", "")
    else:
        value = "" if "chunked" in h.get("transfer-encoding", "") else h.get("content-length", "")
    return int(value) if value.isdigit() else -1


def _owner(identity: auth.Identity) -> str:
    who = identity.access_key_id or "anonymous"
    return x.element("Owner", x.leaf("ID", who), x.leaf("DisplayName", who))


def _max_buckets(value: str | None) -> int:
    """ListBuckets' max-buckets, 1..10000 (0: no limit, when not given)."""
    if value is None or value == "":
        return 0
    if not value.isdigit() or not 1 <= int(value) <= MAX_BUCKETS:
        raise InvalidArgument(f"max-buckets {value[:20]!r} must be a number in 1..{MAX_BUCKETS}")
    return int(value)


def _max_keys(value: str | None) -> int:
    if value is None or value == "":
        return MAX_LIST_KEYS
    if not value.isdigit():
        raise InvalidArgument(f"max-keys {value[:20]!r} is not a whole number")
    return min(int(value), MAX_LIST_KEYS)


def _written_version(info: ObjectInfo) -> dict[str, str]:
    """The version id a write answers: only a real one. A write to a bucket that is not
    versioning (never was, or suspended: the "null" version) answers none, as S3 does."""
    real = info.version_id not in ("", "null")
    return {"x-amz-version-id": info.version_id} if real else {}


def _validators(info: ObjectInfo) -> dict[str, str]:
    """What a 304 carries (RFC 9110 section 15.4.5)."""
    return {
        "ETag": x.quoted_etag(info.etag),
        "Last-Modified": x.http_date(info.last_modified_ns),
        **stored.version_header(info),
    }


def _range(header: str) -> ByteRange | None:
    """One byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``); anything else, including
    several ranges, is ignored as HTTP allows (the whole object is served)."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    if not first:
        return ByteRange(int(last), suffix=True) if last.isdigit() else None
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    return ByteRange(int(first), int(last) if last else None)


def _date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _check_dates(headers: dict[str, str], info: ObjectInfo) -> None:
    """If-Unmodified-Since (unless If-Match decided) and If-Modified-Since (unless If-None-Match
    decided), at one-second resolution as Last-Modified carries."""
    modified = info.last_modified_ns // 1_000_000_000
    since = _date(headers.get("if-unmodified-since", ""))
    if "if-match" not in headers and since is not None and modified > since:
        raise PreconditionFailed(f"{info.key!r} was modified after If-Unmodified-Since")
    since = _date(headers.get("if-modified-since", ""))
    if "if-none-match" not in headers and since is not None and modified <= since:
        raise NotModified(f"{info.key!r} was not modified since If-Modified-Since")


def _check_conditions(headers: dict[str, str], info: ObjectInfo) -> None:
    if_match = headers.get("if-match", "")
    if if_match and not etags.if_match_holds(if_match, info.etag):
        raise PreconditionFailed(f"{info.key!r}: If-Match does not match the ETag")
    if_none = headers.get("if-none-match", "")
    if if_none and not etags.if_none_match_holds(if_none, info.etag):
        raise NotModified(f"{info.key!r}: the ETag still matches If-None-Match")
    _check_dates(headers, info)


def _copy_source(value: str) -> tuple[str, str, str]:
    source, _, query = value.partition("?")
    version = ""
    if query.startswith("versionId="):
        version = unquote(query.removeprefix("versionId="))
    bucket, _, key = unquote(source).lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(f"x-amz-copy-source {value[:200]!r} must be <bucket>/<key>")
    return bucket, key, version


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""
