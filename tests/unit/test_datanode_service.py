"""The Blob service end to end over a real channel: a grpc.aio server on 127.0.0.1, port 0, in
this process, over a disk store in a temporary directory."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from datanode.blobstore import SEGMENT_SIZE, BlobWriter, DiskBlobStore, crc32c, stored_size
from datanode.servicer import LIST_BATCH, BlobService
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.rpc import MAX_MESSAGE, insecure_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc
from tests.damage import evict, flip

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"
ID_C = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

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
        assert store.locate(ID_A) is not None  # acknowledged means stored

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
        flip(store, ID_A, SEGMENT_SIZE + 1)
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


def test_write_blobs_stores_or_refuses_each_blob_on_its_own(tmp_path: Path) -> None:
    from datanode.servicer import MAX_BATCH

    blobs = {f"{i:032x}": os.urandom(1000 + i) for i in range(5)}
    bad_crc, too_big = f"{98:032x}", f"{99:032x}"

    def item(blob_id: str, data: bytes, crc: int | None = None) -> blob_pb2.WriteBlobRequest:
        header = blob_pb2.PutBlobHeader(
            blob_id=blob_id, length=len(data), crc32c=crc32c(data) if crc is None else crc
        )
        return blob_pb2.WriteBlobRequest(header=header, data=data)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        items = [item(b, d) for b, d in blobs.items()]
        items.insert(2, item(bad_crc, b"payload", crc=1))
        items.append(item(too_big, b"x" * (MAX_MESSAGE + 1)))
        reply = await stub.WriteBlobs(blob_pb2.WriteBlobsRequest(blobs=items))
        codes = [r.error_code for r in reply.results]
        assert codes == ["", "", "BlobCorrupt", "", "", "", "InvalidArgument"]
        assert "use PutBlob" in reply.results[-1].error_message
        stored = [r.stored for r in reply.results if not r.error_code]
        assert [(s.blob_id, s.length) for s in stored] == [(b, len(d)) for b, d in blobs.items()]
        for blob_id, data in blobs.items():
            assert await get(stub, blob_id) == data
        assert sorted(s.blob_id for s in store.list()) == sorted(blobs)
        many = blob_pb2.WriteBlobsRequest(blobs=[items[0]] * (MAX_BATCH + 1))
        await expect_error(stub.WriteBlobs(many), grpc.StatusCode.INVALID_ARGUMENT,
                           "InvalidArgument")  # fmt: skip

    run(tmp_path, scenario)


def test_read_blobs_serves_or_refuses_each_read_on_its_own(tmp_path: Path) -> None:
    data = os.urandom(5000)
    corrupt_id = f"{7:032x}"

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await put(stub, ID_A, data)
        await put(stub, corrupt_id, data)
        flip(store, corrupt_id, 100)

        def read(blob_id: str, offset: int, length: int) -> blob_pb2.GetBlobRequest:
            return blob_pb2.GetBlobRequest(blob_id=blob_id, offset=offset, length=length)

        reads = [read(ID_A, 0, len(data)), read(ID_B, 0, 10), read(ID_A, 10, 20),
                 read(corrupt_id, 0, len(data)), read(ID_A, 0, 0),
                 read(ID_A, 4990, 20)]  # fmt: skip
        reply = await stub.ReadBlobs(blob_pb2.ReadBlobsRequest(reads=reads))
        assert [r.error_code for r in reply.results] == [
            "", "BlobNotFound", "", "BlobCorrupt", "InvalidArgument", "InvalidRange"
        ]  # fmt: skip
        assert reply.results[0].data == data and reply.results[2].data == data[10:30]
        assert store.usage().quarantined == 1
        many = blob_pb2.ReadBlobsRequest(reads=[reads[2]] * 65)
        await expect_error(stub.ReadBlobs(many), grpc.StatusCode.INVALID_ARGUMENT,
                           "InvalidArgument")  # fmt: skip
        big = blob_pb2.ReadBlobsRequest(reads=[read(ID_A, 0, MAX_MESSAGE)] * 3)
        await expect_error(stub.ReadBlobs(big), grpc.StatusCode.INVALID_ARGUMENT,
                           "InvalidArgument")  # fmt: skip

    run(tmp_path, scenario)


def test_read_blob_serves_one_message_verified(tmp_path: Path) -> None:
    data = os.urandom(SEGMENT_SIZE + 100)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await put(stub, ID_A, data)

        async def read(offset: int, length: int) -> bytes:
            request = blob_pb2.GetBlobRequest(blob_id=ID_A, offset=offset, length=length)
            return (await stub.ReadBlob(request)).data

        assert await read(0, len(data)) == data
        assert await read(SEGMENT_SIZE - 5, 10) == data[SEGMENT_SIZE - 5 : SEGMENT_SIZE + 5]
        for bad_length in (0, MAX_MESSAGE + 1):
            err = await expect_error(read(0, bad_length), grpc.StatusCode.INVALID_ARGUMENT,
                                     "InvalidArgument")  # fmt: skip
            assert "use GetBlob" in (err.details() or "")
        await expect_error(read(len(data), 1), grpc.StatusCode.OUT_OF_RANGE, "InvalidRange")
        request = blob_pb2.GetBlobRequest(blob_id=ID_B, length=1)
        await expect_error(stub.ReadBlob(request), grpc.StatusCode.NOT_FOUND, "BlobNotFound")
        flip(store, ID_A, SEGMENT_SIZE + 1)
        await expect_error(read(0, len(data)), grpc.StatusCode.DATA_LOSS, "BlobCorrupt")

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
    """A client that goes away mid-stream: the write is aborted, its temp file removed. (A blob
    too large for a volume, so that the write in progress shows as a file under tmp/.)"""

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        sent = asyncio.Event()
        release = asyncio.Event()

        async def stalls() -> AsyncIterator[blob_pb2.PutBlobRequest]:
            yield blob_pb2.PutBlobRequest(
                header=blob_pb2.PutBlobHeader(blob_id=ID_B, length=2 * 1024 * 1024, crc32c=0)
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


# -- ReplicateBlob, ListBlobs by prefix, Usage of a full node -------------------------------------

NOBODY = "127.0.0.1:1"  # nothing listens there

Nodes = Callable[[list[blob_pb2_grpc.BlobStub], list[DiskBlobStore], list[str]], Awaitable[None]]


def run_nodes(
    tmp_path: Path, count: int, scenario: Nodes, *, capacity: int = 0, full_reserve: int = 0
) -> None:
    """Start ``count`` Blob services, each over its own store; ``scenario(stubs, stores,
    addresses)``; stop them."""

    async def main() -> None:
        servers, channels, stubs, stores, addresses = [], [], [], [], []
        for i in range(count):
            store = DiskBlobStore(
                tmp_path / f"dn{i}", fsync=False, capacity=capacity, full_reserve=full_reserve
            )
            server, _, port = make_server("127.0.0.1:0")
            blob_pb2_grpc.add_BlobServicer_to_server(
                BlobService(store, scrubbed_bytes=lambda: 4242, source_timeout=5), server
            )
            await server.start()
            channel = insecure_channel(f"127.0.0.1:{port}")
            servers.append(server)
            channels.append(channel)
            stubs.append(blob_pb2_grpc.BlobStub(channel))
            stores.append(store)
            addresses.append(f"127.0.0.1:{port}")
        try:
            await scenario(stubs, stores, addresses)
        finally:
            for channel in channels:
                await channel.close(grace=None)
            for server in servers:
                await server.stop(grace=None)

    asyncio.run(main())


def replicate_request(
    blob_id: str, data: bytes, sources: list[str]
) -> blob_pb2.ReplicateBlobRequest:
    return blob_pb2.ReplicateBlobRequest(
        blob_id=blob_id, length=len(data), crc32c=crc32c(data), sources=sources
    )


def test_replicate_pulls_from_the_first_source_that_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(3).randbytes(3 * MAX_MESSAGE + 5)
    written: list[int] = []
    real_write = BlobWriter.write

    def recording_write(self: BlobWriter, piece: bytes) -> None:
        written.append(len(piece))
        real_write(self, piece)

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        target, _empty, holder = stubs
        await put(holder, ID_A, data)
        monkeypatch.setattr(BlobWriter, "write", recording_write)
        sources = [NOBODY, addresses[1], addresses[2]]  # unreachable, lacks it, has it
        reply = await target.ReplicateBlob(replicate_request(ID_A, data, sources), timeout=20)
        assert (reply.blob_id, reply.length, reply.crc32c) == (ID_A, len(data), crc32c(data))
        assert stores[0].locate(ID_A) is not None  # acknowledged means stored
        assert await get(target, ID_A) == data
        assert os.listdir(stores[0].root / "tmp") == []
        # Streamed piece by piece, never held whole.
        assert len(written) >= 4 and max(written) <= MAX_MESSAGE
        assert sum(written) == len(data)
        assert stores[1].usage().blob_count == 0  # the sources are only read

    run_nodes(tmp_path, 3, scenario)


def test_replicate_skips_a_source_serving_corrupt_data(tmp_path: Path) -> None:
    data = random.Random(4).randbytes(2 * SEGMENT_SIZE)

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        target, bad, good = stubs
        await put(bad, ID_A, data)
        await put(good, ID_A, data)
        flip(stores[1], ID_A, SEGMENT_SIZE + 7)
        request = replicate_request(ID_A, data, [addresses[1], addresses[2]])
        await target.ReplicateBlob(request, timeout=20)
        assert await get(target, ID_A) == data
        assert os.listdir(stores[0].root / "tmp") == []
        assert stores[1].usage().quarantined == 1  # the bad source quarantined its copy

    run_nodes(tmp_path, 3, scenario)


def test_replicate_fails_naming_every_source(tmp_path: Path) -> None:
    data = b"the real content"

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        target, other_content, _empty = stubs
        await put(other_content, ID_A, b"other content!!!")  # same length, other CRC
        sources = [NOBODY, addresses[1], addresses[2]]
        err = await expect_error(
            target.ReplicateBlob(replicate_request(ID_A, data, sources), timeout=20),
            grpc.StatusCode.UNAVAILABLE,
            "ServiceUnavailable",
        )
        details = err.details() or ""
        assert f"ReplicateBlob {ID_A}: no source could serve it" in details
        assert f"{NOBODY}: ServiceUnavailable" in details
        assert f"{addresses[1]}: BlobCorrupt" in details
        assert f"{addresses[2]}: BlobNotFound" in details
        assert stores[0].usage().blob_count == 0
        assert os.listdir(stores[0].root / "tmp") == []

    run_nodes(tmp_path, 3, scenario)


def test_replicate_of_a_blob_already_here_copies_nothing(tmp_path: Path) -> None:
    data = b"already here"

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        [target] = stubs
        await put(target, ID_A, data)
        reply = await target.ReplicateBlob(replicate_request(ID_A, data, [NOBODY]), timeout=20)
        assert (reply.blob_id, reply.length) == (ID_A, len(data))
        # Here with other content: blobs are immutable.
        request = replicate_request(ID_A, b"other", [NOBODY])
        err = await expect_error(
            target.ReplicateBlob(request, timeout=20),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert "immutable" in (err.details() or "")

    run_nodes(tmp_path, 1, scenario)


def test_replicate_replaces_a_corrupt_local_copy(tmp_path: Path) -> None:
    data = random.Random(5).randbytes(1000)

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        target, holder = stubs
        await put(target, ID_A, data)
        await put(holder, ID_A, data)
        flip(stores[0], ID_A, 0, mask=1)
        await target.ReplicateBlob(replicate_request(ID_A, data, [addresses[1]]), timeout=20)
        assert await get(target, ID_A) == data
        assert stores[0].usage().quarantined == 1

    run_nodes(tmp_path, 2, scenario)


@pytest.mark.parametrize(
    ("blob_id", "sources", "rule"),
    [
        ("ABC", [NOBODY], "must be 32 lowercase hex characters"),
        (ID_A, [], "sources must be one or more"),
        (ID_A, [NOBODY, ""], "sources must be one or more"),
    ],
)
def test_replicate_bad_requests(
    tmp_path: Path, blob_id: str, sources: list[str], rule: str
) -> None:
    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        request = blob_pb2.ReplicateBlobRequest(blob_id=blob_id, length=1, sources=sources)
        err = await expect_error(
            stubs[0].ReplicateBlob(request, timeout=20),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert rule in (err.details() or "")

    run_nodes(tmp_path, 1, scenario)


def test_full_node_refuses_put_and_replicate_until_a_delete(tmp_path: Path) -> None:
    size = stored_size(1000)
    data = random.Random(6).randbytes(1000)

    async def scenario(
        stubs: list[blob_pb2_grpc.BlobStub], stores: list[DiskBlobStore], addresses: list[str]
    ) -> None:
        target, holder = stubs
        await put(holder, ID_B, data)
        await put(target, ID_A, data)  # now less than the reserve is free on the target
        usage = await target.Usage(blob_pb2.UsageRequest())
        assert usage.disk_full
        assert usage.scrubbed_bytes == 4242
        err = await expect_error(
            put(target, ID_C, b"x"), grpc.StatusCode.RESOURCE_EXHAUSTED, "InsufficientStorage"
        )
        assert "the datanode is full" in (err.details() or "")
        await expect_error(
            target.ReplicateBlob(replicate_request(ID_B, data, [addresses[1]]), timeout=20),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "InsufficientStorage",
        )
        assert os.listdir(stores[0].root / "tmp") == []
        await target.DeleteBlob(blob_pb2.DeleteBlobRequest(blob_id=ID_A))
        assert not (await target.Usage(blob_pb2.UsageRequest())).disk_full
        await target.ReplicateBlob(replicate_request(ID_B, data, [addresses[1]]), timeout=20)
        assert await get(target, ID_B) == data

    run_nodes(tmp_path, 2, scenario, capacity=2 * size, full_reserve=size + 1)


def test_list_by_id_prefix(tmp_path: Path) -> None:
    ids = sorted(f"{i:02x}" + "0" * 30 for i in range(0, 256, 5))

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        await asyncio.to_thread(_fill, store, ids)

        async def listed(prefix: str) -> list[str]:
            request = blob_pb2.ListBlobsRequest(id_prefix=prefix)
            return [s.blob_id async for m in stub.ListBlobs(request) for s in m.blobs]

        assert await listed("") == ids
        assert await listed("a") == [i for i in ids if i.startswith("a")]
        assert await listed("af") == ["af" + "0" * 30]
        assert await listed("ae") == []
        err = await expect_error(listed("AF"), grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
        assert "must be 0 to 32 lowercase hex characters" in (err.details() or "")

    run(tmp_path, scenario)


def test_unary_write_blob(tmp_path: Path) -> None:
    data = random.Random(9).randbytes(5000)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        header = blob_pb2.PutBlobHeader(blob_id=ID_A, length=len(data), crc32c=crc32c(data))
        reply = await stub.WriteBlob(blob_pb2.WriteBlobRequest(header=header, data=data))
        assert (reply.blob_id, reply.length) == (ID_A, len(data))
        assert await get(stub, ID_A) == data
        bad = blob_pb2.PutBlobHeader(blob_id=ID_B, length=len(data), crc32c=crc32c(data) ^ 1)
        await expect_error(
            stub.WriteBlob(blob_pb2.WriteBlobRequest(header=bad, data=data)),
            grpc.StatusCode.DATA_LOSS,
            "BlobCorrupt",
        )
        short = blob_pb2.PutBlobHeader(blob_id=ID_C, length=len(data) + 1, crc32c=crc32c(data))
        await expect_error(
            stub.WriteBlob(blob_pb2.WriteBlobRequest(header=short, data=data)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert store.locate(ID_B) is None and store.locate(ID_C) is None
        assert list(store.list()) and [s.blob_id for s in store.list()] == [ID_A]

    run(tmp_path, scenario)


def test_cached_small_reads_take_no_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small blob in the page cache is read on the event loop (the hop to a thread cost more
    than the read); one that is not, or that fails, still takes the thread and its answer."""
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counting(fn: Callable[..., object], /, *args: object) -> object:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return await to_thread(fn, *args)

    data = os.urandom(5000)
    corrupt_id = f"{7:032x}"

    def read(blob_id: str, offset: int = 0, length: int = len(data)) -> blob_pb2.GetBlobRequest:
        return blob_pb2.GetBlobRequest(blob_id=blob_id, offset=offset, length=length)

    async def scenario(stub: blob_pb2_grpc.BlobStub, store: DiskBlobStore) -> None:
        for blob_id in (ID_A, ID_B, corrupt_id):
            await put(stub, blob_id, data)
        flip(store, corrupt_id, 100)
        monkeypatch.setattr(asyncio, "to_thread", counting)
        assert (await stub.ReadBlob(read(ID_A, 10, 20))).data == data[10:30]
        reply = await stub.ReadBlobs(blob_pb2.ReadBlobsRequest(reads=[read(ID_A), read(ID_B)]))
        assert [r.data for r in reply.results] == [data, data]
        assert hops == []
        reads = [read(ID_A), read(corrupt_id), read(ID_B, 4990, 20), read(ID_B, 1, 2)]
        reply = await stub.ReadBlobs(blob_pb2.ReadBlobsRequest(reads=reads))
        assert [r.error_code for r in reply.results] == ["", "BlobCorrupt", "InvalidRange", ""]
        assert reply.results[0].data == data and reply.results[3].data == data[1:3]
        assert hops == ["_read_many"]  # one hop for the two the cache could not serve
        assert store.usage().quarantined == 1
        if not evict(store, ID_A):
            pytest.skip("this filesystem keeps every page cached")
        hops.clear()
        assert (await stub.ReadBlob(read(ID_A, 10, 20))).data == data[10:30]
        assert hops == ["_read_whole"]

    run(tmp_path, scenario)
