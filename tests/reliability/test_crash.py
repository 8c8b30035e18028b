"""Fault family 1: `kill -9` at random moments while four cameras record.

Per crash: the footage lost is the time between the kill and the end of what was recovered
(≤ one GOP, 2 s here, and no less than minus the timeline anchor's error); `vmsd fsck` straight
after the kill finds nothing worse than the expected crash signature (rows left 'writing', at
most one per camera, and at most one not-yet-indexed file, both of which start-up recovery
resolves); after the restart recording is back in < 10 s with at most one 'writing' row per
camera (recovery closed the one the crash left); segment ids are never reused for another file.
After the last crash a clean stop leaves a root that `vmsd fsck` passes outright, with no file
that lacks a row and no row that lacks a file.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    Results,
    S,
    count,
    files_on_disk,
    gaps,
    rows,
    segments,
    timeline_problems,
)
from tests.support.daemon import DaemonProcess, run_vmsd, write_config
from tests.support.simulator import CameraSimulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
CAMERAS = ["crash1", "crash2", "crash3", "crash4"]
GOP_NS = 2 * S
# The kill lands at most one GOP after the last complete fragment; scheduling on a loaded 2-core
# machine (four cameras, the simulator and two other test runs) can delay a fragment's flush.
LOSS_BOUND_NS = GOP_NS + S // 2
# And the recovered footage can end a little after the kill: a session is anchored at its first
# keyframe's arrival, which comes later after its timestamp than the frames after it, so until the
# first rotation has slewed that off its frames are timed up to the anchor's error after they
# arrived (80-180 ms measured; docs/design/time.md). -25 ms was seen (native: once in CI, 1 of 5
# runs locally).
ANCHOR_ERROR_NS = 200_000_000
EXPECTED_AFTER_CRASH = ("left in state 'writing'", "file has no catalogue row")


def _recording_again(daemon: DaemonProcess) -> None:
    daemon.wait_for_log('"state": "recording"', count=len(CAMERAS), timeout=30)


def _writing_rows(root: Path) -> dict[str, int]:
    """Segment rows in state 'writing', per camera (every camera listed, 0 when it has none)."""
    found = rows(root, "SELECT camera_id, COUNT(*) AS n FROM segments WHERE state='writing' GROUP BY camera_id")
    return {camera: 0 for camera in CAMERAS} | {r["camera_id"]: r["n"] for r in found}


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_repeated_kill_9_loses_at_most_a_gop(
    relsim: CameraSimulator, tmp_path: Path, results: Results, source: str
) -> None:
    crashes = count(3, 50)
    rng = random.Random(9)
    root = tmp_path / "root"
    config = write_config(
        tmp_path / "vmsd.toml", root, {c: relsim.url(c) for c in CAMERAS}, segment_duration="6s", source=source
    )
    results["crashes"] = crashes
    results["cameras"] = len(CAMERAS)
    losses_ns: list[int] = []
    resume_ns: list[int] = []
    fsck_unexpected: list[str] = []
    crash_signature = {"writing_rows": 0, "unindexed_files": 0}
    writing_after_kill: list[dict[str, int]] = []  # per crash: camera → rows left 'writing'
    writing_after_restart: list[dict[str, int]] = []  # per crash, once recording again
    ids: dict[int, str] = {}
    daemon = DaemonProcess(config, tmp_path / "vmsd-0.log").start()
    try:
        _recording_again(daemon)
        for crash in range(1, crashes + 1):
            time.sleep(rng.uniform(1.0, 7.0))  # a random moment, across fragment and segment boundaries
            killed_ns = daemon.kill9()
            writing_after_kill.append(_writing_rows(root))
            # At most the one segment each camera was writing is left open by the kill.
            assert max(writing_after_kill[-1].values()) <= 1, (crash, "after the kill", writing_after_kill[-1])
            fsck = run_vmsd("fsck", "--config", str(config), "--no-hashes")
            for line in fsck.stdout.splitlines():
                if not line.startswith("problem:"):
                    continue
                if EXPECTED_AFTER_CRASH[0] in line:
                    crash_signature["writing_rows"] += 1
                elif EXPECTED_AFTER_CRASH[1] in line:
                    crash_signature["unindexed_files"] += 1
                else:
                    fsck_unexpected.append(f"crash {crash}: {line}")
            daemon = DaemonProcess(config, tmp_path / f"vmsd-{crash}.log").start()
            _recording_again(daemon)
            writing_after_restart.append(_writing_rows(root))
            # Recovery closed it: only the segment recording now is open.
            assert max(writing_after_restart[-1].values()) <= 1, (crash, "after restart", writing_after_restart[-1])
            for camera in CAMERAS:
                crash_gaps = [g for g in gaps(root, camera) if g["reason"] == "crash"]
                assert len(crash_gaps) == crash, (camera, [dict(g) for g in gaps(root, camera)])
                gap = crash_gaps[-1]
                losses_ns.append(killed_ns - gap["start_ns"])
                if gap["end_ns"] is not None:
                    resume_ns.append(gap["end_ns"] - daemon.started_ns)
            for seg in rows(root, "SELECT id, path FROM segments"):
                assert ids.setdefault(seg["id"], seg["path"]) == seg["path"], f"segment id {seg['id']} reused"
        daemon.terminate()
    finally:
        if daemon.alive():
            daemon.kill9()

    fsck = run_vmsd("fsck", "--config", str(config))
    indexed = {r["path"] for r in rows(root, "SELECT path FROM segments")}
    on_disk = files_on_disk(root)
    results["loss_per_crash_max_s"] = max(losses_ns) / S
    results["loss_per_crash_min_s"] = min(losses_ns) / S
    results["loss_per_crash_median_s"] = sorted(losses_ns)[len(losses_ns) // 2] / S
    results["resume_after_restart_max_s"] = max(resume_ns) / S if resume_ns else None
    results["fsck_after_crash_unexpected_problems"] = len(fsck_unexpected)
    results["fsck_after_crash_signature"] = crash_signature
    results["fsck_final_exit"] = fsck.returncode
    results["orphan_files"] = len(on_disk - indexed)
    results["rows_without_file"] = len(indexed - on_disk)
    results["segments"] = len(indexed)
    results["writing_rows_per_camera_after_kill_max"] = max(max(w.values()) for w in writing_after_kill)
    results["writing_rows_per_camera_after_restart_max"] = max(max(w.values()) for w in writing_after_restart)

    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert not fsck_unexpected, fsck_unexpected
    assert crash_signature["writing_rows"] <= crashes * len(CAMERAS)
    assert on_disk == indexed
    assert len(resume_ns) == crashes * len(CAMERAS)
    assert max(resume_ns) < 10 * S
    assert all(-ANCHOR_ERROR_NS <= loss <= LOSS_BOUND_NS for loss in losses_ns), [loss / S for loss in losses_ns]
    for camera in CAMERAS:
        assert not timeline_problems(root, camera)
        assert all(row["state"] == "complete" for row in segments(root, camera))
