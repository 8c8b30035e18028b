"""The camera's clock, checked against the recorder's from RTCP sender reports. No I/O.

A sender report says: RTP timestamp ``T`` of this stream was the camera's wall time ``N`` (NTP).
The recorder knows, for the same stream, which of its own wall times RTP timestamp ``T``
corresponds to (``MediaWallMap``: arrival times of the packets, least-delayed, against their
RTP timestamps). Their difference is the camera-to-recorder offset, ``N − recorder``: positive
when the camera's clock is ahead. Footage timestamps stay the recorder's; this only checks the
camera's (UK practice: a daily check that images carry the correct date and time).

``CameraClock`` classifies (``ClockStatus``):

* ``ok`` — within ``tolerance_ns``;
* ``offset`` — beyond it;
* ``stepped`` — the offset changed by more than ``step_ns`` between two reports within the last
  ``step_memory_ns`` (someone set the camera's clock, or its NTP client stepped it);
* ``unknown`` — no sender report (yet, or for ``stale_ns``), or reports whose NTP time is not a
  wall clock (before ``earliest_wall_ns``: e.g. seconds since boot counted from 1900).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vmsd.units import NS_PER_S

YEAR_2000_NS = 946_684_800 * NS_PER_S


class ClockStatus(enum.StrEnum):
    OK = "ok"
    OFFSET = "offset"
    STEPPED = "stepped"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClockLimits:
    tolerance_ns: int = 2 * NS_PER_S  # [health] camera_clock_tolerance
    step_ns: int = NS_PER_S
    step_memory_ns: int = 600 * NS_PER_S
    stale_ns: int = 60 * NS_PER_S  # cameras send a report every ~5 s
    earliest_wall_ns: int = YEAR_2000_NS


@dataclass(frozen=True)
class ClockReading:
    status: ClockStatus
    offset_ns: int | None  # camera minus recorder; None when unknown
    reason: str  # in words, for function checks and status
    step_ns: int | None = None  # the size of the last step, while it is remembered


class MediaWallMap:
    """Recorder wall time of a stream's RTP timestamps: ``arrival − media time``, least-delayed
    over the current and previous ``window_ns`` (so a clock drifting ≤ 1000 ppm moves the
    estimate by at most 20 ms at the default window). A jump of the camera's RTP timestamps
    (more than ``reset_ns`` off the estimate) starts the estimate again."""

    __slots__ = ("_current", "_previous", "_window_end_ns", "clock_rate", "reset_ns", "window_ns")

    def __init__(self, clock_rate: int, window_ns: int = 10 * NS_PER_S, reset_ns: int = NS_PER_S) -> None:
        if clock_rate <= 0:
            raise ValueError(f"RTP clock rate must be positive, not {clock_rate}")
        self.clock_rate = clock_rate
        self.window_ns = window_ns
        self.reset_ns = reset_ns
        self._current: int | None = None
        self._previous: int | None = None
        self._window_end_ns = 0

    def _media_ns(self, rtp_timestamp: int) -> int:
        return rtp_timestamp * NS_PER_S // self.clock_rate

    def _estimate(self) -> int | None:
        cur, prev = self._current, self._previous
        if cur is None:
            return prev
        return cur if prev is None or cur < prev else prev

    def on_packet(self, rtp_timestamp: int, arrival_wall_ns: int) -> None:
        """``rtp_timestamp`` unwrapped (rtp.TimestampUnwrapper). Of the packets that arrived in
        one read, only the newest needs to be given (it has the least ``arrival − media``)."""
        d = arrival_wall_ns - self._media_ns(rtp_timestamp)
        estimate = self._estimate()
        if estimate is not None and abs(d - estimate) > self.reset_ns:
            self._current = self._previous = None
            self._window_end_ns = 0
        if arrival_wall_ns >= self._window_end_ns:
            self._previous, self._current = self._current, None
            self._window_end_ns = arrival_wall_ns + self.window_ns
        self._current = d if self._current is None else min(self._current, d)

    @property
    def offset_ns(self) -> int | None:
        """Recorder wall time − media time (least delayed), None before any packet."""
        return self._estimate()

    def wall_ns(self, rtp_timestamp: int) -> int | None:
        """The recorder's wall time for this RTP timestamp, None before any packet."""
        estimate = self._estimate()
        return None if estimate is None else estimate + self._media_ns(rtp_timestamp)


class CameraClock:
    """One camera's clock status from its sender reports. Times passed in (recorder wall ns)."""

    def __init__(self, limits: ClockLimits | None = None) -> None:
        self.limits = limits or ClockLimits()
        self._offset_ns: int | None = None
        self._last_report_ns: int | None = None
        self._not_wall_clock = False
        self._step_ns: int | None = None
        self._step_at_ns: int | None = None
        self.reports = 0

    def observe(self, camera_ntp_unix_ns: int, recorder_wall_ns: int, now_ns: int) -> ClockReading:
        """One sender report: its NTP time, and the recorder's wall time for its RTP timestamp."""
        self.reports += 1
        self._last_report_ns = now_ns
        if camera_ntp_unix_ns < self.limits.earliest_wall_ns:
            self._not_wall_clock = True
            self._offset_ns = None
            return self.reading(now_ns)
        self._not_wall_clock = False
        offset = camera_ntp_unix_ns - recorder_wall_ns
        if self._offset_ns is not None and abs(offset - self._offset_ns) > self.limits.step_ns:
            self._step_ns = offset - self._offset_ns
            self._step_at_ns = now_ns
        self._offset_ns = offset
        return self.reading(now_ns)

    def reading(self, now_ns: int) -> ClockReading:
        lim = self.limits
        if self._last_report_ns is None:
            return ClockReading(ClockStatus.UNKNOWN, None, "the camera has sent no RTCP sender report")
        if now_ns - self._last_report_ns > lim.stale_ns:
            age_s = (now_ns - self._last_report_ns) // NS_PER_S
            return ClockReading(ClockStatus.UNKNOWN, None, f"no RTCP sender report for {age_s} s")
        if self._not_wall_clock or self._offset_ns is None:
            return ClockReading(
                ClockStatus.UNKNOWN, None, "the camera's sender reports do not carry a wall-clock time (clock not set?)"
            )
        offset = self._offset_ns
        if self._step_at_ns is not None and now_ns - self._step_at_ns <= lim.step_memory_ns:
            assert self._step_ns is not None
            return ClockReading(
                ClockStatus.STEPPED, offset, f"the camera's clock stepped by {_seconds(self._step_ns)}", self._step_ns
            )
        if abs(offset) > lim.tolerance_ns:
            side = "ahead of" if offset > 0 else "behind"
            return ClockReading(
                ClockStatus.OFFSET,
                offset,
                f"the camera's clock is {_seconds(abs(offset))} {side} the recorder's "
                f"(tolerance {_seconds(lim.tolerance_ns)})",
            )
        return ClockReading(ClockStatus.OK, offset, f"within {_seconds(lim.tolerance_ns)} of the recorder's clock")


def _seconds(value_ns: int) -> str:
    return f"{value_ns / NS_PER_S:.3f} s"
