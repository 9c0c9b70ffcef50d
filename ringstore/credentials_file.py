"""The root credentials file: two ``export`` lines a user pastes into a shell.

The metanode writes it (``--root-credentials-file``) when it generates the root key or is given
one; ``ringstore cluster up`` and :class:`ringstore.localcluster.LocalCluster` read it. The file
is mode 0600 from its first byte and replaced atomically, so a reader sees the old file or the
new one, never a part.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ringstore import private_file

ACCESS_KEY_ENV = "RINGSTORE_ACCESS_KEY_ID"  # what the SDK and the CLI read
SECRET_KEY_ENV = "RINGSTORE_SECRET_ACCESS_KEY"
ROOT_ACCESS_KEY_ENV = "RINGSTORE_ROOT_ACCESS_KEY_ID"  # what the metanode reads at start
ROOT_SECRET_KEY_ENV = "RINGSTORE_ROOT_SECRET_ACCESS_KEY"


def export_lines(access_key_id: str, secret_access_key: str) -> str:
    """``export RINGSTORE_ACCESS_KEY_ID=...`` and ``export RINGSTORE_SECRET_ACCESS_KEY=...``,
    each value quoted for a POSIX shell when it needs to be."""
    return (
        f"export {ACCESS_KEY_ENV}={shlex.quote(access_key_id)}\n"
        f"export {SECRET_KEY_ENV}={shlex.quote(secret_access_key)}\n"
    )


def write(path: str | Path, access_key_id: str, secret_access_key: str) -> None:
    """Write the file atomically with mode 0600: temp file, fsync, rename, fsync the
    directory."""
    private_file.write(path, export_lines(access_key_id, secret_access_key).encode())


def parse(text: str) -> tuple[str, str]:
    """(access key id, secret) from the file's text; ValueError naming what is missing."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            found[name] = value
    missing = [n for n in (ACCESS_KEY_ENV, SECRET_KEY_ENV) if not found.get(n)]
    if missing:
        raise ValueError(f"the credentials file sets no {' and no '.join(missing)}")
    return found[ACCESS_KEY_ENV], found[SECRET_KEY_ENV]


def read(path: str | Path) -> tuple[str, str]:
    """(access key id, secret) from the file at ``path``."""
    try:
        return parse(Path(path).read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
