"""The CLI's time words: ISO-8601 or relative times (`now`, `-2h`) in, readable times and durations out."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time

from vmsd.cli.vmsctl.errors import UsageError
from vmsd.units import NS_PER_S
from vmsd.v1 import common_pb2

_RELATIVE_RE = re.compile(r"^-(\d+)(s|m|h|d)$")
_UNIT_NS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": 86400 * NS_PER_S}
_TIME_OPTIONS = ("--from", "--to", "--since", "--until")
TIME_FORMATS = (
    "ISO-8601 in UTC (2026-11-24T21:00:00Z) or with an offset (2026-11-24T21:00:00+01:00), now, -30s, -10m, -2h, -1d"
)


def parse_time(text: str, now_ns: int | None = None) -> int:
    """ISO-8601 with 'Z' or an offset, or relative to now ('now', '-30s', '-10m', '-2h', '-1d')."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    if text == "now":
        return now_ns
    match = _RELATIVE_RE.match(text)
    if match:
        return now_ns - int(match.group(1)) * _UNIT_NS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use ISO-8601 (e.g. 2026-11-24T10:00:00Z) or -30s/-10m/-2h/-1d/now"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"time {text!r} has no timezone: add 'Z' for UTC or an offset such as +01:00")
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def format_time(ns: int) -> str:
    if ns <= 0:
        return "-"
    seconds, nanos = divmod(ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1_000_000:03d}Z"


def format_duration(ns: int) -> str:
    seconds = ns / NS_PER_S
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def time_range(args: argparse.Namespace) -> common_pb2.TimeRange:
    now_ns = time.time_ns()
    return common_pb2.TimeRange(start_ns=parse_time(args.start, now_ns), end_ns=parse_time(args.end, now_ns))


def join_relative_times(argv: list[str]) -> list[str]:
    """Let `--from -2h` through: argparse would take `-2h` for an option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if item in _TIME_OPTIONS and _RELATIVE_RE.match(following):
            joined.append(f"{item}={following}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined
