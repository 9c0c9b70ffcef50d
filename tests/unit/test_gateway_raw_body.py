"""The gRPC door takes a put's body messages without protobuf (ringstore.wire.data_field,
gateway.servicer.add_to_server): a data message reaches the core as a view of its wire bytes,
any other message is parsed as ever, and one that does not decode is refused with
InvalidArgument. Over real gRPC on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gateway.model import ObjectInfo
from gateway.servicer import ObjectStoreServicer, add_to_server
from ringstore.errors import InvalidArgument
from ringstore.grpc_errors import from_rpc_error
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import common_pb2, objectstore_pb2
from ringstore.wire import data_field, data_message

PUT_OBJECT = "/ringstore.v1.ObjectStore/PutObject"


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 1024 * 1024])
def test_a_data_message_is_its_data_as_protobuf_reads_it(size: int) -> None:
    data = os.urandom(size)
    raw = data_message(data)
    assert raw == objectstore_pb2.PutObjectRequest(data=data).SerializeToString() or size == 0
    view = data_field(raw)
    assert isinstance(view, memoryview) and view.obj is raw  # a view, not a copy
    assert bytes(view) == objectstore_pb2.PutObjectRequest.FromString(raw).data == data


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # an empty message (no part set)
        data_message(b"abc")[:-1],  # cut short
        data_message(b"abc") + b"\x12\x00",  # a second field after it
        b"\x12",  # a tag without its length
        b"\x12\x80",  # a length cut inside its varint
        b"\x12" + b"\xff" * 11 + b"\x01",  # a varint longer than ten bytes
        objectstore_pb2.PutObjectRequest(
            header=objectstore_pb2.PutObjectHeader(bucket="b", key="k")
        ).SerializeToString(),
    ],
)
def test_any_other_message_is_left_to_protobuf(raw: bytes) -> None:
    assert data_field(raw) is None


class Recorder:
    """An ObjectService that keeps the body pieces a put hands it."""

    meta = None

    class view:  # stands in for the ClusterView attribute
        chunk_size = 8 * 1024 * 1024

    max_concurrent_chunks = 2

    def __init__(self) -> None:
        self.pieces: list[Any] = []

    async def put_object(self, req: Any, body: AsyncIterator[Any]) -> ObjectInfo:
        self.pieces = [piece async for piece in body]
        size = sum(len(p) for p in self.pieces)
        return ObjectInfo(bucket=req.bucket, key=req.key, size=size, etag="e")


class Everyone:
    async def check(self, identity: Any, action: str, bucket: str | None = None) -> None:
        return None


def _call(
    method: str, request: Any, streaming: bool
) -> tuple[Recorder, common_pb2.ObjectInfo | InvalidArgument]:
    """``method`` called over real gRPC with ``request`` (wire bytes, or an iterator of them
    when ``streaming``); the recorder and the reply or the error."""

    async def scenario() -> tuple[Recorder, Any]:
        objects = Recorder()
        server, _, port = make_server("127.0.0.1:0", max_concurrent_calls=8, service="gateway")
        servicer = ObjectStoreServicer(objects, authorizer=Everyone())  # type: ignore[arg-type]
        add_to_server(servicer, server)
        await server.start()
        channel = insecure_channel(f"127.0.0.1:{port}")
        kind = channel.stream_unary if streaming else channel.unary_unary
        call = kind(
            method,
            request_serializer=lambda raw: raw,
            response_deserializer=common_pb2.ObjectInfo.FromString,
        )
        try:
            return objects, await call(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return objects, from_rpc_error(exc)
        finally:
            await channel.close(grace=None)
            await server.stop(grace=None)

    return asyncio.run(scenario())


def _put(messages: list[bytes]) -> tuple[Recorder, common_pb2.ObjectInfo | InvalidArgument]:
    """PutObject with ``messages`` as wire bytes; the recorder and the reply or the error."""
    return _call(PUT_OBJECT, iter(messages), streaming=True)


def _header(size: int) -> bytes:
    header = objectstore_pb2.PutObjectHeader(bucket="b", key="k", expected_size=size)
    return objectstore_pb2.PutObjectRequest(header=header).SerializeToString()


def test_a_put_body_reaches_the_core_as_views_of_the_messages() -> None:
    body = os.urandom(2 * 1024 * 1024 + 5)
    pieces = [body[i : i + 1024 * 1024] for i in range(0, len(body), 1024 * 1024)]
    objects, reply = _put([_header(len(body)), *(data_message(p) for p in pieces)])
    assert isinstance(reply, common_pb2.ObjectInfo) and reply.size == len(body)
    assert all(isinstance(p, memoryview) for p in objects.pieces)
    assert b"".join(objects.pieces) == body


def test_a_data_message_protobuf_wrote_with_other_fields_is_still_parsed() -> None:
    """Not the one-field form (here the data field twice: protobuf keeps the last)."""
    odd = data_message(b"ignored") + data_message(b"kept")
    objects, reply = _put([_header(4), odd])
    assert isinstance(reply, common_pb2.ObjectInfo) and reply.size == 4
    assert [bytes(p) for p in objects.pieces] == [b"kept"]


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([_header(3), data_message(b"abc")[:-1]], "PutObject: the request does not decode"),
        ([data_message(b"abc")], "must begin with a header"),
        ([_header(6), data_message(b"abc"), _header(3)], "a second header"),
        ([_header(2), data_message(b"abc")], "announced 2 bytes but carried more"),
    ],
)
def test_a_malformed_body_message_is_refused_with_a_clear_error(
    messages: list[bytes], message: str
) -> None:
    _, reply = _put(messages)
    assert isinstance(reply, InvalidArgument)
    assert message in reply.message


# -- PutSmallObject: the header parsed, the data a view ----------------------------------------

PUT_SMALL = "/ringstore.v1.ObjectStore/PutSmallObject"


def _put_small(raw: bytes) -> tuple[Recorder, common_pb2.ObjectInfo | InvalidArgument]:
    return _call(PUT_SMALL, raw, streaming=False)


def _small(data: bytes, size: int | None = None, bucket: str = "b") -> bytes:
    """A PutSmallObjectRequest as the SDK writes it: the header, then the data."""
    header = objectstore_pb2.PutObjectHeader(
        bucket=bucket, key="k", expected_size=len(data) if size is None else size
    )
    head = objectstore_pb2.PutSmallObjectRequest(header=header)
    return data_message(data, head.SerializeToString(deterministic=True))


def test_a_small_put_reaches_the_core_as_a_view_with_its_header() -> None:
    data = os.urandom(1024 * 1024)
    objects, reply = _put_small(_small(data, bucket="bkt"))
    assert isinstance(reply, common_pb2.ObjectInfo) and reply.bucket == "bkt"
    assert reply.size == len(data)
    assert [type(p) for p in objects.pieces] == [memoryview]
    assert bytes(objects.pieces[0]) == data


def _header_field(size: int) -> bytes:
    header = objectstore_pb2.PutObjectHeader(bucket="b", key="k", expected_size=size)
    return objectstore_pb2.PutSmallObjectRequest(header=header).SerializeToString()


@pytest.mark.parametrize(
    "raw",
    [
        data_message(b"abc") + _header_field(3),  # the data before the header
        _header_field(3) + data_message(b"xy") + data_message(b"abc"),  # data twice: the last
        _header_field(3) + b"\x28\x07" + data_message(b"abc"),  # an unknown varint field 5
    ],
)
def test_a_small_put_of_another_shape_reads_as_protobuf_reads_it(raw: bytes) -> None:
    objects, reply = _put_small(raw)
    assert isinstance(reply, common_pb2.ObjectInfo) and reply.size == 3
    assert b"".join(bytes(p) for p in objects.pieces) == b"abc"
    assert objectstore_pb2.PutSmallObjectRequest.FromString(raw).data == b"abc"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_small(b"abc")[:-1], "PutSmallObject: the request does not decode"),
        (b"\x0a\x02\xff\xff" + data_message(b"abc"), "PutSmallObject: the request does not"),
        (_small(b"abc", size=4), "announced 4 bytes but carried 3"),
    ],
)
def test_a_malformed_small_put_is_refused_with_a_clear_error(raw: bytes, message: str) -> None:
    objects, reply = _put_small(raw)
    assert isinstance(reply, InvalidArgument)
    assert message in reply.message
    assert objects.pieces == []
