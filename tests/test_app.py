"""The daemon's life cycle, in process: what start() brings up and what stop() leaves behind."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from vmsd.app import Daemon
from vmsd.config import parse_config
from vmsd.storage.catalogue import Catalogue, GapReason
from vmsd.storage.watch import STORAGE_LOST_EXIT

CAMERAS = 32


def recorder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rec-")]


async def test_a_stop_during_camera_start_up_starts_no_more_and_leaves_no_recorder(tmp_path: Path) -> None:
    # The cameras point at a loopback port that accepts and never answers: every recorder started
    # is inside its RTSP handshake when the stop comes.
    with socket.create_server(("127.0.0.1", 0), backlog=4 * CAMERAS) as fake_camera:
        port = fake_camera.getsockname()[1]
        config = parse_config(
            {
                "recorder_id": "test",
                "storage": {"root": str(tmp_path / "root"), "min_free": "1MiB"},
                "grpc": {"listen": "127.0.0.1:0"},
                "ingest": {"open_timeout": "2s"},
                "cameras": [{"id": f"cam-{i:02d}", "url": f"rtsp://127.0.0.1:{port}/{i}"} for i in range(CAMERAS)],
            }
        )
        daemon = Daemon(config)
        await daemon.start()
        try:
            # The control plane serves before the cameras start; they start behind it, one by one.
            assert daemon.control_plane.port > 0
            while not daemon.cameras.recorders():
                await asyncio.sleep(0)
            started_at_stop = len(daemon.cameras.recorders())
        finally:
            await daemon.stop()
        assert 0 < started_at_stop < CAMERAS
        assert daemon.cameras.recorders() == {}
        assert recorder_threads() == []
        catalogue = daemon.storage.catalogue
        catalogue.open()
        try:
            # Every camera is registered (and so known to the API) though most never started.
            assert len(catalogue.camera_ids()) == CAMERAS
            assert catalogue.open_runs() == []
        finally:
            catalogue.close()


async def test_a_lost_storage_ends_the_run_with_75_and_the_next_start_records_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another directory at the storage root (what mounting something else there looks like):
    `run()` stops and returns STORAGE_LOST_EXIT, noting why in the runtime directory; the next
    start-up's recovery then ends the run left open as a `storage_error` gap, not a `crash`."""
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    root = tmp_path / "root"
    config = parse_config(
        {
            "recorder_id": "test",
            "storage": {"root": str(root), "min_free": "1MiB"},
            "grpc": {"listen": "127.0.0.1:0"},
            "cameras": [{"id": "cam", "url": "rtsp://127.0.0.1:9/x", "enabled": False}],
        }
    )
    daemon = Daemon(config)
    running = asyncio.create_task(daemon.run())
    while daemon.control_plane.port == 0:
        await asyncio.sleep(0.05)
    root.rename(tmp_path / "old-root")
    root.mkdir()
    assert await asyncio.wait_for(running, 30) == STORAGE_LOST_EXIT
    assert (tmp_path / "run" / "storage-lost").exists()

    # The same storage back, with a run its camera left open when the storage went.
    root.rmdir()
    (tmp_path / "old-root").rename(root)
    catalogue = Catalogue(root / "catalogue.db")
    catalogue.open()
    catalogue.begin_run("cam", 1_000)
    catalogue.close()
    again = Daemon(config)
    await again.start()
    try:
        gaps = again.storage.catalogue.gaps("cam")
    finally:
        await again.stop()
    assert [g.reason for g in gaps] == [GapReason.STORAGE_ERROR], gaps
    assert not (tmp_path / "run" / "storage-lost").exists()
