"""Process lifecycle shared by the three services.

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


def die_with_parent() -> None:
    """If a supervisor named itself in the environment, end with it."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
