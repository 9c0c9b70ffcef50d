"""ringstore.wire.take_bytes_field: a message's bytes field copied out of its wire bytes once,
the other fields left to parse as the message, equal to what protobuf itself decodes."""

from __future__ import annotations

import pytest

from ringstore.client.client import _small_reply
from ringstore.errors import ServiceUnavailable
from ringstore.v1 import common_pb2, objectstore_pb2
from ringstore.wire import take_bytes_field

DATA = objectstore_pb2.GetSmallObjectResponse.DATA_FIELD_NUMBER


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 1 << 20])
def test_the_field_and_the_rest_decode_as_protobuf_decodes_them(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"t" * (size % 256)
    reply = objectstore_pb2.GetSmallObjectResponse(
        info=common_pb2.ObjectInfo(bucket="b", key="k" * 200, size=size, etag="e"),
        range_first=3,
        range_length=size,
        whole=True,
        data=body,
    )
    rest, data = take_bytes_field(reply.SerializeToString(), DATA)
    assert data == body
    without = objectstore_pb2.GetSmallObjectResponse.FromString(rest)
    assert without.data == b""
    without.data = body
    assert without == reply


def test_fields_in_any_order_and_of_every_wire_type_are_kept() -> None:
    # data first, then a fixed64 (field 9), a fixed32 (field 10) and a varint: none of them
    # known to GetSmallObjectResponse, all kept in the rest as protobuf keeps unknown fields.
    wire = (
        b"\x2a\x03abc" + b"\x49" + b"\x01" * 8 + b"\x55" + b"\x02" * 4 + b"\x18\x05" + b"\x2a\x01z"
    )
    rest, data = take_bytes_field(wire, DATA)
    assert data == b"z"  # the last occurrence wins, as protobuf's parser decides
    assert rest == b"\x49" + b"\x01" * 8 + b"\x55" + b"\x02" * 4 + b"\x18\x05"
    assert objectstore_pb2.GetSmallObjectResponse.FromString(rest).range_length == 5


@pytest.mark.parametrize(
    "wire",
    [b"\x2a\x05abc", b"\x18", b"\x18\xff\xff", b"\x49\x01", b"\x1b", b"\x12\x80"],
)
def test_bytes_that_are_not_a_message_are_refused(wire: bytes) -> None:
    with pytest.raises(ValueError, match="protobuf"):
        take_bytes_field(wire, DATA)
    with pytest.raises(ServiceUnavailable, match="GetSmallObject reply is malformed"):
        _small_reply(wire)


@pytest.mark.parametrize("field", [2, 5, 15])
def test_a_data_message_of_any_small_field_number_parses(field: int) -> None:
    from ringstore.wire import data_message

    head = objectstore_pb2.GetSmallObjectResponse(range_length=3, whole=True).SerializeToString()
    wire = data_message(b"abc", head, field=field)
    rest, value = take_bytes_field(wire, field)
    assert value == b"abc" and rest == head
    if field == DATA:
        assert objectstore_pb2.GetSmallObjectResponse.FromString(wire).data == b"abc"


def test_a_field_number_past_one_tag_byte_is_refused() -> None:
    from ringstore.wire import data_message

    with pytest.raises(ValueError, match="field 16"):
        data_message(b"x", field=16)


def test_a_serialized_reply_is_sent_as_it_is_and_counted_by_its_body() -> None:
    from ringstore.metrics import body_bytes
    from ringstore.rpc import _passing
    from ringstore.wire import Serialized

    reply = Serialized(b"\x2a\x03abc", 3)
    encode = _passing(objectstore_pb2.GetSmallObjectResponse.SerializeToString)
    assert encode is not None and encode(reply) == b"\x2a\x03abc"
    assert body_bytes(reply) == 3
