"""Clocks as injectable objects, so tests control time exactly.

All times are integer nanoseconds: `wall_ns()` since the Unix epoch (UTC), `mono_ns()` from an
arbitrary origin that never steps. Ingest maps frames to wall time through a per-session offset
between the two (see ingest/timeline.py), which is what makes wall-clock steps detectable.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def wall_ns(self) -> int: ...

    def mono_ns(self) -> int: ...


class SystemClock:
    """The machine's clocks."""

    def wall_ns(self) -> int:
        return time.time_ns()

    def mono_ns(self) -> int:
        return time.monotonic_ns()


class FakeClock:
    """A clock that moves only when told to; thread-safe so a recorder thread may read it.

    `advance()` moves both clocks; `step_wall()` moves only the wall clock, as an NTP step or an
    RTC reset would.
    """

    def __init__(self, wall_ns: int = 1_767_225_600_000_000_000, mono_ns: int = 1_000_000_000) -> None:
        self._lock = threading.Lock()
        self._wall_ns = wall_ns
        self._mono_ns = mono_ns

    def wall_ns(self) -> int:
        with self._lock:
            return self._wall_ns

    def mono_ns(self) -> int:
        with self._lock:
            return self._mono_ns

    def advance(self, delta_ns: int) -> None:
        if delta_ns < 0:
            raise ValueError("monotonic time cannot go backwards; use step_wall()")
        with self._lock:
            self._wall_ns += delta_ns
            self._mono_ns += delta_ns

    def step_wall(self, delta_ns: int) -> None:
        with self._lock:
            self._wall_ns += delta_ns
