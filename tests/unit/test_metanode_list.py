"""Gateways and datanodes given several metanodes (ringstore.metanodes), and LocalCluster's
rule that several metanodes need one shared database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ringstore import metanodes
from ringstore.errors import InvalidArgument
from ringstore.localcluster import LocalCluster


def test_one_address_stays_as_it_was() -> None:
    assert metanodes.target("meta.example:7100") == "meta.example:7100"


def test_several_become_one_static_target() -> None:
    assert (
        metanodes.target("127.0.0.1:7001, 127.0.0.1:7002") == "ipv4:127.0.0.1:7001,127.0.0.1:7002"
    )
    assert metanodes.target("localhost:7001,127.0.0.1:7002").startswith("ipv")
    assert metanodes.target("[::1]:7001,[::1]:7002") == "ipv6:[::1]:7001,[::1]:7002"


@pytest.mark.parametrize("bad", ["", ",", "127.0.0.1", "127.0.0.1:0,127.0.0.1:7002", "h:x"])
def test_a_bad_list_is_refused_naming_the_entry(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"metanode\.address"):
        metanodes.target(bad)


def test_only_safe_calls_are_retried() -> None:
    config = json.loads(metanodes.service_config("pick_first"))
    assert config["loadBalancingConfig"] == [{"pick_first": {}}]
    retried = {n["method"] for n in config["methodConfig"][0]["name"]}
    assert "GetObjectRecord" in retried and "Heartbeat" in retried
    assert not retried & {"CommitObject", "CompleteMultipartUpload", "DeleteObject", "CopyObject"}
    with pytest.raises(InvalidArgument, match="round_robin"):
        metanodes.service_config("random")


def test_several_metanodes_need_a_shared_database(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="shared database"):
        LocalCluster(tmp_path, metanodes=2)
    lc = LocalCluster(tmp_path, port=7000, metanodes=2, metadata_url="postgresql://h/db")
    assert lc.metanode_target == "127.0.0.1:7001,127.0.0.1:7022"
    assert [lc.metanode_name(k) for k in (1, 2)] == ["metanode", "metanode2"]
