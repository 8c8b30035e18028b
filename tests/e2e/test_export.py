"""Evidence export end to end: the real daemon recording the real simulator, `vmsctl export` of
a range that reaches into the segment being written, `vmsctl verify` of what it downloaded."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator

pytestmark = pytest.mark.slow
TOKEN = "export-test-token"
TOKENS = f"""
[[auth.tokens]]
name = "evidence-officer"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
role = "operator"
cameras = ["cam"]
"""


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_export_to_now_includes_the_footage_of_the_open_segment(
    simulator: CameraSimulator, tmp_path: Path, source: str
) -> None:
    root = tmp_path / "root"
    # 60 s segments (rotating on the minute): after ~14 s of recording most of the footage so far
    # is in the open segment.
    config = write_config(
        tmp_path / "vmsd.toml",
        root,
        {"cam": simulator.url("h264")},
        segment_duration="60s",
        extra=TOKENS,
        source=source,
    )
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"state": "recording"')
        port = next(json.loads(line)["port"] for line in daemon.log().splitlines() if "grpc_listening" in line)
        fingerprint = next(
            json.loads(line)["fingerprint"] for line in daemon.log().splitlines() if '"recorder_key"' in line
        )
        time.sleep(14)  # footage to export: several GOPs
        # Not just after a rotation (on the minute), so the open segment holds complete fragments.
        time.sleep(max(0.0, 6 - time.time() % 60))
        vmsctl = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{port}", "--token", TOKEN]
        bundle = tmp_path / "bundle"
        export = ["export", "cam", "--from", "-60s", "--to", "now", "--case", "CR-1", "--reason", "test"]
        exported = subprocess.run(
            [*vmsctl, *export, "-o", str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        exported_ns = time.time_ns()
        assert exported.returncode == 0, exported.stdout + exported.stderr
        assert "recording in progress" in exported.stdout
        time.sleep(3)  # a few more fragments reach the open segment after the export
    finally:
        daemon.terminate()
    verified = subprocess.run(
        [*vmsctl, "verify", str(bundle), "--key-fingerprint", fingerprint], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout
    assert "still being recorded at export time" in verified.stdout
    manifest = json.loads((bundle / "manifest.json").read_text())
    if source == "native":
        # The camera's clock over the range, from its sender reports (the simulator's is right).
        assert [r["status"] for r in manifest["camera_clock"]][-1] == "ok", manifest["camera_clock"]
    else:
        assert "camera_clock" not in manifest
    # What the camera recorded, as the catalogue says once the daemon has closed every segment.
    conn = sqlite3.connect(root / "catalogue.db")
    try:
        recorded = conn.execute("SELECT start_ns, end_ns FROM segments WHERE camera_id='cam'").fetchall()
    finally:
        conn.close()
    segment = manifest["segments"][-1]
    assert segment["open_at_export"] is True
    assert all("open_at_export" not in earlier for earlier in manifest["segments"][:-1])
    # The segment the export saw open went on recording after the export.
    assert next(end for start, end in recorded if start == segment["start_ns"]) > exported_ns
    # Recorded time is never called not_recorded; what the file did not yet hold is in progress.
    for gap in manifest["gaps"]:
        if gap["reason"] == "not_recorded":
            assert all(gap["end_ns"] <= start or gap["start_ns"] >= end for start, end in recorded), gap
    assert manifest["covered"][-1]["end_ns"] == segment["end_ns"]
    in_progress = [g for g in manifest["gaps"] if g["reason"] == "recording_in_progress"]
    assert len(in_progress) == 1 and in_progress[0]["start_ns"] == segment["end_ns"]
    # The footage included reaches to within a couple of GOPs (2 s) of the export.
    assert sum(c["end_ns"] - c["start_ns"] for c in manifest["covered"]) > 8_000_000_000
    assert in_progress[0]["end_ns"] - in_progress[0]["start_ns"] < 6_000_000_000
    # The included bytes are a prefix of the finished segment file: exactly what was hashed.
    original = bundle / segment["file"]
    finished = (root / segment["recorded_path"]).read_bytes()
    assert finished[: original.stat().st_size] == original.read_bytes()
    assert hashlib.sha256(original.read_bytes()).hexdigest() == segment["sha256"]
