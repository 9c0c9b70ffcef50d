"""metadata.url chooses the engine: sqlite://DIR (the default: SQLite in metanode.data_dir),
postgresql://… passed to libpq as it is, and a clear error for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from metanode.__main__ import build_config, main, parse_args
from metanode.store.engines import MetadataUrl, open_store, parse
from metanode.store.sqlite import DB_NAME, SqliteStore
from ringstore.errors import InvalidArgument

MULTI_HOST = "postgresql://meta@pg1:5432,pg2:5432/ringstore?target_session_attrs=read-write"


def test_empty_url_is_sqlite_in_the_data_dir() -> None:
    assert parse("", "data/meta") == MetadataUrl("sqlite", "data/meta")


def test_sqlite_urls_name_a_directory() -> None:
    assert parse("sqlite:///var/lib/meta") == MetadataUrl("sqlite", "/var/lib/meta")
    assert parse("sqlite://rel/dir") == MetadataUrl("sqlite", "rel/dir")


def test_postgres_urls_pass_through_whole() -> None:
    assert parse(MULTI_HOST) == MetadataUrl("postgresql", MULTI_HOST)
    assert parse("postgres://u@h/db").target == "postgres://u@h/db"


@pytest.mark.parametrize("url", ["mysql://u:pw@h/db", "meta.db", "redis:x"])
def test_an_unknown_scheme_names_the_url_and_the_rule(url: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown scheme") as err:
        parse(url, "data")
    assert "sqlite://DIR" in str(err.value) and "postgresql://" in str(err.value)
    assert "pw" not in str(err.value)  # a password never lands in a message


def test_flag_sets_metadata_url_and_a_bad_one_stops_the_metanode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = build_config(parse_args(["--metadata-url", MULTI_HOST]))
    assert cfg.metadata.url == MULTI_HOST
    assert main(["--data-dir", str(tmp_path), "--metadata-url", "mysql://h/db"]) == 2
    assert "metadata.url 'mysql://h/db' has an unknown scheme" in capsys.readouterr().err


def test_config_key_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RINGSTORE_METADATA_URL", f"sqlite://{tmp_path}")
    cfg = build_config(parse_args([]))
    store = open_store(parse(cfg.metadata.url, cfg.metanode.data_dir))
    try:
        assert isinstance(store, SqliteStore) and store.path == tmp_path / DB_NAME
    finally:
        store.close()
