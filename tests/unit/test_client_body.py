"""How the SDK turns a put's ``data`` into 1 MiB messages without buffering it whole."""

from __future__ import annotations

import io

import pytest

from ringstore.client.body import PIECE, Body, data_message
from ringstore.errors import InvalidArgument
from ringstore.v1 import objectstore_pb2


def test_bytes_are_cut_into_pieces_and_replayable() -> None:
    data = bytes(range(256)) * (PIECE // 256 * 2 + 3)
    body = Body(data)
    assert body.replayable
    first = list(body.pieces())
    assert [len(p) for p in first] == [PIECE, PIECE, 768]
    assert b"".join(first) == data
    assert list(body.pieces()) == first


def test_memoryview_and_bytearray() -> None:
    assert b"".join(Body(memoryview(b"abc")).pieces()) == b"abc"
    assert b"".join(Body(bytearray(b"abc")).pieces()) == b"abc"
    assert list(Body(b"").pieces()) == []


def test_seekable_file_replays_from_where_it_was() -> None:
    f = io.BytesIO(b"skip" + b"x" * 10)
    f.read(4)
    body = Body(f)
    assert body.replayable
    assert b"".join(body.pieces()) == b"x" * 10
    assert b"".join(body.pieces()) == b"x" * 10


def test_iterable_is_rechunked_and_one_shot() -> None:
    body = Body(iter([b"a" * (PIECE - 1), b"bb", b"", b"c"]))
    assert not body.replayable
    pieces = list(body.pieces())
    assert [len(p) for p in pieces] == [PIECE, 2]
    with pytest.raises(InvalidArgument, match="one-shot"):
        list(body.pieces())


@pytest.mark.parametrize(("data", "message"), [("text", "got str"), (42, "got int")])
def test_bad_data(data: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Body(data)


def test_iterable_of_wrong_items() -> None:
    with pytest.raises(InvalidArgument, match="yielded str"):
        list(Body(["a"]).pieces())


def test_text_file_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="binary mode"):
        list(Body(io.StringIO("abc")).pieces())


def test_size_is_known_only_for_bytes_like_bodies() -> None:
    import array

    assert Body(b"abc").size == 3
    assert Body(memoryview(array.array("i", [1, 2]))).size == 8
    assert Body(io.BytesIO(b"abc")).size == -1
    assert Body(iter([b"a"])).size == -1


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, PIECE])
def test_data_message_is_the_serialized_request(size: int) -> None:
    piece = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    for request in (objectstore_pb2.PutObjectRequest, objectstore_pb2.UploadPartRequest):
        wire = data_message(memoryview(piece))
        parsed = request.FromString(wire)
        assert parsed.WhichOneof("part") == "data"
        assert parsed.data == piece
        if size:  # proto3 leaves an empty field out; data_message writes it (both parse alike)
            assert wire == request(data=piece).SerializeToString(deterministic=True)


def test_data_message_follows_the_other_fields() -> None:
    header = objectstore_pb2.PutObjectHeader(bucket="b", key="k", expected_size=3)
    head = objectstore_pb2.PutSmallObjectRequest(header=header).SerializeToString()
    parsed = objectstore_pb2.PutSmallObjectRequest.FromString(data_message(b"abc", head))
    assert (parsed.header, parsed.data) == (header, b"abc")


def test_views_do_not_copy_a_bytes_like_body() -> None:
    data = bytearray(b"x" * (PIECE + 5))
    views = list(Body(data).views())
    data[0] = ord("y")
    data[PIECE] = ord("y")
    assert [bytes(v[:1]) for v in views] == [b"y", b"y"]
    assert [len(v) for v in views] == [PIECE, 5]
