"""The per-camera recorder as an operator sees it in the log (`vmsd run` with a camera that is
down), and its stall watch against a real camera."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.clock import SystemClock
from vmsd.config import CameraConfig, IngestConfig
from vmsd.ingest.recorder import CameraRecorder
from vmsd.storage.store import OpenSegment, Storage, WrittenSegment

CLIPS_DIR = "/tmp/vmsd-test-clips"
S = 1_000_000_000

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


@pytest.mark.slow
async def test_a_recorder_held_up_by_its_disk_is_not_a_camera_stall(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The camera keeps sending while the recorder thread waits 3 s on closing a segment (a slow
    disk), three times its stall_timeout: no stall, no gap, no reconnect — the native source's
    queue takes the 3 s up (it had been a stall: a gap and a reconnect)."""
    clip = make_clip(CLIPS_DIR, codec="h264", width=320, height=240, seconds=4)
    held: list[float] = []
    close_segment = Storage.close_segment

    def slow_close(self: Storage, segment: OpenSegment, end_ns: int) -> WrittenSegment:
        if not held:
            held.append(time.monotonic())
            time.sleep(3)
        return close_segment(self, segment, end_ns)

    monkeypatch.setattr(Storage, "close_segment", slow_close)
    storage.catalogue.upsert_camera("cam", "", "", 0)
    ingest = IngestConfig.model_validate({"stall_timeout": "1s"})
    with CameraSimulator([MountSpec("cam", clip)]) as sim:
        camera = CameraConfig(id="cam", url=sim.url("cam"), source="native")
        recorder = CameraRecorder(camera, ingest, storage, SystemClock(), segment_duration_ns=2 * S)
        task = asyncio.create_task(recorder.run())
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and recorder.status.segments_written < 5:
                recorder.check_stall()  # as cameras.py's watch does, every half second
                await asyncio.sleep(0.25)
        finally:
            await recorder.aclose()
            await task
    assert held, "no segment was closed"
    status = recorder.status
    assert status.segments_written >= 5
    assert status.reconnects == 0
    assert [g.reason for g in storage.catalogue.gaps("cam")] == ["restart"]  # only the shutdown's
