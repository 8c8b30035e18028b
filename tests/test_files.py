from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from vmsd.files import PRIVATE_FILE_MODE, fsync_dir, make_private, sha256_file, write_atomic


def test_sha256_file_gives_digest_and_size_across_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_write_atomic_replaces_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "key.pub"
    path.write_bytes(b"old")
    write_atomic(path, b"new", 0o600)
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pub"]
    fsync_dir(tmp_path)  # a directory can be fsynced


def test_make_private_creates_the_file_and_tightens_companions(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"")
    wal.chmod(0o644)
    make_private(db)
    assert stat.S_IMODE(db.stat().st_mode) == PRIVATE_FILE_MODE
    assert stat.S_IMODE(wal.stat().st_mode) == PRIVATE_FILE_MODE
