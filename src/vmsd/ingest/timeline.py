"""Mapping a camera session's media timestamps to recorder wall time (integer ns, UTC).

At the start of a session the recorder takes `offset = wall - mono` once. A packet's arrival
time is `mono + offset`, immune to wall-clock steps during the session. The first video
keyframe anchors the camera's media clock to its arrival time (when it reached vmsd, which the
native source stamps at its read, not when the recorder thread took it); every later packet is placed at
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
    # The first slew after an anchor works off the anchor's own error (a session's first keyframe
    # arrives 80-180 ms after the frames that follow it) at up to this: 1 % (100 ms over a 10 s
    # segment) is invisible in playback, and the footage's times are right after one segment
    # instead of minutes at max_slew_ppm.
    anchor_slew_ppm: int = 10_000
    # The camera clock's rate is measured over at least this much of a session: a segment's least
    # lateness wanders by a few ms, which over a minute is tens of ppm (the warning is at 500).
    rate_span_ns: int = 60 * NS_PER_S


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

    def arrival_ns(self, mono_ns: int | None = None) -> int:
        """`mono_ns` (a packet's arrival on the monotonic clock; default now) on this session's
        wall timeline (steps of the wall clock do not show here)."""
        return (self._clock.mono_ns() if mono_ns is None else mono_ns) + self.offset_ns

    def wall_step_ns(self) -> int:
        """How far the wall clock has stepped since the offset was last taken (0 when it has not)."""
        drift_ns = (self._clock.wall_ns() - self._clock.mono_ns()) - self._reference_offset_ns
        return drift_ns if abs(drift_ns) >= self.limits.clock_step_ns else 0

    @property
    def anchored(self) -> bool:
        return self._anchor_media_ns is not None

    def anchor(self, media_ns: int, wall_ns: int, rate_ppm: int | None = None, *, catch_up: bool = False) -> None:
        """Declare that the media time `media_ns` happened at `wall_ns` (optionally a new slew rate,
        clamped to `anchor_slew_ppm` when it is `catch_up` on an anchor's error, else to
        `max_slew_ppm`)."""
        self._anchor_media_ns = media_ns
        self._anchor_wall_ns = wall_ns
        if rate_ppm is not None:
            limit = self.limits.anchor_slew_ppm if catch_up else self.limits.max_slew_ppm
            self.rate_ppm = max(-limit, min(limit, rate_ppm))

    def to_wall_ns(self, media_ns: int) -> int:
        if self._anchor_media_ns is None:
            raise RuntimeError("timeline not anchored")
        delta_ns = media_ns - self._anchor_media_ns
        return self._anchor_wall_ns + delta_ns + delta_ns * self.rate_ppm // 1_000_000


class ClockRate:
    """The camera clock's rate against the recorder's (ppm; positive: the camera's runs slow),
    measured — which the slew rate is not: that also works off the anchor's own error (encoders
    take longer over a session's first keyframe, so it arrives ~100 ms later than the frames
    after it, and the timeline slews at its limit for a minute or two to catch up).

    Lateness here is taken against the session's first anchor, unslewed
    (`arrival − (origin_wall + media − origin_media)`), and its least over each segment is that
    segment's floor. A constant error of the anchor shifts every floor alike; a clock that runs
    at another rate makes the floors slope. The rate is that slope from the session's second
    segment (the first holds the session's start: the handshake, an encoder catching up) to its
    latest, once they are `span_ns` apart. It outlives the session (a camera's
    clock keeps its rate across reconnects) until a new one is measured. Pure logic."""

    def __init__(self, span_ns: int) -> None:
        self.span_ns = span_ns
        self.rate_ppm = 0
        self._origin_media_ns: int | None = None
        self._origin_wall_ns = 0
        self._least_ns: int | None = None
        self._segments = 0  # ended since the anchor
        self._first_floor: tuple[int, int] | None = None  # (wall_ns, floor_ns)

    def restart(self, media_ns: int, wall_ns: int) -> None:
        """The timeline was anchored afresh (a new session, a jump of the camera's timestamps)."""
        self._origin_media_ns = media_ns
        self._origin_wall_ns = wall_ns
        self._least_ns = None
        self._segments = 0
        self._first_floor = None

    def on_video(self, media_ns: int, arrival_ns: int) -> None:
        if self._origin_media_ns is None:
            return
        lateness_ns = arrival_ns - (self._origin_wall_ns + media_ns - self._origin_media_ns)
        if self._least_ns is None or lateness_ns < self._least_ns:
            self._least_ns = lateness_ns

    def on_segment_end(self, wall_ns: int) -> None:
        floor_ns, self._least_ns = self._least_ns, None
        self._segments += 1
        if floor_ns is None or self._segments == 1:
            return
        if self._first_floor is None:
            self._first_floor = (wall_ns, floor_ns)
            return
        first_wall_ns, first_floor_ns = self._first_floor
        if wall_ns - first_wall_ns >= self.span_ns:
            self.rate_ppm = (floor_ns - first_floor_ns) * 1_000_000 // (wall_ns - first_wall_ns)
