"""Re-reads every blob in the background, so that silent corruption is found before a reader
needs the blob, while there are still good copies elsewhere to repair it from.

Guarantees: one pass reads every blob that exists when the pass reaches it, whole, through the
store's verified read path (every segment CRC and the whole-blob CRC32C); a corrupt blob is
quarantined by the store, which hands it to the store's quarantine listener (the datanode's
:class:`datanode.damage.DamageReporter`); a blob deleted while the pass runs is skipped, not
counted as corrupt. Reading is throttled to ``rate`` bytes per second by a token bucket (a burst of
at most one second's worth), in pieces of at most one mebibyte, each read in a worker thread, so
neither a thread nor the event loop is held for long. A pass starts every ``interval`` seconds (or
right after the previous one, if it took longer); ``rate`` 0 turns scrubbing off. Memory stays
bounded: the ids are listed one 1/256 slice of the id space at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from datanode.blobstore import BlobStore
from ringstore.errors import BlobCorrupt, BlobNotFound, InternalError, InvalidArgument
from ringstore.progress import RateMeter

log = logging.getLogger(__name__)

SLICES = [f"{i:02x}" for i in range(256)]  # id prefixes a pass walks, one at a time
_END = object()

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Throttle:
    """A token bucket: :meth:`consume` of ``n`` bytes sleeps as long as needed to keep the
    average at ``rate`` bytes per second, allowing a burst of ``burst`` bytes."""

    def __init__(self, rate: int, *, burst: int | None = None, clock: Clock, sleep: Sleep) -> None:
        if rate <= 0:
            raise InvalidArgument(f"throttle rate must be a positive bytes per second: {rate}")
        self._rate = rate
        self._burst = rate if burst is None else burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self._burst)
        self._last = clock()

    async def consume(self, n: int) -> None:
        """Take ``n`` bytes' worth of tokens, sleeping off any debt."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            await self._sleep(-self._tokens / self._rate)


class Scrubber:
    """Scrubs ``store`` at ``rate`` bytes per second, a pass every ``interval`` seconds.

    ``clock`` (monotonic seconds) and ``sleep`` are seams for tests."""

    def __init__(
        self,
        store: BlobStore,
        *,
        rate: int,
        interval: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate < 0:
            raise InvalidArgument(f"scrub rate must be 0 (off) or positive bytes/s: {rate}")
        if interval <= 0:
            raise InvalidArgument(
                f"scrub interval must be a positive number of seconds: {interval}"
            )
        self._store = store
        self._rate = rate
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.scrubbed_bytes = 0  # bytes verified since start-up
        self.corrupt_found = 0  # blobs found corrupt by the scrubber
        self.passes = 0  # complete passes
        self.pass_slices = 0  # of the pass under way: id slices done, of len(SLICES)
        self.pass_bytes = 0  # of the pass under way: bytes verified
        self.rate = RateMeter(clock=clock)  # of scrubbed_bytes

    @property
    def enabled(self) -> bool:
        """Whether scrubbing is on (a rate above 0)."""
        return self._rate > 0

    def start(self) -> asyncio.Task[None] | None:
        """Scrub in the background until :meth:`stop`; nothing when scrubbing is off."""
        if self.enabled:
            self._task = asyncio.create_task(self.run(), name="scrubber")
        return self._task

    async def stop(self) -> None:
        """Stop now (the piece being read in a thread, at most one mebibyte, completes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Pass after pass, each starting ``interval`` seconds after the previous one started."""
        while True:
            started = self._clock()
            try:
                await self.scrub_pass()
            except Exception:  # the next pass tries again; the datanode keeps serving
                log.exception("scrub pass failed")
            wait = self._interval - (self._clock() - started)
            if wait > 0:
                await self._sleep(wait)

    async def scrub_pass(self) -> list[str]:
        """Read and verify every blob once; the ids found corrupt (now quarantined)."""
        throttle = Throttle(self._rate, clock=self._clock, sleep=self._sleep)
        corrupt: list[str] = []
        blobs = scrubbed = 0
        self.pass_slices = self.pass_bytes = 0
        for done, prefix in enumerate(SLICES):
            self.pass_slices = done
            for blob_id in await asyncio.to_thread(self._store.ids, prefix):
                before = self.scrubbed_bytes
                if not await self._scrub_blob(blob_id, throttle):
                    corrupt.append(blob_id)
                blobs += 1
                scrubbed += self.scrubbed_bytes - before
                self.pass_bytes = scrubbed
                self.rate.observe(self.scrubbed_bytes)
        self.pass_slices = len(SLICES)
        self.passes += 1
        self.corrupt_found += len(corrupt)
        log.info(
            "scrub pass %d: %d blobs, %d bytes verified, %d corrupt",
            self.passes,
            blobs,
            scrubbed,
            len(corrupt),
        )
        return corrupt

    async def _scrub_blob(self, blob_id: str, throttle: Throttle) -> bool:
        """Read the whole blob; False when it is corrupt (the store has quarantined it)."""
        try:
            pieces = await asyncio.to_thread(self._store.read, blob_id)
        except BlobNotFound:
            return True  # deleted since it was listed
        except BlobCorrupt:
            return False
        except InternalError as err:  # a format this code does not read: not corrupt
            log.warning("scrubber skipped %s", err)
            return True
        except OSError as err:  # the disk failed to read: not proven corrupt, try next pass
            log.error("scrubber could not read blob %s: %s", blob_id, err)
            return True
        try:
            while (piece := await asyncio.to_thread(next, pieces, _END)) is not _END:
                assert isinstance(piece, bytes)
                self.scrubbed_bytes += len(piece)
                await throttle.consume(len(piece))
        except BlobCorrupt:
            return False
        except OSError as err:
            log.error("scrubber could not read blob %s: %s", blob_id, err)
        finally:
            _close(pieces)
        return True


def _close(pieces: Iterator[bytes]) -> None:
    """Close a store iterator; one still running in a cancelled worker thread is released when
    it is collected instead."""
    close = getattr(pieces, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):
            close()
