"""Process set-up shared by the services: glibc malloc tuning."""

from __future__ import annotations

import os
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


def test_tune_malloc_without_mallopt_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(lifecycle.ctypes, "CDLL", NoMallopt)
    assert lifecycle.tune_malloc() is False
