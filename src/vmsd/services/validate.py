"""Validation of request fields: every bad value is INVALID_ARGUMENT with a message naming the field."""

from __future__ import annotations

import re

from vmsd.errors import ErrorKind, VmsdError
from vmsd.ids import ID_PATTERN
from vmsd.units import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
_ID_RE = re.compile(ID_PATTERN)
# 2000-01-01 .. 2100-01-01: anything outside is a unit mistake (seconds for nanoseconds, …).
MIN_TIME_NS = 946_684_800 * NS_PER_S
MAX_TIME_NS = 4_102_444_800 * NS_PER_S
MAX_TEXT = 1000


def invalid(message: str) -> VmsdError:
    return VmsdError(ErrorKind.INVALID_ARGUMENT, message)


def camera_id(value: str, field: str = "camera_id") -> str:
    if not value:
        raise invalid(f"{field} is required")
    if not _ID_RE.fullmatch(value):
        raise invalid(f"{field} {value[:80]!r} is not a valid camera id (letters, digits, '.', '_', '-'; max 64)")
    return value


def time_range(start_ns: int, end_ns: int, *, max_ns: int, field: str = "range") -> tuple[int, int]:
    for name, value in (("start_ns", start_ns), ("end_ns", end_ns)):
        if not MIN_TIME_NS <= value <= MAX_TIME_NS:
            raise invalid(f"{field}.{name} {value} is not a time between 2000 and 2100 in nanoseconds since the epoch")
    if end_ns <= start_ns:
        raise invalid(f"{field}.end_ns must be after {field}.start_ns")
    if end_ns - start_ns > max_ns:
        raise invalid(f"{field} is longer than the maximum of {max_ns // NS_PER_S} s")
    return start_ns, end_ns


def until_ns(value: int, now_ns: int, field: str = "until_ns") -> int | None:
    """An expiry (review) date: 0 means none (None); otherwise a time in the future."""
    if value == 0:
        return None
    if not MIN_TIME_NS <= value <= MAX_TIME_NS:
        raise invalid(f"{field} {value} is not a time between 2000 and 2100 in nanoseconds since the epoch")
    if value <= now_ns:
        raise invalid(f"{field} must be in the future (or 0: until released)")
    return value


def text(value: str, field: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str:
    value = value.strip()
    if required and not value:
        raise invalid(f"{field} is required")
    if len(value) > max_len:
        raise invalid(f"{field} is longer than {max_len} characters")
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise invalid(f"{field} contains control characters")
    return value
