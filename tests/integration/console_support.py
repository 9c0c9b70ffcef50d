"""A cluster serving the web console, and signing in to it as a browser would (plain HTTP)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ringstore.localcluster import LocalCluster
from tests.conftest import make_cluster


def console_cluster(tmp: Path) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp)
    lc.console_port = lc.port + 49
    with lc:
        yield lc


def base_url(cluster: LocalCluster) -> str:
    assert cluster.console_url is not None
    return cluster.console_url.rstrip("/")


def signin(base: str, key_id: str, secret: str) -> tuple[requests.Session, str]:
    """A signed-in HTTP session and its CSRF token."""
    s = requests.Session()
    form = s.get(f"{base}/signin")
    token = form_token(form.text)
    page = s.post(
        f"{base}/signin",
        data={"csrf": token, "access_key_id": key_id, "secret_access_key": secret},
    )
    assert page.status_code == 200 and page.url.endswith("/buckets"), page.text[:500]
    return s, page_token(page.text)


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def page_token(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The console's tests use a cluster whose first gateway serves the console."""
    yield from console_cluster(tmp_path_factory.mktemp("console"))
