"""The S3 checksums against their published check values, and multipart combination."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway import checksums

CHECK = b"123456789"  # the input every CRC catalogue gives its check value for


@pytest.mark.parametrize(
    ("algorithm", "hex_digest"),
    [
        ("crc32", "cbf43926"),
        ("crc32c", "e3069283"),
        ("crc64nvme", "ae8b14860a799888"),
        ("sha1", hashlib.sha1(CHECK).hexdigest()),
        ("sha256", hashlib.sha256(CHECK).hexdigest()),
    ],
)
def test_check_values(algorithm: str, hex_digest: str) -> None:
    assert base64.b64decode(checksums.of_bytes(algorithm, CHECK)).hex() == hex_digest
    digest = checksums.CHECKSUMS[algorithm]()
    for piece in (CHECK[:4], CHECK[4:]):  # streamed in pieces: the same digest
        digest.update(piece)
    assert digest.digest().hex() == hex_digest


@pytest.mark.parametrize("algorithm", sorted(checksums.FULL_OBJECT_ALGORITHMS))
def test_combined_part_crcs_equal_the_whole_objects(algorithm: str) -> None:
    parts = [b"a" * 1000, b"bc" * 333, b"", b"tail"]
    combined = checksums.combine(
        algorithm, [(checksums.of_bytes(algorithm, p), len(p)) for p in parts]
    )
    assert combined == checksums.of_bytes(algorithm, b"".join(parts))


def test_composite_is_the_checksum_of_the_part_digests() -> None:
    parts = [b"one", b"two"]
    values = [checksums.of_bytes("sha256", p) for p in parts]
    expected = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert checksums.composite("sha256", values) == base64.b64encode(expected).decode()


@pytest.mark.parametrize("algorithm", sorted(checksums.CHECKSUMS))
def test_every_checksum_takes_a_view_of_a_message(algorithm: str) -> None:
    """The gRPC door hands a part's body on as views of the messages' wire bytes."""
    data = bytes(range(256)) * 40
    whole = checksums.CHECKSUMS[algorithm]()
    whole.update(data)
    viewed = checksums.CHECKSUMS[algorithm]()
    viewed.update(memoryview(b"\x12" + data)[1:5000])
    viewed.update(memoryview(data)[4999:])
    assert viewed.digest() == whole.digest()


def test_crc32_agrees_with_zlibs_on_large_bodies_in_any_pieces() -> None:
    # ISA-L computes it (gateway/checksums.py): the value must stay zlib's, byte for byte.
    import os
    import zlib

    body = os.urandom(3 * 1024 * 1024 + 17)
    digest = checksums.CHECKSUMS["crc32"]()
    for at in range(0, len(body), 700_001):
        digest.update(memoryview(body)[at : at + 700_001])
    assert digest.digest() == zlib.crc32(body).to_bytes(4, "big")
