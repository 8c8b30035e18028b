"""What vmsd creates is owner-only whatever the umask: the catalogue holds camera credentials."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rpc import RunningDaemon, make_config, metadata, record_footage
from vmsd.storage.errors import StorageLost
from vmsd.storage.store import SegmentInfo, Storage
from vmsd.v1 import cameras_pb2

SECRET = "Catalogue-Pa55"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: any mode vmsd does not set itself comes out world-readable and writable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_vmsd_creates_are_owner_only(tmp_path: Path, h264_ts: Path, permissive_umask: None) -> None:
    root = tmp_path / "root"
    record_footage(root, h264_ts)
    running = RunningDaemon(make_config(root))
    try:
        spec = cameras_pb2.CameraSpec(id="in-api", url=f"rtsp://u:{SECRET}@127.0.0.1:9/x", enabled=False)
        request = cameras_pb2.AddCameraRequest(camera=spec, reason="t")
        running.stubs.cameras.AddCamera(request, metadata=metadata("admin"))
        private = ["catalogue.db", "catalogue.db-wal", "catalogue.db-shm", "audit.db", "audit.db-wal", "audit.db-shm"]
        private += ["audit.anchor", "vmsd.lock"]
        for name in private:
            assert (root / name).exists(), name
            assert _mode(root / name) == 0o600, f"{name}: {_mode(root / name):o}"
        assert SECRET.encode() in b"".join((root / n).read_bytes() for n in ("catalogue.db", "catalogue.db-wal"))
        assert _mode(root / "keys") == 0o700
        directories = [root, root / "recordings", *(p for p in (root / "recordings").rglob("*") if p.is_dir())]
        assert len(directories) >= 4  # recordings/<camera>/<day>
        for directory in directories:
            assert _mode(directory) & 0o007 == 0, f"{directory}: {_mode(directory):o}"
        segments = list((root / "recordings").rglob("*.mp4"))
        assert segments and all(_mode(s) & 0o007 == 0 for s in segments)
    finally:
        running.stop()


def test_an_old_world_readable_catalogue_is_made_owner_only(tmp_path: Path, h264_ts: Path) -> None:
    root = tmp_path / "root"
    record_footage(root, h264_ts)
    for name in ("catalogue.db", "catalogue.db-wal", "catalogue.db-shm"):
        if (root / name).exists():
            (root / name).chmod(0o644)
    running = RunningDaemon(make_config(root))
    try:
        for name in ("catalogue.db", "catalogue.db-wal", "catalogue.db-shm"):
            assert _mode(root / name) == 0o600, name
    finally:
        running.stop()


def _open_segment_at(storage: Storage) -> None:
    storage.open_segment("cam", None, 1_767_225_600 * 10**9, [], SegmentInfo("h264", 640, 360, False))


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    """An open storage root with camera 'cam' registered."""
    opened = Storage(tmp_path / "root")
    opened.open()
    try:
        opened.catalogue.upsert_camera("cam", "", "", 0)
        yield opened
    finally:
        opened.close()


def test_no_segment_file_on_a_root_that_is_not_the_one_opened(tmp_path: Path, storage: Storage) -> None:
    """A root unmounted and something else mounted there (here: renamed away, a new directory made
    at its path): a new segment file would land on the new filesystem while its row went to the
    catalogue still open on the old one."""
    root = storage.layout.root
    root.rename(tmp_path / "old-root")
    root.mkdir()
    problem = storage.root_problem()
    assert problem is not None and problem.replaced, problem
    with pytest.raises(StorageLost, match="no longer the filesystem vmsd opened"):
        _open_segment_at(storage)
    assert list(root.rglob("*")) == []
    assert storage.catalogue.segments("cam") == []


def test_the_reserve_and_the_write_probe_stay_on_the_root_opened(tmp_path: Path, storage: Storage) -> None:
    """Retention restores the space reserve, and the function checks probe the disk, on a timer; a
    root replaced between the pass's check and the write (the test_app race the CI found) must not
    get a 16 MiB reserve on the disk underneath, nor have that disk's write latency reported."""
    root = storage.layout.root
    storage.release_reserve()
    root.rename(tmp_path / "old-root")
    root.mkdir()
    assert storage.ensure_reserve(1 << 40)
    assert storage.probe_write() > 0
    assert list(root.rglob("*")) == []
    assert (tmp_path / "old-root" / ".space-reserve").stat().st_size == Storage.reserve_bytes(1 << 40)
    assert not (tmp_path / "old-root" / ".write-probe").exists()
    assert storage.release_reserve()
    assert not (tmp_path / "old-root" / ".space-reserve").exists()


def test_no_segment_file_while_the_root_is_gone(tmp_path: Path, storage: Storage) -> None:
    """The filesystem lazily unmounted: the root's directories must not be made again underneath."""
    root = storage.layout.root
    root.rename(tmp_path / "old-root")
    with pytest.raises(StorageLost, match="cannot be reached"):
        _open_segment_at(storage)
    assert not root.exists()
    (tmp_path / "old-root").rename(root)  # the same filesystem back: writable again
    assert storage.root_problem() is None
