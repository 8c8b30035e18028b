"""Mapping a camera session's media timestamps to recorder wall time (integer ns, UTC).

At the start of a session the recorder takes `offset = wall - mono` once. A packet's arrival
time is `mono + offset`, immune to wall-clock steps during the session. The first video
keyframe anchors the camera's media clock to its arrival time; every later packet is placed at
`anchor_wall + d + d * rate_ppm / 1e6` with `d = media - anchor_media`, so frame spacing is the
camera's own, free of network jitter and bursts. `rate_ppm` slews the camera's clock towards
the recorder's (cameras' clocks drift); the segmenter re-anchors with a new rate at each
segment boundary, keeping the timeline continuous.

What breaks the mapping is detected here: the wall clock stepping (NTP, RTC reset) moves
`wall - mono` away from the offset; the camera's timestamps jumping (its clock restarted, a
buggy encoder) shows as an implausible media delta between consecutive frames (segmenter).
Pure logic: the Clock is injected, nothing here blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmsd.clock import Clock
from vmsd.units import NS_PER_S


@dataclass(frozen=True)
class TimelineLimits:
    # A wall-clock change larger than this between two readings is a step, not drift or slew.
    clock_step_ns: int = NS_PER_S
    # Consecutive video frames further apart than this in the camera's own timestamps (or going
    # backwards) mean its clock jumped: longer than any stall we tolerate without reconnecting.
    timestamp_jump_ns: int = 10 * NS_PER_S
    # Most the camera's clock is slewed towards the recorder's: 1000 ppm = 60 ms per minute.
    max_slew_ppm: int = 1000


class Timeline:
    def __init__(self, clock: Clock, limits: TimelineLimits | None = None) -> None:
        self._clock = clock
        self.limits = limits or TimelineLimits()
        self.offset_ns = 0
        self._reference_offset_ns = 0
        self._anchor_media_ns: int | None = None
        self._anchor_wall_ns = 0
        self.rate_ppm = 0

    def start_session(self, *, not_before_ns: int = 0) -> bool:
        """Take the wall/monotonic offset for a new session and forget the anchor.

        If the wall clock is behind `not_before_ns` (the end of the footage already recorded —
        the clock was stepped back), the session's timeline is held to start there instead, so
        nothing overlaps. Returns True when time is held like that (an alarm condition).
        """
        self._anchor_media_ns = None
        self.rate_ppm = 0
        return self._take_offset(not_before_ns)

    def _take_offset(self, not_before_ns: int) -> bool:
        mono_ns = self._clock.mono_ns()
        self._reference_offset_ns = self._clock.wall_ns() - mono_ns
        self.offset_ns = max(self._reference_offset_ns, not_before_ns - mono_ns)
        return self.offset_ns != self._reference_offset_ns

    def rebase_after_step(self, *, not_before_ns: int) -> bool:
        """After a wall-clock step: follow a forward step; hold the timeline for a backward one.

        The anchor is dropped, so the next keyframe anchors the camera to the new timeline.
        Returns True when time is held (the wall clock is behind recorded footage).
        """
        self._anchor_media_ns = None
        return self._take_offset(not_before_ns)

    def arrival_ns(self) -> int:
        """Now, on this session's wall timeline (steps of the wall clock do not show here)."""
        return self._clock.mono_ns() + self.offset_ns

    def wall_step_ns(self) -> int:
        """How far the wall clock has stepped since the offset was last taken (0 when it has not)."""
        drift_ns = (self._clock.wall_ns() - self._clock.mono_ns()) - self._reference_offset_ns
        return drift_ns if abs(drift_ns) >= self.limits.clock_step_ns else 0

    @property
    def anchored(self) -> bool:
        return self._anchor_media_ns is not None

    def anchor(self, media_ns: int, wall_ns: int, rate_ppm: int | None = None) -> None:
        """Declare that the media time `media_ns` happened at `wall_ns` (optionally a new slew rate)."""
        self._anchor_media_ns = media_ns
        self._anchor_wall_ns = wall_ns
        if rate_ppm is not None:
            limit = self.limits.max_slew_ppm
            self.rate_ppm = max(-limit, min(limit, rate_ppm))

    def to_wall_ns(self, media_ns: int) -> int:
        if self._anchor_media_ns is None:
            raise RuntimeError("timeline not anchored")
        delta_ns = media_ns - self._anchor_media_ns
        return self._anchor_wall_ns + delta_ns + delta_ns * self.rate_ppm // 1_000_000
