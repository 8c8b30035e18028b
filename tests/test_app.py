"""The daemon's life cycle, in process: what start() brings up and what stop() leaves behind."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from vmsd.app import Daemon
from vmsd.config import parse_config

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
