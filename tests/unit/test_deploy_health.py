"""The compose cluster restarts what exits and checks real readiness with `ringstore health`:
pinned here, since the compose tests need a Docker engine."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PORTS = {"metanode": (7100, "ringstore.v1.Meta"), "gateway": (7000, "ringstore.v1.ObjectStore")}


def test_every_compose_service_restarts_and_checks_its_own_service() -> None:
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    assert set(services) >= {"metanode", "gateway", "dn1"}
    for name, svc in services.items():
        assert svc["restart"] in ("unless-stopped", "on-failure", "always"), name
        port, service = PORTS.get(name, (7201, "ringstore.v1.Blob"))
        test = svc["healthcheck"]["test"]
        line = " ".join(test[1:])
        assert test[0] == "CMD" and "ringstore" in line, name
        assert f"ringstore-health 127.0.0.1:{port} --service {service}" in line, name
        if name != "gateway":  # internal ports take mutual TLS: the check shows a cluster cert
            assert "--ca-file /secret/tls/ca.pem" in line, name
            assert "--cert /secret/tls/node.pem --key /secret/tls/node.key" in line, name
        assert svc["environment"]["RINGSTORE_HEALTHCHECK"] == f"127.0.0.1:{port}", name


def test_the_image_health_check_is_ringstore_health() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    check = dockerfile[dockerfile.index("HEALTHCHECK ") :].split("\n\n")[0]
    assert 'CMD ringstore-health "$RINGSTORE_HEALTHCHECK"' in check
    assert "grpc_health" not in check


def test_the_health_check_loads_neither_the_sdk_nor_the_cli() -> None:
    """Docker runs it every few seconds in every container: it must stay light."""
    import subprocess
    import sys

    probe = (
        "import sys, ringstore.healthcheck; "
        "heavy = [m for m in ('ringstore.client', 'click', 'cryptography', 'ringstore.rpc') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_health_checks_cluster_name_is_the_certificates() -> None:
    from ringstore import healthcheck, tls

    assert healthcheck.CLUSTER_NAME == tls.CLUSTER_NAME


def test_ringstore_health_exit_codes(capsys) -> None:  # type: ignore[no-untyped-def]
    from ringstore import healthcheck

    assert healthcheck.main(["127.0.0.1:1", "--wait", "0.5"]) == 1  # nothing listens there
    assert "no answer from the health service" in capsys.readouterr().err
    assert healthcheck.main(["127.0.0.1:1", "--cert", "c.pem"]) == 2  # no key, no CA
    assert "--cert and --key go together" in capsys.readouterr().err
