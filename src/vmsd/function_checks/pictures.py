"""Picture analysis: keyframes of recorded segment files decoded (PyAV) and measured with numpy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from vmsd.function_checks.report import PictureStats
from vmsd.function_checks.thresholds import MAX_PICTURES, SAMPLE_WIDTH
from vmsd.log import get_logger
from vmsd.recordings.keyframes import decode_keyframes

log = get_logger(component="health")


def picture_stats(luma: np.ndarray, time_ns: int, previous: np.ndarray | None = None) -> PictureStats:
    """Statistics of one picture's luma plane (2-D uint8)."""
    pixels = luma.astype(np.int16)
    gradient = (np.abs(np.diff(pixels, axis=1)).mean() + np.abs(np.diff(pixels, axis=0)).mean()) / 2
    diff = None
    if previous is not None and previous.shape == luma.shape:
        diff = float(np.abs(pixels - previous.astype(np.int16)).mean())
    return PictureStats(
        time_ns=time_ns,
        mean_luma=round(float(pixels.mean()), 2),
        bright_luma=round(float(np.percentile(pixels, 99.9)), 2),
        detail=round(float(gradient), 3),
        diff_from_previous=None if diff is None else round(diff, 3),
    )


def sample_pictures(paths: Sequence[tuple[Path, int]], max_pictures: int = MAX_PICTURES) -> list[PictureStats]:
    """Decode the keyframes of recorded segment files ((path, start_ns), oldest first) and judge up
    to `max_pictures` of them, evenly spread, newest last. Blocking (PyAV). A file that cannot be
    read (e.g. the segment being written ends in a partial fragment) gives what it decoded."""
    lumas: list[tuple[int, np.ndarray]] = []
    for path, start_ns in paths:
        try:
            for time_ns, frame in decode_keyframes(path, start_ns):
                width = min(SAMPLE_WIDTH, frame.width)
                height = max(2, round(frame.height * width / frame.width) // 2 * 2)
                lumas.append((time_ns, frame.reformat(width=width, height=height, format="gray").to_ndarray()))
        except (av.FFmpegError, OSError) as error:
            log.debug("picture_sample_incomplete", path=str(path), error=str(error))
    if len(lumas) > max_pictures:
        step = (len(lumas) - 1) / (max_pictures - 1)
        lumas = [lumas[round(i * step)] for i in range(max_pictures)]
    pictures: list[PictureStats] = []
    previous: np.ndarray | None = None
    for time_ns, luma in lumas:
        pictures.append(picture_stats(luma, time_ns, previous))
        previous = luma
    return pictures
