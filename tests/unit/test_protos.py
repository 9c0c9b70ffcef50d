"""The committed stubs in ringstore/v1 are exactly what `make protos` generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    protos = sorted((ROOT / "protos" / "ringstore" / "v1").glob("*.proto"))
    assert protos, "no .proto files"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'protos'}",
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}",
         *map(str, protos)],
        check=True,
    )  # fmt: skip
    generated = sorted(p.name for p in (tmp_path / "ringstore" / "v1").iterdir())
    committed = sorted(
        p.name
        for p in (ROOT / "ringstore" / "v1").iterdir()
        if p.suffix in (".py", ".pyi") and p.name != "__init__.py"
    )
    assert generated == committed
    stale = [
        name for name in generated
        if (tmp_path / "ringstore" / "v1" / name).read_bytes()
        != (ROOT / "ringstore" / "v1" / name).read_bytes()
    ]  # fmt: skip
    assert stale == [], f"run `make protos`: these stubs differ from the protos: {stale}"
