"""The gateway's object logic, independent of the transport that carries it.

A put streams the body in, cuts it into chunks of the cluster's chunk size, writes each chunk
to its replicas (at most ``max_concurrent_chunks`` in flight, so memory is bounded by chunk size
times that, never by the object's size), and then commits the object's record to the metanode:
that commit is the linearization point, and only after it is the put acknowledged. A put that
fails hands the chunks it wrote to the metanode, which deletes them only if no commit landed
(a commit whose reply was lost did land: the key then reads as the new version, whole); the
metanode's orphan sweep catches what a dead gateway left.

A get fetches the record, checks conditions and the range, and streams the chunks that overlap
the range, one after another, each from the first replica that serves it.

The core speaks no transport: its calls take plain Python values and return
:mod:`gateway.model`'s dataclasses, and fail with :mod:`ringstore.errors`' hierarchy. Each door
(gateway/servicer.py for gRPC, gateway/s3/ for S3) maps those to its wire; the metanode is
reached through :class:`gateway.meta_client.MetaClient`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from gateway import ingest, replication
from gateway.cluster_view import ClusterView
from gateway.meta_client import ChunkRef, MetaClient, ObjectRecord
from gateway.model import (
    BucketInfo,
    Checksum,
    DeleteResult,
    ObjectInfo,
    ObjectListing,
    VersionListing,
)
from ringstore import etags, validation
from ringstore.cors import CorsRule
from ringstore.errors import (
    InvalidArgument,
    InvalidPart,
    NoSuchBucket,
    NotModified,
    PreconditionFailed,
    RingstoreError,
)
from ringstore.ring import placement_hash
from ringstore.validation import shown

log = logging.getLogger(__name__)

RENAME_BATCH = 500  # objects the metanode moves per RenamePrefix call
BUCKET_TTL = 5.0  # seconds a bucket seen to exist saves puts the metanode round trip
DEFAULT_MAX_KEYS = 1000  # entries per listing page when the caller names none (S3's default)


@dataclass(frozen=True)
class PutRequest:
    """What a put asks for, whatever transport brought it."""

    bucket: str
    key: str
    content_type: str = ""
    metadata: dict[str, str] | None = None
    if_match: str = ""
    if_none_match: str = ""
    headers: dict[str, str] | None = None  # stored HTTP headers (validation.STORED_HEADERS)
    # The (algorithm, base64 value) of a checksum the door verified over the body, or None:
    # called once the body has been read whole, so a checksum sent in a trailer is known.
    checksum: Callable[[], tuple[str, str] | None] | None = None
    # The body's MD5 (hex) when the door hashes it anyway while verifying, called once the body
    # has been read whole; None: the core hashes it (gateway.ingest.store_body).
    md5: Callable[[], str] | None = None
    # The bytes the body announced (-1: unknown); the door makes sure it carries exactly these.
    # Known, it lets each chunk go to its replicas while it arrives (gateway.ingest).
    size: int = -1


@dataclass(frozen=True)
class ByteRange:
    """An HTTP-style range: first..last inclusive, ``last=None`` to the end, or the last
    ``first`` bytes when ``suffix``."""

    first: int
    last: int | None = None
    suffix: bool = False


@dataclass(frozen=True)
class Reading:
    """An object opened for reading: its info, the span served, and the body."""

    info: ObjectInfo
    offset: int
    length: int
    body: AsyncIterator[bytes]


class ObjectService:
    """Buckets and objects over the metanode and the datanodes."""

    def __init__(
        self,
        meta: MetaClient,
        view: ClusterView,
        *,
        rpc_timeout: float,
        max_concurrent_chunks: int = 2,
    ) -> None:
        self.meta = meta
        self.view = view
        self.rpc_timeout = rpc_timeout  # seconds, for each datanode call
        self.max_concurrent_chunks = max_concurrent_chunks
        self._buckets_seen: dict[str, float] = {}  # bucket -> monotonic time it was seen

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, name: str, *, owner: str = "") -> BucketInfo:
        """Create bucket ``name``, owned by the key ``owner`` (the metanode records the grant)."""
        validation.check_bucket_name(name)
        return await self.meta.create_bucket(name, owner)

    async def head_bucket(self, name: str) -> BucketInfo:
        validation.check_bucket_length(name)
        return await self.meta.head_bucket(name)

    async def list_buckets(self) -> list[BucketInfo]:
        return await self.meta.list_buckets()

    async def _check_bucket(self, name: str) -> None:
        """Fail fast, before any byte is stored, when the bucket does not exist. A bucket seen
        recently is taken on trust: the commit checks again inside its transaction, so a
        bucket deleted meanwhile (through any gateway) still fails the put, only later."""
        seen = self._buckets_seen.get(name)
        if seen is not None and time.monotonic() - seen < BUCKET_TTL:
            return
        await self.head_bucket(name)
        if len(self._buckets_seen) > 10_000:
            self._buckets_seen.clear()
        self._buckets_seen[name] = time.monotonic()

    async def delete_bucket(self, name: str) -> None:
        validation.check_bucket_length(name)
        self._buckets_seen.pop(name, None)
        await self.meta.delete_bucket(name)

    async def get_bucket_cors(self, bucket: str) -> tuple[CorsRule, ...]:
        """The bucket's CORS rules; NoSuchCORSConfiguration when it has none."""
        return await self.meta.get_bucket_cors(bucket)

    async def put_bucket_cors(self, bucket: str, rules: Sequence[CorsRule]) -> None:
        """Store the bucket's CORS rules; none deletes them."""
        await self.meta.put_bucket_cors(bucket, rules)

    # -- put --------------------------------------------------------------------------------

    async def put_object(
        self, req: PutRequest, body: AsyncIterator[bytes | memoryview]
    ) -> ObjectInfo:
        """Store the body and commit the object; see the module docstring for the guarantees."""
        validation.check_key(req.key)
        validation.check_content_type(req.content_type)
        metadata = validation.check_metadata(req.metadata)
        headers = validation.check_headers(req.headers)
        etags.check("if_match", req.if_match)  # the commit matches it; refuse a bad one first
        etags.check("if_none_match", req.if_none_match)
        await self._check_bucket(req.bucket)  # reject before any byte is stored
        written: list[ChunkRef] = []
        try:
            size, etag = await ingest.store_body(
                self.view,
                body,
                lambda index: placement_hash(req.bucket, req.key, index),
                written,
                rpc_timeout=self.rpc_timeout,
                max_concurrent_chunks=self.max_concurrent_chunks,
                md5=req.md5,
                size=req.size,
            )
            checksum = None
            verified = req.checksum() if req.checksum is not None else None
            if verified is not None:
                algorithm, value = verified
                validation.check_checksum(algorithm, value)
                checksum = Checksum(algorithm=algorithm, value=value, type="FULL_OBJECT")
            return await self.meta.commit_object(
                req.bucket,
                req.key,
                size=size,
                etag=etag,
                chunks=written,
                content_type=req.content_type,
                metadata=metadata,
                headers=headers,
                if_match=req.if_match,
                if_none_match=req.if_none_match,
                checksum=checksum,
            )
        except BaseException as exc:
            if isinstance(exc, NoSuchBucket):
                self._buckets_seen.pop(req.bucket, None)
            self.meta.discard(written, rpc_timeout=self.rpc_timeout)
            raise

    # -- get, head, delete, list --------------------------------------------------------------

    async def _record(self, bucket: str, key: str, version_id: str) -> ObjectRecord:
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        return await self.meta.object_record(bucket, key, version_id)

    async def head_object(self, bucket: str, key: str, version_id: str = "") -> ObjectInfo:
        return (await self._record(bucket, key, version_id)).info

    async def get_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str = "",
        byte_range: ByteRange | None = None,
        if_match: str = "",
        if_none_match: str = "",
        part_number: int = 0,
    ) -> Reading:
        """Open an object: conditions and range are checked before any byte is sent.
        ``part_number`` (S3's partNumber) reads one part of it (:func:`part_span`)."""
        if part_number and byte_range is not None:
            raise InvalidArgument("a read takes a byte range or a part number, not both")
        etags.check("if_match", if_match)  # a malformed condition fails before any lookup
        etags.check("if_none_match", if_none_match)
        record = await self._record(bucket, key, version_id)
        info = record.info
        if not etags.if_match_holds(if_match, info.etag):
            raise PreconditionFailed(
                f"{bucket}/{shown(key)}: if_match {shown(if_match)} does not match the ETag "
                f"{info.etag!r}"
            )
        if not etags.if_none_match_holds(if_none_match, info.etag):
            raise NotModified(
                f"{bucket}/{shown(key)}: the ETag still matches {shown(if_none_match)}"
            )
        if part_number:
            offset, length = part_span(info, part_number)
        elif byte_range is None:
            offset, length = 0, info.size
        else:
            offset, length = validation.resolve_range(
                byte_range.first, byte_range.last, info.size, suffix=byte_range.suffix
            )
        body = self._stream(list(record.chunks), offset, length)
        return Reading(info=info, offset=offset, length=length, body=body)

    async def _stream(
        self, chunks: list[ChunkRef], offset: int, length: int
    ) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length) of the object, chunk by chunk, reading the next
        chunk while the current one is sent (so at most two chunks are held)."""
        end = offset + length
        spans = []
        chunk_start = 0
        for chunk in chunks:
            chunk_end = chunk_start + chunk.length
            if chunk_end > offset and chunk_start < end:
                first = max(offset, chunk_start) - chunk_start
                last = min(end, chunk_end) - chunk_start
                spans.append((chunk, first, last - first))
            chunk_start = chunk_end

        def fetch(index: int) -> asyncio.Task[list[bytes]]:
            chunk, first, size = spans[index]
            return asyncio.create_task(
                replication.read_chunk(
                    self.view, chunk, offset=first, length=size, timeout=self.rpc_timeout
                )
            )

        ahead = fetch(0) if spans else None
        try:
            for index in range(len(spans)):
                assert ahead is not None
                pieces = await ahead
                ahead = fetch(index + 1) if index + 1 < len(spans) else None
                for piece in pieces:
                    yield piece
        finally:
            if ahead is not None:
                ahead.cancel()

    async def delete_object(self, bucket: str, key: str, version_id: str = "") -> DeleteResult:
        validation.check_key(key)
        return await self.meta.delete_object(bucket, key, version_id)

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str = "",
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> ObjectListing:
        """One page of the keys under ``prefix`` (rolled up at ``delimiter``), in key order."""
        validation.check_bucket_length(bucket)
        validation.check_max_keys(max_keys)
        return await self.meta.list_objects(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            continuation_token=continuation_token,
            max_keys=max_keys,
        )

    # -- versioning, copy, rename -----------------------------------------------------------

    async def set_bucket_versioning(self, name: str, status: str) -> None:
        if status not in ("Enabled", "Suspended"):
            raise InvalidArgument(
                f"versioning status must be 'Enabled' or 'Suspended', got {shown(status)}"
            )
        await self.meta.set_bucket_versioning(name, status)

    async def get_bucket_versioning(self, name: str) -> str:
        return await self.meta.get_bucket_versioning(name)

    async def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> VersionListing:
        """One page of the versions under ``prefix``: key ascending, then newest first."""
        validation.check_bucket_length(bucket)
        validation.check_max_keys(max_keys)
        return await self.meta.list_object_versions(
            bucket,
            prefix=prefix,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
        )

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str = "",
        src_if_match: str = "",
        replace_metadata: bool = False,
        content_type: str = "",
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """A metadata operation: the copy shares the source's chunks. With
        ``replace_metadata`` the copy takes ``content_type``, ``metadata`` and ``headers``;
        otherwise the source's."""
        validation.check_key(src_key)
        validation.check_key(dst_key)
        validation.check_content_type(content_type)
        etags.check("src_if_match", src_if_match)
        metadata = dict(metadata or {})
        headers = dict(headers or {})
        if replace_metadata:
            validation.check_metadata(metadata)
            validation.check_headers(headers)
        return await self.meta.copy_object(
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            src_version_id=src_version_id,
            src_if_match=src_if_match,
            replace_metadata=replace_metadata,
            content_type=content_type,
            metadata=metadata,
            headers=headers,
        )

    async def rename_prefix(self, bucket: str, src_prefix: str, dst_prefix: str) -> int:
        """Move every object under ``src_prefix``, a batch of metanode transactions at a time.

        First every destination key is checked, a page per call, so a bad one refuses the
        rename before anything moves. Should a batch still fail (a key written meanwhile, a
        lost metanode), the error says how many objects had moved: re-running finishes."""
        validation.check_rename_prefixes(src_prefix, dst_prefix)
        check_after = ""
        while True:
            checked = await self.meta.rename_prefix(
                bucket, src_prefix, dst_prefix, check_only=True, check_after=check_after
            )
            if not checked.check_next:
                break
            check_after = checked.check_next
        moved = 0
        while True:
            try:
                resp = await self.meta.rename_prefix(
                    bucket, src_prefix, dst_prefix, limit=RENAME_BATCH
                )
            except RingstoreError as err:
                if not moved:
                    raise
                raise type(err)(
                    f"{err.message} (after {moved} objects had moved; running the rename "
                    "again finishes it)"
                ) from None
            moved += resp.moved
            if not resp.more:
                return moved


def part_span(info: ObjectInfo, part_number: int) -> tuple[int, int]:
    """(offset, length) of part ``part_number`` of the object: a completed multipart upload's
    parts as listed at completion; an object written whole is its one part."""
    sizes = list(info.part_sizes) or [info.size]
    if not 1 <= part_number <= len(sizes):
        raise InvalidPart(
            f"{info.bucket}/{shown(info.key)} has {len(sizes)} part(s); there is no part "
            f"{part_number}"
        )
    return sum(sizes[: part_number - 1]), sizes[part_number - 1]
