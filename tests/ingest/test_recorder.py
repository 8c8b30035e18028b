"""The per-camera recorder as an operator sees it in the log: `vmsd run` with a camera that is down."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import free_port

PASSWORD = "Rec0rder-Secret"


def test_a_camera_going_offline_is_a_warning_that_says_why(tmp_path: Path) -> None:
    # Nothing listens at the camera's address: every connection attempt is refused.
    cameras = {"gone": f"rtsp://admin:{PASSWORD}@127.0.0.1:{free_port()}/stream"}
    config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", cameras, extra='offline_after = "1s"')
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"state": "offline"')
    finally:
        daemon.terminate()
    events = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    offline = next(e for e in events if e.get("event") == "camera_state" and e.get("state") == "offline")
    assert offline["level"] == "warning", offline
    assert "Connection refused" in offline["error"], offline
    assert "rtsp://***@127.0.0.1" in offline["error"], offline
    assert PASSWORD not in daemon.log()
