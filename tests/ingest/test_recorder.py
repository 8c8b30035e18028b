"""The per-camera recorder as an operator sees it in the log (`vmsd run` with a camera that is
down), and its stall watch against a real camera."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.clock import SystemClock
from vmsd.config import CameraConfig, IngestConfig
from vmsd.ingest import native
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


def _native_recorder(storage: Storage, sim: CameraSimulator, ingest: dict[str, str], segment_s: int) -> CameraRecorder:
    """A recorder of the simulator's mount "cam" on the native source, into `storage`."""
    storage.catalogue.upsert_camera("cam", "", "", 0)
    camera = CameraConfig(id="cam", url=sim.url("cam"), source="native")
    config = IngestConfig.model_validate(ingest)
    return CameraRecorder(camera, config, storage, SystemClock(), segment_duration_ns=segment_s * S)


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
    with CameraSimulator([MountSpec("cam", clip)]) as sim:
        recorder = _native_recorder(storage, sim, {"stall_timeout": "1s"}, segment_s=2)
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


async def test_a_clean_stop_records_what_had_already_arrived(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording alone, a native camera's units wait for its recorder thread until the next
    keyframe or a batch (1 s; here a minute, and keyframes 8 s apart, so that 3 s wait): a
    stop still writes them, so the footage ends where the stop came, not up to a batch or a GOP
    earlier. The stop is a restart gap, not the camera ending its stream."""
    monkeypatch.setattr(native, "DEFAULT_BATCH_NS", 60 * S)
    clip = make_clip(CLIPS_DIR, codec="h264", width=320, height=240, gop_s=8, seconds=16)
    with CameraSimulator([MountSpec("cam", clip)]) as sim:
        recorder = _native_recorder(storage, sim, {}, segment_s=60)
        task = asyncio.create_task(recorder.run())
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and recorder.status.state.value != "recording":
                await asyncio.sleep(0.05)
            assert recorder.status.state.value == "recording"
            await asyncio.sleep(3)
        finally:
            stop_ns = time.time_ns()
            await recorder.aclose()
            await task
    # (Two segments when the run crossed a minute: segments end on the wall clock's boundaries.)
    ends = [segment.end_ns for segment in storage.catalogue.segments("cam")]
    assert ends and None not in ends
    end_ns = max(e for e in ends if e is not None)
    assert stop_ns - end_ns < 500_000_000, f"the footage ends {(stop_ns - end_ns) / S:.2f} s before the stop"
    assert [g.reason for g in storage.catalogue.gaps("cam")] == ["restart"]


def _packet_times(path: Path, stream: str) -> list[float]:
    command = ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time"]
    done = subprocess.run(
        [*command, "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(line) for line in done.stdout.split()]


AUDIO_ARRIVAL_ERROR_S = 0.2


async def test_a_native_camera_s_audio_is_recorded_in_step_with_its_video(storage: Storage) -> None:
    """Each RTP track's timestamps start at a random value: the audio is put on the video's
    media time (from arrival, then from the sender reports), so that it is recorded at all (it
    had all been dropped as too far from the video) and in step with it: in each segment after
    the first sender reports, the first audio frame is the one at or just after the segment's
    first picture (AAC frames of 1024 samples at 16 kHz: 64 ms)."""
    clip = make_clip(CLIPS_DIR, codec="h264", width=320, height=240, seconds=6, audio=True)
    with CameraSimulator([MountSpec("cam", clip)]) as sim:
        recorder = _native_recorder(storage, sim, {}, segment_s=4)
        task = asyncio.create_task(recorder.run())
        try:
            await asyncio.sleep(16)
        finally:
            await recorder.aclose()
            await task
    segments = [s for s in storage.catalogue.segments("cam") if s.end_ns is not None]
    assert len(segments) >= 3
    for index, segment in enumerate(segments):
        path = storage.segment_path(segment)
        audio, video = _packet_times(path, "a:0"), _packet_times(path, "v:0")
        # Until the first sender reports the audio is placed from arrival, up to ~180 ms late
        # (native-ingest.md), so the session's first segment can start that much audio short: CI
        # once had a first segment of 3 frames (its next keyframe came 0.12 s after the first,
        # past a 4 s boundary) with no audio in it.
        seconds = max(0, len(video) / 25 - (AUDIO_ARRIVAL_ERROR_S if index == 0 else 0))
        assert len(audio) >= 0.9 * seconds * 16000 / 1024, (segment.path, len(audio), len(video))
    # The track carries its decoder configuration (the SDP's AudioSpecificConfig) in its esds:
    # without it MPEG-TS relays and players cannot place the frames.
    probe = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=extradata_size"]
    done = subprocess.run(
        [*probe, "-of", "csv=p=0", str(storage.segment_path(segments[-1]))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "2"  # AAC-LC, 16 kHz, mono
    for segment in segments[2:]:  # ≥ 8 s in: the tracks' first sender reports have come
        first_audio = _packet_times(storage.segment_path(segment), "a:0")[0]
        assert 0 <= first_audio < 0.08, (segment.path, first_audio)
    assert recorder.segmenter.counters.dropped_audio <= 3
