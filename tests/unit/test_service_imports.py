"""What a service process imports is memory it holds for life: the services load TLS material
but never make it, and a gateway without a console has no use for its templates. Each case
imports a service's entry module in a fresh interpreter and lists what must not be there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ABSENT = {
    "gateway": ["cryptography.x509", "jinja2", "ringstore.certs", "ringstore.client"],
    "datanode": ["cryptography", "ringstore.certs"],
    "metanode": ["cryptography.x509", "ringstore.certs"],
}


@pytest.mark.parametrize("service", list(ABSENT))
def test_a_service_does_not_import_what_it_never_uses(service: str) -> None:
    probe = (
        f"import sys, {service}.__main__\n"
        f"print(' '.join(m for m in {ABSENT[service]!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"{service} imports {done.stdout.strip()}"


def test_the_console_is_still_importable_where_it_is_served() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import gateway.console.app, gateway.console.server"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
