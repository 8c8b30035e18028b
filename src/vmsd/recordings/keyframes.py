"""Decode the keyframes of one recorded segment file (the function checks' picture analysis and
the console's still picture both look at recorded keyframes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from vmsd.units import ticks_to_ns


def decode_keyframes(path: Path, start_ns: int) -> Iterator[tuple[int, Any]]:
    """(wall time, VideoFrame) of each keyframe of a segment file that starts at `start_ns`,
    oldest first; nothing for a file without video. Blocking (PyAV). Raises av.FFmpegError or
    OSError where the file stops being readable (e.g. a partial last fragment), after yielding
    what decoded before that."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            offset_ns = 0
            if frame.pts is not None and stream.time_base is not None:
                offset_ns = ticks_to_ns(frame.pts, stream.time_base)
            yield start_ns + offset_ns, frame
