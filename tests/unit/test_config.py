"""The typed configuration: defaults, the sample file, environment overrides and bad values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ringstore import config
from ringstore.errors import InvalidArgument

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "cluster.yaml"


def test_sample_documents_every_key_with_its_default() -> None:
    raw = yaml.safe_load(SAMPLE.read_text())
    defaults = config.Config()
    assert set(raw) == set(config.SECTIONS)
    for section, cls in config.SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(raw[section]) == fields, f"{section}: sample and dataclass differ"
        for name in fields:
            default = getattr(getattr(defaults, section), name)
            assert raw[section][name] == default, f"{section}.{name}: sample shows another default"


def test_every_sample_key_has_a_comment() -> None:
    for line in SAMPLE.read_text().splitlines():
        if line.startswith("  ") and ":" in line:
            assert "#" in line, f"undocumented key: {line.strip()}"


def test_load_without_file_gives_defaults() -> None:
    assert config.load(None, env={}) == config.Config()


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("datanode:\n  id: dn7\n  zone: a\ncluster:\n  replicas: 2\n")
    cfg = config.load(path, env={"RINGSTORE_DATANODE_ZONE": "b", "RINGSTORE_DATANODE_FSYNC": "no"})
    assert cfg.datanode.id == "dn7"
    assert cfg.datanode.zone == "b"
    assert cfg.datanode.fsync is False
    assert cfg.cluster.replicas == 2


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("datanode:\n  id: from-env-file\n")
    assert config.load(None, env={"RINGSTORE_CONFIG": str(path)}).datanode.id == "from-env-file"
    with pytest.raises(FileNotFoundError):
        config.load(None, env={"RINGSTORE_CONFIG": str(tmp_path / "absent.yaml")})


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("nodes: {}\n", {}, "unknown section 'nodes'"),
        ("cluster:\n  replica: 3\n", {}, "unknown configuration key cluster.replica"),
        ("cluster:\n  replicas: three\n", {}, "cluster.replicas must be a int"),
        ("cluster:\n  write_quorum: 4\n", {}, "cluster.write_quorum must be between 1"),
        ("cluster:\n  chunk_size: 10\n", {}, "cluster.chunk_size must be between"),
        ("", {"RINGSTORE_DATANODE_WEIGHT": "0"}, "datanode.weight must be positive"),
        ("", {"RINGSTORE_DATANODE_FSYNC": "maybe"}, "datanode.fsync must be a bool"),
        ("gateway:\n  max_concurrent_calls: 0\n", {}, "gateway.max_concurrent_calls must be"),
        ("", {"RINGSTORE_GATEWAY_STREAM_IDLE_TIMEOUT": "0"}, "gateway.stream_idle_timeout must"),
        ("", {"RINGSTORE_GATEWAY_MAX_BODY_BYTES": "-1"}, "gateway.max_body_bytes must be"),
        ("- a\n- b\n", {}, "the top level must be a mapping"),
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        config.load(path, env=env)
