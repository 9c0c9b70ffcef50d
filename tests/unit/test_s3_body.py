"""Request bodies of the S3 door: aws-chunked bodies as botocore encodes them (unsigned, with a
checksum trailer) and as AWS's published example signs them, and every digest checked before
the last byte reaches the core."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

botocore = pytest.importorskip("botocore")
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha256Checksum  # noqa: E402

from gateway import checksums  # noqa: E402
from gateway.s3 import body, sigv4  # noqa: E402
from gateway.s3.errors import (  # noqa: E402
    IncompleteBody,
    InvalidDigest,
    InvalidRequest,
    XAmzContentSHA256Mismatch,
)
from ringstore.errors import BadDigest, SignatureDoesNotMatch  # noqa: E402
from tests.unit.test_s3_sigv4 import (  # noqa: E402
    EXAMPLE_SIGNATURES,
    example_secret,
    example_streaming_request,
)

DATA = bytes(range(256)) * 300  # 76,800 bytes: several botocore chunks


def receiver(raw: bytes, piece: int = 1000) -> Any:
    """ASGI's receive over ``raw``, in pieces of ``piece`` bytes."""
    pieces = [raw[i : i + piece] for i in range(0, len(raw), piece)] or [b""]

    async def receive() -> dict[str, Any]:
        data = pieces.pop(0)
        return {"type": "http.request", "body": data, "more_body": bool(pieces)}

    return receive


def drain(stream: AsyncIterator[bytes], seen: list[bytes]) -> None:
    """Read ``stream`` to its end, keeping in ``seen`` what it handed on before any error."""

    async def run() -> None:
        async for piece in stream:
            seen.append(piece)

    asyncio.run(run())


def decode(raw: bytes, headers: dict[str, str], verified: sigv4.Verified) -> bytes:
    seen: list[bytes] = []
    drain(body.decoded(receiver(raw), headers, verified), seen)
    return b"".join(seen)


def botocore_trailer_body(data: bytes, checksum: Any = Crc32Checksum) -> bytes:
    name = "x-amz-checksum-" + ("crc32" if checksum is Crc32Checksum else "sha256")
    wrapped = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=checksum, checksum_name=name)
    return wrapped.read()


UNSIGNED_TRAILER = sigv4.Verified("k", sigv4.STREAMING_UNSIGNED_TRAILER)


@pytest.mark.parametrize(
    ("checksum", "name"), [(Crc32Checksum, "crc32"), (Sha256Checksum, "sha256")]
)
def test_botocore_unsigned_trailer_bodies_decode(checksum: Any, name: str) -> None:
    raw = botocore_trailer_body(DATA, checksum)
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-trailer": f"x-amz-checksum-{name}",
        "x-amz-decoded-content-length": str(len(DATA)),
    }
    assert decode(raw, headers, UNSIGNED_TRAILER) == DATA


def test_aws_chunked_hands_on_views_of_the_messages_never_copies() -> None:
    # Messages of 100,000 bytes over chunks of 65,536: most messages hold a chunk boundary.
    data = bytes(range(256)) * 4000
    wrapped = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32",
        chunk_size=65536,
    )  # fmt: skip
    raw = wrapped.read()
    messages = [raw[i : i + 100_000] for i in range(0, len(raw), 100_000)]
    seen: list[bytes | memoryview] = []

    async def run() -> None:
        async def stream() -> AsyncIterator[bytes]:
            for m in messages:
                yield m

        async for piece in body.aws_chunked(stream(), None, {}):
            seen.append(piece)

    asyncio.run(run())
    assert b"".join(seen) == data
    assert all(
        any(p is m or (isinstance(p, memoryview) and p.obj is m) for m in messages) for p in seen
    )


def test_a_trailer_checksum_mismatch_hands_on_no_complete_body() -> None:
    raw = botocore_trailer_body(DATA)
    corrupt = raw.replace(DATA[1000:1010], b"X" * 10, 1)
    headers = {"x-amz-trailer": "x-amz-checksum-crc32"}
    seen: list[bytes] = []
    with pytest.raises(BadDigest):
        drain(body.decoded(receiver(corrupt), headers, UNSIGNED_TRAILER), seen)
    assert len(b"".join(seen)) < len(DATA)


def test_a_wrong_decoded_length_is_refused() -> None:
    raw = botocore_trailer_body(DATA)
    headers = {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": "7"}
    with pytest.raises(IncompleteBody, match="7 bytes"):
        decode(raw, headers, UNSIGNED_TRAILER)


def test_a_truncated_chunked_body_is_refused() -> None:
    raw = botocore_trailer_body(DATA)
    with pytest.raises(IncompleteBody):
        decode(raw[: len(raw) // 2], {"x-amz-trailer": "x-amz-checksum-crc32"}, UNSIGNED_TRAILER)


def example_signed_body(data: bytes = b"a" * 66560) -> bytes:
    sizes = (65536, 1024, 0)
    out, offset = b"", 0
    for size, signature in zip(sizes, EXAMPLE_SIGNATURES, strict=True):
        out += f"{size:x};chunk-signature={signature}\r\n".encode()
        out += data[offset : offset + size] + b"\r\n"
        offset += size
    return out


def example_verified() -> sigv4.Verified:
    import datetime as dt

    now = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
    return asyncio.run(sigv4.verify(example_streaming_request(), example_secret, now))


def test_aws_signed_streaming_example_decodes() -> None:
    headers = dict(example_streaming_request().headers)
    assert decode(example_signed_body(), headers, example_verified()) == b"a" * 66560


def test_a_changed_byte_in_a_signed_chunk_is_refused_before_it_is_handed_on() -> None:
    headers = dict(example_streaming_request().headers)
    raw = bytearray(example_signed_body())
    raw[200] ^= 1  # inside the first chunk
    seen: list[bytes] = []
    with pytest.raises(SignatureDoesNotMatch):
        drain(body.decoded(receiver(bytes(raw)), headers, example_verified()), seen)
    assert seen == []  # a signed chunk goes on only once its signature holds


def test_signed_payload_hash_md5_and_checksum_headers() -> None:
    signed = sigv4.Verified("k", hashlib.sha256(DATA).hexdigest())
    md5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
    crc = base64.b64encode(zlib.crc32(DATA).to_bytes(4, "big")).decode()
    headers = {"content-md5": md5, "x-amz-checksum-crc32": crc}
    assert decode(DATA, headers, signed) == DATA
    with pytest.raises(XAmzContentSHA256Mismatch):
        decode(DATA + b"!", {}, signed)
    unsigned = sigv4.Verified("k", sigv4.UNSIGNED_PAYLOAD)
    with pytest.raises(BadDigest, match="Content-MD5"):
        decode(DATA + b"!", {"content-md5": md5}, unsigned)
    with pytest.raises(BadDigest, match="crc32"):
        decode(DATA + b"!", {"x-amz-checksum-crc32": crc}, unsigned)
    with pytest.raises(InvalidDigest):
        decode(DATA, {"content-md5": "not base64"}, unsigned)
    nvme = checksums.of_bytes("crc64nvme", DATA)
    assert decode(DATA, {"x-amz-checksum-crc64nvme": nvme}, unsigned) == DATA
    with pytest.raises(BadDigest, match="crc64nvme"):
        decode(DATA, {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="}, unsigned)
    with pytest.raises(InvalidRequest, match="crc7"):
        decode(DATA, {"x-amz-checksum-crc7": "AA=="}, unsigned)


BIG = bytes(range(256)) * 4096 * 3  # 3 MiB: pieces large enough to be hashed on threads


@pytest.mark.parametrize(
    ("headers", "payload_hash", "error"),
    [
        ({}, hashlib.sha256(BIG + b"!").hexdigest(), XAmzContentSHA256Mismatch),
        ({"content-md5": base64.b64encode(hashlib.md5(b"x").digest()).decode()}, "", BadDigest),
        ({"x-amz-checksum-crc32": checksums.of_bytes("crc32", b"x")}, "", BadDigest),
        ({"x-amz-checksum-sha256": checksums.of_bytes("sha256", b"x")}, "", BadDigest),
    ],
)
def test_a_large_body_that_fails_a_check_never_hands_on_its_last_byte(
    headers: dict[str, str], payload_hash: str, error: type[Exception]
) -> None:
    verified = sigv4.Verified("k", payload_hash or sigv4.UNSIGNED_PAYLOAD)
    seen: list[bytes] = []
    with pytest.raises(error):
        drain(body.decoded(receiver(BIG, 512 * 1024), headers, verified), seen)
    assert 0 < len(b"".join(seen)) < len(BIG)  # the core never saw a complete body


def test_a_large_body_passes_every_check_and_is_hashed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: set[int] = set()

    class Recording(checksums._Crc32):
        def update(self, data: bytes) -> None:
            threads.add(threading.get_ident())
            super().update(data)

    headers = {
        "content-md5": base64.b64encode(hashlib.md5(BIG).digest()).decode(),
        "x-amz-checksum-crc32": checksums.of_bytes("crc32", BIG),
    }
    monkeypatch.setitem(body.CHECKSUMS, "crc32", Recording)
    found = body.BodyChecksum()
    verified = sigv4.Verified("k", hashlib.sha256(BIG).hexdigest())
    seen: list[bytes] = []
    drain(body.decoded(receiver(BIG, 512 * 1024), headers, verified, found), seen)
    assert b"".join(seen) == BIG
    assert found.get() == ("CRC32", headers["x-amz-checksum-crc32"])
    assert threads and threading.get_ident() not in threads  # never on the loop's thread


def test_a_body_is_handed_to_the_hashing_threads_a_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every hand-off wakes a thread and then the event loop: 10 MiB in 512 KiB messages is three
    # jobs (4 + 4 + 2 MiB), not twenty, and the digests still see every byte in order.
    jobs: list[int] = []
    pool = body._hash_pool()

    class Counting:
        def submit(self, fn: Any, pieces: list[bytes], *args: Any) -> Any:
            jobs.append(sum(len(p) for p in pieces))
            return pool.submit(fn, pieces, *args)

    monkeypatch.setattr(body, "_hash_pool", Counting)
    data = bytes(range(256)) * 4096 * 10
    md5 = hashlib.md5()
    digests = body.Digests([md5])

    async def run() -> None:
        for at in range(0, len(data), 512 * 1024):
            await digests.update(data[at : at + 512 * 1024])
        await digests.settle()

    asyncio.run(run())
    assert jobs == [body.HASH_BATCH, body.HASH_BATCH, len(data) - 2 * body.HASH_BATCH]
    assert md5.digest() == hashlib.md5(data).digest()
    jobs.clear()
    small = body.Digests([hashlib.md5()])
    asyncio.run(small.update(b"x" * 1000))
    asyncio.run(small.settle())
    assert jobs == []  # a small body is hashed at once, on the loop


@pytest.mark.parametrize("headers", [{}, {"content-md5": "MD5"}])
def test_the_body_md5_is_hashed_with_the_checks_and_given_only_once_they_all_held(
    headers: dict[str, str],
) -> None:
    if headers:
        headers = {"content-md5": base64.b64encode(hashlib.md5(BIG).digest()).decode()}
    verified = sigv4.Verified("k", hashlib.sha256(BIG).hexdigest())
    found = body.BodyChecksum()
    seen: list[bytes] = []
    # The core asks for the MD5 (its ETag) once it has read the body whole: the MD5 is known
    # by then, and the one Content-MD5 was checked against (it is never hashed twice).
    md5_when_whole: list[str] = []

    async def run() -> None:
        async for piece in body.decoded(receiver(BIG, 512 * 1024), headers, verified, found):
            seen.append(piece)
            if sum(map(len, seen)) < len(BIG):
                assert found.md5 == ""  # not before the last byte's checks held
        md5_when_whole.append(found.md5)

    asyncio.run(run())
    assert md5_when_whole == [hashlib.md5(BIG).hexdigest()]
    wrong = sigv4.Verified("k", hashlib.sha256(b"x").hexdigest())
    failed = body.BodyChecksum()
    with pytest.raises(XAmzContentSHA256Mismatch):
        drain(body.decoded(receiver(BIG, 512 * 1024), {}, wrong, failed), [])
    assert failed.md5 == ""
