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
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import io
import logging
import os
import signal
import sys
from collections.abc import Callable

from ringstore.validation import shown

PARENT_ENV = "RINGSTORE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies
M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)
ARENA_MAX = 1  # malloc arenas at most, whatever the number of threads


def tune_malloc() -> bool:
    """Cap glibc's malloc arenas (see the module docstring); whether it took effect (False on a
    libc without mallopt, or when the environment already tunes malloc)."""
    if any(name.startswith("MALLOC_") for name in os.environ):
        return False  # an operator's MALLOC_* settings win
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, ARENA_MAX))


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
