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

from dataclasses import dataclass

DATA_TAG = b"\x12"  # field 2 (``data``), length-delimited


def data_message(piece: bytes | memoryview, before: bytes = b"", *, field: int = 2) -> bytes:
    """The wire bytes of a message whose ``data`` (field 2, or ``field``: at most 15) is
    ``piece``, after ``before`` (the message's other fields, serialized), made with one copy of
    the piece."""
    if not 1 <= field <= 15:
        raise ValueError(f"field {field}: a one-byte tag holds field numbers 1 to 15")
    n = len(piece)
    length = bytearray()
    while n > 0x7F:
        length.append(0x80 | (n & 0x7F))
        n >>= 7
    length.append(n)
    tag = DATA_TAG if field == 2 else bytes(((field << 3) | 2,))
    return b"".join((before, tag, length, piece))


@dataclass(frozen=True, slots=True)
class Serialized:
    """A reply, or a message of a reply stream, already in its wire bytes (:func:`data_message`),
    with the number of body bytes it carries: the gRPC server sends ``wire`` as it is
    (``ringstore.rpc``), the metrics count ``body`` (``ringstore.metrics.body_bytes``) without
    copying the field to measure it."""

    wire: bytes
    body: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("a truncated or overlong varint in a protobuf message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def take_bytes_field(buf: bytes, number: int) -> tuple[bytes, bytes]:
    """Split a message's wire bytes into (its other fields, the value of its ``bytes`` field
    ``number``), copying the value once: parsing the whole message and reading the field
    copies it twice. ``b""`` for an absent field; the last one when repeated (protobuf's
    rule). Raises ValueError for bytes that are not a message."""
    view = memoryview(buf)
    rest: list[memoryview] = []
    value = b""
    pos, end = 0, len(buf)
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos)
        kind = key & 7
        if kind == 0:
            _, pos = _varint(buf, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            size, pos = _varint(buf, pos)
            if key >> 3 == number and pos + size <= end:
                value = bytes(view[pos : pos + size])
                pos += size
                continue
            pos += size
        else:
            raise ValueError(f"protobuf wire type {kind} is not one this decoder reads")
        if pos > end:
            raise ValueError("a field runs past the end of the protobuf message")
        rest.append(view[start:pos])
    return b"".join(rest), value


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
    try:
        while at < len(raw):
            key, at = _varint(raw, at)
            if key & 7 != 2 or (key >> 3) in fields:
                return None
            length, at = _varint(raw, at)
            if at + length > len(raw):
                return None
            fields[key >> 3] = memoryview(raw)[at : at + length]
            at += length
    except ValueError:  # a varint cut short or too long
        return None
    return fields
