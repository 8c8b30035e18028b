"""Fault family 3: hostile bitstreams over real RTSP: random-byte slices, truncated access units
(keyframes included) and huge frames (20 MiB, above the 16 MiB per-frame limit, and 4 MiB below
it), each on its own camera next to a steady one.

Measured: the daemon's RSS before, at peak (sampled every 0.2 s) and after; checked: no crash or
hang (the daemon answers SIGTERM promptly), each hostile camera is recording again after its
fault, the steady camera is untouched, fsck is clean.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.conftest import Results, S, count, gaps, segments, timeline_problems
from tests.support.daemon import DaemonProcess, run_vmsd, write_config
from tests.support.simulator import CameraSimulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
MiB = 1024 * 1024
CAMERAS = ["garbage", "truncate", "huge", "hostile-steady"]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _sample_for(pid: int, seconds: float, peak: list[int]) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peak[0] = max(peak[0], _rss_kib(pid))
        time.sleep(0.2)


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_hostile_streams(relsim: CameraSimulator, tmp_path: Path, results: Results, source: str) -> None:
    rounds = count(1, 10)
    root = tmp_path / "root"
    config = write_config(tmp_path / "vmsd.toml", root, {c: relsim.url(c) for c in CAMERAS}, source=source)
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    peak = [0]
    try:
        daemon.wait_for_log('"state": "recording"', count=len(CAMERAS), timeout=60)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        time.sleep(2)
        rss_before = _rss_kib(pid)
        for _ in range(rounds):
            relsim.garbage("garbage", 50)
            relsim.truncate("truncate", 50)
            relsim.huge("huge", 2, 20 * MiB)
            _sample_for(pid, 3, peak)
            relsim.huge("huge", 2, 4 * MiB)
            _sample_for(pid, 3, peak)
        fault_end_ns = time.time_ns()
        _sample_for(pid, 8, peak)  # the hostile cameras recover (next keyframe, or a reconnect)
        rss_after = _rss_kib(pid)
        assert daemon.alive(), daemon.log()
        exit_s = daemon.terminate()
    finally:
        if daemon.alive():
            daemon.kill9()
    fsck = run_vmsd("fsck", "--config", str(config))
    results["rounds"] = rounds
    results["injected"] = {"garbage_aus": 50 * rounds, "truncated_aus": 50 * rounds, "huge_frames": 4 * rounds}
    results["rss_before_mib"] = rss_before / 1024
    results["rss_peak_mib"] = peak[0] / 1024
    results["rss_after_mib"] = rss_after / 1024
    results["sigterm_exit_s"] = exit_s
    results["gaps"] = {c: [g["reason"] for g in gaps(root, c)] for c in CAMERAS}
    results["recording_after_fault"] = {
        c: bool(segments(root, c)) and segments(root, c)[-1]["end_ns"] > fault_end_ns + 3 * S for c in CAMERAS
    }
    assert fsck.returncode == 0, fsck.stdout
    assert exit_s < 10
    assert all(results.figures["recording_after_fault"].values()), results.figures
    assert results.figures["gaps"]["hostile-steady"] == ["restart"]
    assert (peak[0] - rss_before) < 200 * 1024, "memory not bounded under hostile frames"
    assert not [p for c in CAMERAS for p in timeline_problems(root, c)]
