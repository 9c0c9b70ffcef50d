"""Start or stop an all-in-one Swift under a directory (see bench/swift/aio.py).

python -m bench.swift start DIR     # prints the proxy URL and a token
python -m bench.swift stop DIR      # stops the servers listed in DIR/pids
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from pathlib import Path

from bench.swift.aio import SwiftAIO


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.swift", description=__doc__)
    p.add_argument("action", choices=["start", "stop"])
    p.add_argument("dir", type=Path, help="where the configs, rings, devices and pids live")
    args = p.parse_args(argv)
    if args.action == "start":
        aio = SwiftAIO(args.dir)
        aio.start()
        path, token = aio.token()
        print(f"proxy {aio.url}  storage {aio.url}{path}  X-Auth-Token {token}")
        print(f"stop with: python -m bench.swift stop {args.dir}")
        return
    pids = args.dir / "pids"
    if not pids.exists():
        raise SystemExit(f"{pids} not found: nothing was started under {args.dir}")
    for line in pids.read_text().splitlines():
        name, pid = line.split()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid), signal.SIGTERM)
            print(f"stopped {name} ({pid})")
    pids.unlink()


if __name__ == "__main__":
    main()
