"""The compose overlay on replicated PostgreSQL (deploy/docker-compose.pg.yml) and its server
script, pinned without a Docker engine: the metanode's URL reaches both servers and picks the
one that accepts writes, commits wait for the standby, and the script parses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRIPT = DEPLOY / "postgres" / "ringstore-pg"


def test_the_metanode_url_lists_both_servers_and_wants_the_writable_one() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.pg.yml").read_text())
    url = compose["services"]["metanode"]["environment"]["RINGSTORE_METADATA_URL"]
    parts = urlsplit(url)
    assert parts.scheme == "postgresql"
    assert parts.netloc.rsplit("@", 1)[1] == "pg1:5432,pg2:5432"
    assert parse_qs(parts.query)["target_session_attrs"] == ["read-write"]
    for server in ("pg1", "pg2"):
        service = compose["services"][server]
        assert service["restart"] == "unless-stopped"
        assert "pg_isready" in service["healthcheck"]["test"]
        assert service["environment"]["PG_NAME"] == server
    assert set(compose["services"]["metanode"]["depends_on"]) == {"pg1", "pg2"}


def test_commits_wait_for_the_standby_and_old_primaries_are_fenced() -> None:
    text = SCRIPT.read_text()
    assert "synchronous_commit = on" in text
    assert "synchronous_standby_names = 'ANY 1" in text
    assert "refusing to start as a second primary" in text
    assert shutil.which("sh") is not None
    assert subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True).returncode == 0
