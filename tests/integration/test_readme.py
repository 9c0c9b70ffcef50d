"""The README's tour works as written: its Python blocks (the SDK's and boto3's) and its shell
blocks (the CLI's, keys and grants, the AWS CLI's) run against a real cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.localcluster import LocalCluster, service_command
from tests.conftest import need

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


def run_shell(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` under bash -euo pipefail with the project's commands first on PATH."""
    bindir = str(Path(service_command("ringstore")[0]).parent)
    full_env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", **env)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, env=full_env,
        cwd=cwd, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def test_shell_tour(cluster: LocalCluster, tmp_path: Path) -> None:
    """The CLI's tour, then keys and grants on the bucket it made."""
    script = block("sh", "## A five-minute tour") + block("sh", "### Keys and grants")
    script = script.replace(". .venv/bin/activate\n", "")
    script = script.replace("127.0.0.1:7000", cluster.endpoint)
    script = script.replace("~/holiday.jpg", str(tmp_path / "holiday.jpg"))
    script = script.replace("/tmp/back.jpg", str(tmp_path / "back.jpg"))
    holiday = os.urandom(12 * 1024 * 1024)
    (tmp_path / "holiday.jpg").write_bytes(holiday)
    result = run_shell(script, tmp_path)
    assert (tmp_path / "back.jpg").read_bytes() == holiday
    assert "archive/2026/" in result.stdout or "moved 1 objects" in result.stdout
    assert "refused: AccessDenied" in result.stdout  # alice could read, not delete
    assert "AccessDenied" in result.stderr
    # Unsigned, through the S3 door, now that the bucket allows anonymous reads.
    url = f"{cluster.s3_endpoint}/photos/archive/2026/holiday.jpg"
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == holiday


def aws_env(cluster: LocalCluster, tmp_path: Path) -> dict[str, str]:
    """What the README's export lines give the AWS tools, and no config file of the caller's."""
    return {
        "AWS_ACCESS_KEY_ID": os.environ["RINGSTORE_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["RINGSTORE_SECRET_ACCESS_KEY"],
        "AWS_ENDPOINT_URL": cluster.s3_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
    }


def test_aws_cli_tour(cluster: LocalCluster, tmp_path: Path) -> None:
    need((Path(sys.executable).parent / "aws").exists(), "the AWS CLI is not installed (awscli)")
    script = block("sh", "### The AWS CLI and boto3")
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:9000" in script
    script = script.replace("http://127.0.0.1:9000", cluster.s3_endpoint)
    script = script.replace("~/Documents", str(tmp_path / "Documents"))
    for rel in ("todo.txt", "letters/2026/one.txt", "letters/2026/two.txt"):
        (tmp_path / "Documents" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "Documents" / rel).write_text(f"this is {rel}\n")
    env = aws_env(cluster, tmp_path)
    del env["AWS_ENDPOINT_URL"]  # the script exports it
    result = run_shell(script, tmp_path, **env)
    assert "documents/letters/2026/two.txt" in result.stdout  # ls --recursive
    assert "this is todo.txt" in result.stdout  # cp to stdout
    with Client(cluster.endpoint) as rs:
        assert rs.get_bucket_versioning("backups") == "Enabled"
        assert [o.key for o in rs.iter_objects("backups")] == []  # rm --recursive


def test_boto3_tour(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pytest.importorskip("boto3")
    code = block("python", "### The AWS CLI and boto3")
    code = code.replace("/tmp/big.bin", str(tmp_path / "back.bin"))
    for name, value in aws_env(cluster, tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    big = os.urandom(20 * 1024 * 1024)  # over boto3's 8 MiB multipart threshold
    (tmp_path / "big.bin").write_bytes(big)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "back.bin").read_bytes() == big
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url.startswith(cluster.s3_endpoint + "/shared/hello.txt?")
    with urllib.request.urlopen(url, timeout=30) as resp:  # the presigned URL, unsigned HTTP
        assert resp.read() == b"hello"
