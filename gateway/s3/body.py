"""Request bodies of the S3 door: decoded, and every digest the client sent checked, as they
stream into the core.

Guarantees:

- Bounded memory: bytes pass through as they arrive; ``aws-chunked`` decoding holds at most one
  chunk header line and the bytes of one network read.
- Every check the request asks for runs over the decoded bytes: the signed payload hash
  (``x-amz-content-sha256`` as hex), the chunk signatures of a signed streaming body,
  ``Content-MD5``, an ``x-amz-checksum-*`` value in a header or in the trailer, and
  ``x-amz-decoded-content-length``. A failed check raises *before the last byte is handed
  on*, so the core never sees a complete body and stores nothing (its put discards the chunks
  it wrote). Large pieces are hashed on threads (:class:`Digests`), but the last piece waits
  for every digest of every byte before it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from gateway.checksums import CHECKSUMS, Digest
from gateway.s3 import sigv4
from gateway.s3.errors import (
    IncompleteBody,
    InvalidDigest,
    InvalidRequest,
    XAmzContentSHA256Mismatch,
)
from ringstore.errors import BadDigest, SignatureDoesNotMatch

MAX_CHUNK_LINE = 4096  # bytes an aws-chunked size line or trailer line may hold
MAX_TRAILER_BYTES = 16 * 1024  # bytes of trailing headers in an aws-chunked body
HASH_IN_THREAD_MIN = 128 * 1024  # bytes: a batch this large is hashed off the event loop
HASH_THREADS = 2  # threads hashing large pieces, shared by every body (one piece per body)
HASH_BATCH = 4 * 1024 * 1024  # bytes of a body handed to a hashing thread at once


CHECKSUM_HEADER = "x-amz-checksum-"


Receiver = Callable[[], Awaitable[MutableMapping[str, Any]]]  # ASGI's receive


@dataclass
class BodyChecksum:
    """The ``x-amz-checksum-*`` a body was verified against, and the body's MD5: set once the
    whole body has been read and every check held (a value in a trailer is known only then).
    The MD5 (the object's ETag) is hashed with the other digests, in the same thread job per
    message, so the core need not hash the body again (:func:`gateway.ingest.store_body`)."""

    algorithm: str = ""  # as S3 names it: CRC32, CRC32C, CRC64NVME, SHA1, SHA256
    value: str = ""  # base64
    md5: str = ""  # hex

    def get(self) -> tuple[str, str] | None:
        """(algorithm, value), or None when the body carried no checksum (or is not read)."""
        return (self.algorithm, self.value) if self.value else None


async def raw_body(receive: Receiver) -> AsyncIterator[bytes]:
    """The bytes of an ASGI request body, message by message."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody("the client closed the connection before the body ended")
        data = message.get("body", b"")
        if data:
            yield data
        if not message.get("more_body", False):
            return


class _Bytes:
    """A pull reader over a stream of byte strings: lines and exact counts.

    The bytes are never copied but to join a line cut between two messages: a count comes out
    as views of the messages it spans (each ``aws-chunked`` chunk boundary inside a message
    used to copy the rest of the message two or three times)."""

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream
        self._data = b""  # the message being read
        self._at = 0  # where in it

    def _left(self) -> int:
        return len(self._data) - self._at

    async def _fill(self) -> bool:
        try:
            message = await self._stream.__anext__()
        except StopAsyncIteration:
            return False
        self._data = self._data[self._at :] + message if self._left() else message
        self._at = 0
        return True

    async def line(self) -> bytes:
        while (end := self._data.find(b"\r\n", self._at)) < 0:
            if self._left() > MAX_CHUNK_LINE:
                raise IncompleteBody("an aws-chunked line is longer than any valid one")
            if not await self._fill():
                raise IncompleteBody("the aws-chunked body ended inside a line")
        line = self._data[self._at : end]
        self._at = end + 2
        return line

    async def pieces(self, count: int) -> AsyncIterator[bytes | memoryview]:
        """Exactly ``count`` bytes, as they arrive (views of the messages)."""
        while count:
            if not self._left() and not await self._fill():
                raise IncompleteBody("the aws-chunked body ended inside a chunk")
            take = min(count, self._left())
            if take == len(self._data):
                piece: bytes | memoryview = self._data  # a whole message, as it came
            else:
                piece = memoryview(self._data)[self._at : self._at + take]
            self._at += take
            count -= take
            yield piece

    async def at_end(self) -> bool:
        return not self._left() and not await self._fill()


async def aws_chunked(
    stream: AsyncIterator[bytes],
    signer: sigv4.ChunkSigner | None,
    trailers: dict[str, str],
) -> AsyncIterator[bytes | memoryview]:
    """Decode an ``aws-chunked`` body; with ``signer``, check each chunk's signature (and the
    trailer's). Trailing headers are put in ``trailers`` before the last byte is yielded."""
    reader = _Bytes(stream)
    while True:
        line = (await reader.line()).decode("latin-1")
        size_text, _, ext = line.partition(";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise IncompleteBody(f"aws-chunked size line {line[:80]!r} is not hex") from None
        signature = ""
        if ext.startswith("chunk-signature="):
            signature = ext.removeprefix("chunk-signature=")
        if signer is not None and not signature:
            raise SignatureDoesNotMatch("a chunk of a signed streaming body has no signature")
        digest = hashlib.sha256() if signer is not None else None
        held: list[bytes | memoryview] = []
        async for piece in reader.pieces(size):
            if digest is not None:
                digest.update(piece)
                held.append(piece)  # a signed chunk is checked before its bytes go on
            else:
                yield piece
        if signer is not None and digest is not None:
            signer.check_chunk(signature, digest.hexdigest())
            for piece in held:
                yield piece
        if size == 0:
            await _trailer(reader, signer, trailers)
            return
        if await reader.line() != b"":
            raise IncompleteBody("an aws-chunked chunk is longer than its size line says")


async def _trailer(
    reader: _Bytes, signer: sigv4.ChunkSigner | None, trailers: dict[str, str]
) -> None:
    canonical = ""
    total = 0
    while True:
        if await reader.at_end():
            break  # a body may end right after the last chunk's line
        line = (await reader.line()).decode("latin-1")
        total += len(line)
        if not line or total > MAX_TRAILER_BYTES:
            break
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            if signer is None:
                raise InvalidRequest("a trailer signature in an unsigned body")
            signer.check_trailer(value.strip(), canonical)
            continue
        trailers[name] = value.strip()
        canonical += f"{name}:{value.strip()}\n"


async def checked(
    stream: AsyncIterator[bytes | memoryview],
    headers: Mapping[str, str],
    payload_hash: str,
    trailers: Mapping[str, str],
    found: BodyChecksum | None = None,
) -> AsyncIterator[bytes | memoryview]:
    """``stream`` with every digest the request declares checked at its end (module docstring).
    ``trailers`` is filled by the decoder by the time the stream ends; ``found`` receives the
    x-amz-checksum-* value once it has been verified, and the body's MD5."""
    sha256 = hashlib.sha256() if _is_hex_sha256(payload_hash) else None
    md5_expected = _content_md5(headers.get("content-md5"))
    md5 = hashlib.md5() if md5_expected is not None or found is not None else None
    algorithm = checksum_algorithm(headers)
    checksum = CHECKSUMS[algorithm]() if algorithm else None
    decoded_length = headers.get("x-amz-decoded-content-length")
    digests = Digests([d for d in (sha256, md5, checksum) if d is not None])
    size = 0
    held: bytes | memoryview = b""  # the last piece waits until every check has passed
    async for piece in stream:
        if held:
            yield held
        await digests.update(piece)
        size += len(piece)
        held = piece
    await digests.settle()
    if sha256 is not None and sha256.hexdigest() != payload_hash:
        raise XAmzContentSHA256Mismatch(
            f"the body's SHA-256 {sha256.hexdigest()} is not the x-amz-content-sha256 signed, "
            f"{payload_hash}"
        )
    if md5_expected is not None and md5 is not None and md5.digest() != md5_expected:
        raise BadDigest("the Content-MD5 you specified did not match what we received")
    if algorithm and checksum is not None:
        name = CHECKSUM_HEADER + algorithm
        expected = headers.get(name) or trailers.get(name)
        if expected is None:
            raise InvalidRequest(f"{name} was announced but neither sent as a header nor trailer")
        if base64.b64encode(checksum.digest()).decode() != expected:
            raise BadDigest(f"the {name} you specified did not match what we received")
        if found is not None:
            found.algorithm, found.value = algorithm.upper(), expected
    if decoded_length is not None and decoded_length.isdigit() and int(decoded_length) != size:
        raise IncompleteBody(
            f"x-amz-decoded-content-length says {decoded_length} bytes, the body held {size}"
        )
    if found is not None and md5 is not None:
        found.md5 = md5.hexdigest()
    if held:
        yield held


class Digests:
    """Digests fed with a body in order. A body is handed to :data:`HASH_THREADS` threads
    shared by every body, which SHA-256, MD5 and the CRCs run on without the GIL, a batch of
    :data:`HASH_BATCH` bytes at a time: the event loop goes on receiving bodies and sending
    chunks meanwhile, where hashing inline would stall it (SHA-256 alone costs about 1 ms per
    MiB here). A batch, not a message: each hand-off wakes a thread and then the event loop,
    and those wake-ups cost the gateway more than anything but the hashing itself (bench/
    RESULTS.md, "Issue 13: fewer wake-ups per MiB"). One batch of a body is hashed at a time,
    so the digests see the bytes in order; :meth:`settle` hashes what is left and waits for it
    (a batch of less than :data:`HASH_IN_THREAD_MIN` bytes, a small body or the last bytes of
    one, is hashed at once, on the loop)."""

    def __init__(self, digests: list[Digest]) -> None:
        self.digests = digests
        self._pending: asyncio.Future[None] | None = None
        self._batch: list[bytes | memoryview] = []  # pieces not handed to a thread yet
        self._batched = 0  # their bytes

    def _update(self, pieces: list[bytes | memoryview]) -> None:
        for piece in pieces:
            for d in self.digests:
                d.update(piece)

    async def update(self, piece: bytes | memoryview) -> None:
        if not self.digests:
            return
        self._batch.append(piece)
        self._batched += len(piece)
        if self._batched >= HASH_BATCH:
            await self._hand_on()

    async def _hand_on(self) -> None:
        batch, size = self._batch, self._batched
        self._batch, self._batched = [], 0
        await self._wait()
        if size < HASH_IN_THREAD_MIN:
            self._update(batch)
            return
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(_hash_pool(), self._update, batch)

    async def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def settle(self) -> None:
        """Wait until every piece fed so far is hashed."""
        if self._batch:
            await self._hand_on()
        await self._wait()


_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _hash_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(HASH_THREADS, "s3-digests")
    return _pool


def checksum_algorithm(headers: Mapping[str, str]) -> str:
    """The x-amz-checksum-* algorithm a request declares (in a header or in x-amz-trailer), or
    "" for none; an algorithm we cannot verify is refused rather than stored unchecked."""
    names = [h.removeprefix(CHECKSUM_HEADER) for h in headers if h.startswith(CHECKSUM_HEADER)]
    names = [n for n in names if n not in ("algorithm", "type", "mode")]
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    if trailer.startswith(CHECKSUM_HEADER):
        names.append(trailer.removeprefix(CHECKSUM_HEADER))
    if not names:
        return ""
    if len(set(names)) > 1:
        raise InvalidRequest("a request may carry one x-amz-checksum-* value, not several")
    if names[0] not in CHECKSUMS:
        raise InvalidRequest(
            f"x-amz-checksum-{names[0]} is not supported; use one of {', '.join(sorted(CHECKSUMS))}"
        )
    return names[0]


def _is_hex_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise InvalidDigest(f"Content-MD5 {value[:60]!r} is not the base64 of 16 bytes")
    return digest


def decoded(
    receive: Receiver,
    headers: Mapping[str, str],
    verified: sigv4.Verified,
    found: BodyChecksum | None = None,
) -> AsyncIterator[bytes | memoryview]:
    """The request's body as the object's bytes, every declared digest checked (``found``
    receives the verified x-amz-checksum-* and the body's MD5)."""
    raw = raw_body(receive)
    stream: AsyncIterator[bytes | memoryview] = raw
    trailers: dict[str, str] = {}
    if verified.payload_hash in sigv4.STREAMING_MODES:
        if verified.payload_hash != sigv4.STREAMING_UNSIGNED_TRAILER and verified.signer is None:
            raise InvalidRequest("a signed streaming body needs a header-signed request")
        stream = aws_chunked(raw, verified.signer, trailers)
    return checked(stream, headers, verified.payload_hash, trailers, found)
