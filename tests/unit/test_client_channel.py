"""The SDK's channel takes a request as a message or as its serialized bytes, signed or not:
the SDK serializes a put's data messages itself (ringstore.client.body.data_message). Signed
calls have always passed bytes through (the signer hashes the serialized request); this is
the unsigned (anonymous) channel."""

from __future__ import annotations

from typing import Any

from ringstore.client.credentials import signing_channel
from ringstore.v1 import objectstore_pb2


class RecordingChannel:
    """Hands back the serializer a stub asked for, in place of a multicallable."""

    def stream_unary(self, method: str, request_serializer: Any = None, **kw: Any) -> Any:
        return request_serializer


def test_an_unsigned_stub_passes_serialized_requests_through() -> None:
    channel = signing_channel(RecordingChannel(), None)  # type: ignore[arg-type]
    serialize = channel.stream_unary("/m", objectstore_pb2.PutObjectRequest.SerializeToString)
    assert serialize(b"\x12\x01x") == b"\x12\x01x"
    message = objectstore_pb2.PutObjectRequest(data=b"x")
    assert serialize(message) == message.SerializeToString()
