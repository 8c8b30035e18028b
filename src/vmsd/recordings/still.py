"""A still picture of a camera: its newest recorded keyframe, decoded and encoded as JPEG.

From the recorded segments rather than the live hub: the segment being written is readable up to
its last complete fragment (fragments start at keyframes), so the newest keyframe on disk is at
most a GOP and a flush behind live, and reading it never touches the recorder or warms its hub.

Blocking (PyAV): run on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vmsd.log import get_logger
from vmsd.recordings.keyframes import decode_keyframes

log = get_logger(component="recordings")

JPEG_QUALITY = "3"  # MJPEG qscale (2 best .. 31 worst): close to the source at ~15 KB for 320x240


@dataclass(frozen=True)
class Picture:
    time_ns: int  # wall time of the keyframe
    width: int
    height: int
    jpeg: bytes


def newest_keyframe(paths: Sequence[tuple[Path, int]]) -> tuple[int, Any] | None:
    """(wall time, VideoFrame) of the newest keyframe that decodes in segment files ((path,
    start_ns), oldest first); None when none does. A file that ends in a partial fragment (the
    one being written) gives what it decoded."""
    for path, start_ns in reversed(paths):
        found: tuple[int, Any] | None = None
        try:
            for keyframe in decode_keyframes(path, start_ns):
                found = keyframe
        except (av.FFmpegError, OSError) as error:
            log.debug("still_decode_incomplete", path=str(path), error=str(error))
        if found is not None:
            return found
    return None


def encode_jpeg(frame: Any) -> bytes:
    """One VideoFrame as a baseline JPEG (full-range 4:2:0, as browsers expect)."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    encoder.options = {"qmin": JPEG_QUALITY, "qmax": JPEG_QUALITY}
    picture = frame.reformat(format="yuvj420p")
    return b"".join(bytes(packet) for packet in [*encoder.encode(picture), *encoder.encode(None)])


def still(paths: Sequence[tuple[Path, int]], prepare: Callable[[Any], Any] | None = None) -> Picture | None:
    """The newest keyframe as a JPEG; `prepare` may change the frame first (e.g. paint masks)."""
    newest = newest_keyframe(paths)
    if newest is None:
        return None
    time_ns, frame = newest
    if prepare is not None:
        frame = prepare(frame)
    return Picture(time_ns, frame.width, frame.height, encode_jpeg(frame))
