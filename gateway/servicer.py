"""The public ``ringstore.v1.ObjectStore`` service: decode, authorize, call
:class:`ObjectService`, encode.

The core answers in :mod:`gateway.model`'s dataclasses; :mod:`gateway.grpc_wire` turns them into
this door's messages, and :func:`ringstore.rpc.handler` its errors into gRPC status. The admin
and identity calls are the metanode's, passed through :meth:`MetaClient.admin`.

Every call arrives verified (:mod:`gateway.grpc_auth`); each handler asks the authorizer
(:mod:`gateway.auth`) for each action it performs on behalf of :func:`caller` before it does
anything: a refused put or part is refused after its header and before any of its body is read.
The identity calls check the caller's powers here and are then carried out by the metanode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from gateway import auth, grpc_wire
from gateway.auth import Authorizer
from gateway.grpc_auth import caller
from gateway.intake import Intake, footprint
from gateway.multipart import MultipartService, PartListing, PartTarget
from gateway.objects import DEFAULT_MAX_KEYS, ByteRange, ObjectService, PutRequest, Reading
from ringstore.errors import InvalidArgument
from ringstore.rpc import MAX_MESSAGE, handler
from ringstore.v1 import common_pb2, objectstore_pb2, objectstore_pb2_grpc
from ringstore.wire import Serialized, data_field, data_message, length_fields

DATA_FIELD = objectstore_pb2.GetSmallObjectResponse.DATA_FIELD_NUMBER
UNKNOWN_SIZE = -1  # a header's expected_size when the sender does not know it


class ObjectStoreServicer(objectstore_pb2_grpc.ObjectStoreServicer):
    def __init__(
        self, objects: ObjectService, intake: Intake | None = None, *, authorizer: Authorizer
    ) -> None:
        self.objects = objects
        self.auth = authorizer
        self.multipart = MultipartService(objects)
        self.meta = objects.meta
        self.intake = intake if intake is not None else Intake()

    def _most(self) -> int:
        """The most body bytes one put or part holds at once."""
        return footprint(self.objects.view.chunk_size, self.objects.max_concurrent_chunks)

    @handler
    async def CreateBucket(self, request, context):  # type: ignore[no-untyped-def]
        who = caller()
        await self.auth.check(who, auth.CREATE_BUCKET)
        owner = who.access_key_id or ""
        info = await self.objects.create_bucket(request.name, owner=owner)
        self.auth.forget_key(owner)  # it now owns the bucket
        return grpc_wire.bucket_to_pb(info)

    @handler
    async def HeadBucket(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.READ, request.name)
        return grpc_wire.bucket_to_pb(await self.objects.head_bucket(request.name))

    @handler
    async def ListBuckets(self, request, context):  # type: ignore[no-untyped-def]
        who = caller()
        await self.auth.check(who, auth.LIST_BUCKETS)
        buckets = [b for b in await self.objects.list_buckets() if self.auth.visible(who, b.name)]
        return objectstore_pb2.ListBucketsResponse(
            buckets=[grpc_wire.bucket_to_pb(b) for b in buckets]
        )

    @handler
    async def DeleteBucket(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.OWNER, request.name)
        await self.objects.delete_bucket(request.name)
        self.auth.forget_bucket(request.name)
        return objectstore_pb2.DeleteBucketResponse()

    @handler
    async def PutObject(self, request_iterator, context):  # type: ignore[no-untyped-def]
        stream = self.intake.stream(request_iterator, "PutObject")
        header, messages = await _header(stream, "PutObject")
        await self.auth.check(caller(), auth.WRITE, header.bucket)
        async with self.intake.admit(stream, header.expected_size, self._most()):
            body = _body(messages, header.expected_size)
            info = await self.objects.put_object(_put_request(header), body)
        return grpc_wire.object_to_pb(info)

    @handler
    async def PutSmallObject(self, request, context):  # type: ignore[no-untyped-def]
        data = request.data  # a view (small_put_decoder), or a copy out of the message: once
        if len(data) > MAX_MESSAGE:
            raise InvalidArgument(
                f"PutSmallObject carries {len(data)} bytes, more than one message may "
                f"({MAX_MESSAGE}); stream it with PutObject"
            )
        _check_size(request.header.expected_size, len(data))
        await self.auth.check(caller(), auth.WRITE, request.header.bucket)
        info = await self.objects.put_object(_put_request(request.header), _one(data))
        return grpc_wire.object_to_pb(info)

    @handler
    async def UploadPart(self, request_iterator, context):  # type: ignore[no-untyped-def]
        stream = self.intake.stream(request_iterator, "UploadPart")
        header, messages = await _header(stream, "UploadPart")
        await self.auth.check(caller(), auth.WRITE, header.bucket)
        async with self.intake.admit(stream, header.expected_size, self._most()):
            target = PartTarget(header.bucket, header.key, header.upload_id, header.part_number)
            body = _body(messages, header.expected_size)
            etag = await self.multipart.upload_part(target, body, header.expected_size)
        return objectstore_pb2.UploadPartResponse(etag=etag)

    @handler
    async def CreateMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        upload_id = await self.multipart.create(
            request.bucket,
            request.key,
            request.content_type,
            dict(request.metadata),
            headers=dict(request.headers),
            checksum_algorithm=request.checksum_algorithm,
            checksum_type=request.checksum_type,
        )
        return objectstore_pb2.CreateMultipartUploadResponse(upload_id=upload_id)

    @handler
    async def CompleteMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        parts = [PartListing(p.part_number, p.etag, p.checksum) for p in request.parts]
        info = await self.multipart.complete(
            request.bucket,
            request.key,
            request.upload_id,
            parts,
            if_match=request.if_match,
            if_none_match=request.if_none_match,
            asserted_checksum=request.checksum.value,
        )
        return grpc_wire.object_to_pb(info)

    @handler
    async def AbortMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        await self.multipart.abort(request.bucket, request.key, request.upload_id)
        return objectstore_pb2.AbortMultipartUploadResponse()

    @handler
    async def ListParts(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        parts = await self.multipart.list_parts(request.bucket, request.key, request.upload_id)
        return objectstore_pb2.ListPartsResponse(parts=[grpc_wire.part_to_pb(p) for p in parts])

    @handler
    async def ListMultipartUploads(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        page = await self.multipart.list_uploads(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            key_marker=request.key_marker,
            upload_id_marker=request.upload_id_marker,
            max_uploads=request.max_uploads,
        )
        return grpc_wire.uploads_to_pb(page)

    @handler
    async def SetBucketVersioning(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.OWNER, request.name)
        await self.objects.set_bucket_versioning(request.name, request.status)
        return objectstore_pb2.SetBucketVersioningResponse()

    @handler
    async def GetBucketVersioning(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.READ, request.name)
        status = await self.objects.get_bucket_versioning(request.name)
        return objectstore_pb2.GetBucketVersioningResponse(status=status)

    @handler
    async def ListObjectVersions(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.READ, request.bucket)
        page = await self.objects.list_object_versions(
            request.bucket,
            prefix=request.prefix,
            key_marker=request.key_marker,
            version_id_marker=request.version_id_marker,
            max_keys=request.max_keys or DEFAULT_MAX_KEYS,  # absent means S3's default
        )
        return grpc_wire.versions_to_pb(page)

    @handler
    async def CopyObject(self, request, context):  # type: ignore[no-untyped-def]
        who = caller()
        await self.auth.check(who, auth.READ, request.src_bucket)
        await self.auth.check(who, auth.WRITE, request.dst_bucket)
        info = await self.objects.copy_object(
            request.src_bucket,
            request.src_key,
            request.dst_bucket,
            request.dst_key,
            src_version_id=request.src_version_id,
            src_if_match=request.src_if_match,
            replace_metadata=request.replace_metadata,
            content_type=request.content_type,
            metadata=dict(request.metadata),
            headers=dict(request.headers),
        )
        return grpc_wire.object_to_pb(info)

    @handler
    async def RenamePrefix(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        moved = await self.objects.rename_prefix(
            request.bucket, request.src_prefix, request.dst_prefix
        )
        return objectstore_pb2.RenamePrefixResponse(moved=moved)

    async def _open(self, request: objectstore_pb2.GetObjectRequest) -> Reading:
        """Authorize a GetObjectRequest and open the object (conditions and range checked)."""
        await self.auth.check(caller(), auth.READ, request.bucket)
        byte_range = None
        if request.has_range:
            r = request.range
            byte_range = ByteRange(
                first=r.first, last=r.last if r.has_last else None, suffix=r.suffix
            )
        return await self.objects.get_object(
            request.bucket,
            request.key,
            version_id=request.version_id,
            byte_range=byte_range,
            if_match=request.if_match,
            if_none_match=request.if_none_match,
        )

    @handler
    async def GetObject(self, request, context):  # type: ignore[no-untyped-def]
        reading = await self._open(request)
        first = b""
        if request.accept_first_data and reading.length <= MAX_MESSAGE:
            # A small body goes out with the info: one message instead of two.
            first = b"".join([piece async for piece in reading.body])
        yield objectstore_pb2.GetObjectResponse(
            info=grpc_wire.object_to_pb(reading.info),
            range_first=reading.offset,
            range_length=reading.length,
            first_data=first,
        )
        async for piece in reading.body:
            # A GetObjectResponse with data, one copy (ringstore.wire); Serialized says how
            # many body bytes it carries, for the metrics.
            yield Serialized(data_message(piece), len(piece))

    @handler
    async def GetSmallObject(self, request, context):  # type: ignore[no-untyped-def]
        reading = await self._open(request)
        whole = reading.length <= MAX_MESSAGE
        # A larger body (an unstarted generator) is never read: the caller uses GetObject.
        data = b"".join([piece async for piece in reading.body]) if whole else b""
        head = objectstore_pb2.GetSmallObjectResponse(
            info=grpc_wire.object_to_pb(reading.info),
            range_first=reading.offset,
            range_length=reading.length,
            whole=whole,
        ).SerializeToString()
        # The body is written into the reply's wire bytes with one copy (ringstore.wire), not
        # set on the message and serialized (two copies, and a third for the metrics' count).
        return Serialized(data_message(data, head, field=DATA_FIELD) if data else head, len(data))

    @handler
    async def HeadObject(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.READ, request.bucket)
        info = await self.objects.head_object(request.bucket, request.key, request.version_id)
        return grpc_wire.object_to_pb(info)

    @handler
    async def DeleteObject(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.WRITE, request.bucket)
        result = await self.objects.delete_object(request.bucket, request.key, request.version_id)
        return grpc_wire.delete_to_pb(result)

    @handler
    async def ListObjects(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.READ, request.bucket)
        page = await self.objects.list_objects(
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            start_after=request.start_after,
            continuation_token=request.continuation_token,
            max_keys=request.max_keys or DEFAULT_MAX_KEYS,  # absent means S3's default
        )
        return grpc_wire.listing_to_pb(page)

    @handler
    async def ClusterStatus(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        return await self.meta.admin("ClusterStatus", request)

    @handler
    async def DrainNode(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        return await self.meta.admin("DrainNode", request)

    @handler
    async def RemoveNode(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        return await self.meta.admin("RemoveNode", request)

    # -- identity: the caller's powers are checked here, the metanode keeps keys and grants --

    @handler
    async def CreateKey(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        return await self.meta.admin("CreateKey", request)

    @handler
    async def ListKeys(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        return await self.meta.admin("ListKeys", request)

    @handler
    async def DeleteKey(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.ADMIN)
        reply = await self.meta.admin("DeleteKey", request)
        self.auth.forget_key(request.access_key_id)
        return reply

    @handler
    async def Grant(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.OWNER, request.bucket)
        reply = await self.meta.admin("Grant", request)
        self.auth.forget_key(request.access_key_id)
        return reply

    @handler
    async def Revoke(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.OWNER, request.bucket)
        reply = await self.meta.admin("Revoke", request)
        self.auth.forget_key(request.access_key_id)
        return reply

    @handler
    async def SetBucketAnonymousRead(self, request, context):  # type: ignore[no-untyped-def]
        await self.auth.check(caller(), auth.OWNER, request.bucket)
        reply = await self.meta.admin("SetBucketAnonymousRead", request)
        self.auth.forget_bucket(request.bucket)
        return reply


# The calls whose body messages are taken without protobuf, and the message each parses as
# otherwise: a data message (``data``, field 2, and nothing else) arrives at the handler as a
# view of its wire bytes, any other message as the parsed message (ringstore.wire.data_field).
RAW_BODIES = {
    "PutObject": objectstore_pb2.PutObjectRequest,
    "UploadPart": objectstore_pb2.UploadPartRequest,
}


def add_to_server(servicer: ObjectStoreServicer, server: aio.Server) -> None:
    """Register ``servicer`` on ``server`` as the generated ``add_ObjectStoreServicer_to_server``
    does, except that the body messages of :data:`RAW_BODIES` skip protobuf: parsing a 1 MiB
    message copies its data into the message, and each read of the field copies it out again."""
    collected = _Collected()
    objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(servicer, collected)
    handlers = dict(collected.handlers)
    for method, message in RAW_BODIES.items():
        handlers[method] = handlers[method]._replace(  # type: ignore[attr-defined]
            request_deserializer=body_decoder(message.FromString)
        )
    handlers["PutSmallObject"] = handlers["PutSmallObject"]._replace(  # type: ignore[attr-defined]
        request_deserializer=small_put_decoder
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(collected.service, handlers),)
    )
    server.add_registered_method_handlers(collected.service, handlers)  # type: ignore[attr-defined]


def body_decoder(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """A request deserializer that gives a data message as a view of its data, and parses every
    other message with ``parse`` (which raises for a malformed one, as ever)."""

    def decode(raw: bytes) -> Any:
        data = data_field(raw)
        return data if data is not None else parse(raw)

    return decode


@dataclass(frozen=True)
class SmallPut:
    """A PutSmallObjectRequest taken without protobuf: its header parsed, its data a view of
    the received bytes (read as the message's own fields are)."""

    header: objectstore_pb2.PutObjectHeader
    data: memoryview


def small_put_decoder(raw: bytes) -> SmallPut | objectstore_pb2.PutSmallObjectRequest:
    """PutSmallObject's request deserializer: the header (field 1) parsed, the data (field 2)
    a view; a message of any other shape is parsed whole by protobuf (which raises for a
    malformed one, as ever)."""
    fields = length_fields(raw)
    if fields is None or not set(fields) <= {1, 2}:
        return objectstore_pb2.PutSmallObjectRequest.FromString(raw)
    header = objectstore_pb2.PutObjectHeader.FromString(bytes(fields.get(1, b"")))
    return SmallPut(header, fields.get(2, memoryview(b"")))


class _Collected:
    """Stands in for a server to collect the handlers the generated code registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same handlers also come through add_registered_method_handlers

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.service, self.handlers = service, handlers


async def _header(request_iterator: Any, rpc: str) -> tuple[Any, AsyncIterator[Any]]:
    """The header that must open a body stream, and the rest of the stream."""
    messages = request_iterator.__aiter__()
    try:
        first = await messages.__anext__()
    except StopAsyncIteration:
        raise InvalidArgument(f"{rpc} stream ended before its header") from None
    if isinstance(first, memoryview) or first.WhichOneof("part") != "header":
        raise InvalidArgument(f"{rpc} stream must begin with a header message")
    return first.header, messages


def _put_request(h: objectstore_pb2.PutObjectHeader) -> PutRequest:
    return PutRequest(
        bucket=h.bucket,
        key=h.key,
        content_type=h.content_type,
        metadata=dict(h.metadata),
        if_match=h.if_match,
        if_none_match=h.if_none_match,
        size=h.expected_size,
    )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _body(
    messages: AsyncIterator[objectstore_pb2.PutObjectRequest | memoryview], expected_size: int
) -> AsyncIterator[bytes | memoryview]:
    """The body's bytes; a second header, or a size other than the one announced, is an error."""
    if expected_size < UNKNOWN_SIZE:
        _check_size(expected_size, 0)  # raises before a byte is stored
    received = 0
    async for msg in messages:
        data: bytes | memoryview
        if isinstance(msg, memoryview):
            data = msg  # a data message taken without protobuf (add_to_server)
        elif msg.WhichOneof("part") == "data":
            data = msg.data  # each read of a bytes field copies it out of the message
        else:
            raise InvalidArgument("the stream holds a second header")
        received += len(data)
        yield data
    _check_size(expected_size, received)


def _check_size(expected_size: int, received: int) -> None:
    """A body must carry the size its header announced (:data:`UNKNOWN_SIZE`: any size)."""
    if expected_size < UNKNOWN_SIZE:
        raise InvalidArgument(
            f"expected_size {expected_size} is negative (-1 means unknown; no other is allowed)"
        )
    if expected_size != UNKNOWN_SIZE and received != expected_size:
        raise InvalidArgument(f"the body announced {expected_size} bytes but carried {received}")


__all__ = ["ObjectStoreServicer", "aio", "common_pb2"]
