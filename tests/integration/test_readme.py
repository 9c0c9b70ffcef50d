"""The README's tour works as written: its Python block and its shell block run against a
real cluster."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from ringstore.localcluster import LocalCluster, service_command

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def block(language: str, after: str) -> str:
    text = README.read_text()
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_python_tour(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = block("python", "## A five-minute tour").replace("127.0.0.1:7000", cluster.endpoint)
    code = code.replace("/tmp/backup.tar", str(tmp_path / "restored.tar"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (tmp_path / "backup.tar").write_bytes(os.urandom(20 * 1024 * 1024))
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "restored.tar").read_bytes() == (tmp_path / "backup.tar").read_bytes()


def test_shell_tour(cluster: LocalCluster, tmp_path: Path) -> None:
    script = block("sh", "## A five-minute tour")
    script = script.replace(". .venv/bin/activate\n", "")
    script = script.replace("127.0.0.1:7000", cluster.endpoint)
    script = script.replace("~/holiday.jpg", str(tmp_path / "holiday.jpg"))
    script = script.replace("/tmp/back.jpg", str(tmp_path / "back.jpg"))
    (tmp_path / "holiday.jpg").write_bytes(os.urandom(12 * 1024 * 1024))
    bindir = str(Path(service_command("ringstore")[0]).parent)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.jpg").read_bytes() == (tmp_path / "holiday.jpg").read_bytes()
    assert "archive/2026/" in result.stdout or "moved 1 objects" in result.stdout
