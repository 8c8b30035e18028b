"""Fault family 2: cameras that misbehave, several at once, while a steady camera records.

Each round injects, in parallel on separate cameras: a 5 s drop (connections closed, 404), a 5 s
half-open connection (a proxy that keeps the TCP connection open but forwards nothing, and
accepts new connections without answering), an RTSP server restart (the process stops and
starts again 3 s later on the same port), an SPS change (a new resolution in-band at a keyframe)
and camera timestamps jumping forwards and backwards by 30 s.

Measured: reconnect time after each outage's end (first `camera_connected` after the camera is
back); checked: every outage overlaps a gap row, no segment spans a gap or overlaps another, the
steady camera has no gap but the start-up one, every timestamp jump raised a `timestamp_jump`
alarm on its camera (and the steady camera none), fsck is clean.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    CLIPS,
    Results,
    S,
    count,
    gaps,
    iso_ns,
    log_events,
    percentile,
    segments,
    timeline_problems,
)
from tests.reliability.proxy import BlackholeProxy
from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, run_vmsd, write_config
from tests.support.simulator import CameraSimulator, MountSpec

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
OUTAGE_S = 5
# Goal (issue #9): reconnected within 2 s of the camera's return. Asserted with a margin for a
# loaded 2-core machine (seven cameras, two simulators and other test runs); the figure is reported.
# The half-open camera used to miss the goal (4.1 s: the attempt made while it was still silent
# waited out the RTSP socket timeout); retries now bound the handshake by the camera's last one
# (recorder.handshake_timeout_ns), so it is held to the same bound as the others.
RECONNECT_BOUND_NS = {"drop": 4 * S, "restart": 4 * S, "halfopen": 4 * S}


def _wait_connected(daemon: DaemonProcess, camera: str, after_ns: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in log_events(daemon.log(), "camera_connected", camera):
            at_ns = iso_ns(event["timestamp"])
            if at_ns >= after_ns:
                return at_ns
        time.sleep(0.1)
    raise AssertionError(f"{camera} did not reconnect within {timeout} s")


def _overlaps_gap(root: Path, camera: str, start_ns: int, end_ns: int) -> bool:
    for gap in gaps(root, camera):
        g_end = gap["end_ns"] if gap["end_ns"] is not None else 2**62
        if gap["start_ns"] <= end_ns and g_end >= start_ns and gap["reason"] in ("camera_offline", "stall"):
            return True
    return False


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_camera_faults(relsim: CameraSimulator, tmp_path: Path, results: Results, source: str) -> None:
    rounds = count(1, 20)
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    small = make_clip(CLIPS, codec="h264", width=320, height=180, seconds=10)
    # The simulator is the suite's: a run before this one may have left the sps camera on the
    # small picture, and then the first switch below would change nothing (both sizes are checked).
    relsim.switch("sps", clip)
    restartable = CameraSimulator([MountSpec("restart", clip)]).start()
    proxy = BlackholeProxy(relsim.port)  # type: ignore[arg-type]
    cameras = {
        "drop": relsim.url("drop"),
        "halfopen": proxy.url("halfopen"),
        "restart": restartable.url("restart"),
        "sps": relsim.url("sps"),
        "jumpf": relsim.url("jumpf"),
        "jumpb": relsim.url("jumpb"),
        "steady": relsim.url("steady"),
    }
    root = tmp_path / "root"
    config = write_config(tmp_path / "vmsd.toml", root, cameras, source=source)
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    reconnect_ns: dict[str, list[int]] = {"drop": [], "halfopen": [], "restart": []}
    outages: list[tuple[str, int, int]] = []
    try:
        daemon.wait_for_log('"state": "recording"', count=len(cameras), timeout=60)
        time.sleep(3)
        for round_ in range(rounds):
            began_ns = time.time_ns()
            relsim.drop("drop", OUTAGE_S)
            proxy.blackhole()
            restartable.stop()
            relsim.switch("sps", small if round_ % 2 == 0 else clip)
            relsim.jump("jumpf", 30)
            relsim.jump("jumpb", -30)
            time.sleep(3)
            restartable.start()
            restart_back_ns = time.time_ns()
            time.sleep(OUTAGE_S - 3)
            halfopen_back_ns = proxy.restore()
            drop_back_ns = began_ns + OUTAGE_S * S
            for camera, back_ns in (
                ("drop", drop_back_ns),
                ("halfopen", halfopen_back_ns),
                ("restart", restart_back_ns),
            ):
                outages.append((camera, began_ns, back_ns))
                reconnect_ns[camera].append(_wait_connected(daemon, camera, back_ns) - back_ns)
            time.sleep(4)  # record a little after every camera is back
        assert daemon.alive(), daemon.log()
        daemon.terminate()
    finally:
        if daemon.alive():
            daemon.kill9()
        restartable.stop()
        proxy.close()
    fsck = run_vmsd("fsck", "--config", str(config))
    log = daemon.log()

    all_reconnects = [ns for values in reconnect_ns.values() for ns in values]
    results["rounds"] = rounds
    results["faults_injected"] = rounds * 6
    for camera, values in reconnect_ns.items():
        results[f"reconnect_after_return_{camera}_max_s"] = max(values) / S
    results["reconnect_after_return_p50_s"] = percentile(all_reconnects, 0.5) / S
    results["reconnect_after_return_max_s"] = max(all_reconnects) / S
    # The half-open connection is given up stall_timeout (4 s) after its last packet, not later.
    ended = [iso_ns(e["timestamp"]) for e in log_events(log, "session_ended", "halfopen") if e.get("reason") == "stall"]
    halfopen_starts = [a for c, a, _ in outages if c == "halfopen"]
    detect_ns = [min(t - a for t in ended if t > a) for a in halfopen_starts]
    results["halfopen_stall_detected_after_max_s"] = max(detect_ns) / S
    results["outages_with_gap_row"] = sum(_overlaps_gap(root, c, a, b) for c, a, b in outages)
    results["outages"] = len(outages)
    jump_alarms = {
        camera: len([e for e in log_events(log, "alarm", camera) if e.get("alarm") == "timestamp_jump"])
        for camera in cameras
    }
    results["timestamp_jump_alarms"] = jump_alarms
    results["steady_camera_gaps"] = [g["reason"] for g in gaps(root, "steady")]
    sizes = sorted({(s["width"], s["height"]) for s in segments(root, "sps")})
    results["sps_segment_sizes"] = sizes
    problems = [p for camera in cameras for p in timeline_problems(root, camera)]
    results["timeline_problems"] = len(problems)

    assert fsck.returncode == 0, fsck.stdout
    assert not problems, problems
    assert results.figures["outages_with_gap_row"] == len(outages)
    assert max(detect_ns) < 4 * S + 2 * S  # stall_timeout + stall-check period + margin
    for camera, values in reconnect_ns.items():
        assert max(values) < RECONNECT_BOUND_NS[camera], (camera, [ns / S for ns in values])
    assert results.figures["steady_camera_gaps"] == ["restart"] or results.figures["steady_camera_gaps"] == []
    assert (320, 180) in sizes and (640, 360) in sizes
    # Every injected jump (one per round, forwards on jumpf and backwards on jumpb) raised its
    # alarm, and the steady camera, whose timestamps never jumped, raised none.
    assert jump_alarms["jumpf"] >= rounds and jump_alarms["jumpb"] >= rounds, jump_alarms
    assert jump_alarms["steady"] == 0, jump_alarms
    for camera in ("sps", "jumpf", "jumpb"):
        assert [g["reason"] for g in gaps(root, camera)] in ([], ["restart"]), [dict(g) for g in gaps(root, camera)]
        assert segments(root, camera)[-1]["end_ns"] > outages[-1][2]
