"""Process set-up shared by the services: glibc malloc tuning, ending with the supervisor, and
the one line that says why a service ends."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from ringstore import lifecycle


def test_tune_malloc_applies_on_glibc_and_defers_to_malloc_variables() -> None:
    probe = "from ringstore.lifecycle import tune_malloc; print(tune_malloc())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    tuned = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert tuned.stdout.strip() == "True", tuned.stderr
    env["MALLOC_ARENA_MAX"] = "4"  # an operator's own setting is left alone
    left = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert left.stdout.strip() == "False", left.stderr
    del env["MALLOC_ARENA_MAX"]
    env["RINGSTORE_TUNE_MALLOC"] = "0"  # or told to leave malloc alone
    off = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert off.stdout.strip() == "False", off.stderr


# Threads that each malloc a 64 KiB block (under the mmap threshold, so from an arena) while
# the others hold theirs; then glibc's own report of its arenas (malloc_info: one <heap> each).
ARENAS_PROBE = """
import ctypes, threading
from ringstore.lifecycle import tune_malloc
tune_malloc()
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.open_memstream.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
held, barrier = [], threading.Barrier(4)
def hold():
    held.append(libc.malloc(64 * 1024))
    barrier.wait()
threads = [threading.Thread(target=hold) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(buf.value.decode().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_info")
def test_tune_malloc_keeps_every_thread_on_one_malloc_arena() -> None:
    # A second arena held 30-40 MiB more of the gateway's peak RSS in 64 MiB transfers
    # (bench/RESULTS.md, issue 13): memory freed in one arena is not reused by the other.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE], env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "1", done.stderr


# A 3 MiB block (above glibc's default mmap threshold, below the SDK's), and whether it was
# mapped on its own and whether the heap kept it once freed (mallinfo2: hblks, keepcost).
CLIENT_PROBE = """
import ctypes
from ringstore import Client
Client("127.0.0.1:1")
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 3 * 1024 * 1024
before = libc.mallinfo2().hblks
block = libc.malloc(size)
mapped = libc.mallinfo2().hblks - before
libc.free(block)
print(mapped, libc.mallinfo2().keepcost >= size)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallinfo2")
@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({}, "0 True"),  # from the heap, and kept there for the next one
        ({"RINGSTORE_TUNE_MALLOC": "0"}, "1 False"),  # glibc's own: mapped, unmapped on free
        ({"MALLOC_ARENA_MAX": "8"}, "1 False"),  # an operator's malloc settings win
    ],
)
def test_a_client_keeps_megabyte_buffers_in_the_heap_unless_told_not_to(
    setting: dict[str, str], expected: str
) -> None:
    # With glibc's dynamic thresholds an SDK process mapped, faulted in and unmapped each
    # megabyte buffer: half of a 1 MiB GET's CPU in the client (docs/decisions.md, 37).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "RINGSTORE_"))}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_PROBE],
        env={**env, **setting},
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == expected, done.stderr


def test_tune_malloc_without_mallopt_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(lifecycle.ctypes, "CDLL", NoMallopt)
    assert lifecycle.tune_malloc() is False


PROBE_PARENT = (
    "import ctypes, signal\n"
    "from ringstore.lifecycle import die_with_parent\n"
    "print(die_with_parent())\n"
    "flag = ctypes.c_int()\n"
    "ctypes.CDLL(None).prctl(2, ctypes.byref(flag))  # PR_GET_PDEATHSIG\n"
    "print(flag.value)\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_process_whose_parent_is_not_the_named_supervisor_runs_on_its_own() -> None:
    # Restarted by hand (or by another supervisor) with a copy of the old environment: the
    # variable names a live process that is not this one's parent. It used to end at once.
    env = dict(os.environ, **{lifecycle.PARENT_ENV: str(os.getppid())})
    done = subprocess.run(
        [sys.executable, "-c", PROBE_PARENT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    note, deathsig = done.stdout.splitlines()
    assert "not this one's parent" in note and "running on its own" in note
    assert deathsig == "0"  # not tied to any process's death


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_process_started_by_its_supervisor_ends_with_it() -> None:
    env = dict(os.environ, **{lifecycle.PARENT_ENV: str(os.getpid())})  # the real parent
    done = subprocess.run(
        [sys.executable, "-c", PROBE_PARENT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["None", str(int(signal.SIGTERM))]


def _run_logged(body: object, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    log = logging.getLogger("test.service")
    with caplog.at_level(logging.INFO, logger="test.service"):
        code = lifecycle.run_service("ringstore-test", log, body)  # type: ignore[arg-type]
    return code, caplog.text


def test_run_service_logs_why_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    code, text = _run_logged(lambda: "SIGTERM", caplog)
    assert code == 0 and "ringstore-test exiting: stopped (SIGTERM)" in text


def test_run_service_logs_a_startup_error_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    def body() -> str:
        raise lifecycle.StartupError("datanode.id must not be empty")

    code, text = _run_logged(body, caplog)
    assert code == 2
    assert "ringstore-test exiting: cannot start: datanode.id must not be empty" in text
    assert "Traceback" not in text


def test_run_service_logs_a_fatal_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def body() -> str:
        raise RuntimeError("the disk went away")

    code, text = _run_logged(body, caplog)
    assert code == 1
    assert "ringstore-test exiting: fatal error: RuntimeError('the disk went away')" in text
    assert "Traceback" in text
