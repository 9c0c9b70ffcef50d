"""Move one large file in and out through the CLI and report the peak RSS of the gateway and
of the CLI process (bounded memory, whatever the size):

    python -m bench.big_transfer [--size-mib 1024]

Starts its own cluster (metanode, 3 datanodes, gateway) in a temporary directory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench.run import peak_rss, sign_as_root
from ringstore.localcluster import LocalCluster, free_port_block, service_command

MiB = 1024 * 1024


def write_file(path: Path, size: int) -> str:
    md5 = hashlib.md5()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            piece = block[i % 251 :] + block[: i % 251]  # distinct blocks, cheap to make
            md5.update(piece)
            f.write(piece)
    return md5.hexdigest()


def file_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while piece := f.read(8 * MiB):
            md5.update(piece)
    return md5.hexdigest()


def cli(endpoint: str, *args: str) -> tuple[float, int]:
    """Run the CLI; return (seconds, its peak RSS in bytes)."""
    env = dict(os.environ, RINGSTORE_ENDPOINT=endpoint)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([*service_command("ringstore"), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took, max(before, after) * 1024


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.big_transfer", description=__doc__)
    p.add_argument("--size-mib", type=int, default=1024)
    args = p.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="ringstore-big-") as tmp:
        root = Path(tmp)
        src, dst = root / "src.bin", root / "dst.bin"
        digest = write_file(src, size)
        with LocalCluster(root / "cluster", port=free_port_block()) as lc:
            sign_as_root(lc)
            cli(lc.endpoint, "mb", "big")
            up, up_rss = cli(lc.endpoint, "put", str(src), "big/file.bin")
            down, down_rss = cli(lc.endpoint, "get", "big/file.bin", str(dst))
            gateway = peak_rss(lc.processes["gateway"].pid or 0)
            nodes = {n: peak_rss(p.pid or 0) for n, p in lc.processes.items() if n != "gateway"}
        assert file_md5(dst) == digest, "the file came back different"
    print(f"{args.size_mib} MiB: put {up:.1f} s ({args.size_mib / up:.0f} MiB/s), "
          f"get {down:.1f} s ({args.size_mib / down:.0f} MiB/s)")  # fmt: skip
    print(f"peak RSS: CLI {max(up_rss, down_rss) / MiB:.0f} MiB, gateway {gateway / MiB:.0f} MiB, "
          + ", ".join(f"{n} {v / MiB:.0f} MiB" for n, v in nodes.items()))  # fmt: skip


if __name__ == "__main__":
    main()
