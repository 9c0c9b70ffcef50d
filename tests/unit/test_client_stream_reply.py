"""The SDK reads a streamed GetObject's messages without protobuf where it can: a data message's
bytes are copied out of the wire once (``_stream_reply``); anything else is parsed as ever."""

from __future__ import annotations

import os

import pytest
from google.protobuf.message import DecodeError

from ringstore.client.client import _stream_reply
from ringstore.v1 import common_pb2, objectstore_pb2


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300_000, 1024 * 1024])
def test_a_data_message_is_its_bytes(size: int) -> None:
    data = os.urandom(size)
    wire = objectstore_pb2.GetObjectResponse(data=data).SerializeToString()
    message, got = _stream_reply(wire)
    assert type(got) is bytes and got == data
    assert message is None or (size == 0 and message.WhichOneof("part") is None)


def test_the_info_message_is_parsed_with_its_first_data() -> None:
    sent = objectstore_pb2.GetObjectResponse(
        info=common_pb2.ObjectInfo(bucket="b", key="k", size=5),
        range_length=5,
        first_data=b"hello",
    )
    message, data = _stream_reply(sent.SerializeToString())
    assert message == sent
    assert data == b""  # the first bytes travel in first_data, read by get_object itself


def test_a_data_message_with_other_fields_still_yields_its_data() -> None:
    sent = objectstore_pb2.GetObjectResponse(data=b"body", range_first=7)
    message, data = _stream_reply(sent.SerializeToString())
    assert message == sent and data == b"body"


def test_bytes_that_are_no_message_fail_as_protobuf_fails() -> None:
    with pytest.raises(DecodeError):
        _stream_reply(b"\x12\x05ab")  # field 2 announces 5 bytes, carries 2
