"""Keeps a local cluster's services running: what ``ringstore cluster up`` does between its start
and its stop.

A service that exits when nobody stopped it (a crash, kill -9, an exit of its own) is started
again with the same command line and environment after a backoff: :attr:`RestartPolicy.first_delay`
after its first crash, doubling with each further crash inside :attr:`RestartPolicy.window`, at
most :attr:`RestartPolicy.max_delay`. A service that crashes :attr:`RestartPolicy.give_up_after`
times within the window is left down and reported with the last lines of its log; the other
services keep running (the cluster serves what it can: a datanode crash-looping on a bad disk
should not take the gateway down). Every exit, restart and give-up is reported in one line.

The decisions are made by :class:`CrashHistory`, which does no I/O and takes the time as an
argument; :class:`Supervisor` applies them to :class:`~ringstore.localcluster.Process` objects.
"""

from __future__ import annotations

import collections
import dataclasses
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

TAIL_LINES = 20  # lines of a given-up service's log quoted in the report


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 0.5  # seconds before the first restart
    max_delay: float = 30.0  # seconds: the backoff's cap
    give_up_after: int = 5  # crashes within `window` after which the service stays down
    window: float = 120.0  # seconds over which crashes are counted

    def __post_init__(self) -> None:
        if not 0 <= self.first_delay <= self.max_delay:
            raise ValueError(
                f"restart delays must satisfy 0 <= first_delay <= max_delay, got "
                f"{self.first_delay} and {self.max_delay}"
            )
        if self.give_up_after < 1:
            raise ValueError(f"give_up_after must be at least 1, got {self.give_up_after}")
        if not self.window > 0:
            raise ValueError(f"window must be a positive number of seconds, got {self.window}")


@dataclasses.dataclass(frozen=True)
class Restart:
    delay: float  # seconds to wait before starting it again
    crashes: int  # crashes within the window, this one included


@dataclasses.dataclass(frozen=True)
class GiveUp:
    crashes: int


class CrashHistory:
    """One service's recent crashes and what to do after the next one."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._crashes: collections.deque[float] = collections.deque()

    def crashed(self, now: float) -> Restart | GiveUp:
        """Record a crash at ``now`` (seconds, any monotonic clock) and decide."""
        p = self.policy
        self._crashes.append(now)
        while self._crashes and self._crashes[0] <= now - p.window:
            self._crashes.popleft()
        n = len(self._crashes)
        if n >= p.give_up_after:
            return GiveUp(n)
        return Restart(min(p.max_delay, p.first_delay * 2 ** (n - 1)), n)


class Supervised(Protocol):
    """What the supervisor needs of a process (:class:`~ringstore.localcluster.Process`)."""

    name: str
    log_path: Path

    @property
    def pid(self) -> int | None: ...

    def returncode(self) -> int | None:
        """The exit code once it has exited unasked (then it forgets it); None otherwise."""
        ...


def describe_exit(code: int) -> str:
    """``-9`` → "killed by SIGKILL", ``3`` → "exit code 3"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of the file at ``path`` (a note when it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as err:
        return f"(cannot read {path}: {err.strerror})"
    return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Watches ``processes`` (by name) and restarts the ones that exit unasked, calling
    ``start`` on them; ``report`` gets one message per event (``warning`` True for exits and
    give-ups). Call :meth:`poll` now and then (``cluster up`` does every 0.2 s)."""

    def __init__(
        self,
        processes: Mapping[str, Supervised],
        start: Callable[[Supervised], None],
        report: Callable[[str, bool], None],
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self._start = start
        self._report = report
        self._clock = clock
        self._history: dict[str, CrashHistory] = {}
        self._due: dict[str, float] = {}  # name -> when to start it again
        self.given_up: set[str] = set()
        self.restarts = 0

    def poll(self) -> None:
        now = self._clock()
        for name, proc in list(self.processes.items()):
            if name in self.given_up:
                continue
            due = self._due.get(name)
            if due is not None:
                if now >= due:
                    del self._due[name]
                    self._restart(proc)
                continue
            code = proc.returncode()
            if code is not None:
                self._exited(proc, code, now)

    def _exited(self, proc: Supervised, code: int, now: float) -> None:
        history = self._history.setdefault(proc.name, CrashHistory(self.policy))
        decision = history.crashed(now)
        how = describe_exit(code)
        if isinstance(decision, GiveUp):
            self.given_up.add(proc.name)
            self._report(
                f"{proc.name} exited ({how}), its {decision.crashes}th exit in "
                f"{self.policy.window:.0f}s: not restarting it; the other services keep "
                f"running. Last lines of {proc.log_path}:\n{log_tail(proc.log_path)}",
                True,
            )
            return
        self._due[proc.name] = now + decision.delay
        self._report(
            f"{proc.name} exited ({how}); restarting it in {decision.delay:.1f}s "
            f"(exit {decision.crashes} in {self.policy.window:.0f}s; see {proc.log_path})",
            True,
        )

    def _restart(self, proc: Supervised) -> None:
        try:
            self._start(proc)
        except OSError as err:  # the command is gone, the log cannot be opened
            self._report(f"{proc.name} could not be started: {err}", True)
            self._exited(proc, 127, self._clock())
            return
        self.restarts += 1
        self._report(f"{proc.name} restarted (pid {proc.pid})", False)
