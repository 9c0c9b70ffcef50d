"""The Blob service end to end over a real channel: a grpc.aio server on 127.0.0.1, port 0, in
this process, over a disk store in a temporary directory."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from datanode.blobstore import SEGMENT_SIZE, DiskBlobStore, crc32c
from datanode.servicer import LIST_BATCH, BlobService
from ringstore.errors import ERROR_CODE_KEY
from ringstore.rpc import MAX_MESSAGE, insecure_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"

Scenario = Callable[[blob_pb2_grpc.BlobStub, DiskBlobStore], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, capacity: int = 0) -> None:
    """Start the service over a fresh store, run ``scenario(stub, store)``, stop the service."""

    async def main() -> None:
        store = DiskBlobStore(tmp_path / "dn", capacity=capacity, fsync=False)
        server, _, port = make_server("127.0.0.1:0")
        blob_pb2_grpc.add_BlobServicer_to_server(BlobService(store), server)
        await server.start()
        channel = insecure_channel(f"127.0.0.1:{port}")
        try:
            await scenario(blob_pb2_grpc.BlobStub(channel), store)
        finally:
            await channel.close(grace=None)
            await server.stop(grace=None)

    asyncio.run(main())


async def put(
    stub: blob_pb2_grpc.BlobStub,
    blob_id: str,
    data: bytes,
    *,
    length: int | None = None,
    crc: int | None = None,
) -> blob_pb2.PutBlobResponse:
    header = blob_pb2.PutBlobHeader(
        blob_id=blob_id,
        length=len(data) if length is None else length,
        crc32c=crc32c(data) if crc is None else crc,
    )

    async def messages() -> AsyncIterator[blob_pb2.PutBlobRequest]:
        yield blob_pb2.PutBlobRequest(header=header)
        for start in range(0, len(data), MAX_MESSAGE):
            yield blob_pb2.PutBlobRequest(data=data[start : start + MAX_MESSAGE])

    return await stub.PutBlob(messages(), timeout=10)


async def get(
    stub: blob_pb2_grpc.BlobStub, blob_id: str, offset: int = 0, length: int = 0
) -> bytes:
    request = blob_pb2.GetBlobRequest(blob_id=blob_id, offset=offset, length=length)
    return b"".join([m.data async for m in stub.GetBlob(request, timeout=10)])


async def expect_error(
    call: Awaitable[object], status: grpc.StatusCode, code: str
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = info.value
    assert err.code() == status, err.details()
    assert (ERROR_CODE_KEY, code) in tuple(err.trailing_metadata() or ())
    return err


def test_put_get_stat_usage_delete(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(3 * MAX_MESSAGE + 17)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        reply = await put(stub, ID_A, data)
        assert (reply.blob_id, reply.length, reply.crc32c) == (ID_A, len(data), crc32c(data))
        assert store.blob_path(ID_A).exists()  # acknowledged means stored

        assert await get(stub, ID_A) == data
        offset = SEGMENT_SIZE - 3
        assert await get(stub, ID_A, offset, 2 * MAX_MESSAGE) == data[offset:][: 2 * MAX_MESSAGE]
        assert await get(stub, ID_A, len(data) - 5) == data[-5:]  # length 0: to the end
        pieces = [m.data async for m in stub.GetBlob(blob_pb2.GetBlobRequest(blob_id=ID_A))]
        assert max(len(p) for p in pieces) <= MAX_MESSAGE

        stat = await stub.StatBlob(blob_pb2.StatBlobRequest(blob_id=ID_A))
        assert (stat.blob_id, stat.length, stat.crc32c) == (ID_A, len(data), crc32c(data))
        assert stat.mtime_ns > 0

        usage = await stub.Usage(blob_pb2.UsageRequest())
        assert usage.blob_count == 1
        assert usage.used_bytes == store.usage().used_bytes > len(data)
        assert usage.capacity_bytes == store.usage().capacity_bytes

        assert (await stub.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=ID_A))).existed
        assert not (await stub.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=ID_A))).existed
        await expect_error(
            stub.StatBlob(blob_pb2.StatBlobRequest(blob_id=ID_A)),
            grpc.StatusCode.NOT_FOUND,
            "BlobNotFound",
        )
        assert (await stub.Usage(blob_pb2.UsageRequest())).blob_count == 0

    run(tmp_path, scenario)


def test_corrupt_blob_is_data_loss(tmp_path: Path) -> None:
    data = random.Random(2).randbytes(2 * SEGMENT_SIZE)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await put(stub, ID_A, data)
        with open(store.blob_path(ID_A), "r+b") as f:
            f.seek(SEGMENT_SIZE + 1)
            f.write(bytes([data[SEGMENT_SIZE + 1] ^ 0xFF]))
        err = await expect_error(get(stub, ID_A), grpc.StatusCode.DATA_LOSS, "BlobCorrupt")
        assert "segment 1" in (err.details() or "")
        assert list((store.root / "quarantine").iterdir())
        await expect_error(get(stub, ID_A), grpc.StatusCode.NOT_FOUND, "BlobNotFound")

    run(tmp_path, scenario)


def test_bad_puts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await expect_error(
            put(stub, ID_A, b"abc", crc=crc32c(b"abd")), grpc.StatusCode.DATA_LOSS, "BlobCorrupt"
        )
        await expect_error(
            put(stub, ID_A, b"abc", length=4), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"
        )
        err = await expect_error(
            put(stub, "../etc", b"x"), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"
        )
        assert "'../etc'" in (err.details() or "")

        async def no_header() -> AsyncIterator[blob_pb2.PutBlobRequest]:
            yield blob_pb2.PutBlobRequest(data=b"x")

        err = await expect_error(
            stub.PutBlob(no_header()), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"
        )
        assert "header" in (err.details() or "")

        async def oversized() -> AsyncIterator[blob_pb2.PutBlobRequest]:
            header = blob_pb2.PutBlobHeader(blob_id=ID_A, length=MAX_MESSAGE + 1, crc32c=0)
            yield blob_pb2.PutBlobRequest(header=header)
            yield blob_pb2.PutBlobRequest(data=bytes(MAX_MESSAGE + 1))

        await expect_error(
            stub.PutBlob(oversized()), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument"
        )
        assert list(store.list()) == []
        assert list((store.root / "tmp").iterdir()) == []

    run(tmp_path, scenario)


def test_insufficient_storage(tmp_path: Path) -> None:
    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await expect_error(
            put(stub, ID_A, bytes(2000)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "InsufficientStorage",
        )

    run(tmp_path, scenario, capacity=1000)


def test_out_of_range_get(tmp_path: Path) -> None:
    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await put(stub, ID_A, b"0123456789")
        await expect_error(get(stub, ID_A, 11), grpc.StatusCode.OUT_OF_RANGE, "InvalidRange")
        await expect_error(get(stub, ID_A, 5, 6), grpc.StatusCode.OUT_OF_RANGE, "InvalidRange")
        assert await get(stub, ID_A, 10) == b""

    run(tmp_path, scenario)


def test_list_in_batches(tmp_path: Path) -> None:
    ids = sorted(f"{i:032x}" for i in range(LIST_BATCH + 5))

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await asyncio.to_thread(_fill, store, ids)
        batches = [m async for m in stub.ListBlobs(blob_pb2.ListBlobsRequest())]
        assert [len(b.blobs) for b in batches] == [LIST_BATCH, 5]
        listed = [s for b in batches for s in b.blobs]
        assert [s.blob_id for s in listed] == ids
        assert all(s.length == 1 and s.crc32c == crc32c(b"x") for s in listed)
        old = [m async for m in stub.ListBlobs(blob_pb2.ListBlobsRequest(older_than_ns=1))]
        assert old == []

    run(tmp_path, scenario)


def _fill(store: DiskBlobStore, ids: list[str]) -> None:
    for blob_id in ids:
        with store.begin_write(blob_id, 1, crc32c(b"x")) as writer:
            writer.write(b"x")
            writer.commit()


@pytest.mark.parametrize("blob_id", ["", "ABC"])
def test_bad_id_on_every_call(tmp_path: Path, blob_id: str) -> None:
    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        bad = grpc.StatusCode.INVALID_ARGUMENT
        await expect_error(get(stub, blob_id), bad, "InvalidArgument")
        await expect_error(
            stub.StatBlob(blob_pb2.StatBlobRequest(blob_id=blob_id)), bad, "InvalidArgument"
        )
        await expect_error(
            stub.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=blob_id)), bad, "InvalidArgument"
        )

    run(tmp_path, scenario)


def test_abandoned_put_leaves_nothing(tmp_path: Path) -> None:
    """A client that goes away mid-stream: the write is aborted, its temp file removed."""

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        sent = asyncio.Event()
        release = asyncio.Event()

        async def stalls() -> AsyncIterator[blob_pb2.PutBlobRequest]:
            yield blob_pb2.PutBlobRequest(
                header=blob_pb2.PutBlobHeader(blob_id=ID_B, length=10, crc32c=0)
            )
            yield blob_pb2.PutBlobRequest(data=b"12345")
            sent.set()
            await release.wait()

        call = stub.PutBlob(stalls())
        await sent.wait()
        while not list((store.root / "tmp").iterdir()):  # the server has begun the write
            await asyncio.sleep(0.01)
        call.cancel()
        while list((store.root / "tmp").iterdir()):
            await asyncio.sleep(0.01)
        assert store.usage().blob_count == 0
        with pytest.raises(asyncio.CancelledError):
            await call

    run(tmp_path, scenario)
