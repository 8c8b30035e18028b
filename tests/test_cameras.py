"""The camera set's retention windows: never below the configured floor."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.rpc import RunningDaemon, make_config
from vmsd.storage.store import Storage

DAY_NS = 86_400 * 10**9


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
