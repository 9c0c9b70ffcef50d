"""A read never waits for a write's fsync: writes and their group fdatasync run in the
datanode's own write threads (datanode.writes), reads in the event loop's default executor.

The fsync is a fake that blocks until released, and the default executor has one thread: a
read completes while the write is stuck in its fsync, which cannot happen if the write holds
that thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from pathlib import Path

import pytest

from datanode.blobstore import DiskBlobStore, crc32c
from datanode.servicer import BlobService
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc

GIVE_UP = 20  # seconds: only a hang (the old behaviour) ever reaches it


def write_request(blob_id: str, data: bytes) -> blob_pb2.WriteBlobRequest:
    header = blob_pb2.PutBlobHeader(blob_id=blob_id, length=len(data), crc32c=crc32c(data))
    return blob_pb2.WriteBlobRequest(header=header, data=data)


def test_a_read_completes_while_a_write_waits_for_its_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncing, release = threading.Event(), threading.Event()
    real_fdatasync = os.fdatasync

    def stuck_fdatasync(fd: int) -> None:
        syncing.set()
        release.wait()
        real_fdatasync(fd)

    async def main() -> None:
        default = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        asyncio.get_running_loop().set_default_executor(default)
        store = DiskBlobStore(tmp_path / "dn", fsync=True)
        server, _, port = make_server("127.0.0.1:0")
        blob_pb2_grpc.add_BlobServicer_to_server(BlobService(store), server)
        await server.start()
        channel = insecure_channel(f"127.0.0.1:{port}")
        stub = blob_pb2_grpc.BlobStub(channel)
        try:
            await stub.WriteBlob(write_request("a" * 32, b"old"), timeout=GIVE_UP)
            monkeypatch.setattr(os, "fdatasync", stuck_fdatasync)
            write = asyncio.ensure_future(stub.WriteBlob(write_request("b" * 32, b"new")))
            try:
                assert await asyncio.to_thread(syncing.wait, GIVE_UP)
                read = stub.GetBlob(blob_pb2.GetBlobRequest(blob_id="a" * 32), timeout=GIVE_UP)
                assert b"".join([m.data async for m in read]) == b"old"
                assert not write.done()
            finally:
                release.set()
            assert (await asyncio.wait_for(write, GIVE_UP)).length == 3
        finally:
            release.set()
            await channel.close(grace=None)
            await server.stop(grace=None)
            store.close()

    asyncio.run(main())
