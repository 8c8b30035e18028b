"""Function checks and metrics against the real daemon, the real simulator and the real CLI.

Four simulated cameras: a healthy one, one that sends a black picture, one whose picture is frozen,
and one that stops (dropped by the simulator for longer than the test). `vmsctl health` must
flag the last three and pass the first; the Prometheus endpoint must show the vmsd_ series
moving while recording; the check is stored and audited.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec, free_port

pytestmark = pytest.mark.slow

CLIPS = "/tmp/vmsd-test-clips"
TOKEN = "function-check-token"


@pytest.fixture  # per test: a run leaves "stops" dropped for 120 s
def faulty_cameras() -> Iterator[CameraSimulator]:
    moving = make_clip(CLIPS, codec="h264", seconds=10)
    mounts = [
        MountSpec("good", moving),
        MountSpec("black", make_clip(CLIPS, codec="h264", seconds=10, picture="black")),
        MountSpec("frozen", make_clip(CLIPS, codec="h265", seconds=10, picture="frozen")),
        MountSpec("stops", moving),
    ]
    with CameraSimulator(mounts) as sim:
        yield sim


def vmsctl(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{port}", "--token", TOKEN, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_function_checks_flag_black_frozen_and_stopped_cameras_and_metrics_move(
    faulty_cameras: CameraSimulator, tmp_path: Path, source: str
) -> None:
    metrics_port = free_port()
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    extra = "\n".join(
        [
            "[metrics]",
            f'listen = "127.0.0.1:{metrics_port}"',
            "[health]",
            "times = []",
            'observe = "3s"',
            "[[auth.tokens]]",
            'name = "control-room"',
            f'sha256 = "{digest}"',
            'role = "viewer"',
            'cameras = ["*"]',
        ]
    )
    cameras = {name: faulty_cameras.url(name) for name in ("good", "black", "frozen", "stops")}
    config = write_config(
        tmp_path / "vmsd.toml", tmp_path / "root", cameras, segment_duration="4s", extra=extra, source=source
    )
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"grpc_listening"')
        port = next(json.loads(line)["port"] for line in daemon.log().splitlines() if "grpc_listening" in line)
        daemon.wait_for_log('"state": "recording"', count=4, timeout=60)
        first = scrape(metrics_port)
        # Two segments of history give each camera its usual frame rate and bitrate.
        time.sleep(10)
        faulty_cameras.drop("stops", 120)
        daemon.wait_for_log("session_ended", timeout=30)
        second = scrape(metrics_port)

        for camera in cameras:
            labels = (("camera_id", camera),)
            assert (
                second[("vmsd_camera_video_packets_total", labels)] > first[("vmsd_camera_video_packets_total", labels)]
            )
            assert (
                second[("vmsd_camera_received_bytes_total", labels)]
                > first[("vmsd_camera_received_bytes_total", labels)]
            )
            assert second[("vmsd_camera_segments_total", labels)] >= 2
        assert second[("vmsd_camera_recording", (("camera_id", "good"),))] == 1
        assert second[("vmsd_camera_recording", (("camera_id", "stops"),))] == 0
        assert second[("vmsd_camera_gaps_total", (("camera_id", "stops"),))] >= 1
        assert second[("vmsd_storage_free_bytes", ())] > 0

        began = time.monotonic()
        done = vmsctl(port, "--json", "health")
        took_s = time.monotonic() - began
        assert done.returncode == 1, done.stdout + done.stderr  # something failed: exit 1
        report = json.loads(done.stdout)
        verdicts = {c["camera_id"]: c for c in report["cameras"]}
        problems = {
            cid: {f["check"] for f in c["findings"] if f["severity"] != "SEVERITY_OK"} for cid, c in verdicts.items()
        }
        print(f"function check took {took_s:.1f}s; findings: {problems}")
        # The camera clock rate comes from one 4 s segment's slew here: on a starved CPU every
        # packet can arrive late for a whole segment, which reads as a clock running up to 1000 ppm
        # fast (a known limit, seen in loaded full runs; the RTCP sender-report clock of the native
        # ingest replaces it). Everything else about the good camera must be OK.
        good_problems = problems["good"] - {"camera_clock"}
        assert not good_problems and verdicts["good"]["verdict"] != "SEVERITY_FAIL", verdicts["good"]
        assert verdicts["black"]["verdict"] == "SEVERITY_FAIL" and "picture_black" in problems["black"]
        assert verdicts["frozen"]["verdict"] == "SEVERITY_FAIL" and "picture_frozen" in problems["frozen"]
        assert verdicts["stops"]["verdict"] == "SEVERITY_FAIL" and "recording" in problems["stops"]
        assert report["verdict"] == "SEVERITY_FAIL"
        # What was measured is reported: the healthy camera's rate against its usual rate.
        good = verdicts["good"]
        assert 15 < good["frames_per_s"] < 35 and 20 < good["usual_frames_per_s"] < 30
        assert int(good["bitrate_bps"]) > 0 and int(good["usual_bitrate_bps"]) > 0
        assert len(good["pictures"]) >= 2
        assert int(report["disk"]["write_latency_ns"]) > 0

        # Stored, audited (with who asked) and alarmed.
        last = json.loads(vmsctl(port, "--json", "health", "--last").stdout)
        assert last["id"] == report["id"]
        assert last["requested_by"] == "control-room" and last["trigger"] == "request"
        events = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
        alarms = {(e.get("camera_id"), e["alarm"]) for e in events if e["event"] == "alarm" and "check_id" in e}
        assert ("black", "function_check.picture_black") in alarms
        assert ("frozen", "function_check.picture_frozen") in alarms
        assert ("stops", "function_check.recording") in alarms
        assert not [a for a in alarms if a[0] == "good" and a[1] != "function_check.camera_clock"]
        table = vmsctl(port, "health", "--last")
        assert "picture is blank/black" in table.stdout and "frozen" in table.stdout, table.stdout
        third = scrape(metrics_port)
        assert third[("vmsd_function_check_camera_verdict", (("camera_id", "black"),))] == 2
        assert third[("vmsd_function_check_camera_verdict", (("camera_id", "good"),))] < 2  # ok, or the clock warning
        key = (
            "vmsd_rpc_requests_total",
            (("code", "OK"), ("method", "/vmsd.v1.FunctionCheckService/RunFunctionCheck")),
        )
        assert third[key] == 1

        daemon.terminate(timeout=20)
        audit_db = tmp_path / "root" / "audit.db"
        rows = subprocess.run(
            ["sqlite3", str(audit_db), "SELECT action, principal FROM audit WHERE action='function_check'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert rows == ["function_check|control-room"]
    finally:
        if daemon.alive():
            daemon.kill9()
