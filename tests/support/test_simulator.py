"""The camera simulator serves what it claims and misbehaves on command.

Real parts only: the simulator subprocess, ffprobe, and PyAV's RTSP demuxer in this process.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from itertools import pairwise

import av
import pytest

from .clips import make_clip
from .simulator import CameraSimulator, MountSpec

pytestmark = pytest.mark.slow  # needs the real camera simulator (marker from pyproject.toml)

CLIPS_DIR = "/tmp/vmsd-test-clips"
FPS = 25


@pytest.fixture(scope="session")
def clips():
    """Small clips, cached across runs (make_clip is keyed by parameters and writes atomically)."""
    return {
        "h264": make_clip(CLIPS_DIR, codec="h264", width=640, height=360, seconds=6),
        "h265": make_clip(CLIPS_DIR, codec="h265", width=640, height=360, seconds=6),
        "h264_aac": make_clip(CLIPS_DIR, codec="h264", width=640, height=360, seconds=6, audio=True),
        "h264_small": make_clip(CLIPS_DIR, codec="h264", width=320, height=240, seconds=6, variant=1),
    }


@pytest.fixture(scope="module")
def sim(clips):
    # One mount per misbehaviour so tests do not disturb each other.
    mounts = [
        MountSpec("h264", clips["h264"]),
        MountSpec("h265", clips["h265"]),
        MountSpec("av", clips["h264_aac"]),
        MountSpec("drop", clips["h264"]),
        MountSpec("stall", clips["h264"]),
        MountSpec("jump", clips["h264"]),
        MountSpec("switch", clips["h264"]),
    ]
    with CameraSimulator(mounts) as s:
        yield s


def ffprobe_streams(url: str, timeout: float = 15) -> list[dict]:
    proc = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate,channels",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout)["streams"]


def open_rtsp(url: str):
    return av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 10))


class Reader:
    """Demux a URL in a thread, recording (arrival monotonic time, packet) for non-empty packets;
    ``error`` holds the exception (or "eof") that ended the stream."""

    def __init__(self, url: str):
        self.container = open_rtsp(url)
        self.packets: list[tuple[float, av.Packet]] = []
        self.error: object = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for p in self.container.demux():
                if self._stop:
                    return
                if p.size:
                    self.packets.append((time.monotonic(), p))
            self.error = "eof"
        except Exception as e:  # the test inspects it
            self.error = e

    def close(self):
        self._stop = True
        self._thread.join(15)
        self.container.close()


@pytest.mark.parametrize(
    "mount, expected",
    [
        ("h264", [("video", "h264", 640, 360)]),
        ("h265", [("video", "hevc", 640, 360)]),
        ("av", [("video", "h264", 640, 360), ("audio", "aac", 16000, 1)]),
    ],
)
def test_ffprobe_reports_codecs_and_geometry(sim, mount, expected):
    streams = ffprobe_streams(sim.url(mount))
    got = [
        (
            s["codec_type"],
            s["codec_name"],
            s.get("width") or int(s.get("sample_rate", 0)),
            s.get("height") or s.get("channels"),
        )
        for s in streams
    ]
    assert got == expected


@pytest.mark.parametrize("mount", ["h264", "h265", "av"])
def test_extradata_before_first_packet_and_real_time_rate(sim, mount):
    c = open_rtsp(sim.url(mount))
    try:
        video = c.streams.video[0]
        # The recorder writes fMP4 with empty_moov, so parameter sets must come from the SDP.
        assert video.codec_context.extradata
        if mount == "av":
            assert c.streams.audio[0].codec_context.extradata
        pts, keys = [], []
        t0 = time.monotonic()
        for p in c.demux(video):
            if p.size == 0 or p.pts is None:
                continue
            t = float(p.pts * p.time_base)
            pts.append(t)
            if p.is_keyframe:
                keys.append(t)
            if time.monotonic() - t0 > 4:
                break
        wall = time.monotonic() - t0
    finally:
        c.close()
    assert all(b > a for a, b in pairwise(pts)), "pts not strictly increasing"
    span = pts[-1] - pts[0]
    assert span >= 3.5
    assert span <= wall + 2, "faster than real time (beyond av.open's probe backlog)"
    assert (len(pts) - 1) / span == pytest.approx(FPS, rel=0.03)
    assert len(keys) >= 2
    assert all(b - a == pytest.approx(2.0, abs=0.01) for a, b in pairwise(keys))


def test_drop_disconnects_refuses_then_serves_again(sim):
    reader = Reader(sim.url("drop"))
    try:
        time.sleep(1)
        assert reader.packets
        t0 = time.monotonic()
        assert sim.drop("drop", 3)["kicked"] == 1
        with pytest.raises(RuntimeError, match="404"):
            ffprobe_streams(sim.url("drop"))
        deadline = time.monotonic() + 5
        while reader.error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reader.error is not None, "client still connected after drop"
        while True:
            try:
                streams = ffprobe_streams(sim.url("drop"))
                break
            except RuntimeError:
                assert time.monotonic() - t0 < 10, "mount did not come back"
                time.sleep(0.3)
        assert time.monotonic() - t0 >= 3
        assert streams[0]["width"] == 640
    finally:
        reader.close()


def test_stall_stops_media_but_keeps_session(sim):
    reader = Reader(sim.url("stall"))
    try:
        time.sleep(1.5)
        sim.stall("stall", 3)
        t0 = time.monotonic()
        time.sleep(4.5)
        arrivals = [t for t, _ in reader.packets]
        gaps = [b - a for a, b in pairwise(arrivals)]
        assert max(gaps) >= 2.5, "media kept flowing during the stall"
        assert arrivals[-1] > t0 + 3, "media did not resume after the stall"
        assert reader.error is None, "stall must not close the connection"
        assert sim.status()["mounts"]["stall"]["clients"] == 1
    finally:
        reader.close()


def test_jump_shifts_later_timestamps(sim):
    reader = Reader(sim.url("jump"))
    try:
        time.sleep(1.5)
        sim.jump("jump", 3600)
        time.sleep(1.5)
        pts = [float(p.pts * p.time_base) for _, p in reader.packets if p.pts is not None]
        steps = [b - a for a, b in pairwise(pts)]
        assert max(steps) == pytest.approx(3600.04, abs=0.1)
        assert sorted(steps)[len(steps) // 2] == pytest.approx(1 / FPS, abs=0.005)
    finally:
        reader.close()


def test_switch_changes_resolution_in_band(sim, clips):
    c = open_rtsp(sim.url("switch"))
    sizes = []
    try:
        t0 = time.monotonic()
        switched = False
        for p in c.demux(c.streams.video[0]):
            for f in p.decode():
                if not sizes or sizes[-1] != (f.width, f.height):
                    sizes.append((f.width, f.height))
            if not switched and time.monotonic() - t0 > 0.5:
                sim.switch("switch", clips["h264_small"])
                switched = True
            if (320, 240) in sizes or time.monotonic() - t0 > 6:
                break
    finally:
        c.close()
    assert sizes == [(640, 360), (320, 240)]


def test_garbage_is_delivered_and_stream_recovers(sim):
    reader = Reader(sim.url("h264"))
    try:
        time.sleep(1.5)
        before = len(reader.packets)
        sim.garbage("h264", 10)
        time.sleep(3)
        after = [p for _, p in reader.packets[before:]]
        assert sim.status()["mounts"]["h264"]["garbage_sent"] >= 10
        assert reader.error is None
        assert len(after) >= 60, "stream stopped after garbage"
        assert any(p.is_keyframe for p in after[10:]), "no keyframe after the garbage"
    finally:
        reader.close()
