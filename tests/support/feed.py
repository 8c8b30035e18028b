"""Feeding recorded media into a Segmenter as if it arrived live, under a FakeClock.

Lets the storage and ingest logic be tested with exact timestamps and no network: the clock
advances by each video frame's spacing, just as a real-time camera would make it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter


def feed(
    segmenter: Segmenter,
    clock: FakeClock,
    path: Path,
    *,
    seconds: float | None = None,
    before_packet: Callable[[int, Any], None] | None = None,
    end_reason: str | None = "camera_offline",
) -> int:
    """Push a file's packets through one session; returns the number of video packets pushed."""
    container = av.open(str(path))
    try:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        segmenter.begin_session(video, audio)
        last_ns: int | None = None
        first_ns: int | None = None
        index = 0
        for packet in container.demux(*[s for s in (video, audio) if s is not None]):
            if packet.size == 0 or packet.pts is None:
                continue
            if packet.stream is video:
                t_ns = packet.pts * packet.time_base.numerator * 1_000_000_000 // packet.time_base.denominator
                if first_ns is None:
                    first_ns = t_ns
                if seconds is not None and t_ns - first_ns >= seconds * 1_000_000_000:
                    break
                if last_ns is not None and t_ns > last_ns:
                    clock.advance(t_ns - last_ns)
                last_ns = t_ns
                if before_packet is not None:
                    before_packet(index, packet)
                index += 1
            segmenter.push(packet)
        if end_reason is not None:
            segmenter.end_session(end_reason)
        return index
    finally:
        container.close()
