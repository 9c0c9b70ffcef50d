"""The port blocks the tests' and benchmarks' clusters take lie outside the kernel's ephemeral
range, where any process's outgoing connection could take a port between the check and the
service's bind (a datanode then cannot start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringstore import localcluster
from ringstore.localcluster import ephemeral_ports, free_port_block


def test_blocks_stay_out_of_the_machines_ephemeral_range() -> None:
    ephemeral = ephemeral_ports()
    for _ in range(50):
        base = free_port_block(100)
        block = range(base, base + 100)
        assert base >= localcluster.LOWEST_PORT
        assert block.stop <= ephemeral.start or block.start >= ephemeral.stop, (block, ephemeral)


def test_the_range_is_read_from_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "ip_local_port_range"
    configured.write_text("10100\t65535\n")
    monkeypatch.setattr(localcluster, "EPHEMERAL_RANGE", configured)
    monkeypatch.setattr(localcluster, "_port_free", lambda port: True)  # whoever holds 10000
    assert ephemeral_ports() == range(10100, 65536)
    assert free_port_block(100) == 10000  # the one block of 100 below 10100


def test_no_room_outside_the_range_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "ip_local_port_range"
    configured.write_text("1024 65535\n")
    monkeypatch.setattr(localcluster, "EPHEMERAL_RANGE", configured)
    with pytest.raises(OSError, match="outside the ephemeral range"):
        free_port_block(10)


def test_linuxs_default_where_the_kernel_does_not_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localcluster, "EPHEMERAL_RANGE", tmp_path / "absent")
    assert ephemeral_ports() == range(32768, 61000)
