"""Damage to stored blobs, as a failing disk would do it, wherever the store keeps them (a blob
file or a record in a volume file)."""

from __future__ import annotations

from pathlib import Path

from datanode.blobstore import DiskBlobStore
from datanode.blobstore.volume import iter_puts


def flip_at(path: Path, position: int, mask: int = 0x40) -> None:
    """Flip bits of the byte at ``position`` of ``path``, in place."""
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ mask]))


def flip(store: DiskBlobStore, blob_id: str, position: int, mask: int = 0x40) -> None:
    """Flip a byte of the blob's stored form (data, then footer) at ``position``."""
    found = store.locate(blob_id)
    assert found is not None, f"blob {blob_id} is not in the store"
    path, start = found
    flip_at(path, start + position, mask)


def volume_blobs(data_dir: Path) -> dict[str, tuple[Path, int]]:
    """The blobs in the volumes of a datanode's data directory (read from the files, so it works
    while the datanode runs): id -> (volume file, offset of the stored form)."""
    found: dict[str, tuple[Path, int]] = {}
    for path, record in iter_puts(data_dir / "volumes"):
        found[record.blob_id] = (path, record.offset)
    return found
