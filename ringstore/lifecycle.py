"""Process lifecycle shared by the three services.

Memory: the services pass megabyte-sized buffers between threads, and glibc's malloc keeps an
arena per thread (up to 8 per core), each holding on to freed memory; :func:`tune_malloc` caps
the arenas at two, which keeps the datanodes' peak RSS flat (bench/RESULTS.md). It leaves the
dynamic mmap threshold alone: a fixed one (MALLOC_MMAP_THRESHOLD_, or any MALLOC_TOP_PAD_ /
MALLOC_TRIM_THRESHOLD_, which fix it too) maps and faults in every megabyte buffer afresh and
halved large-object throughput here.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "RINGSTORE_PARENT_PID"
PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies
M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)
ARENA_MAX = 2  # malloc arenas at most, whatever the number of threads


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


def die_with_parent() -> None:
    """If a supervisor named itself in the environment, end with it."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
