"""Protobuf wire bytes written by hand, for the one field that carries object bytes.

Every message that carries a body's bytes (PutObjectRequest, UploadPartRequest,
PutSmallObjectRequest, GetObjectResponse) has them in field 2, ``bytes data``. Writing that
message's bytes directly costs one copy of the piece; building the message object and
serializing it costs three, which made it the largest per-byte cost of the SDK on a put and of
the gateway on a get. The receiving side parses the bytes as the message, as ever: the wire
format is unchanged.
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
