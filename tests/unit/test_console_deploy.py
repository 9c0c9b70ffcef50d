"""`make up`'s compose cluster serves the web console: the gateway listens for it, publishes it
on the bind address (127.0.0.1 unless RINGSTORE_BIND says otherwise) and `make up` prints its
URL. Pinned here, since the compose tests need a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def console_port() -> int:
    config = yaml.safe_load((DEPLOY / "compose-cluster.yaml").read_text())
    listen = config["gateway"]["console_listen"]
    host, _, port = listen.rpartition(":")
    assert host == "0.0.0.0", (
        f"inside its container the console must listen on every interface: {listen}"
    )
    return int(port)


def test_the_gateway_serves_the_console_and_publishes_it_on_loopback() -> None:
    port = console_port()
    gateway = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["gateway"]
    published = [p for p in gateway["ports"] if p.endswith(f":{port}")]
    assert len(published) == 1, gateway["ports"]
    # ${RINGSTORE_BIND:-127.0.0.1}:${RINGSTORE_CONSOLE_PORTS:-a-b}:port, as the S3 door's
    found = re.fullmatch(
        r"\$\{RINGSTORE_BIND:-127\.0\.0\.1\}:\$\{RINGSTORE_CONSOLE_PORTS:-(\d+)-(\d+)\}:(\d+)",
        published[0],
    )
    assert found, published[0]
    low, high = int(found.group(1)), int(found.group(2))
    assert low < high
    for other in gateway["ports"]:  # no overlap with the gRPC or S3 ranges
        ranges = re.findall(r"_PORTS:-(\d+)-(\d+)\}", other)
        for a, b in ranges if other != published[0] else []:
            assert high < int(a) or low > int(b), (published[0], other)


def test_make_up_prints_the_console_url() -> None:
    port = console_port()
    makefile = (ROOT / "Makefile").read_text()
    up = makefile[makefile.index("\nup:") :].split("\n\n")[0]
    assert re.search(rf'echo ".*console http://\$\$\(\$\(COMPOSE\) port gateway {port}\)', up), up
