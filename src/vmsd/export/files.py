"""Writing a bundle's files: copies and hashes of recorded segments, new files fsynced, manifest entries."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from vmsd.export import manifest as mf
from vmsd.files import sha256_file

_COPY_BYTES = 1024 * 1024


def original_name(relpath: str) -> str:
    """segments/<day>T<file>: recordings/cam/2026-01-02/000001.000000000Z.mp4 → segments/2026-01-02T000001…"""
    parts = relpath.split("/")
    return f"segments/{parts[-2]}T{parts[-1]}" if len(parts) >= 2 else f"segments/{parts[-1]}"


def copy_hashing(source: Path, target: Path, limit: int | None = None) -> tuple[str, int]:
    """Copy `source` (its first `limit` bytes, when given) to a new file, fsynced; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(_COPY_BYTES if limit is None else min(_COPY_BYTES, limit - size)):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size


def write_new_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def file_entry(staging: Path, name: str, role: mf.Role) -> mf.File:
    digest, size = sha256_file(staging / name)
    return mf.File(name=name, role=role, bytes=size, sha256=digest)
