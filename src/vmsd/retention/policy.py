"""What to erase, decided by a pure function (no I/O, no clock): easy to test over 40 simulated days.

Rules, in order of precedence:
1. Footage under an active evidence hold is never erased — not by age, not under disk pressure.
   A segment that overlaps a hold at all is kept whole.
2. Age: a segment whose end is older than its camera's max_age is erased (oldest first) —
   unless the clock is in doubt (`clock_trusted=False`), when age-based erasure pauses.
3. Disk pressure: while free space is below min_free, the oldest unheld segments of all cameras
   are erased (even inside the retention window) until enough is freed. This does not depend on
   the clock, so it continues when age-based erasure is paused. When only held footage is left,
   nothing more is erased and the plan says so (an alarm): evidence is never traded for space.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from vmsd.storage.catalogue import HoldRow, SegmentRow, SegmentState

REASON_AGE = "age"
REASON_DISK_PRESSURE = "disk_pressure"


@dataclass(frozen=True)
class RetentionPolicy:
    default_max_age_ns: int
    min_free_bytes: int
    max_age_ns_by_camera: Mapping[str, int] = field(default_factory=dict)
    # Shedding frees this much beyond min_free, so recording between two passes does not
    # immediately drop free space below it again (and the alarm does not flap).
    shed_margin_bytes: int = 0

    def max_age_ns(self, camera_id: str) -> int:
        return self.max_age_ns_by_camera.get(camera_id, self.default_max_age_ns)


@dataclass(frozen=True)
class Deletion:
    segment: SegmentRow
    reason: str


@dataclass(frozen=True)
class Plan:
    deletions: list[Deletion]
    # Bytes that disk pressure still needs after this plan (> 0: only held or too-new footage left).
    shortfall_bytes: int = 0
    held_segments_skipped: int = 0

    @property
    def bytes(self) -> int:
        return sum(d.segment.bytes or 0 for d in self.deletions)


def is_held(segment: SegmentRow, holds: Iterable[HoldRow], now_ns: int) -> bool:
    end_ns = segment.end_ns if segment.end_ns is not None else segment.start_ns
    return any(h.active(now_ns) and h.covers(segment.camera_id, segment.start_ns, end_ns) for h in holds)


def plan_deletions(
    aged_candidates: Sequence[SegmentRow],
    oldest_candidates: Sequence[SegmentRow],
    holds: Sequence[HoldRow],
    now_ns: int,
    free_bytes: int,
    policy: RetentionPolicy,
    *,
    clock_trusted: bool = True,
) -> Plan:
    """Decide the erasures.

    `aged_candidates`: complete segments that may be past their camera's max_age (the caller's
    cheap pre-filter; re-checked here). `oldest_candidates`: the oldest complete segments of all
    cameras in start order, for shedding under disk pressure. Both may overlap.
    """
    deletions: list[Deletion] = []
    chosen: set[int] = set()
    held_skipped = 0
    if clock_trusted:
        for segment in aged_candidates:
            if segment.state != SegmentState.COMPLETE or segment.end_ns is None:
                continue
            if segment.end_ns > now_ns - policy.max_age_ns(segment.camera_id):
                continue
            if is_held(segment, holds, now_ns):
                held_skipped += 1
                continue
            deletions.append(Deletion(segment, REASON_AGE))
            chosen.add(segment.id)
    need = policy.min_free_bytes - free_bytes - sum(d.segment.bytes or 0 for d in deletions)
    if need > 0:
        # Shed to min_free plus the margin; only min_free itself counts as a shortfall (the
        # margin is best effort, and short of it nothing is wrong).
        target = need + policy.shed_margin_bytes
        for segment in oldest_candidates:
            if target <= 0:
                break
            if segment.id in chosen or segment.state != SegmentState.COMPLETE:
                continue
            if is_held(segment, holds, now_ns):
                held_skipped += 1
                continue
            deletions.append(Deletion(segment, REASON_DISK_PRESSURE))
            chosen.add(segment.id)
            target -= segment.bytes or 0
            need -= segment.bytes or 0
    deletions.sort(key=lambda d: (d.segment.start_ns, d.segment.id))
    return Plan(deletions, shortfall_bytes=max(0, need), held_segments_skipped=held_skipped)
