"""Times as people and integrators write them, for every transport and the CLI.

`parse_time` takes every form vmsctl and the HTTP API accept (DESIGN §6): ISO-8601 with 'Z' or an
offset, integer nanoseconds since the Unix epoch as a decimal string (how int64 times travel in
JSON), `now`, and times relative to now (`-30s`, `-10m`, `-2h`, `-1d`). A time without a timezone
is refused rather than guessed: the recorder's local zone is not the reader's.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from vmsd.errors import ErrorKind, VmsdError
from vmsd.units import NS_PER_S

RELATIVE_RE = re.compile(r"^-(\d+)(s|m|h|d)$")
_NS_RE = re.compile(r"^\d{1,19}$")
_UNIT_NS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": 86400 * NS_PER_S}
_INT64_MAX = 2**63 - 1
TIME_FORMATS = (
    "ISO-8601 in UTC (2026-11-24T21:00:00Z) or with an offset (2026-11-24T21:00:00+01:00), "
    "nanoseconds since 1970 (1764018000000000000), now, -30s, -10m, -2h, -1d"
)


def parse_time(text: str, now_ns: int | None = None, *, name: str = "time") -> int:
    """Integer ns since the epoch; INVALID_ARGUMENT naming `name` and the text when it is none of
    the forms above. `now_ns` anchors `now` and relative times (default: the system clock)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    shown = text[:64]  # errors quote what was given, not megabytes of it
    if text == "now":
        return now_ns
    match = RELATIVE_RE.match(text)
    if match:
        return now_ns - int(match.group(1)) * _UNIT_NS[match.group(2)]
    if _NS_RE.match(text):
        value = int(text)
        if value > _INT64_MAX:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"{name} {shown!r} is beyond the int64 nanosecond range")
        return value
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise VmsdError(
            ErrorKind.INVALID_ARGUMENT,
            f"invalid {name} {shown!r}: use ISO-8601 (e.g. 2026-11-24T10:00:00Z), nanoseconds, "
            "or -30s/-10m/-2h/-1d/now",
        ) from None
    if when.tzinfo is None:
        raise VmsdError(
            ErrorKind.INVALID_ARGUMENT, f"{name} {shown!r} has no timezone: add 'Z' for UTC or an offset such as +01:00"
        )
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
