"""Fault family 5: wall-clock steps during recording (+1 year, -1 hour, back to 1970).

The real clock cannot be stepped under a test, so this runs at the unit level: the real Segmenter,
Storage and RetentionTask share one FakeClock; a recorded clip is fed as if live and the wall
clock is stepped mid-stream (as NTP or an RTC reset would), then a second camera session starts
on the stepped clock (a reconnect or restart after the step).

Checked: the run is split at the step (a `clock_step` gap), no two segments overlap and no
segment spans a gap, the recorder raises an alarm, and a retention pass right after the step
erases nothing (its clock guard pauses age-based erasure) and raises its own alarm.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import Results, count, timeline_problems
from tests.support.feed import feed
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter, SegmenterEvents
from vmsd.retention.task import RetentionTask
from vmsd.storage import fsck
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.system_facts import DiskSpace

pytestmark = pytest.mark.reliability
S = 1_000_000_000
DAY = 86_400 * S
MID = 1_767_312_000 * S  # 2026-01-02T00:00:00Z
STEPS = {"plus_1_year": 365 * DAY, "minus_1_hour": -3600 * S, "to_1970": -MID + 10 * S}


@pytest.mark.parametrize("step", list(STEPS))
def test_clock_step_splits_the_run_and_erases_nothing(
    step: str, tmp_path: Path, h264_ts: Path, results: Results
) -> None:
    repeats = count(1, 5)
    root = tmp_path / "root"
    storage = Storage(root)
    storage.open()
    reconcile(storage)
    clock = FakeClock(wall_ns=MID)
    audit = AuditLog(root / "audit.db", clock, anchor_path=root / "audit.anchor")
    audit.open()
    alarms: list[tuple[str, str]] = []
    try:
        storage.catalogue.upsert_camera("cam", "cam", "", 0)
        retention = RetentionTask(
            storage,
            audit,
            clock,
            default_max_age_ns=31 * DAY,
            check_interval_ns=60 * S,
            min_free=lambda total: 0,
            max_age_by_camera=dict,
            space=lambda: DiskSpace(10**12, 10**13),
        )
        retention.run_once()  # takes the clock reference
        segmenter = Segmenter(
            "cam",
            storage,
            clock,
            segment_duration_ns=10 * S,
            events=SegmenterEvents(on_alarm=lambda kind, message: alarms.append((kind, message))),
        )
        delta = STEPS[step]
        during: list[tuple[int, list[str]]] = []  # (deletions planned, retention alarms) while stepped
        for _ in range(repeats):

            def step_once(index: int, _packet: object, delta: int = delta) -> None:
                if index == 150:  # 6 s into the session
                    clock.step_wall(delta)
                    clock.advance(S)
                if index == 175:  # a retention pass on the stepped clock
                    plan = retention.run_once()
                    during.append((len(plan.deletions), sorted(retention.status.alarms)))

            feed(segmenter, clock, h264_ts, seconds=12, before_packet=step_once)
            clock.advance(2 * S)
            feed(segmenter, clock, h264_ts, seconds=4)  # a new session on the stepped clock
            clock.step_wall(-delta)  # the clock is put right again for the next repeat
            clock.advance(2 * S)
        segments_before = len(storage.catalogue.segments("cam"))
        plan = retention.run_once()
        segments_after = len(storage.catalogue.segments("cam"))
        gaps = storage.catalogue.gaps("cam")
        check = fsck.check(storage)
        results["step"] = step
        results["repeats"] = repeats
        results["clock_step_gaps"] = sum(g.reason == "clock_step" for g in gaps)
        results["recorder_alarms"] = sorted({kind for kind, _ in alarms})
        results["retention_deletions_while_stepped"] = sum(n for n, _ in during)
        results["retention_alarms_while_stepped"] = sorted({a for _, alarms_ in during for a in alarms_})
        results["erased_by_retention"] = segments_before - segments_after
        results["fsck_problems"] = check.problems
        assert results.figures["clock_step_gaps"] >= repeats
        assert "clock_step" in results.figures["recorder_alarms"]
        assert segments_after == segments_before and not plan.deletions
        assert results.figures["retention_deletions_while_stepped"] == 0
        assert "clock_step" in results.figures["retention_alarms_while_stepped"]
        assert check.ok, check.problems
    finally:
        audit.close()
        storage.close()
    problems = timeline_problems(root, "cam")
    results["timeline_problems"] = problems
    assert not problems
