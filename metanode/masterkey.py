"""The master key: seals access-key secrets at rest, held outside the metadata.

Guarantees:

- The key is 32 random bytes in ``<data-dir>/master.key``, beside the database but never in it:
  a copy of ``meta.db`` alone (a backup, a stolen disk image of it) reveals no secret.
- Created on first start, mode 0600, written whole or not at all (temp file, fsync, rename).
- Refused, with an error that names the file and the rule, if its mode lets anyone but its
  owner read or write it, if it cannot be read, or if it is not exactly 32 bytes.
- A secret is sealed with AES-256-GCM under a fresh 96-bit nonce, with the access key id as
  associated data: a sealed secret moved onto another key's row does not open. The sealed form
  is versioned (first byte). A wrong master key, or a damaged record, raises
  :class:`MasterKeyError` rather than returning garbage.
- Nothing here logs or formats a secret or the key.
"""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ringstore import private_file

MASTER_KEY_NAME = "master.key"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's 96-bit nonce, random per seal
SEAL_V1 = b"\x01"  # format of a sealed secret: version byte, nonce, ciphertext with its tag


class MasterKeyError(RuntimeError):
    """The master key file is unusable, or a secret does not open under it."""


class MasterKey:
    """Seals and opens access-key secrets. ``repr`` shows where the key came from, never it."""

    def __init__(self, key: bytes, source: str = "memory") -> None:
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key is {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKey(source={self.source!r})"

    @classmethod
    def ephemeral(cls) -> MasterKey:
        """A fresh key held in memory only: for a store that persists nothing (``--memory``)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def seal(self, access_key_id: str, secret: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), access_key_id.encode())
        return SEAL_V1 + nonce + sealed

    def open(self, access_key_id: str, sealed: bytes) -> str:
        """The secret of ``access_key_id``; :class:`MasterKeyError` if it does not open."""
        if sealed[:1] != SEAL_V1 or len(sealed) < 1 + NONCE_BYTES + 16:
            raise MasterKeyError(
                f"the sealed secret of access key {access_key_id} is not in a known format "
                f"(version byte {sealed[:1].hex() or 'missing'})"
            )
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, access_key_id.encode()).decode()
        except InvalidTag:
            raise MasterKeyError(
                f"the secret of access key {access_key_id} does not open with the master key "
                f"from {self.source}: that is not the master key it was sealed with (was "
                f"{MASTER_KEY_NAME} replaced or lost?), or the record is damaged"
            ) from None


def load_or_create(data_dir: str | Path, path: str | Path = "") -> MasterKey:
    """The master key in ``path`` (``<data_dir>/master.key`` when empty), created on first
    start. Several metanodes over one database must all be given the same file: a secret
    sealed by one opens on another only under the same key."""
    path = Path(path) if path else Path(data_dir) / MASTER_KEY_NAME
    if not path.exists():
        _create(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise MasterKeyError(
                f"master key {path} has mode {mode:04o}: it must be readable and writable by "
                f"its owner only (chmod 600 {path})"
            )
        key = path.read_bytes()
    except OSError as exc:  # not ours to read, a directory, an I/O error
        raise MasterKeyError(f"master key {path} cannot be read: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            f"master key {path} holds {len(key)} bytes, not {KEY_BYTES}: it is damaged "
            "(restore it from a backup; without it no secret can be read)"
        )
    return MasterKey(key, source=str(path))


def _create(path: Path) -> None:
    """Write a new key whole or not at all, readable by the owner only (a crash never leaves
    a master.key that is empty or short, and secrets sealed after it are never orphaned)."""
    # Never replacing one that exists: two metanodes given one new file both start with
    # whichever key reached it first.
    private_file.write(path, secrets.token_bytes(KEY_BYTES), replace=False)
