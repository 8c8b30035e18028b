"""Just enough ISO-BMFF (MP4) structure to recover a segment file after a crash.

A segment is `ftyp moov (moof mdat)* [mfra]`. A crash can leave a torn last fragment; the file is
truncated after the last complete `moof mdat` pair so every remaining byte is playable footage.
Timing is read back with PyAV (demux only, no decoding).
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av

from vmsd.units import ticks_to_ns


@dataclass(frozen=True)
class Box:
    type: str
    offset: int
    size: int


def top_level_boxes(path: Path) -> tuple[list[Box], int]:
    """Return the complete top-level boxes and the file size; a torn trailing box is left out."""
    boxes: list[Box] = []
    file_size = os.path.getsize(path)
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= file_size:
            f.seek(offset)
            header = f.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1:
                if len(header) < 16:
                    break
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:  # "extends to end of file": only valid for a last, complete box
                size = file_size - offset
            if size < 8 or offset + size > file_size:
                break
            boxes.append(Box(kind.decode("latin-1"), offset, size))
            offset += size
    return boxes, file_size


def complete_length(path: Path) -> tuple[int, int]:
    """Length of the longest playable prefix and the number of complete fragments in it.

    The prefix ends after the last `mdat` that follows a `moof` (or after a trailing `mfra`).
    Returns (0, 0) when even the header (`ftyp` + `moov`) is incomplete.
    """
    boxes, _ = top_level_boxes(path)
    kinds = [b.type for b in boxes]
    if "moov" not in kinds:
        return 0, 0
    end = boxes[kinds.index("moov")].offset + boxes[kinds.index("moov")].size
    fragments = 0
    for previous, box in itertools.pairwise(boxes):
        if box.type == "mdat" and previous.type == "moof":
            end = box.offset + box.size
            fragments += 1
        elif box.type == "mfra" and previous.type == "mdat":
            end = box.offset + box.size
    return end, fragments


@dataclass(frozen=True)
class MediaSummary:
    duration_ns: int
    video_frames: int
    codec: str
    width: int
    height: int
    has_audio: bool


def summarize(path: Path) -> MediaSummary:
    """Duration (end of the last video sample) and stream facts of a segment, by demuxing it."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        end_ns = 0
        frames = 0
        for packet in container.demux(video):
            if packet.pts is None:
                continue
            frames += 1
            tb = packet.time_base
            end = ticks_to_ns(packet.pts + (packet.duration or 0), tb)
            end_ns = max(end_ns, end)
        return MediaSummary(
            duration_ns=end_ns,
            video_frames=frames,
            codec=video.codec_context.name,
            width=video.codec_context.width,
            height=video.codec_context.height,
            has_audio=bool(container.streams.audio),
        )
