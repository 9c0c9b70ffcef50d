"""A servicer may hand gRPC a reply already serialized (the gateway writes GetObject's data
messages with ringstore.wire.data_message): every handler's serializer sends ``bytes`` as they
are and serializes messages as before."""

from __future__ import annotations

import grpc

from ringstore.rpc import _guarded
from ringstore.v1 import objectstore_pb2
from ringstore.wire import data_message


async def _stream(request, context):  # type: ignore[no-untyped-def]
    yield data_message(b"abc")


def test_a_guarded_handler_sends_serialized_replies_as_they_are() -> None:
    rpc = grpc.unary_stream_rpc_method_handler(
        _stream,
        request_deserializer=objectstore_pb2.GetObjectRequest.FromString,
        response_serializer=objectstore_pb2.GetObjectResponse.SerializeToString,
    )
    guarded = _guarded("/ringstore.v1.ObjectStore/GetObject", rpc)
    assert guarded is not None
    wire = data_message(memoryview(b"abc"))
    assert guarded.response_serializer(wire) == wire
    reply = objectstore_pb2.GetObjectResponse(range_first=7)
    assert guarded.response_serializer(reply) == reply.SerializeToString()
    assert objectstore_pb2.GetObjectResponse.FromString(wire).data == b"abc"
