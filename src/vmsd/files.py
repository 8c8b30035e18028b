"""Durable and private file operations shared by storage, the audit trail and exports.

A storage-independent home: the audit trail and the export code need the same fsync and file-mode
rules as the recordings store, without depending on the storage package (that was an import
cycle: audit -> storage -> audit).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# The catalogue holds camera URLs with their credentials, and the audit trail who watched what, so
# what vmsd creates is set here, not left to the umask of whoever starts it
# (docs/design/storage.md, "File modes").
PRIVATE_FILE_MODE = 0o600

_HASH_CHUNK_BYTES = 1024 * 1024


def open_dir(path: Path) -> int:
    """A descriptor of the directory `path`, for creating files relative to it (`dir_fd=`): they go
    to the directory opened even if another is later mounted or made at `path`."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def fsync_dir(path: Path) -> None:
    """fsync a directory so that a create/unlink in it survives power loss."""
    fd = open_dir(path)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new content, never a mix.

    Written to a temporary name beside it, fsynced, renamed into place, and the directory fsynced
    so the rename itself survives power loss. `mode` is the new file's mode (subject to the umask)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    """fsync a file written by someone else (a muxer, an encoder), so that its bytes survive power
    loss before a rename or a catalogue row makes it count."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private(path: Path) -> None:
    """Create `path` if missing and make it and its SQLite companions (-wal, -shm, -journal) 0600.

    SQLite creates a database 0644 and gives its companions the database's mode, so an empty file
    created 0600 before the first connect is enough for new files; chmod fixes older ones."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        try:
            os.chmod(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)
        except FileNotFoundError:
            pass


def sha256_file(path: os.PathLike[str] | str) -> tuple[str, int]:
    """The SHA-256 (lowercase hex) and the size in bytes of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
