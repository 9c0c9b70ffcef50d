"""Writing a small file only its owner may read (a key, a secret, credentials) whole or not at
all. The recipe, and why each step:

1. Write a temp file opened with O_EXCL and mode 0600: never readable by others, not even
   briefly; a temp file a crash left behind is removed first.
2. fsync it before the name points at it, so a crash never leaves the name on an empty or
   short file.
3. Give it its name atomically: ``os.replace`` (replace whatever was there), or ``os.link``
   (only if the name is free: two writers racing agree on the first one's file).
4. fsync the directory, so the name itself survives a crash.
"""

from __future__ import annotations

import os
from pathlib import Path


def write(path: str | Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` by the recipe above; whether the file is ours (with
    ``replace=False`` an existing file is kept and False returned)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    written = True
    if replace:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            written = False
        finally:
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return written
