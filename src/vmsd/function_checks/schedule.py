"""When checks run: the next of the local `[health] times`, and local midnight (for "gaps today")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from vmsd.units import NS_PER_S


def next_run_ns(now_ns: int, times: Sequence[str], tz: dt.tzinfo | None = None) -> int | None:
    """The next wall time (ns) at one of the local `times` ("HH:MM") strictly after `now_ns`."""
    if not times:
        return None
    now = dt.datetime.fromtimestamp(now_ns / NS_PER_S, tz=tz or dt.datetime.now().astimezone().tzinfo)
    candidates = []
    for day in (0, 1):
        date = (now + dt.timedelta(days=day)).date()
        for text in times:
            hour, minute = (int(x) for x in text.split(":"))
            at = dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=now.tzinfo)
            at_ns = int(at.timestamp()) * NS_PER_S
            if at_ns > now_ns:
                candidates.append(at_ns)
    return min(candidates)


def local_midnight_ns(now_ns: int, tz: dt.tzinfo | None = None) -> int:
    now = dt.datetime.fromtimestamp(now_ns / NS_PER_S, tz=tz or dt.datetime.now().astimezone().tzinfo)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp()) * NS_PER_S
