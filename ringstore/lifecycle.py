"""Process lifecycle shared by the three services.

Supervision: a supervisor (``ringstore cluster up``) names itself in RINGSTORE_PARENT_PID, and
:func:`die_with_parent` has the service end with it (PR_SET_PDEATHSIG), but only when that
process really is the service's parent: one started by hand or by another supervisor with a
copy of the environment runs on its own (and says so in its log). The one race left: a
supervisor that dies between starting a service and the service's check leaves it running
orphaned, as if started by hand.

Exits: a service never ends without a log line that says why (:func:`run_service`): the signal
that stopped it, the fatal error (with its traceback), or the startup error. faulthandler
writes a traceback on a crash of the interpreter itself (SIGSEGV, SIGABRT). Only SIGKILL goes
unlogged; the supervisor reports that one.

Memory: the services pass megabyte-sized buffers between threads, and glibc's malloc keeps an
arena per thread (up to 8 per core), each holding on to freed memory; :func:`tune_malloc` keeps
every thread on one arena, which keeps the datanodes' peak RSS flat and took 30-40 MiB off the
gateway's in 64 MiB transfers, where a second arena (its bulk and hashing threads) held freed
buffers the event loop's thread could not reuse (bench/RESULTS.md, issue 13), at no cost in CPU
per MiB: the threads that share it allocate a few buffers per megabyte. It leaves the
dynamic mmap threshold alone: a fixed one (MALLOC_MMAP_THRESHOLD_, or any MALLOC_TOP_PAD_ /
MALLOC_TRIM_THRESHOLD_, which fix it too) maps and faults in every megabyte buffer afresh and
halved large-object throughput here.

The SDK's process is the user's, with threads of its own: :func:`tune_client_malloc` leaves the
arenas alone and fixes the thresholds above the SDK's largest buffers instead (a body message
and gRPC's copy of it, about 1 MiB each), so that they come from the heap and stay there between
calls. With glibc's dynamic thresholds, a client's threads each kept trimming their arena and
mapping and faulting in each megabyte afresh: half of a 1 MiB GET's client CPU (3.0 -> 1.55 ms
per GET, 3.6 -> 2.4 per PUT; peak RSS 95 -> 112 MiB with 8 threads; docs/decisions.md, 37).

Both leave a process alone whose environment sets any ``MALLOC_*`` variable (the operator's
choice wins) or ``RINGSTORE_TUNE_MALLOC=0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import functools
import io
import logging
import os
import signal
import sys
from collections.abc import Callable

from ringstore.validation import shown

PARENT_ENV = "RINGSTORE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies
TUNE_MALLOC_ENV = "RINGSTORE_TUNE_MALLOC"  # "0": leave glibc's malloc as it is
M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 1  # malloc arenas at most, whatever the number of threads
MiB = 1024 * 1024
CLIENT_MMAP_THRESHOLD = 4 * MiB  # a block this large or larger gets its own mapping
CLIENT_TRIM_THRESHOLD = 8 * MiB  # free bytes atop an arena kept before returning them


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's mallopt, or None on a libc without it or when the environment says to leave
    malloc alone (module docstring)."""
    if os.environ.get(TUNE_MALLOC_ENV) == "0":
        return None
    if any(name.startswith("MALLOC_") for name in os.environ):
        return None  # an operator's MALLOC_* settings win
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    return mallopt


def tune_malloc() -> bool:
    """Cap glibc's malloc arenas of a service (see the module docstring); whether it took
    effect (False on a libc without mallopt, or when the environment leaves malloc alone)."""
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, ARENA_MAX))


@functools.cache
def tune_client_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds of the SDK's process (see the module docstring),
    once; whether it took effect."""
    mallopt = _mallopt()
    return (
        mallopt is not None
        and bool(mallopt(M_MMAP_THRESHOLD, CLIENT_MMAP_THRESHOLD))
        and bool(mallopt(M_TRIM_THRESHOLD, CLIENT_TRIM_THRESHOLD))
    )


def die_with_parent() -> str | None:
    """End with the supervisor named in RINGSTORE_PARENT_PID, if it is this process's parent.
    Returns a note to log when the variable names another process (it is then ignored)."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return None
    if os.getppid() != int(parent):
        return (
            f"{PARENT_ENV}={parent} names a process that is not this one's parent "
            f"({os.getppid()}): running on its own, not ended with it"
        )
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return None


class StartupError(Exception):
    """A service cannot start (bad configuration, no secret, a port taken): logged as one line,
    exit code 2."""


def cannot_listen(address: str, what: str, cause: Exception | None = None) -> StartupError:
    """The startup error of a port that cannot be bound: which address, for what, and why (the
    ``cause``'s words: an OSError's strerror, another error's message)."""
    why = (getattr(cause, "strerror", None) or str(cause)) if cause is not None else ""
    why = why or "the port is taken by another process, or the host is not this machine's"
    return StartupError(f"cannot listen on {address} ({what}): {why}")


class Stopper:
    """The stop event of a service's main task, set by SIGINT or SIGTERM, remembering which
    signal it was (the reason logged at exit)."""

    def __init__(self, log: logging.Logger) -> None:
        self.event = asyncio.Event()
        self.reason = ""
        self._log = log

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in the running loop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, signal.Signals(signum).name)

    def stop(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            self._log.info("received %s: stopping", reason)
        self.event.set()


def run_service(name: str, log: logging.Logger, body: Callable[[], str | None]) -> int:
    """Run a service's ``body`` (it returns the reason it stopped, e.g. "SIGTERM") and log one
    line saying why the service ends, whatever ends it. Returns the exit code: 0 after a
    stop, 2 after a :class:`StartupError`, 1 after any other error."""
    # A crash of the interpreter itself still leaves a traceback, where stderr is a real file
    # (not when it is captured or closed).
    with contextlib.suppress(io.UnsupportedOperation, ValueError):
        faulthandler.enable()
    try:
        reason = body()
    except StartupError as err:
        log.error("%s exiting: cannot start: %s", name, err)
        return 2
    except KeyboardInterrupt:
        log.info("%s exiting: interrupted (SIGINT)", name)
        return 130
    except SystemExit as exc:
        log.info("%s exiting: code %s", name, exc.code)
        raise
    except BaseException as exc:
        log.critical("%s exiting: fatal error: %s", name, shown(exc), exc_info=True)
        return 1
    log.info("%s exiting: stopped (%s)", name, reason or "its work ended")
    return 0
