"""Units: the nanosecond constants, media time bases, and the human units of configuration and CLI.

Durations become integer nanoseconds and sizes integer bytes, so that nothing downstream ever
handles float time (DESIGN.md §2 "Time").
"""

from __future__ import annotations

import re
from typing import Protocol

NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class TimeBase(Protocol):
    """A media time base as a fraction of a second (PyAV gives a `fractions.Fraction`)."""

    @property
    def numerator(self) -> int: ...

    @property
    def denominator(self) -> int: ...


def ticks_to_ns(ticks: int, time_base: TimeBase) -> int:
    """A timestamp or duration in `time_base` ticks as integer nanoseconds, rounded down (floor).

    Exact integer arithmetic: a float would lose nanoseconds after a few days of 90 kHz ticks."""
    return int(ticks) * int(time_base.numerator) * NS_PER_S // int(time_base.denominator)


def ns_to_ticks(value_ns: int, time_base: TimeBase) -> int:
    """Integer nanoseconds as `time_base` ticks, rounded down (floor): the inverse of ticks_to_ns."""
    return value_ns * int(time_base.denominator) // (int(time_base.numerator) * NS_PER_S)


_DURATION_UNITS_NS = {
    "ns": 1,
    "us": NS_PER_US,
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
    "d": 86400 * NS_PER_S,
}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ns|us|ms|s|m|h|d)\s*$")

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_duration_ns(text: str) -> int:
    """Parse "500ms", "10s", "5m", "2h", "31d" into integer nanoseconds.

    Raises ValueError naming the accepted forms when the text is not one of them.
    """
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: expected an integer and a unit (ns, us, ms, s, m, h, d), e.g. '60s'"
        )
    return int(match.group(1)) * _DURATION_UNITS_NS[match.group(2)]


def format_duration_ns(duration_ns: int) -> str:
    """Render nanoseconds in the largest unit that divides them exactly (the inverse of parsing)."""
    for unit in ("d", "h", "m", "s", "ms", "us"):
        factor = _DURATION_UNITS_NS[unit]
        if duration_ns % factor == 0 and duration_ns != 0:
            return f"{duration_ns // factor}{unit}"
    return f"{duration_ns}ns"


def parse_size_bytes(text: str) -> int:
    """Parse "50GiB", "500MB", "1024b" into bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"invalid size {text!r}: expected e.g. '50GiB', '500MB' or '1024b'")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_percent(text: str) -> float | None:
    """Return the percentage in "5%" as a number, or None when the text is not a percentage."""
    match = _PERCENT_RE.match(text)
    return float(match.group(1)) if match else None
