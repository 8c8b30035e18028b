"""Retention over 40 simulated days: age, per-camera windows, overlapping holds, disk pressure,
clock jumps — with real files, the real catalogue, the real audit log, and a FakeClock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmsd import fsck
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.retention.holds import Holds
from vmsd.retention.task import RetentionTask
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.system_facts import DiskSpace

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
SEGMENT_BYTES = 1000
CAMERAS = ("north", "south", "short")


class World:
    """Three cameras recording one-hour segments (tiny real files) while the clock runs."""

    def __init__(self, root: Path) -> None:
        self.clock = FakeClock(wall_ns=T0)
        self.storage = Storage(root)
        self.storage.open()
        reconcile(self.storage)
        self.audit = AuditLog(root / "audit.db", self.clock, anchor_path=root / "audit.anchor")
        self.audit.open()
        self.free_bytes = 10**12
        self.task = RetentionTask(
            self.storage,
            self.audit,
            self.clock,
            default_max_age_ns=31 * DAY,
            check_interval_ns=60 * S,
            min_free=lambda total: 0,
            max_age_by_camera=lambda: {"short": 7 * DAY},
            space=lambda: DiskSpace(self.free_bytes, 10**13),
        )
        self.holds = Holds(self.storage.catalogue, self.clock)
        self.recorded_until = T0
        for camera in CAMERAS:
            self.storage.catalogue.upsert_camera(camera, "", "", T0)

    def new_task(
        self,
        *,
        min_free: int = 0,
        space: DiskSpace | None = None,
        short_days: int | None = 7,
        events: EventBus | None = None,
    ) -> RetentionTask:
        """A retention task as a (re)started daemon would build it."""
        return RetentionTask(
            self.storage,
            self.audit,
            self.clock,
            default_max_age_ns=31 * DAY,
            check_interval_ns=60 * S,
            min_free=lambda total: min_free,
            max_age_by_camera=lambda: {} if short_days is None else {"short": short_days * DAY},
            space=lambda: space or DiskSpace(10**12, 10**13),
            events=events,
        )

    def record_until(self, end_ns: int) -> None:
        """Add the hourly segments of every camera up to end_ns (files written, rows completed)."""
        catalogue = self.storage.catalogue
        while self.recorded_until + HOUR <= end_ns:
            start = self.recorded_until
            for camera in CAMERAS:
                relpath = self.storage.layout.segment_relpath(camera, start)
                path = self.storage.layout.abspath(relpath)
                path.parent.mkdir(parents=True, exist_ok=True)
                payload = f"{camera}@{start}".encode().ljust(SEGMENT_BYTES, b".")
                path.write_bytes(payload)
                catalogue.insert_complete_segment(
                    camera_id=camera,
                    run_id=None,
                    path=relpath,
                    start_ns=start,
                    end_ns=start + HOUR,
                    nbytes=SEGMENT_BYTES,
                    sha256=hashlib.sha256(payload).hexdigest(),
                    prev_sha256=self.storage.chain_head(camera),
                    video_codec="h264",
                    width=1,
                    height=1,
                    has_audio=False,
                    frames=90000,
                )
            self.recorded_until += HOUR

    def run_days(self, days: int, step_ns: int = HOUR) -> None:
        end = self.clock.wall_ns() + days * DAY
        while self.clock.wall_ns() < end:
            self.clock.advance(step_ns)
            self.record_until(self.clock.wall_ns())
            self.task.run_once()

    def starts(self, camera: str) -> list[int]:
        return [row.start_ns for row in self.storage.catalogue.segments(camera)]

    def close(self) -> None:
        self.audit.close()
        self.storage.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "root")
    yield w
    w.close()


def test_forty_days_with_overlapping_holds(world: World) -> None:
    catalogue = world.storage.catalogue
    # Day 2: an incident on north 10:00-12:30 and a wider hold on north+south 12:00-14:00.
    world.run_days(2)
    hold_a = world.holds.add(
        camera_ids=["north"],
        start_ns=T0 + DAY + 10 * HOUR,
        end_ns=T0 + DAY + 12 * HOUR + HOUR // 2,
        case_ref="CR-1",
        reason="assault",
        created_by="op",
        until_ns=None,
    )
    world.holds.add(
        camera_ids=["north", "south"],
        start_ns=T0 + DAY + 12 * HOUR,
        end_ns=T0 + DAY + 14 * HOUR,
        case_ref="CR-2",
        reason="theft",
        created_by="op",
        until_ns=None,
    )
    # A hold that lapses on day 35 (review date) on south day 3 05:00-06:00.
    world.holds.add(
        camera_ids=["south"],
        start_ns=T0 + 2 * DAY + 5 * HOUR,
        end_ns=T0 + 2 * DAY + 6 * HOUR,
        case_ref="CR-3",
        reason="review",
        created_by="op",
        until_ns=T0 + 35 * DAY,
    )
    world.run_days(38)  # now: day 40, 00:00
    now = world.clock.wall_ns()
    assert now == T0 + 40 * DAY

    def expected(camera: str, max_age: int, held: list[tuple[int, int]]) -> list[int]:
        everything = range(T0, now, HOUR)
        return [s for s in everything if s + HOUR > now - max_age or any(s < e and b < s + HOUR for b, e in held)]

    north_holds = [
        (T0 + DAY + 10 * HOUR, T0 + DAY + 12 * HOUR + HOUR // 2),
        (T0 + DAY + 12 * HOUR, T0 + DAY + 14 * HOUR),
    ]
    assert world.starts("north") == expected("north", 31 * DAY, north_holds)
    assert world.starts("south") == expected("south", 31 * DAY, [(T0 + DAY + 12 * HOUR, T0 + DAY + 14 * HOUR)])
    assert world.starts("short") == expected("short", 7 * DAY, [])
    # The segment 12:00-13:00 on north is covered by both holds and kept whole (only partly in hold A).
    assert T0 + DAY + 12 * HOUR in world.starts("north")

    # Erasure records match deletions one-for-one: tombstones = audit records = what is gone.
    tombstones = catalogue.erased_in_range(0, now + 1)
    records, truncated = world.audit.query(actions=["retention.erase"], limit=10_000)
    assert not truncated
    assert len(records) == len(tombstones) == 3 * 40 * 24 - sum(len(world.starts(c)) for c in CAMERAS)
    assert sorted((r.camera_id, r.start_ns) for r in records) == sorted((t.camera_id, t.start_ns) for t in tombstones)
    assert {r.reason for r in records} == {"age"}
    # Erased within one check (an hour here) of expiry — except footage a hold kept past it.
    lapsed_hold = ("south", T0 + 2 * DAY + 5 * HOUR)
    for t in tombstones:
        expiry = t.end_ns + (7 if t.camera_id == "short" else 31) * DAY
        if (t.camera_id, t.start_ns) == lapsed_hold:
            assert T0 + 35 * DAY <= t.erased_ns <= T0 + 35 * DAY + HOUR  # erased when its hold lapsed
        else:
            assert expiry <= t.erased_ns <= expiry + HOUR
    assert world.audit.verify().ok
    result = fsck.check(world.storage)
    assert result.ok, result.problems

    # Releasing hold A lets age take the footage only it protected, at the next pass.
    world.holds.release(hold_a.id, released_by="sup", reason="case closed")
    world.task.run_once()
    assert T0 + DAY + 10 * HOUR not in world.starts("north")
    assert T0 + DAY + 12 * HOUR in world.starts("north")  # still under hold B


def test_disk_pressure_sheds_oldest_unheld_across_cameras_and_keeps_evidence(world: World) -> None:
    world.run_days(3)
    world.holds.add(
        camera_ids=["south"],
        start_ns=T0,
        end_ns=T0 + 2 * HOUR,
        case_ref="CR-9",
        reason="x",
        created_by="op",
        until_ns=None,
    )
    # Free space falls 10 segments short of min_free (shedding adds a margin: 1 % of min_free here).
    world.task = world.new_task(min_free=10 * SEGMENT_BYTES, space=DiskSpace(0, 10**6), short_days=None)
    plan = world.task.run_once()
    assert len(plan.deletions) == 11 and {d.reason for d in plan.deletions} == {"disk_pressure"}
    # Oldest first, across cameras, skipping held south 00:00-02:00.
    erased = sorted((d.segment.start_ns, d.segment.camera_id) for d in plan.deletions)
    assert erased[:4] == [(T0, "north"), (T0, "short"), (T0 + HOUR, "north"), (T0 + HOUR, "short")]
    assert world.starts("south")[:2] == [T0, T0 + HOUR]
    assert "disk_pressure" in world.task.status.alarms

    # Only evidence left: nothing more goes, and the alarm says so.
    world.task = world.new_task(min_free=10**15, space=DiskSpace(0, 10**6), short_days=None)
    world.task.run_once()
    assert world.starts("south")[:2] == [T0, T0 + HOUR]
    assert {len(world.starts(c)) for c in ("north", "short")} == {0}
    assert "evidence_only" in world.task.status.alarms


def test_an_erasure_pass_and_disk_pressure_are_events(world: World) -> None:
    """One erasure_pass per camera that lost footage (so scope applies), and the alarm raised."""
    world.run_days(3)
    bus = EventBus(world.storage.catalogue, world.clock, keep_ns=30 * DAY)
    bus.open()
    try:
        world.task = world.new_task(min_free=10 * SEGMENT_BYTES, space=DiskSpace(0, 10**6), short_days=None, events=bus)
        plan = world.task.run_once()
    finally:
        bus.close()  # stores what is queued
    events = bus.stored_after(0, 100)
    passes = {e.camera_id: e.fields for e in events if e.kind is EventKind.ERASURE_PASS}
    per_camera = {c: [d for d in plan.deletions if d.segment.camera_id == c] for c in passes}
    assert set(passes) == {d.segment.camera_id for d in plan.deletions}
    for camera, fields in passes.items():
        assert fields["segments"] == str(len(per_camera[camera])) and fields["reasons"] == "disk_pressure"
        assert fields["bytes"] == str(SEGMENT_BYTES * len(per_camera[camera]))
    (low,) = [e for e in events if e.kind is EventKind.DISK_LOW]
    assert (low.camera_id, low.fields["alarm"], low.fields["state"]) == ("", "disk_pressure", "raised")


@pytest.mark.parametrize("jump_ns", [366 * DAY, -HOUR])
def test_a_clock_jump_erases_nothing_and_raises_an_alarm(world: World, jump_ns: int) -> None:
    world.run_days(20)
    before = {c: world.starts(c) for c in CAMERAS}
    short_before = len(before["short"])
    world.clock.step_wall(jump_ns)
    world.task.run_once()
    assert {c: world.starts(c) for c in CAMERAS} == before
    assert world.task.status.paused
    assert "clock_step" in world.task.status.alarms
    # A forward jump stays in doubt across a restart, even after new footage arrives on the new clock.
    if jump_ns > 0:
        world.recorded_until = world.clock.wall_ns()  # recording goes on at the new time
        world.clock.advance(2 * HOUR)
        world.record_until(world.clock.wall_ns())
        restarted = world.new_task()
        restarted.run_once()
        assert "clock_unconfirmed" in restarted.status.alarms
        assert len(world.starts("short")) >= short_before
        # The operator confirms the clock: age-based erasure resumes on it.
        restarted.confirm_clock()
        restarted.run_once()
        assert not restarted.status.paused
        assert len(world.starts("short")) < short_before
    else:
        world.clock.step_wall(-jump_ns)  # the clock comes back: erasure resumes by itself
        world.task.run_once()
        assert not world.task.status.paused


def test_startup_long_after_the_newest_footage_pauses_age_erasure(world: World) -> None:
    world.run_days(5)
    world.clock.step_wall(200 * DAY)  # the recorder was off (or its RTC reset) for 200 days
    fresh = world.new_task(short_days=None)
    plan = fresh.run_once()
    assert plan.deletions == []
    assert "clock_unconfirmed" in fresh.status.alarms


def test_nothing_is_erased_while_the_storage_root_is_another_directory(world: World, tmp_path: Path) -> None:
    """A lazily unmounted footage filesystem leaves the bare mountpoint at the root's path: an
    erasure then would drop rows of files still on the real disk. Retention waits until it is back."""
    world.run_days(1)
    world.task = world.new_task(min_free=10 * SEGMENT_BYTES, space=DiskSpace(0, 10**6), short_days=None)
    root = world.storage.layout.root
    before = {camera: world.starts(camera) for camera in CAMERAS}
    root.rename(tmp_path / "root-unmounted")  # the footage filesystem is gone from the path …
    root.mkdir()  # … and an empty directory stands in its place
    try:
        plan = world.task.run_once()
        assert plan.deletions == []
        assert {camera: world.starts(camera) for camera in CAMERAS} == before
    finally:
        root.rmdir()
        (tmp_path / "root-unmounted").rename(root)
    assert len(world.task.run_once().deletions) == 11  # back: disk pressure is answered again
