"""CameraManager against a real catalogue (SQLite on disk): start-up, and retention windows never below the floor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support.rpc import RunningDaemon, make_config
from vmsd.cameras import CameraManager
from vmsd.clock import SystemClock
from vmsd.config import parse_config
from vmsd.storage.store import Storage

DAY_NS = 86_400 * 10**9
CONFIG_CAMERAS = 40
API_CAMERAS = 8


def test_every_camera_is_registered_in_one_catalogue_transaction(tmp_path: Path) -> None:
    # Disabled cameras: no recorder runs, so every catalogue write seen here is registration.
    config = parse_config(
        {
            "recorder_id": "test",
            "storage": {"root": str(tmp_path / "root")},
            "cameras": [
                {"id": f"cfg-{i}", "url": f"rtsp://127.0.0.1:9/{i}", "enabled": False} for i in range(CONFIG_CAMERAS)
            ],
        }
    )
    storage = Storage(config.storage.root)
    storage.open()
    try:
        for i in range(API_CAMERAS):
            spec = {"id": f"api-{i}", "url": f"rtsp://127.0.0.1:9/api{i}", "enabled": False}
            storage.catalogue.put_api_camera(f"api-{i}", json.dumps(spec), 0)
        # Every statement SQLite runs on the catalogue's own connection: a real count of the
        # commits (each one an fsync with synchronous=FULL), not a stand-in.
        statements: list[str] = []
        storage.catalogue._require().set_trace_callback(statements.append)
        manager = CameraManager(config, storage, SystemClock())

        async def start_and_stop() -> None:
            await manager.start()
            await manager.stop()

        asyncio.run(start_and_stop())

        commits = [s for s in statements if s.strip().upper() in ("COMMIT", "END")]
        assert len(commits) == 1, f"{len(commits)} commits to register {CONFIG_CAMERAS + API_CAMERAS} cameras"
        registered = set(storage.catalogue.camera_ids())
        assert registered == {f"cfg-{i}" for i in range(CONFIG_CAMERAS)} | {f"api-{i}" for i in range(API_CAMERAS)}
    finally:
        storage.close()


def test_a_stored_api_camera_below_the_floor_keeps_its_footage_for_min_age(tmp_path: Path) -> None:
    """An API camera stored before [retention] min_age existed (an integrator's 1 s) is not
    allowed to erase footage younger than the floor."""
    root = tmp_path / "root"
    storage = Storage(root)
    storage.open()
    try:
        spec = {"id": "in-legacy", "url": "rtsp://127.0.0.1:9/x", "enabled": False, "retention_max_age": "1s"}
        storage.catalogue.put_api_camera("in-legacy", json.dumps(spec), 0)
    finally:
        storage.close()
    running = RunningDaemon(make_config(root))
    try:
        assert running.daemon.cameras.max_age_overrides()["in-legacy"] == 7 * DAY_NS
    finally:
        running.stop()
