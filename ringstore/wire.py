"""Protobuf wire bytes written by hand, for the one field that carries object bytes.

Every message that carries a body's bytes (PutObjectRequest, UploadPartRequest,
PutSmallObjectRequest, GetObjectResponse) has them in field 2, ``bytes data``. Writing that
message's bytes directly costs one copy of the piece; building the message object and
serializing it costs three, which made it the largest per-byte cost of the SDK on a put and of
the gateway on a get. The receiving side parses the bytes as the message, as ever: the wire
format is unchanged. The gateway takes the body messages of a put without protobuf
(:func:`data_field`): parsing one copies its data into the message and every read of the field
copies it out again.
"""

from __future__ import annotations

DATA_TAG = b"\x12"  # field 2 (``data``), length-delimited


def data_message(piece: bytes | memoryview, before: bytes = b"") -> bytes:
    """The wire bytes of a message whose ``data`` (field 2) is ``piece``, after ``before``
    (the message's other fields, serialized), made with one copy of the piece."""
    n = len(piece)
    length = bytearray()
    while n > 0x7F:
        length.append(0x80 | (n & 0x7F))
        n >>= 7
    length.append(n)
    return b"".join((before, DATA_TAG, length, piece))


def data_field(raw: bytes) -> memoryview | None:
    """The ``data`` (field 2) of the message whose wire bytes are ``raw``, as a view of them
    (no copy), when that field is all the message holds; None for any other message, which the
    caller parses as protobuf (and which fails there if it is malformed). A message cut short
    or longer than its one field says is "any other": it never yields a view."""
    fields = length_fields(raw)
    if fields is None or list(fields) != [2]:
        return None
    return fields[2]


def length_fields(raw: bytes) -> dict[int, memoryview] | None:
    """The fields of the message whose wire bytes are ``raw``, by number, as views of them,
    when every field is length-delimited and appears once; None otherwise (a field of another
    wire type or repeated, or bytes that do not parse), for the caller to parse as protobuf."""
    fields: dict[int, memoryview] = {}
    at = 0
    while at < len(raw):
        key, at = _varint(raw, at)
        if key < 0 or key & 7 != 2 or (key >> 3) in fields:
            return None
        length, at = _varint(raw, at)
        if length < 0 or at + length > len(raw):
            return None
        fields[key >> 3] = memoryview(raw)[at : at + length]
        at += length
    return fields


def _varint(raw: bytes, at: int) -> tuple[int, int]:
    """The varint at ``raw[at]`` and where it ends; (-1, at) when it is cut or too long."""
    value = shift = 0
    for end in range(at, min(len(raw), at + 10)):  # a varint of at most 10 bytes
        byte = raw[end]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, end + 1
        shift += 7
    return -1, at
