"""The versioned on-disk format of one blob: the data, then a footer that lets any byte range be
verified without reading the rest.

Layout (all integers little-endian)::

    data                  length bytes
    segment table         one uint32 CRC32C per SEGMENT_SIZE segment of the data (the last may be
                          short; a zero-length blob has no segment)
    trailer (28 bytes)    uint64 length | uint32 CRC32C of the whole data | uint32 segment size |
                          uint16 format version | uint16 flags (0) | 4-byte magic |
                          uint32 CRC32C of the segment table and the 24 trailer bytes before it

The trailer sits at a fixed distance from the end of the file, so a reader finds it from the file
size alone. Its own checksum guards the table and every trailer field, so a flipped bit anywhere in
the footer is detected like one in the data. A reader that meets a format version it does not
know refuses the blob instead of guessing (and does not quarantine it: it is not corrupt).
"""

from __future__ import annotations

import dataclasses
import struct

from awscrt import checksums

from ringstore.errors import BlobCorrupt, InternalError

KiB = 1024
SEGMENT_SIZE = 256 * KiB  # bytes of data covered by one segment checksum
FORMAT_VERSION = 1
MAGIC = b"RSBL"
_TRAILER = struct.Struct("<QIIHH4sI")
TRAILER_SIZE = _TRAILER.size  # bytes
_CRC_SIZE = 4  # bytes of one segment checksum


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """The CRC32C of ``data`` (any buffer: the bulk path hands in views of its receive buffer),
    continuing from ``crc``. awscrt's, not google_crc32c's: as fast, it takes any buffer, and it
    releases the GIL, so a thread checksumming a blob does not stall the others."""
    return int(checksums.crc32c(data, crc))


def crc32c_combine(crc: int, next_crc: int, next_length: int) -> int:
    """The CRC32C of two runs of bytes from the CRC32C of each (``next_length``: bytes of the
    second), without reading them: a blob's whole CRC from its segments' CRCs."""
    return int(checksums.combine_crc32c(crc, next_crc, next_length))


def segment_count(length: int, segment_size: int = SEGMENT_SIZE) -> int:
    """How many segments a blob of ``length`` bytes has."""
    return -(-length // segment_size)


def stored_size(length: int) -> int:
    """Bytes a blob of ``length`` data bytes occupies in this format (data plus footer)."""
    return length + _CRC_SIZE * segment_count(length) + TRAILER_SIZE


@dataclasses.dataclass(frozen=True)
class Footer:
    """What a blob's footer says about its data."""

    length: int  # bytes of data
    crc32c: int  # CRC32C of the whole data
    segment_size: int  # bytes per segment
    segment_crcs: tuple[int, ...]  # CRC32C of each segment, in order

    def encode(self) -> bytes:
        """The footer's bytes, to append to the data."""
        table = struct.pack(f"<{len(self.segment_crcs)}I", *self.segment_crcs)
        head = _TRAILER.pack(
            self.length, self.crc32c, self.segment_size, FORMAT_VERSION, 0, MAGIC, 0
        )[: TRAILER_SIZE - _CRC_SIZE]
        return table + head + struct.pack("<I", crc32c(table + head))


def read_trailer(blob_id: str, file_size: int, trailer: bytes) -> tuple[int, int, int]:
    """Check the trailer of a ``file_size``-byte blob; return (length, crc32c, segment_size).

    Raises :class:`BlobCorrupt` when the trailer cannot be that of a well-formed blob, and
    :class:`InternalError` for a format version this code does not read."""
    if file_size < TRAILER_SIZE or len(trailer) != TRAILER_SIZE:
        raise BlobCorrupt(f"blob {blob_id}: file of {file_size} bytes is too short for a footer")
    length, whole, segment_size, version, _flags, magic, _crc = _TRAILER.unpack(trailer)
    if magic != MAGIC:
        raise BlobCorrupt(f"blob {blob_id}: footer magic is {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise InternalError(
            f"blob {blob_id}: on-disk format version {version} is not supported "
            f"(this datanode reads version {FORMAT_VERSION})"
        )
    if segment_size <= 0:
        raise BlobCorrupt(f"blob {blob_id}: footer segment size is {segment_size}")
    expected = length + _CRC_SIZE * segment_count(length, segment_size) + TRAILER_SIZE
    if expected != file_size:
        raise BlobCorrupt(
            f"blob {blob_id}: footer says {length} data bytes, which needs a {expected}-byte "
            f"file, but the file has {file_size} bytes"
        )
    return length, whole, segment_size


def table_span(length: int, segment_size: int) -> tuple[int, int]:
    """(position, size) in the file of the segment table of a blob of ``length`` bytes."""
    return length, _CRC_SIZE * segment_count(length, segment_size)


def decode(blob_id: str, file_size: int, table: bytes, trailer: bytes) -> Footer:
    """Decode and verify a footer read from a ``file_size``-byte blob file."""
    length, whole, segment_size = read_trailer(blob_id, file_size, trailer)
    (stored_crc,) = struct.unpack("<I", trailer[-_CRC_SIZE:])
    if crc32c(table + trailer[:-_CRC_SIZE]) != stored_crc:
        raise BlobCorrupt(f"blob {blob_id}: footer checksum mismatch")
    count = segment_count(length, segment_size)
    return Footer(length, whole, segment_size, struct.unpack(f"<{count}I", table))
