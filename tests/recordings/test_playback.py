"""One MPEG-TS stream from two recorders' segments that overlap (real files, real PyAV, ffprobe):
the earlier-starting part plays whole, the later one joins at its first keyframe after it ends,
stream time never goes back, and every frame written decodes."""

from __future__ import annotations

import functools
import itertools
import json
import subprocess
from pathlib import Path

import av
import pytest

from tests.support.rpc import MID, S
from tests.support.site_ops import record_in_cam
from vmsd.recordings.parts import PartState, plan
from vmsd.recordings.playback import PlaybackStats, Source, remux_sources
from vmsd.recordings.search import Span
from vmsd.storage.store import Storage

FRAME_NS = S // 25


def _segments(root: Path) -> list[tuple[int, int, Path]]:
    storage = Storage(root)
    storage.open(exclusive=False)
    try:
        rows = storage.catalogue.segments_in_range("in-cam", 0, MID + 3600 * S)
        return [(row.start_ns, row.end_ns or row.start_ns, storage.segment_path(row)) for row in rows]
    finally:
        storage.close()


def _decoded_frames_s(data: bytes, tmp_path: Path) -> list[float]:
    clip = tmp_path / "joined.ts"
    clip.write_bytes(data)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "json",
         str(clip)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [float(f["pts_time"]) for f in json.loads(probe.stdout)["frames"]]


def test_overlapping_footage_of_two_recorders_joins_at_a_keyframe(h264_ts: Path, tmp_path: Path) -> None:
    # rec-a: MID-5s .. MID+7s; rec-b (started during the overlap): MID+4s .. MID+16s, GOP 2 s from
    # its start, so its keyframes are at MID+4s, +6s, +8s, …
    record_in_cam(tmp_path / "a", h264_ts, start_ns=MID - 5 * S, seconds=12, end_reason="crash")
    record_in_cam(tmp_path / "b", h264_ts, start_ns=MID + 4 * S, seconds=12, end_reason="camera_offline")
    held = {"rec-a": _segments(tmp_path / "a"), "rec-b": _segments(tmp_path / "b")}
    spans = [
        Span(MID - 5 * S, MID + 7 * S, 2, 0, "h264", 320, 240, False, "rec-a"),
        Span(MID + 4 * S, MID + 16 * S, 2, 0, "h264", 320, 240, False, "rec-b"),
    ]
    parts = plan(spans, MID - 5 * S, MID + 16 * S)
    assert [(p.start_ns, p.end_ns, p.recorder, p.state) for p in parts] == [
        (MID - 5 * S, MID + 7 * S, "rec-a", PartState.PLAYED),
        (MID + 4 * S, MID + 7 * S, "rec-b", PartState.OVERLAP),
        (MID + 7 * S, MID + 16 * S, "rec-b", PartState.PLAYED),
    ]
    sources = [
        Source(0, start_ns, part.start_ns, part.end_ns, functools.partial(lambda p: p, path), part.recorder)
        for part in parts
        if part.state is PartState.PLAYED
        for start_ns, end_ns, path in held[part.recorder]
        if start_ns < part.end_ns and end_ns > part.start_ns
    ]
    stats = PlaybackStats()
    data = b"".join(remux_sources(sources, stats))
    assert stats.first_packet_ns == MID - 5 * S
    frames_s = _decoded_frames_s(data, tmp_path)
    assert len(frames_s) == stats.video_frames  # every frame written decodes
    assert frames_s == sorted(frames_s)  # stream time never goes back
    # rec-a's 12 s whole, then rec-b from its first keyframe after MID+7s (MID+8s) to MID+16s.
    assert stats.video_frames == 12 * 25 + 8 * 25
    joins = [(a, b) for a, b in itertools.pairwise(frames_s) if b - a > 0.05]
    assert [(round(a, 2), round(b, 2)) for a, b in joins] == [(round(12 - FRAME_NS / S, 2), 13.0)]
    assert stats.last_packet_ns == MID + 16 * S - FRAME_NS


def test_a_segment_being_written_plays_up_to_what_is_on_disk(h264_ts: Path, tmp_path: Path) -> None:
    """A review reaching the live edge reads a segment whose last fragment is only partly written
    (the writer is appending it): what is on disk plays, the partial fragment ends that segment.
    The same bytes as a complete segment are damage, and an error."""
    record_in_cam(tmp_path / "a", h264_ts, start_ns=MID, seconds=8, end_reason="crash")
    start_ns, _, path = _segments(tmp_path / "a")[0]
    data = path.read_bytes()
    cuts = {"just_created": b"", "mid_fragment": data[: len(data) // 3]}
    for name, cut in cuts.items():
        partial = tmp_path / f"{name}.mp4"
        partial.write_bytes(cut)
        source = functools.partial(Source, 1, start_ns, start_ns, start_ns + 100 * S, functools.partial(Path, partial))
        stats = PlaybackStats()
        played = b"".join(remux_sources([source(writing=True)], stats))
        if name == "mid_fragment":
            frames_s = _decoded_frames_s(played, tmp_path)
            assert 0 < stats.video_frames == len(frames_s) < 8 * 25
        else:
            assert (played, stats.video_frames) == (b"", 0)
        with pytest.raises(av.FFmpegError):
            b"".join(remux_sources([source(writing=False)], PlaybackStats()))
