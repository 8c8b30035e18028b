"""The CLI's time words: readable times and durations out (times in: vmsd.times.parse_time)."""

from __future__ import annotations

import argparse
import datetime as dt
import time

from vmsd.times import RELATIVE_RE, parse_time
from vmsd.units import NS_PER_S
from vmsd.v1 import common_pb2

_TIME_OPTIONS = ("--from", "--to", "--since", "--until")


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
        if item in _TIME_OPTIONS and RELATIVE_RE.match(following):
            joined.append(f"{item}={following}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined
