"""Process lifecycle shared by the three services.

Memory: the services pass megabyte-sized buffers between threads. glibc's malloc by default
raises its mmap threshold after such a buffer is freed (so later ones come from the heap, which
fragments and is not given back) and keeps an arena per thread; :func:`tune_malloc` fixes the
threshold and caps the arenas, which keeps the peak RSS flat (bench/RESULTS.md).

A supervisor (``ringstore cluster up``, the test fixtures) that starts services sets
``RINGSTORE_PARENT_PID`` to its own pid; a service started that way asks Linux to SIGTERM it
when that parent dies (``PR_SET_PDEATHSIG``), so a supervisor killed with -9 leaves no service
running. This runs in the service itself, at start-up, not between fork and exec: Python code
run there (``preexec_fn``) can deadlock a parent with threads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "RINGSTORE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # mallopt parameters (glibc malloc.h)
MMAP_THRESHOLD = 256 * 1024  # bytes: larger blocks get their own mapping, unmapped when freed
ARENA_MAX = 2  # malloc arenas at most, whatever the number of threads


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold and cap its arenas (see the module docstring); whether it
    took effect (False on a libc without mallopt, or when the environment already tunes it)."""
    if any(name.startswith("MALLOC_") for name in os.environ):
        return False  # an operator's MALLOC_* settings win
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))


def die_with_parent() -> None:
    """If a supervisor named itself in the environment, end with it."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
