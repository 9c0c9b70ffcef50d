"""Rates of background work measured over the recent past, and the time left at that rate.

A :class:`RateMeter` is given the running total of some work (bytes scrubbed, repairs done,
nodes swept) whenever the work advances; it keeps one sample per :data:`SAMPLE_EVERY` seconds
over the last ``window`` seconds. Its rate is the total's growth since the oldest sample kept,
divided by the time from that sample to *now*: work that stalls shows a falling rate, not the
last good one. :func:`time_left` is the work remaining divided by that rate (None when there is
no rate yet: fewer than :data:`MIN_SPAN` seconds of samples, or no progress in the window).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

WINDOW = 300.0  # seconds of the past the rate is measured over
SAMPLE_EVERY = 1.0  # seconds between two samples kept
MIN_SPAN = 5.0  # seconds of samples needed before a rate is given


class RateMeter:
    """The rate of a running total over the last ``window`` seconds (see the module docstring)."""

    def __init__(self, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        if window <= 0:
            raise ValueError(f"a rate window must be a positive number of seconds, got {window}")
        self.window = window
        self._clock = clock
        self._samples: collections.deque[tuple[float, float]] = collections.deque()

    def observe(self, total: float) -> None:
        """The running total is ``total`` now."""
        now = self._clock()
        if self._samples and now - self._samples[-1][0] < SAMPLE_EVERY:
            self._samples[-1] = (self._samples[-1][0], total)  # the latest total, same slot
        else:
            self._samples.append((now, total))
        while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()  # keep one sample at or before the window's start

    def rate(self) -> float | None:
        """Units per second over the window; None with less than MIN_SPAN seconds of samples."""
        if not self._samples:
            return None
        began, first = self._samples[0]
        span = self._clock() - began
        if span < MIN_SPAN:
            return None
        return max(self._samples[-1][1] - first, 0.0) / span


def time_left(remaining: float, rate: float | None) -> float | None:
    """Seconds until ``remaining`` units are done at ``rate`` per second; 0 when nothing is
    left; None when unknown (no rate, or no progress)."""
    if remaining <= 0:
        return 0.0
    if not rate:
        return None
    return remaining / rate
