"""The bulk data path (ringstore/bulk.py, datanode/bulk.py, gateway/bulk_client.py): framing,
the cluster-secret handshake and its refusals, writes acknowledged only when stored and
verified, and reads verified at the reader, so that a bit flipped on disk or on the wire is
caught. A real BulkServer on 127.0.0.1, port 0, over a disk store in a temporary directory."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datanode.blobstore import SEGMENT_SIZE, DiskBlobStore, MemoryBlobStore, crc32c
from datanode.bulk import BulkServer
from gateway import replication
from gateway.bulk_client import BulkClient, BulkUnavailable
from gateway.chunkfeed import ChunkFeed
from gateway.cluster_view import ClusterView
from ringstore import bulk
from ringstore.errors import (
    AccessDenied,
    BlobCorrupt,
    BlobNotFound,
    InvalidRange,
    ServiceUnavailable,
)
from tests.damage import flip

SECRET = bytes(range(32))
OTHER = bytes(32)
ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"
MiB = 1024 * 1024
TIMEOUT = 10.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DiskBlobStore]:
    s = DiskBlobStore(tmp_path / "dn", fsync=False)
    yield s
    s.close()


@pytest.fixture
def server(store: DiskBlobStore) -> Iterator[BulkServer]:
    srv = BulkServer(store, SECRET, host="127.0.0.1", port=0)
    srv.start()
    yield srv
    srv.stop()


def _address(server: BulkServer) -> tuple[str, int]:
    return ("127.0.0.1", server.port)


def _body(size: int) -> bytes:
    return os.urandom(size)


def _pieces(data: bytes, size: int = MiB) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- framing --------------------------------------------------------------------------------


def test_a_request_and_a_status_survive_the_wire() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(bulk.Request(bulk.OP_READ, ID_A, 5, 7, 9).encode())
        assert bulk.read_request(right) == bulk.Request(bulk.OP_READ, ID_A, 5, 7, 9)
        left.sendall(bulk.encode_status(BlobNotFound(f"blob {ID_A} not found")))
        with pytest.raises(BlobNotFound, match=f"blob {ID_A} not found"):
            bulk.read_status(right)
        left.sendall(bulk.encode_status(message=b"hello"))
        assert bulk.read_status(right) == b"hello"
        left.close()
        assert bulk.read_request(right) is None  # closed between requests: no request


def test_send_all_sends_every_buffer_in_order_through_partial_sends() -> None:
    # More buffers than one sendmsg gathers, of odd sizes, through a small socket buffer: the
    # kernel takes part of a buffer at a time, and nothing may be lost, repeated or reordered.
    buffers: list[bytes | memoryview] = [
        bytes([i % 251]) * (1 + i * 37 % 5000) for i in range(bulk.IOV_MAX + 300)
    ]
    buffers[7] = memoryview(b"view-of-bytes")[5:]
    buffers[9] = b""
    expected = b"".join(buffers)
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    got = bytearray()

    def drain() -> None:
        while len(got) < len(expected):
            got.extend(right.recv(1000))

    with left, right:
        reader = threading.Thread(target=drain)
        reader.start()
        bulk.send_all(left, buffers)
        reader.join(10)
    assert bytes(got) == expected


def test_a_message_cut_short_is_an_error_not_a_short_read() -> None:
    left, right = socket.socketpair()
    with right:
        left.sendall(bulk.Request(bulk.OP_WRITE, ID_A, 0, 1, 0).encode()[:10])
        left.close()
        with pytest.raises(bulk.BulkClosed):
            bulk.read_request(right)


def test_a_bit_flipped_in_transit_fails_the_span_check() -> None:
    data = bytearray(_body(3 * SEGMENT_SIZE + 100))
    crcs = tuple(
        crc32c(bytes(data[i : i + SEGMENT_SIZE])) for i in range(0, len(data), SEGMENT_SIZE)
    )
    span = bulk.Span(0, len(data), SEGMENT_SIZE, crcs)
    bulk.verify_span(ID_A, span, memoryview(data))  # intact: passes
    data[2 * SEGMENT_SIZE + 17] ^= 0x01
    with pytest.raises(bulk.SpanCorrupt, match="segment 2"):
        bulk.verify_span(ID_A, span, memoryview(data))
    with pytest.raises(bulk.SpanCorrupt, match="checksums"):  # a checksum missing from the header
        bulk.verify_span(ID_A, bulk.Span(0, len(data), SEGMENT_SIZE, crcs[:-1]), memoryview(data))


# -- the handshake --------------------------------------------------------------------------


def test_the_right_secret_opens_the_port(server: BulkServer) -> None:
    with bulk.connect(_address(server), SECRET, TIMEOUT):
        pass
    assert server.stats.refused == 0


def test_another_secret_is_refused_and_told_why(server: BulkServer) -> None:
    with pytest.raises(AccessDenied, match="does not match the cluster secret"):
        bulk.connect(_address(server), OTHER, TIMEOUT)
    assert server.stats.refused == 1


def test_a_server_with_another_secret_is_not_trusted(store: DiskBlobStore) -> None:
    srv = BulkServer(store, OTHER, host="127.0.0.1", port=0)
    srv.start()
    try:
        with pytest.raises(AccessDenied):
            bulk.connect(("127.0.0.1", srv.port), SECRET, TIMEOUT)
    finally:
        srv.stop()


def test_a_request_without_a_handshake_is_refused_and_stores_nothing(
    server: BulkServer, store: DiskBlobStore
) -> None:
    data = b"x" * 100
    with socket.create_connection(_address(server), timeout=TIMEOUT) as raw:
        bulk.recv_exact(raw, len(bulk.MAGIC) + bulk.NONCE_SIZE)  # the server's greeting
        request = bulk.Request(bulk.OP_WRITE, ID_A, 0, len(data), crc32c(data)).encode()
        raw.sendall(request + data)  # a write instead of a proof
        with pytest.raises(AccessDenied, match="cluster secret"):
            bulk.read_status(raw)
        assert raw.recv(1) == b""  # and the connection is closed
    assert server.stats.refused == 1
    assert store.ids() == ()


# -- writes and reads -----------------------------------------------------------------------


def test_a_large_blob_round_trips_whole_and_in_ranges(
    server: BulkServer, store: DiskBlobStore
) -> None:
    data = _body(5 * MiB + 12345)
    with bulk.connect(_address(server), SECRET, TIMEOUT) as conn:
        bulk.write_blob(conn, ID_A, len(data), [_pieces(data)], crc32c(data))
        assert store.stat(ID_A).length == len(data)
        whole = bulk.read_blob(conn, ID_A, 0, len(data), MiB)
        assert b"".join(whole) == data and max(len(p) for p in whole) <= MiB
        for offset, length in [(1, 10), (SEGMENT_SIZE - 3, 7), (3 * MiB + 5, 2 * MiB), (0, 1)]:
            got = b"".join(bulk.read_blob(conn, ID_A, offset, length, MiB))
            assert got == data[offset : offset + length]
    assert server.stats.writes == 1 and server.stats.reads == 5


def test_the_memory_store_serves_the_same() -> None:
    srv = BulkServer(MemoryBlobStore(), SECRET, host="127.0.0.1", port=0)
    srv.start()
    data = _body(2 * MiB + 1)
    try:
        with bulk.connect(("127.0.0.1", srv.port), SECRET, TIMEOUT) as conn:
            bulk.write_blob(conn, ID_A, len(data), [_pieces(data)], crc32c(data))
            assert (
                b"".join(bulk.read_blob(conn, ID_A, 7, 2 * MiB - 6, MiB)) == data[7 : 2 * MiB + 1]
            )
    finally:
        srv.stop()


def test_a_write_whose_bytes_fail_the_crc_is_refused_and_leaves_nothing(
    server: BulkServer, store: DiskBlobStore
) -> None:
    data = _body(2 * MiB)
    with bulk.connect(_address(server), SECRET, TIMEOUT) as conn:
        with pytest.raises(BlobCorrupt, match="declared CRC32C"):
            bulk.write_blob(conn, ID_A, len(data), [_pieces(data)], crc32c(data) ^ 1)
        assert store.ids() == ()
        # The connection is still in step: the next write on it works.
        bulk.write_blob(conn, ID_B, len(data), [_pieces(data)], crc32c(data))
    assert store.ids() == (ID_B,)


def test_a_write_cut_off_mid_body_leaves_nothing(server: BulkServer, store: DiskBlobStore) -> None:
    data = _body(2 * MiB)
    conn = bulk.connect(_address(server), SECRET, TIMEOUT)
    conn.sendall(bulk.Request(bulk.OP_WRITE, ID_A, 0, len(data), crc32c(data)).encode())
    conn.sendall(data[:MiB])
    conn.close()
    with (
        bulk.connect(_address(server), SECRET, TIMEOUT) as again,  # served after the cut
        pytest.raises(BlobNotFound),
    ):
        bulk.read_blob(again, ID_A, 0, 1, MiB)
    assert store.ids() == ()
    deadline = time.monotonic() + TIMEOUT  # the server's thread notices the cut on its own time
    while list((store.root / "tmp").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list((store.root / "tmp").iterdir()) == []


def test_missing_blobs_and_bad_ranges_are_answered_with_their_error(server: BulkServer) -> None:
    data = _body(2 * MiB)
    with bulk.connect(_address(server), SECRET, TIMEOUT) as conn:
        with pytest.raises(BlobNotFound):
            bulk.read_blob(conn, ID_A, 0, 10, MiB)
        bulk.write_blob(conn, ID_A, len(data), [_pieces(data)], crc32c(data))
        with pytest.raises(InvalidRange):
            bulk.read_blob(conn, ID_A, 2 * MiB - 1, 2, MiB)


def test_a_bit_flipped_on_disk_is_caught_by_the_reader(
    server: BulkServer, store: DiskBlobStore
) -> None:
    data = _body(3 * MiB)
    with bulk.connect(_address(server), SECRET, TIMEOUT) as conn:
        bulk.write_blob(conn, ID_A, len(data), [_pieces(data)], crc32c(data))
    flip(store, ID_A, 2 * MiB + 99)  # in segment 8
    with (
        bulk.connect(_address(server), SECRET, TIMEOUT) as conn,
        pytest.raises(bulk.SpanCorrupt, match="segment 8"),
    ):
        bulk.read_blob(conn, ID_A, 0, len(data), MiB)
    with bulk.connect(_address(server), SECRET, TIMEOUT) as conn:  # a range beside it is fine
        assert b"".join(bulk.read_blob(conn, ID_A, 0, MiB, MiB)) == data[:MiB]


# -- the gateway's client --------------------------------------------------------------------


def test_the_client_pools_connections_and_reconnects_after_a_restart(
    store: DiskBlobStore,
) -> None:
    srv = BulkServer(store, SECRET, host="127.0.0.1", port=0)
    srv.start()
    port = srv.port
    data = _body(2 * MiB)

    async def scenario() -> None:
        client = BulkClient(SECRET)
        try:
            feed = ChunkFeed.whole(_pieces(data))
            await client.write(("127.0.0.1", port), ID_A, feed, TIMEOUT)
            got = await client.read(("127.0.0.1", port), ID_A, 0, len(data), TIMEOUT)
            assert b"".join(got) == data
            assert client.stats.connects == 1  # the second transfer reused the connection
            srv.stop()  # the pooled connection dies with the node
            again = BulkServer(store, SECRET, host="127.0.0.1", port=port)
            again.start()
            try:
                got = await client.read(("127.0.0.1", port), ID_A, 5, 10, TIMEOUT)
                assert b"".join(got) == data[5:15]
                assert client.stats.connects == 2
            finally:
                again.stop()
        finally:
            client.close()

    asyncio.run(scenario())


def test_the_client_reports_a_port_it_cannot_use_as_unavailable(server: BulkServer) -> None:
    async def scenario() -> None:
        client = BulkClient(OTHER)
        try:
            with pytest.raises(BulkUnavailable, match="cluster secret"):
                await client.read(_address(server), ID_A, 0, 10, TIMEOUT)
        finally:
            client.close()

    asyncio.run(scenario())


# -- the gateway's choice of path -------------------------------------------------------------


class _BulkView(ClusterView):
    """Three datanodes that all listen on ``server``'s bulk port; gRPC stubs that refuse."""

    def __init__(self, port: int, client: BulkClient) -> None:
        super().__init__(meta=None, rpc_timeout=TIMEOUT, bulk=client)  # type: ignore[arg-type]
        self.order = ["dn1", "dn2", "dn3"]
        self.port = port

    def write_candidates(self, placement_hash: int) -> list[str]:
        return list(self.order)

    async def bulk_address(self, node_id: str) -> tuple[str, int] | None:
        return ("127.0.0.1", self.port)

    def blob_stub(self, node_id: str) -> Any:
        raise AssertionError(f"a chunk of {replication.BULK_WRITE_MIN} bytes or more took gRPC")

    def mark_suspect(self, node_id: str) -> None:
        pass


def _write_chunk(server: BulkServer, blob_id: str, data: bytes, crc: int) -> list[str]:
    async def scenario() -> list[str]:
        client = BulkClient(SECRET)
        try:
            view = _BulkView(server.port, client)
            return await replication.write_chunk(
                view, blob_id=blob_id, feed=ChunkFeed.whole([data], crc), placement_hash=1,
                timeout=TIMEOUT,
            )  # fmt: skip
        finally:
            client.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("size", [replication.BULK_WRITE_MIN, MiB])
def test_a_chunk_of_one_message_goes_over_the_bulk_port_and_is_verified_there(
    server: BulkServer, store: DiskBlobStore, size: int
) -> None:
    """A 1 MiB body arrives as one message (PutSmallObject) and its chunk is one piece: it
    goes over the bulk port, into the store's volumes, verified as any other write."""
    data = _body(size)
    assert sorted(_write_chunk(server, ID_A, data, crc32c(data))) == ["dn1", "dn2", "dn3"]
    assert b"".join(store.read(ID_A)) == data
    corrupt = bytearray(data)
    corrupt[size // 2] ^= 0x10  # one byte changed between the CRC and the wire
    with pytest.raises(ServiceUnavailable, match=r"0 of 2 required copies.*declared CRC32C"):
        _write_chunk(server, ID_B, bytes(corrupt), crc32c(data))
    assert store.ids() == (ID_A,)
