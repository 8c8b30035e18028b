"""The handshake bound of reconnect attempts (recorder.handshake_timeout_ns): the first attempt and
every RETRY_FULL_EVERY-th consecutive failed one wait open_timeout; other retries wait what the
camera needed last time × RETRY_OPEN_FACTOR (at least RETRY_OPEN_FLOOR_NS). The end-to-end figure
(half-open camera back → recording) is measured by tests/reliability/test_camera_faults.py."""

from __future__ import annotations

from pathlib import Path

from vmsd.clock import FakeClock
from vmsd.config import CameraConfig, IngestConfig
from vmsd.ingest import recorder as rec
from vmsd.storage.store import Storage

S = 1_000_000_000


def _recorder(tmp_path: Path) -> rec.CameraRecorder:
    camera = CameraConfig(id="cam", url="rtsp://127.0.0.1:9/x")
    ingest = IngestConfig(open_timeout="10s")  # type: ignore[call-arg]
    return rec.CameraRecorder(camera, ingest, Storage(tmp_path), FakeClock(), segment_duration_ns=6 * S)


def test_first_attempt_waits_open_timeout(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    assert recorder.handshake_timeout_ns() == 10 * S


def test_retries_after_a_connection_are_bounded_by_the_last_handshake(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder._last_open_ns = S // 5  # a LAN camera: 0.2 s
    timeouts = []
    for failed in range(9):
        recorder._failed_opens = failed
        timeouts.append(recorder.handshake_timeout_ns())
    floor = rec.RETRY_OPEN_FLOOR_NS
    assert timeouts == [floor, floor, floor, 10 * S, floor, floor, floor, 10 * S, floor]


def test_a_slow_camera_keeps_a_proportional_bound(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    recorder._last_open_ns = 2 * S  # a camera that needed 2 s to answer the handshake
    assert recorder.handshake_timeout_ns() == 6 * S
    recorder._last_open_ns = 5 * S
    assert recorder.handshake_timeout_ns() == 10 * S  # never more than open_timeout
