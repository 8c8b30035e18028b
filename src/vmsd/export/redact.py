"""Redacted working copies: the master decoded, privacy-masked to black, re-encoded with libx264.

A working copy is *processed* footage (re-encoded, masked): the manifest names it as such and the
master stays untouched beside it. Masks are the camera's `privacy_masks`, normalised polygons
(x right, y down, 0..1 of the picture). A pixel is masked when its centre is inside a polygon by
the even-odd rule; chroma samples are masked when any of the luma pixels they cover is, so no
colour bleeds out of a mask's edge. Black is limited-range black (Y=16, U=V=128), which is what
decoders turn into RGB (0, 0, 0).

Audio is left out of working copies: a public-space microphone picks up conversations the masks
exist to protect, and the master keeps it for whoever is entitled to it.

Blocking (decode/encode): runs on the export's worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

Polygon = Sequence[tuple[float, float]]
BoolMask = npt.NDArray[np.bool_]
ENCODER = "libx264 (crf 18, preset veryfast, yuv420p)"


def polygon_mask(polygons: Sequence[Polygon], width: int, height: int) -> BoolMask:
    """(height, width) booleans: True where the pixel centre is inside any polygon (even-odd)."""
    mask = np.zeros((height, width), dtype=np.bool_)
    if not polygons:
        return mask
    xs = (np.arange(width, dtype=np.float64) + 0.5) / width
    ys = (np.arange(height, dtype=np.float64) + 0.5) / height
    px = xs[np.newaxis, :]
    py = ys[:, np.newaxis]
    for polygon in polygons:
        inside = np.zeros((height, width), dtype=np.bool_)
        count = len(polygon)
        for index in range(count):
            x1, y1 = polygon[index]
            x2, y2 = polygon[(index - 1) % count]
            if y1 == y2:
                continue  # a horizontal edge never crosses a horizontal ray
            # Rows whose centre line the edge crosses (half-open, so shared vertices count once),
            # then the pixels left of the crossing point toggle.
            crosses = (y1 > py) != (y2 > py)
            x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (px < x_at)
        mask |= inside
    return mask


def chroma_mask(mask: BoolMask) -> BoolMask:
    """4:2:0 chroma mask: a chroma sample is masked when any luma pixel it covers is."""
    height, width = mask.shape
    padded = np.zeros((height + height % 2, width + width % 2), dtype=np.bool_)
    padded[:height, :width] = mask
    chroma: BoolMask = np.asarray(padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(axis=(1, 3)))
    return chroma


def mask_yuv420p(
    frame: Any, masks: dict[tuple[int, int], tuple[BoolMask, BoolMask]], polygons: Sequence[Polygon]
) -> Any:
    """A new yuv420p VideoFrame: `frame` with the polygons painted black (masks cached per size)."""
    width, height = frame.width, frame.height
    if (width, height) not in masks:
        luma = polygon_mask(polygons, width, height)
        masks[(width, height)] = (luma, chroma_mask(luma))
    luma, chroma = masks[(width, height)]
    yuv = frame.reformat(format="yuv420p")
    planes = []
    for index, plane_mask in enumerate((luma, chroma, chroma)):
        plane = yuv.planes[index]
        rows, cols = plane_mask.shape
        # Planes are padded to their line size; view the visible part of each row.
        data = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)[:rows, :cols].copy()
        data[plane_mask] = 16 if index == 0 else 128
        planes.append(data)
    out = av.VideoFrame(width, height, "yuv420p")
    for index, data in enumerate(planes):
        target = out.planes[index]
        rows, cols = data.shape
        view = np.frombuffer(memoryview(target), dtype=np.uint8).reshape(-1, target.line_size)
        view[:rows, :cols] = data
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out


def redact_file(source: Path, target: Path, polygons: Sequence[Polygon]) -> int:
    """Write a masked, re-encoded copy of `source` (video only) to `target`; return its frame count."""
    done = 0
    for done in redact_steps(source, target, polygons):  # noqa: B007 - the last value is the count
        pass
    return done


def redact_steps(source: Path, target: Path, polygons: Sequence[Polygon], every: int = 25) -> Iterator[int]:
    """Like `redact_file`, yielding the frames done every `every` frames and once at the end.

    Timestamps are kept, so the copy lines up with the master frame for frame.
    """
    frames = 0
    masks: dict[tuple[int, int], tuple[BoolMask, BoolMask]] = {}
    with (
        av.open(str(source)) as inp,
        av.open(str(target), "w", format="mp4", container_options={"movflags": "+faststart"}) as out,
    ):
        video_in: Any = inp.streams.video[0]  # PyAV's stubs type time bases as optional
        video_in.thread_type = "AUTO"
        rate: Fraction = video_in.average_rate or Fraction(25, 1)
        stream: Any = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
        stream.width = video_in.codec_context.width
        stream.height = video_in.codec_context.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = video_in.time_base
        stream.codec_context.time_base = video_in.time_base
        creation_time = inp.metadata.get("creation_time")
        if creation_time:
            out.metadata["creation_time"] = creation_time
        for frame in inp.decode(video_in):
            masked = mask_yuv420p(frame, masks, polygons)
            for packet in stream.encode(masked):
                out.mux(packet)
            frames += 1
            if frames % every == 0:
                yield frames
        for packet in stream.encode(None):
            out.mux(packet)
    yield frames
