"""The ringstore SDK's :class:`Client` (shared/SDK.md is its contract).

One client holds one gRPC channel per gateway endpoint and is safe to share between threads.
Calls that are safe to repeat (reads, listings, deletes, unconditional puts of a replayable
body) are retried on UNAVAILABLE and DEADLINE_EXCEEDED with jittered exponential backoff,
moving to the next endpoint each time; nothing else is retried.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from ringstore import etags, lifecycle, tls, validation
from ringstore import wire as wire_format
from ringstore.client import credentials, transfer
from ringstore.client.body import PIECE, Body, data_message
from ringstore.client.models import (
    BucketInfo,
    DeleteResult,
    KeyInfo,
    ListPage,
    ObjectInfo,
    ObjectVersion,
    PartInfo,
    UploadInfo,
    VersionPage,
    _utc,
)
from ringstore.errors import (
    InvalidArgument,
    InvalidRange,
    RingstoreError,
    ServiceUnavailable,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.rpc import sync_channel
from ringstore.v1 import common_pb2, objectstore_pb2, objectstore_pb2_grpc
from ringstore.validation import check_text, is_int, shown

T = TypeVar("T")

DEFAULT_ENDPOINT = "127.0.0.1:7000"
BACKOFF_BASE = 0.05  # seconds before the first retry
BACKOFF_MAX = 2.0  # seconds: the longest pause between tries
MAX_OFFSET = 2**63 - 1  # bytes: the largest offset a range carries (int64)


class ObjectReader:
    """An object's body as it streams from the gateway: ``.info``, ``.read(n)``, iteration."""

    def __init__(self, info: ObjectInfo, stream: Iterator[bytes], call: Any = None) -> None:
        self.info = info
        self._stream = stream
        self._call = call
        self._pending = b""
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            pending, self._pending = self._pending, b""
            yield pending
        yield from self._pieces()

    def _pieces(self) -> Iterator[bytes]:
        while not self._closed:
            try:
                piece = next(self._stream)
            except StopIteration:
                return
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None
            if piece:
                yield piece

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (everything left when ``n`` is negative); b"" at the end."""
        if n is None or n < 0:
            parts = [self._pending, *self._pieces()]
            self._pending = b""
            return b"".join(parts)
        parts = [self._pending]
        have = len(self._pending)
        for piece in self._pieces():
            parts.append(piece)
            have += len(piece)
            if have >= n:
                break
        data = b"".join(parts)
        self._pending = data[n:]
        return data[:n]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._call is not None:
                self._call.cancel()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A connection to one or more ringstore gateways."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        """``access_key_id`` and ``secret_access_key`` sign every call; when neither is given,
        ``RINGSTORE_ACCESS_KEY_ID`` and ``RINGSTORE_SECRET_ACCESS_KEY`` do; without any, calls
        are anonymous (the gateway refuses them except reads of anonymous-read buckets).
        ``ca_file`` (else ``RINGSTORE_CA_FILE``) is a PEM bundle of CAs: when given, every
        channel uses TLS and trusts only those CAs (``ringstore cluster up --tls`` writes its
        CA to ``<data-dir>/tls/ca.pem``); without, the channels are plain TCP.
        The first Client fixes glibc's malloc thresholds of the process, which halved a 1 MiB
        GET's CPU in the client; ``RINGSTORE_TUNE_MALLOC=0`` or any ``MALLOC_*`` variable in
        the environment leaves malloc as it is (:func:`ringstore.lifecycle.tune_client_malloc`)."""
        endpoints = [e.strip() for e in endpoint.split(",") if e.strip()]
        if not endpoints:
            raise InvalidArgument(f"endpoint {endpoint!r} names no gateway (want host:port)")
        for e in endpoints:
            host, sep, port = e.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise InvalidArgument(f"endpoint {e!r} must be host:port")
        if timeout <= 0:
            raise InvalidArgument(f"timeout must be positive seconds, got {timeout}")
        if retries < 0:
            raise InvalidArgument(f"retries must be zero or more, got {retries}")
        self.endpoints = endpoints
        self.timeout = timeout
        self.retries = retries
        lifecycle.tune_client_malloc()  # process-wide, once (ringstore.lifecycle)
        signer = credentials.resolve(access_key_id, secret_access_key)
        self.access_key_id = signer[0] if signer else None
        source = "ca_file"
        if ca_file is None and os.environ.get(tls.CA_FILE_ENV):
            ca_file, source = os.environ[tls.CA_FILE_ENV], tls.CA_FILE_ENV
        ca = None if ca_file is None else tls.read_ca(ca_file, f"{source}: the CA bundle")
        self.ca_file = ca_file
        self._channels = [sync_channel(e, ca) for e in endpoints]
        self._stubs = [_stub(credentials.signing_channel(c, signer)) for c in self._channels]
        self._next = itertools.count(random.randrange(len(endpoints)))
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client for ``RINGSTORE_ENDPOINT`` (default 127.0.0.1:7000), signing with
        ``RINGSTORE_ACCESS_KEY_ID`` and ``RINGSTORE_SECRET_ACCESS_KEY`` unless given."""
        return cls(os.environ.get("RINGSTORE_ENDPOINT", DEFAULT_ENDPOINT), **kwargs)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _stub(self) -> objectstore_pb2_grpc.ObjectStoreStub:
        with self._lock:
            return self._stubs[next(self._next) % len(self._stubs)]

    def _call(self, fn: Callable[[objectstore_pb2_grpc.ObjectStoreStub], T], *, safe: bool) -> T:
        """Run ``fn`` against a gateway, retrying transport failures when ``safe``."""
        attempts = self.retries + 1 if safe else 1
        for attempt in range(attempts):
            try:
                return fn(self._stub())
            except grpc.RpcError as exc:
                err = from_rpc_error(exc)
                if not isinstance(err, ServiceUnavailable) or attempt + 1 >= attempts:
                    raise err from None
            except ServiceUnavailable:
                if attempt + 1 >= attempts:
                    raise
            pause = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt)
            time.sleep(random.uniform(pause / 2, pause))
        raise AssertionError("unreachable")

    def _stream(self, method: Any, messages: Iterator[Any]) -> Any:
        """A client-streaming call (a put or a part) whose deadline moves with its progress: it
        is cancelled, as ServiceUnavailable, when gRPC has taken no message for ``timeout``
        seconds (the gateway stopped reading), or no reply came ``timeout`` seconds after the
        last one. A body of any size may take as long as it keeps moving, and no call waits
        forever."""
        last = [time.monotonic()]  # when gRPC last took a message

        def watched() -> Iterator[Any]:
            for message in messages:
                last[0] = time.monotonic()
                yield message
            last[0] = time.monotonic()

        call = method.future(watched())
        while True:
            try:
                return call.result(timeout=max(last[0] + self.timeout - time.monotonic(), 0.01))
            except grpc.FutureTimeoutError:
                if time.monotonic() - last[0] >= self.timeout:
                    call.cancel()
                    raise ServiceUnavailable(
                        f"the gateway took no body and sent no reply for {self.timeout:g} s "
                        "(the client's timeout); the upload was cancelled"
                    ) from None

    # -- buckets ----------------------------------------------------------------------------

    def create_bucket(self, name: str) -> BucketInfo:
        validation.check_bucket_name(name)
        req = objectstore_pb2.CreateBucketRequest(name=name)
        msg = self._call(lambda s: s.CreateBucket(req, timeout=self.timeout), safe=False)
        return BucketInfo.from_proto(msg)

    def head_bucket(self, name: str) -> BucketInfo:
        validation.check_bucket_length(name)
        req = objectstore_pb2.HeadBucketRequest(name=name)
        msg = self._call(lambda s: s.HeadBucket(req, timeout=self.timeout), safe=True)
        return BucketInfo.from_proto(msg)

    def list_buckets(self) -> list[BucketInfo]:
        req = objectstore_pb2.ListBucketsRequest()
        msg = self._call(lambda s: s.ListBuckets(req, timeout=self.timeout), safe=True)
        return [BucketInfo.from_proto(b) for b in msg.buckets]

    def delete_bucket(self, name: str) -> None:
        validation.check_bucket_length(name)
        req = objectstore_pb2.DeleteBucketRequest(name=name)
        self._call(lambda s: s.DeleteBucket(req, timeout=self.timeout), safe=False)

    # -- objects ----------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        data: Any,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectInfo:
        """Store ``data`` under ``bucket/key``, streamed in messages of at most 1 MiB."""
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        validation.check_content_type(content_type or "")
        metadata = validation.check_metadata(metadata)
        etags.check("if_match", if_match or "")
        if if_none_match not in (None, "*"):
            raise InvalidArgument(
                "if_none_match on put must be '*' (write only if absent), "
                f"got {shown(if_none_match)}"
            )
        body = Body(data)
        size = body.size
        header = objectstore_pb2.PutObjectHeader(
            bucket=bucket,
            key=key,
            content_type=content_type or "",
            metadata=metadata,
            if_match=if_match or "",
            if_none_match=if_none_match or "",
            expected_size=size,
        )

        def messages() -> Iterator[objectstore_pb2.PutObjectRequest | bytes]:
            yield objectstore_pb2.PutObjectRequest(header=header)
            for piece in body.views():  # already serialized: see data_message
                yield data_message(piece)

        safe = body.replayable and not if_match and not if_none_match
        if 0 <= size <= PIECE:  # fits one message: one unary call
            # PutSmallObjectRequest's data is field 2 as well: serialized without a copy
            # into a message (the signature hashes these very bytes)
            head = objectstore_pb2.PutSmallObjectRequest(header=header)
            views = list(body.views())
            small = data_message(
                views[0] if views else b"", head.SerializeToString(deterministic=True)
            )
            msg = self._call(lambda s: s.PutSmallObject(small, timeout=self.timeout), safe=safe)
            return ObjectInfo.from_proto(msg)
        msg = self._call(lambda s: self._stream(s.PutObject, messages()), safe=safe)
        return ObjectInfo.from_proto(msg)

    def get_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        range: tuple[int, int | None] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectReader:
        """Open the object for reading; errors (NoSuchKey, InvalidRange, ...) raise here."""
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        req = objectstore_pb2.GetObjectRequest(
            bucket=bucket,
            key=key,
            version_id=_text("version_id", version_id),
            if_match=etags.check("if_match", if_match or ""),
            if_none_match=etags.check("if_none_match", if_none_match or ""),
            accept_first_data=True,
        )
        if range is not None:
            req.has_range = True
            req.range.CopyFrom(_range_proto(range))

        def small(stub: objectstore_pb2_grpc.ObjectStoreStub) -> ObjectReader | None:
            try:
                msg, data = stub.GetSmallObject(req, timeout=self.timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # a gateway older than it
                    return None
                raise
            if not msg.whole:
                return None
            return ObjectReader(ObjectInfo.from_proto(msg.info), iter((data,)))

        def start(stub: objectstore_pb2_grpc.ObjectStoreStub) -> ObjectReader:
            call = stub.GetObject(req)
            first, _ = next(call)
            if first is None or first.WhichOneof("part") != "info":
                call.cancel()
                raise ServiceUnavailable("gateway sent body before the object's info")
            pieces: Iterator[bytes] = (data for _, data in call)
            if first.first_data:
                pieces = itertools.chain((first.first_data,), pieces)
            return ObjectReader(ObjectInfo.from_proto(first.info), pieces, call)

        # One unary call reads a body of at most one message (far cheaper at both ends than
        # a stream); a larger one is then streamed, looked up afresh, so the read is as
        # current as a streamed read alone would be.
        # A range known to be larger (a download's parts) skips the unary try.
        r = req.range
        large = req.has_range and r.has_last and not r.suffix and r.last - r.first >= PIECE
        reader = None if large else self._call(small, safe=True)
        return reader if reader is not None else self._call(start, safe=True)

    def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        req = objectstore_pb2.HeadObjectRequest(
            bucket=bucket, key=key, version_id=_text("version_id", version_id)
        )
        msg = self._call(lambda s: s.HeadObject(req, timeout=self.timeout), safe=True)
        return ObjectInfo.from_proto(msg)

    def delete_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> DeleteResult:
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        req = objectstore_pb2.DeleteObjectRequest(
            bucket=bucket, key=key, version_id=_text("version_id", version_id)
        )
        msg = self._call(lambda s: s.DeleteObject(req, timeout=self.timeout), safe=True)
        return DeleteResult(
            version_id=msg.version_id if msg.has_version_id else None,
            delete_marker=msg.delete_marker,
        )

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        continuation_token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        validation.check_bucket_length(bucket)
        validation.check_max_keys(max_keys)
        req = objectstore_pb2.ListObjectsRequest(
            bucket=bucket,
            prefix=check_text("prefix", prefix),
            delimiter=check_text("delimiter", delimiter),
            start_after=check_text("start_after", start_after),
            continuation_token=_text("continuation_token", continuation_token),
            max_keys=max_keys,
        )
        msg = self._call(lambda s: s.ListObjects(req, timeout=self.timeout), safe=True)
        return ListPage(
            objects=[ObjectInfo.from_proto(o) for o in msg.objects],
            common_prefixes=list(msg.common_prefixes),
            is_truncated=msg.is_truncated,
            next_continuation_token=msg.next_continuation_token or None,
        )

    def iter_objects(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page after page."""
        token: str | None = None
        while True:
            page = self.list_objects(bucket, prefix=prefix, continuation_token=token)
            yield from page.objects
            if not page.is_truncated:
                return
            token = page.next_continuation_token

    # -- versioning, copy, rename ----------------------------------------------------------

    def set_bucket_versioning(self, name: str, status: str) -> None:
        """Turn versioning "Enabled" or "Suspended" (never back to Unversioned)."""
        if status not in ("Enabled", "Suspended"):
            raise InvalidArgument(
                f"versioning status must be 'Enabled' or 'Suspended', got {shown(status)}"
            )
        req = objectstore_pb2.SetBucketVersioningRequest(name=name, status=status)
        self._call(lambda s: s.SetBucketVersioning(req, timeout=self.timeout), safe=True)

    def get_bucket_versioning(self, name: str) -> str:
        req = objectstore_pb2.GetBucketVersioningRequest(name=name)
        msg = self._call(lambda s: s.GetBucketVersioning(req, timeout=self.timeout), safe=True)
        return str(msg.status)

    def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionPage:
        validation.check_bucket_length(bucket)
        validation.check_max_keys(max_keys)
        req = objectstore_pb2.ListObjectVersionsRequest(
            bucket=bucket,
            prefix=check_text("prefix", prefix),
            key_marker=check_text("key_marker", key_marker),
            version_id_marker=check_text("version_id_marker", version_id_marker),
            max_keys=max_keys,
        )
        msg = self._call(lambda s: s.ListObjectVersions(req, timeout=self.timeout), safe=True)
        return VersionPage(
            versions=[ObjectVersion.from_proto(v) for v in msg.versions],
            is_truncated=msg.is_truncated,
            next_key_marker=msg.next_key_marker or None,
            next_version_id_marker=msg.next_version_id_marker or None,
        )

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Copy without moving data: the copy shares the source's chunks."""
        validation.check_key(src_key)
        validation.check_key(dst_key)
        req = objectstore_pb2.CopyObjectRequest(
            src_bucket=src_bucket,
            src_key=src_key,
            dst_bucket=dst_bucket,
            dst_key=dst_key,
            src_version_id=_text("src_version_id", src_version_id),
            replace_metadata=metadata is not None,
            metadata=validation.check_metadata(metadata),
        )
        msg = self._call(lambda s: s.CopyObject(req, timeout=self.timeout), safe=True)
        return ObjectInfo.from_proto(msg)

    def rename_prefix(self, bucket: str, src_prefix: str, dst_prefix: str) -> int:
        """Move every object under ``src_prefix`` to ``dst_prefix``; returns how many moved.
        Safe to run again after a failure: it finishes the job."""
        check_text("src_prefix", src_prefix)
        check_text("dst_prefix", dst_prefix)
        validation.check_rename_prefixes(src_prefix, dst_prefix)
        req = objectstore_pb2.RenamePrefixRequest(
            bucket=bucket, src_prefix=src_prefix, dst_prefix=dst_prefix
        )
        # No deadline of its own: it takes O(objects) metadata work; every batch inside is bounded.
        msg = self._call(lambda s: s.RenamePrefix(req), safe=True)
        return int(msg.moved)

    # -- multipart upload -------------------------------------------------------------------

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        validation.check_key(key)
        req = objectstore_pb2.CreateMultipartUploadRequest(
            bucket=bucket,
            key=key,
            content_type=validation.check_content_type(content_type or ""),
            metadata=validation.check_metadata(metadata),
        )
        msg = self._call(lambda s: s.CreateMultipartUpload(req, timeout=self.timeout), safe=False)
        return str(msg.upload_id)

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, data: Any
    ) -> str:
        """Store one part (re-uploading a number replaces it); returns the part's ETag."""
        validation.check_key(key)
        check_text("upload_id", upload_id)
        if not is_int(part_number) or not 1 <= part_number <= 10_000:
            raise InvalidArgument(
                f"part_number must be between 1 and 10000, got {shown(part_number)}"
            )
        body = Body(data)
        size = body.size
        header = objectstore_pb2.UploadPartHeader(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            part_number=part_number,
            expected_size=size,
        )

        def messages() -> Iterator[objectstore_pb2.UploadPartRequest | bytes]:
            yield objectstore_pb2.UploadPartRequest(header=header)
            for piece in body.views():  # already serialized: see data_message
                yield data_message(piece)

        msg = self._call(lambda s: self._stream(s.UploadPart, messages()), safe=body.replayable)
        return str(msg.etag)

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        validation.check_key(key)
        for number, etag in parts:
            if not is_int(number) or not 1 <= number <= 10_000:
                raise InvalidArgument(
                    f"part numbers must be between 1 and 10000, got {shown(number)}"
                )
            check_text(f"etag of part {number}", etag)
        req = objectstore_pb2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=check_text("upload_id", upload_id),
            parts=[objectstore_pb2.CompletedPart(part_number=n, etag=e) for n, e in parts],
        )
        msg = self._call(lambda s: s.CompleteMultipartUpload(req, timeout=self.timeout), safe=False)
        return ObjectInfo.from_proto(msg)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        validation.check_key(key)
        check_text("upload_id", upload_id)
        req = objectstore_pb2.AbortMultipartUploadRequest(
            bucket=bucket, key=key, upload_id=upload_id
        )
        self._call(lambda s: s.AbortMultipartUpload(req, timeout=self.timeout), safe=False)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        validation.check_key(key)
        check_text("upload_id", upload_id)
        req = objectstore_pb2.ListPartsRequest(bucket=bucket, key=key, upload_id=upload_id)
        msg = self._call(lambda s: s.ListParts(req, timeout=self.timeout), safe=True)
        return [PartInfo(p.part_number, p.etag, p.size) for p in msg.parts]

    def list_multipart_uploads(self, bucket: str, *, prefix: str = "") -> list[UploadInfo]:
        """Every open upload under ``prefix``, by key then initiation; fetched a page of 1,000
        at a time (an upload met twice, when its page's marker went away meanwhile, once)."""
        check_text("prefix", prefix)
        req = objectstore_pb2.ListMultipartUploadsRequest(bucket=bucket, prefix=prefix)
        uploads: dict[str, UploadInfo] = {}
        while True:
            msg = self._call(lambda s: s.ListMultipartUploads(req, timeout=self.timeout), safe=True)
            for u in msg.uploads:
                uploads.setdefault(
                    u.upload_id, UploadInfo(u.key, u.upload_id, _utc(u.initiated_ns))
                )
            if not msg.is_truncated:
                return list(uploads.values())
            req.key_marker = msg.next_key_marker
            req.upload_id_marker = msg.next_upload_id_marker

    def upload_file(
        self,
        bucket: str,
        key: str,
        path: str | os.PathLike[str],
        *,
        part_size: int = transfer.DEFAULT_PART_SIZE,
        concurrency: int = 4,
        progress: Callable[[int], None] | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload a file; multipart with parts in parallel above ``part_size``."""
        return transfer.upload_file(
            self, bucket, key, path, part_size=part_size, concurrency=concurrency,
            progress=progress, content_type=content_type, metadata=metadata,
        )  # fmt: skip

    def download_file(
        self,
        bucket: str,
        key: str,
        path: str | os.PathLike[str],
        *,
        version_id: str | None = None,
        concurrency: int = 4,
        progress: Callable[[int], None] | None = None,
    ) -> ObjectInfo:
        """Download to a file: 8 MiB ranges in parallel, pinned to one version and ETag."""
        return transfer.download_file(
            self, bucket, key, path, version_id=version_id, concurrency=concurrency,
            progress=progress,
        )  # fmt: skip

    def drain_node(self, node_id: str, *, force: bool = False) -> Any:
        """Move every chunk off a datanode before it leaves (a new ring epoch). Refused with
        :class:`PreconditionFailed` when fewer than W up nodes would stay in the ring, unless
        ``force``."""
        req = objectstore_pb2.NodeRequest(id=node_id, force=force)
        return self._call(lambda s: s.DrainNode(req, timeout=self.timeout), safe=True)

    def remove_node(self, node_id: str, *, force: bool = False) -> Any:
        """Forget a datanode and re-replicate what it held (a new ring epoch). Refused with
        :class:`PreconditionFailed` when it would leave fewer than W up nodes or lose the last
        copy of a chunk (drain the node instead), unless ``force``."""
        req = objectstore_pb2.NodeRequest(id=node_id, force=force)
        return self._call(lambda s: s.RemoveNode(req, timeout=self.timeout), safe=True)

    # -- identity (admin calls; the owner of a bucket may grant and revoke on it) ----------

    def create_key(
        self, name: str, *, admin: bool = False, create_buckets: bool = False
    ) -> KeyInfo:
        """A new access key; its ``secret_access_key`` is shown here and never again."""
        check_text("name", name)
        if not name:
            raise InvalidArgument("a key's name must not be empty")
        req = objectstore_pb2.CreateKeyRequest(
            name=name, admin=bool(admin), create_buckets=bool(create_buckets)
        )
        msg = self._call(lambda s: s.CreateKey(req, timeout=self.timeout), safe=False)
        return KeyInfo.from_proto(msg)

    def list_keys(self) -> list[KeyInfo]:
        """Every key, by access key id, without secrets."""
        req = objectstore_pb2.ListKeysRequest()
        msg = self._call(lambda s: s.ListKeys(req, timeout=self.timeout), safe=True)
        return [KeyInfo.from_proto(k) for k in msg.keys]

    def delete_key(self, access_key_id: str) -> None:
        req = objectstore_pb2.DeleteKeyRequest(
            access_key_id=check_text("access_key_id", access_key_id)
        )
        self._call(lambda s: s.DeleteKey(req, timeout=self.timeout), safe=False)

    def grant(
        self,
        bucket: str,
        access_key_id: str,
        *,
        read: bool = False,
        write: bool = False,
        owner: bool = False,
    ) -> None:
        """Replace ``access_key_id``'s grant on ``bucket`` (all False removes it)."""
        validation.check_bucket_length(bucket)
        req = objectstore_pb2.GrantRequest(
            bucket=bucket,
            access_key_id=check_text("access_key_id", access_key_id),
            read=bool(read),
            write=bool(write),
            owner=bool(owner),
        )
        self._call(lambda s: s.Grant(req, timeout=self.timeout), safe=True)

    def revoke(self, bucket: str, access_key_id: str) -> None:
        validation.check_bucket_length(bucket)
        req = objectstore_pb2.RevokeRequest(
            bucket=bucket, access_key_id=check_text("access_key_id", access_key_id)
        )
        self._call(lambda s: s.Revoke(req, timeout=self.timeout), safe=True)

    def set_bucket_anonymous_read(self, bucket: str, enabled: bool) -> None:
        """Let anyone, without credentials, read ``bucket`` (or no longer)."""
        validation.check_bucket_length(bucket)
        if not isinstance(enabled, bool):
            raise InvalidArgument(f"enabled must be True or False, got {shown(enabled)}")
        req = objectstore_pb2.SetBucketAnonymousReadRequest(bucket=bucket, enabled=enabled)
        self._call(lambda s: s.SetBucketAnonymousRead(req, timeout=self.timeout), safe=True)

    # -- cluster ----------------------------------------------------------------------------

    def cluster_status(self) -> Any:
        """The cluster as the metanode sees it (an ``objectstore_pb2.ClusterStatusResponse``)."""
        req = objectstore_pb2.ClusterStatusRequest()
        return self._call(lambda s: s.ClusterStatus(req, timeout=self.timeout), safe=True)


GET_SMALL = "/ringstore.v1.ObjectStore/GetSmallObject"
SMALL_DATA_FIELD = objectstore_pb2.GetSmallObjectResponse.DATA_FIELD_NUMBER


def _small_reply(wire: bytes) -> tuple[objectstore_pb2.GetSmallObjectResponse, bytes]:
    """A GetSmallObject reply as (the reply without its data, the data): the body copied out
    of the wire bytes once, where parsing the reply and reading ``data`` copies it twice."""
    try:
        rest, data = wire_format.take_bytes_field(wire, SMALL_DATA_FIELD)
    except ValueError as exc:
        raise ServiceUnavailable(
            f"the gateway's GetSmallObject reply is malformed: {exc}"
        ) from None
    return objectstore_pb2.GetSmallObjectResponse.FromString(rest), data


GET_OBJECT = "/ringstore.v1.ObjectStore/GetObject"


def _stream_reply(wire: bytes) -> tuple[objectstore_pb2.GetObjectResponse | None, bytes]:
    """A GetObject message as (None, its data) when it is a data message, the data copied out
    of the wire bytes once (parsing it and reading ``data`` copies a MiB twice); any other
    message as (the message, its ``data``)."""
    view = wire_format.data_field(wire)
    if view is not None:
        return None, bytes(view)
    message = objectstore_pb2.GetObjectResponse.FromString(wire)
    return message, message.data


def _stub(channel: Any) -> objectstore_pb2_grpc.ObjectStoreStub:
    """The ObjectStore stub of a (signing) channel, its GetSmallObject answering
    (reply, data) (:func:`_small_reply`) and its GetObject's messages (message or None, data)
    (:func:`_stream_reply`)."""
    stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
    stub.GetSmallObject = channel.unary_unary(  # type: ignore[method-assign]
        GET_SMALL, response_deserializer=_small_reply
    )
    stub.GetObject = channel.unary_stream(  # type: ignore[method-assign]
        GET_OBJECT, response_deserializer=_stream_reply
    )
    return stub


def _range_proto(rng: tuple[int, int | None]) -> objectstore_pb2.ByteRange:
    try:
        first, last = rng
    except (TypeError, ValueError):
        raise InvalidArgument(f"range must be a (first, last) pair, got {shown(rng)}") from None
    if not is_int(first) or (last is not None and not is_int(last)):
        raise InvalidArgument(f"range offsets must be integers, got {shown(rng)}")
    if first < 0:
        if last is not None:
            raise InvalidArgument(f"a suffix range (-n, None) takes no end, got {shown(rng)}")
        # The last n bytes, n past any size: the whole object.
        return objectstore_pb2.ByteRange(first=min(-first, MAX_OFFSET), suffix=True)
    if first > MAX_OFFSET:
        raise InvalidRange(f"range start {first} is past the size of any object")
    msg = objectstore_pb2.ByteRange(first=first)
    if last is not None:
        msg.last = min(last, MAX_OFFSET)  # an end past any object's size reads to its end
        msg.has_last = True
    return msg


def _text(field: str, value: str | None) -> str:
    """An optional string parameter as the request carries it ("" for None)."""
    return "" if value is None else check_text(field, value)


__all__ = ["Client", "ObjectReader", "RingstoreError", "common_pb2"]
