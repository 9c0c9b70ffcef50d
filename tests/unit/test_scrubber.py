"""The scrubber (logic with an injected clock and sleep: no timing assertions) and the damage
reports it and reads lead to, against a fake, in-process Meta service."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from datanode.blobstore import PIECE_SIZE, BlobStore, DiskBlobStore, MemoryBlobStore, crc32c
from datanode.damage import REPORT_BATCH, DamageReporter
from datanode.scrubber import Scrubber, Throttle
from datanode.servicer import BlobService
from ringstore.errors import InvalidArgument
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2, meta_pb2_grpc
from tests.damage import flip

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"
ID_C = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def put(store: BlobStore, blob_id: str, data: bytes) -> None:
    with store.begin_write(blob_id, len(data), crc32c(data)) as writer:
        for start in range(0, len(data), PIECE_SIZE):
            writer.write(data[start : start + PIECE_SIZE])
        writer.commit()


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeMeta(meta_pb2_grpc.MetaServicer):
    """Records ReportDamage calls; answers UNAVAILABLE to the first ``refuse`` of them."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.reports: list[meta_pb2.ReportDamageRequest] = []
        self.refused = 0
        self.changed = asyncio.Event()

    async def ReportDamage(
        self, request: meta_pb2.ReportDamageRequest, context: aio.ServicerContext
    ) -> meta_pb2.ReportDamageResponse:
        self.changed.set()
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "starting up")
        self.reports.append(request)
        return meta_pb2.ReportDamageResponse()

    @property
    def reported(self) -> list[str]:
        return [blob_id for report in self.reports for blob_id in report.blob_ids]

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


@contextlib.asynccontextmanager
async def meta_server(fake: FakeMeta) -> AsyncIterator[meta_pb2_grpc.MetaStub]:
    server, _, port = make_server("127.0.0.1:0")
    meta_pb2_grpc.add_MetaServicer_to_server(fake, server)
    await server.start()
    channel = insecure_channel(f"127.0.0.1:{port}")
    try:
        yield meta_pb2_grpc.MetaStub(channel)
    finally:
        await channel.close(grace=None)
        await server.stop(grace=None)


# -- the throttle -----------------------------------------------------------------------------


def test_throttle_keeps_the_average_rate() -> None:
    clock = FakeClock()

    async def main() -> None:
        throttle = Throttle(1000, clock=clock, sleep=clock.sleep)
        for _ in range(10):
            await throttle.consume(500)  # 5000 bytes: 1000 of burst, then 4 s of debt

    asyncio.run(main())
    assert clock.sleeps == [0.5] * 8
    assert sum(clock.sleeps) == 4.0


def test_throttle_refills_while_idle() -> None:
    clock = FakeClock()

    async def main() -> None:
        throttle = Throttle(1000, clock=clock, sleep=clock.sleep)
        await throttle.consume(1000)
        clock.now += 60  # idle for a minute: the bucket refills, but only to its burst
        await throttle.consume(1000)
        await throttle.consume(1000)

    asyncio.run(main())
    assert clock.sleeps == [1.0]


def test_bad_settings_are_refused() -> None:
    store = MemoryBlobStore()
    with pytest.raises(InvalidArgument, match="scrub rate must be 0"):
        Scrubber(store, rate=-1, interval=1)
    with pytest.raises(InvalidArgument, match="scrub interval must be a positive"):
        Scrubber(store, rate=1, interval=0)
    with pytest.raises(InvalidArgument, match="throttle rate"):
        Throttle(0, clock=FakeClock(), sleep=FakeClock().sleep)


# -- scrub passes -----------------------------------------------------------------------------


def test_a_pass_reads_everything_at_the_rate() -> None:
    clock = FakeClock()
    store = MemoryBlobStore()
    sizes = {ID_A: 2 * PIECE_SIZE + 10, ID_B: 1000, ID_C: 0}
    for blob_id, size in sizes.items():
        put(store, blob_id, random.Random(size).randbytes(size))
    rate = PIECE_SIZE // 2
    scrubber = Scrubber(store, rate=rate, interval=3600, clock=clock, sleep=clock.sleep)
    assert asyncio.run(scrubber.scrub_pass()) == []
    total = sum(sizes.values())
    assert scrubber.scrubbed_bytes == total
    assert scrubber.passes == 1
    # Pieces of at most PIECE_SIZE, and as much sleep as the bytes beyond the burst need.
    assert all(s <= PIECE_SIZE / rate for s in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx((total - rate) / rate)
    assert len(clock.sleeps) == 4  # one per piece read once the burst was used up


def test_a_pass_finds_a_corrupt_blob_quarantines_and_reports_it(tmp_path: Path) -> None:
    clock = FakeClock()

    async def main() -> None:
        fake = FakeMeta()
        async with meta_server(fake) as meta:
            reporter = DamageReporter(meta, "dn1", retry_interval=0.01)
            reporter.start()
            store = DiskBlobStore(tmp_path, fsync=False, on_quarantine=reporter.note)
            data = random.Random(7).randbytes(3 * PIECE_SIZE)
            for blob_id in (ID_A, ID_B, ID_C):
                put(store, blob_id, data)
            flip(store, ID_B, 2 * PIECE_SIZE + 3)
            scrubber = Scrubber(
                store, rate=10 * PIECE_SIZE, interval=1, clock=clock.__call__, sleep=clock.sleep
            )
            assert await scrubber.scrub_pass() == [ID_B]
            assert store.locate(ID_B) is None
            assert [p.name.split(".")[0] for p in (tmp_path / "quarantine").iterdir()] == [ID_B]
            assert store.usage().quarantined == 1
            assert scrubber.corrupt_found == 1
            await fake.until(lambda: fake.reported == [ID_B])
            [report] = fake.reports
            assert (report.node_id, report.reason) == ("dn1", "corrupt")
            while reporter.pending:  # the reply is on its way back
                await asyncio.sleep(0.001)
            assert await scrubber.scrub_pass() == []  # quarantined: gone from the store
            await reporter.stop()

    asyncio.run(main())


def test_a_blob_deleted_mid_scrub_is_not_corrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[str] = []
    store = MemoryBlobStore(on_quarantine=found.append)
    put(store, ID_A, b"a" * 100)
    put(store, ID_B, b"b" * 100)
    listed = store.ids("01")
    monkeypatch.setattr(
        store,
        "ids",
        lambda prefix: listed if prefix == "01" else MemoryBlobStore.ids(store, prefix),
    )
    store.delete(ID_A)  # listed, then gone before the scrubber reads it
    clock = FakeClock()
    scrubber = Scrubber(store, rate=1000, interval=1, clock=clock, sleep=clock.sleep)
    assert asyncio.run(scrubber.scrub_pass()) == []
    assert scrubber.scrubbed_bytes == 100
    assert found == []


def test_run_waits_for_the_interval_since_each_pass_started() -> None:
    clock = FakeClock()
    store = MemoryBlobStore()
    put(store, ID_A, b"x" * 3000)

    class Done(Exception):
        pass

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        if len(clock.sleeps) == 4:
            raise Done

    scrubber = Scrubber(store, rate=1000, interval=60, clock=clock, sleep=sleep)
    with pytest.raises(Done):
        asyncio.run(scrubber.run())
    # Each pass: 3000 bytes at 1000 B/s with a 1000-byte burst sleeps 2 s, then waits out the
    # rest of the 60 s interval.
    assert clock.sleeps == [2.0, 58.0, 2.0, 58.0]
    assert scrubber.passes == 2


def test_rate_zero_turns_scrubbing_off() -> None:
    async def main() -> None:
        scrubber = Scrubber(MemoryBlobStore(), rate=0, interval=1)
        assert not scrubber.enabled
        assert scrubber.start() is None
        await scrubber.stop()

    asyncio.run(main())


def test_stop_ends_a_running_scrubber() -> None:
    async def main() -> None:
        store = MemoryBlobStore()
        put(store, ID_A, b"x" * 100)
        scrubber = Scrubber(store, rate=10, interval=3600)
        task = scrubber.start()
        assert task is not None
        while scrubber.scrubbed_bytes == 0:
            await asyncio.sleep(0.001)
        await scrubber.stop()
        assert task.done()

    asyncio.run(main())


# -- damage reports ---------------------------------------------------------------------------


def test_reports_are_kept_and_retried_while_the_metanode_is_unreachable() -> None:
    async def main() -> None:
        channel = insecure_channel("127.0.0.1:1")  # nothing listens there
        reporter = DamageReporter(meta_pb2_grpc.MetaStub(channel), "dn1", rpc_timeout=2)
        reporter.note(ID_A)
        assert not await reporter.flush()
        assert reporter.pending == {ID_A}
        await channel.close(grace=None)

        fake = FakeMeta(refuse=1)
        async with meta_server(fake) as meta:
            reporter._stub = meta  # the metanode is back (a test seam: same reporter, new stub)
            assert not await reporter.flush()  # still refusing
            reporter.note(ID_B)
            assert reporter.pending == {ID_A, ID_B}
            assert await reporter.flush()
            assert fake.reported == [ID_A, ID_B]
            assert reporter.pending == frozenset()
            assert reporter.reported == 2

    asyncio.run(main())


IDS = [f"{i:032x}" for i in range(REPORT_BATCH + 3)]


def test_the_sender_retries_on_its_own_and_batches() -> None:
    async def main() -> None:
        fake = FakeMeta(refuse=2)
        async with meta_server(fake) as meta:
            reporter = DamageReporter(meta, "dn1", retry_interval=0.01)
            for blob_id in IDS:
                reporter.note(blob_id)
            reporter.start()
            await fake.until(lambda: len(fake.reported) == len(IDS))
            assert fake.refused == 2
            assert [len(r.blob_ids) for r in fake.reports] == [REPORT_BATCH, 3]
            assert sorted(fake.reported) == IDS
            await reporter.stop()

    asyncio.run(main())


def test_notes_from_worker_threads_wake_the_sender() -> None:
    async def main() -> None:
        fake = FakeMeta()
        async with meta_server(fake) as meta:
            reporter = DamageReporter(meta, "dn1", retry_interval=3600)
            reporter.start()
            await asyncio.to_thread(reporter.note, ID_C)
            await fake.until(lambda: fake.reported == [ID_C])
            await reporter.stop()

    asyncio.run(main())


def test_a_corrupt_blob_met_by_get_blob_is_reported(tmp_path: Path) -> None:
    async def main() -> None:
        fake = FakeMeta()
        async with meta_server(fake) as meta:
            reporter = DamageReporter(meta, "dn2", retry_interval=0.01)
            reporter.start()
            store = DiskBlobStore(tmp_path, fsync=False, on_quarantine=reporter.note)
            put(store, ID_A, b"some bytes")
            flip(store, ID_A, 2)
            server, _, port = make_server("127.0.0.1:0")
            blob_pb2_grpc.add_BlobServicer_to_server(BlobService(store), server)
            await server.start()
            channel = insecure_channel(f"127.0.0.1:{port}")
            try:
                stub = blob_pb2_grpc.BlobStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    async for _ in stub.GetBlob(blob_pb2.GetBlobRequest(blob_id=ID_A)):
                        pass
                assert info.value.code() == grpc.StatusCode.DATA_LOSS
                await fake.until(lambda: fake.reported == [ID_A])
                assert fake.reports[0].node_id == "dn2"
                usage = await stub.Usage(blob_pb2.UsageRequest())
                assert (usage.quarantined, usage.blob_count) == (1, 0)
            finally:
                await channel.close(grace=None)
                await server.stop(grace=None)
                await reporter.stop()

    asyncio.run(main())


def test_a_read_error_is_not_corruption_and_a_failed_pass_is_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found: list[str] = []
    store = MemoryBlobStore(on_quarantine=found.append)
    put(store, ID_A, b"a" * 100)
    put(store, ID_B, b"b" * 100)
    real_read = MemoryBlobStore.read

    def failing_read(blob_id: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if blob_id == ID_A:
            raise OSError(5, "Input/output error")
        return real_read(store, blob_id, offset, length)

    monkeypatch.setattr(store, "read", failing_read)
    clock = FakeClock()
    scrubber = Scrubber(store, rate=1000, interval=10, clock=clock, sleep=clock.sleep)
    assert asyncio.run(scrubber.scrub_pass()) == []
    assert scrubber.scrubbed_bytes == 100
    assert found == []

    class Done(Exception):
        pass

    async def sleep(seconds: float) -> None:
        clock.sleeps.append(seconds)
        raise Done

    def broken_ids(prefix: str = "") -> tuple[str, ...]:
        raise RuntimeError("listing broke")

    monkeypatch.setattr(store, "ids", broken_ids)
    scrubber = Scrubber(store, rate=1000, interval=10, clock=clock, sleep=sleep)
    with pytest.raises(Done):  # the pass failed, the loop went on to wait for the next one
        asyncio.run(scrubber.run())
    assert clock.sleeps[-1] == 10
