"""Executing retention: gather candidates, plan (policy.py), erase through storage's protocol,
and write one audit record per erasure — the data-protection disposition log.

Runs as an asyncio task whose blocking work (SQLite, unlink, fsync) happens on a worker thread.
Free space is checked every few seconds (cheap: statvfs) so disk pressure is answered quickly;
age-based erasure runs every `retention.check_interval`.

Clock safety: age-based erasure trusts "now". If the wall clock moves against the monotonic
clock by more than CLOCK_STEP_TOLERANCE_NS (an NTP step, an RTC reset), or "now" is implausibly
far past the newest footage at start-up, age-based erasure pauses and an alarm is raised until
an operator confirms the clock (ConfirmClock) or the clock comes back. Disk-pressure shedding
does not depend on the clock and continues.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import Clock
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.log import get_logger
from vmsd.retention.policy import Deletion, Plan, RetentionPolicy, plan_deletions
from vmsd.storage.catalogue import SegmentRow
from vmsd.storage.errors import StorageError, is_full
from vmsd.storage.store import Storage
from vmsd.system_facts import DiskSpace, disk_space
from vmsd.units import NS_PER_S
from vmsd.waits import wait_event

log = get_logger(component="retention")

CLOCK_STEP_TOLERANCE_NS = 10 * NS_PER_S
PRESSURE_TICK_NS = 5 * NS_PER_S
PAUSE_META_KEY = "retention_clock_doubt"
AGED_BATCH = 5000
OLDEST_BATCH = 500


@dataclass
class RetentionStatus:
    paused: bool = False
    alarms: dict[str, str] = field(default_factory=dict)
    last_run_ns: int = 0
    last_erased_segments: int = 0
    last_erased_bytes: int = 0
    erased_segments_total: int = 0  # since start-up (metrics)
    erased_bytes_total: int = 0
    free_bytes: int = 0
    total_bytes: int = 0
    min_free_bytes: int = 0


class RetentionTask:
    """Erases footage by policy. Constructor does no I/O; `run()` loops until `aclose()`."""

    def __init__(
        self,
        storage: Storage,
        audit: AuditLog,
        clock: Clock,
        *,
        default_max_age_ns: int,
        check_interval_ns: int,
        min_free: Callable[[int], int],
        max_age_by_camera: Callable[[], dict[str, int]],
        space: Callable[[], DiskSpace] | None = None,
        events: EventBus | None = None,
    ) -> None:
        self._storage = storage
        self._events = events
        self._audit = audit
        self._clock = clock
        self._default_max_age_ns = default_max_age_ns
        self._check_interval_ns = check_interval_ns
        self._min_free = min_free
        self._max_age_by_camera = max_age_by_camera
        self._space = space or (lambda: disk_space(storage.layout.root))
        self._lock = threading.Lock()
        self._status = RetentionStatus()
        self._reference_offset_ns: int | None = None
        self._stop = asyncio.Event()
        self._last_age_run_mono_ns: int | None = None
        self._paused_for_storage = False  # the root was unusable at the last pass (logged once)
        self._last_free_bytes: int | None = None

    # -- status & control ---------------------------------------------------------------------

    @property
    def status(self) -> RetentionStatus:
        with self._lock:
            return RetentionStatus(**{**vars(self._status), "alarms": dict(self._status.alarms)})

    def confirm_clock(self) -> None:
        """An operator says the wall clock is right: resume age-based erasure from it."""
        with self._lock:
            self._reference_offset_ns = self._clock.wall_ns() - self._clock.mono_ns()
        self._storage.catalogue.delete_meta(PAUSE_META_KEY)
        self._alarm("clock_step", None)
        self._alarm("clock_unconfirmed", None)
        with self._lock:
            self._status.paused = False
        log.warning("retention_clock_confirmed", wall_ns=self._clock.wall_ns())

    def _alarm(self, kind: str, message: str | None) -> None:
        with self._lock:
            previous = self._status.alarms.get(kind)
            if message is None:
                self._status.alarms.pop(kind, None)
            else:
                self._status.alarms[kind] = message
        if message is not None and message != previous:
            log.error("alarm", alarm=kind, message=message)
            self._publish_alarm(kind, "raised", message)
        elif message is None and previous is not None:
            log.info("alarm_cleared", alarm=kind)
            self._publish_alarm(kind, "cleared", "")

    def _publish_alarm(self, alarm: str, state: str, message: str) -> None:
        if self._events is not None:
            kind = EventKind.CLOCK_ALARM if alarm.startswith("clock_") else EventKind.DISK_LOW
            self._events.publish(kind, alarm=alarm, state=state, message=message)

    # -- the clock guard ----------------------------------------------------------------------

    def check_clock(self) -> bool:
        """True when age-based erasure may trust the wall clock (see the module docstring).

        A doubt survives restarts (it is kept in the catalogue): after a forward jump and a
        restart, footage recorded on the new clock would otherwise make the old footage look a
        year old and due for erasure.
        """
        catalogue = self._storage.catalogue
        now_ns = self._clock.wall_ns()
        offset_ns = now_ns - self._clock.mono_ns()
        if self._reference_offset_ns is None:
            self._reference_offset_ns = offset_ns
            newest = catalogue.newest_footage_end_ns()
            if newest is not None and now_ns - newest > self._default_max_age_ns // 2:
                catalogue.set_meta(
                    PAUSE_META_KEY,
                    f"at start-up now was {(now_ns - newest) / NS_PER_S / 86400:.1f} days after the newest footage",
                )
        step_ns = offset_ns - self._reference_offset_ns
        if abs(step_ns) > CLOCK_STEP_TOLERANCE_NS:
            message = f"wall clock moved {step_ns / NS_PER_S:+.0f}s against the monotonic clock"
            self._alarm("clock_step", message + ": age-based erasure paused until the clock returns or is confirmed")
            if step_ns > 0 and catalogue.get_meta(PAUSE_META_KEY) is None:
                catalogue.set_meta(PAUSE_META_KEY, message)  # a forward jump could erase what it skipped over
        else:
            self._alarm("clock_step", None)
        doubt = catalogue.get_meta(PAUSE_META_KEY)
        self._alarm(
            "clock_unconfirmed",
            None if doubt is None else f"{doubt}: age-based erasure paused until the clock is confirmed",
        )
        trusted = doubt is None and abs(step_ns) <= CLOCK_STEP_TOLERANCE_NS
        with self._lock:
            self._status.paused = not trusted
        return trusted

    # -- one pass -----------------------------------------------------------------------------

    def run_once(self, *, age: bool = True) -> Plan:
        """Plan and execute one pass (blocking). `age=False` only answers disk pressure.

        When the disk is so full that the catalogue cannot commit, the storage's space reserve is
        given up and the pass tried again; the reserve is restored once there is room for it.

        No pass while the storage root is gone, read-only or another filesystem (storage/watch.py
        decides what happens then): its free space would be another disk's, and an erasure would
        drop the row of a file that is still on the real one.
        """
        problem = self._storage.root_problem()
        if problem is not None:
            if not self._paused_for_storage:
                log.warning("retention_paused", detail=problem.detail)
            self._paused_for_storage = True
            return Plan([])
        if self._paused_for_storage:
            log.info("retention_resumed")
            self._paused_for_storage = False
        try:
            plan = self._pass(age=age)
        except (StorageError, OSError) as error:
            if not is_full(error) or not self._storage.release_reserve():
                raise
            log.warning("space_reserve_released", detail="disk full: the space reserve was freed so erasure can run")
            plan = self._pass(age=age)
        space = self._space()
        reserve = self._storage.reserve_bytes(space.total_bytes)
        if space.free_bytes - reserve > self._min_free(space.total_bytes):
            self._storage.ensure_reserve(space.total_bytes)
        return plan

    def _pass(self, *, age: bool) -> Plan:
        catalogue = self._storage.catalogue
        now_ns = self._clock.wall_ns()
        trusted = self.check_clock() and age
        space = self._space()
        min_free_bytes = self._min_free(space.total_bytes)
        overrides = self._max_age_by_camera()
        policy = RetentionPolicy(
            self._default_max_age_ns, min_free_bytes, overrides, shed_margin_bytes=self._shed_margin(space)
        )
        aged: list[SegmentRow] = []
        if trusted:
            for camera_id in catalogue.camera_ids():
                aged += catalogue.expired_segments(camera_id, now_ns - policy.max_age_ns(camera_id), AGED_BATCH)
        holds = catalogue.holds(include_released=False)
        oldest: list[SegmentRow] = []
        plan = plan_deletions(aged, oldest, holds, now_ns, space.free_bytes, policy, clock_trusted=trusted)
        # Under pressure, widen the window of oldest segments until the plan frees enough.
        while plan.shortfall_bytes > 0:
            after = (oldest[-1].start_ns, oldest[-1].id) if oldest else (-1, -1)
            batch = catalogue.oldest_segments(OLDEST_BATCH, after)
            if not batch:
                break
            oldest += batch
            plan = plan_deletions(aged, oldest, holds, now_ns, space.free_bytes, policy, clock_trusted=trusted)
        self._execute(plan, now_ns)
        if space.free_bytes < min_free_bytes:
            self._alarm(
                "disk_pressure",
                f"free space {space.free_bytes} B below min_free {min_free_bytes} B: "
                "shedding the oldest unheld footage",
            )
        else:
            self._alarm("disk_pressure", None)
        if plan.shortfall_bytes > 0:
            self._alarm(
                "evidence_only",
                f"still {plan.shortfall_bytes} B short of min_free and only held footage is left to erase: "
                "evidence is kept; recording continues in the space that remains",
            )
        else:
            self._alarm("evidence_only", None)
        with self._lock:
            status = self._status
            status.last_run_ns = now_ns
            status.last_erased_segments = len(plan.deletions)
            status.last_erased_bytes = plan.bytes
            status.erased_segments_total += len(plan.deletions)
            status.erased_bytes_total += plan.bytes
            after_space = self._space() if plan.deletions else space
            status.free_bytes, status.total_bytes = after_space.free_bytes, after_space.total_bytes
            status.min_free_bytes = min_free_bytes
        return plan

    def _shed_margin(self, space: DiskSpace) -> int:
        """What recording writes before the next pressure check: measured from the last two
        readings (bytes consumed per tick), at least 1 % of min_free; 0 when not under pressure."""
        previous, self._last_free_bytes = self._last_free_bytes, space.free_bytes
        consumed = max(0, previous - space.free_bytes) if previous is not None else 0
        return max(consumed * 2, self._min_free(space.total_bytes) // 100)

    def _execute(self, plan: Plan, now_ns: int) -> None:
        """Erase each planned segment by the protocol, then record it (one audit record each)."""
        for deletion in plan.deletions:
            segment = deletion.segment
            self._storage.delete_segment(segment, erased_ns=now_ns, reason=deletion.reason)
            self._audit.append(
                AuditEntry(
                    action="retention.erase",
                    principal="vmsd",
                    camera_id=segment.camera_id,
                    start_ns=segment.start_ns,
                    end_ns=segment.end_ns or segment.start_ns,
                    reason=deletion.reason,
                    detail={"bytes": segment.bytes or 0, "sha256": segment.sha256 or "", "segment": segment.path},
                )
            )
        self._publish_erasures(plan)
        if plan.deletions:
            log.info(
                "retention_erased",
                segments=len(plan.deletions),
                bytes=plan.bytes,
                reasons=sorted({d.reason for d in plan.deletions}),
            )

    def _publish_erasures(self, plan: Plan) -> None:
        """One erasure_pass event per camera that lost footage in this pass (so scope applies)."""
        if self._events is None:
            return
        per_camera: dict[str, list[Deletion]] = {}
        for deletion in plan.deletions:
            per_camera.setdefault(deletion.segment.camera_id, []).append(deletion)
        for camera_id, deletions in sorted(per_camera.items()):
            self._events.publish(
                EventKind.ERASURE_PASS,
                camera_id,
                segments=len(deletions),
                bytes=sum(d.segment.bytes or 0 for d in deletions),
                reasons=",".join(sorted({d.reason for d in deletions})),
                oldest_start_ns=min(d.segment.start_ns for d in deletions),
                newest_end_ns=max(d.segment.end_ns or d.segment.start_ns for d in deletions),
            )

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stop.is_set():
            mono_ns = self._clock.mono_ns()
            age_due = (
                self._last_age_run_mono_ns is None or mono_ns - self._last_age_run_mono_ns >= self._check_interval_ns
            )
            try:
                if age_due:
                    self._last_age_run_mono_ns = mono_ns
                    await asyncio.to_thread(self.run_once)
                else:
                    space = await asyncio.to_thread(self._space)
                    if space.free_bytes < self._min_free(space.total_bytes):
                        await asyncio.to_thread(self.run_once, age=False)
            except Exception:  # retention must outlive one bad pass; the traceback is logged
                log.exception("retention_pass_failed")
            tick_ns = min(self._check_interval_ns, PRESSURE_TICK_NS)
            await wait_event(self._stop, tick_ns / NS_PER_S)

    async def aclose(self) -> None:
        self._stop.set()
