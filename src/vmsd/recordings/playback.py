"""Review playback: recorded packets of a time range, remuxed (never re-encoded) to MPEG-TS.

MPEG-TS because it carries what a range of segments may contain: parameter-set changes (every
keyframe carries its SPS/PPS in-band, put there by the `*_mp4toannexb` filters per segment) and
jumps across gaps, and because it is playable while still being written.

Stream time 0 is the wall time of the first packet (`first_packet_ns`); later packets keep
their recorded spacing, so a gap shows as a jump. Playback starts at the keyframe at or before
the requested start, so the first frame decodes.

Blocking: runs on a worker thread; the generator yields byte chunks as the muxer produces them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from vmsd.storage.catalogue import SegmentRow, SegmentState
from vmsd.storage.store import Storage
from vmsd.units import ns_to_ticks, ticks_to_ns

_ANNEXB_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


@dataclass
class PlaybackStats:
    first_packet_ns: int = 0
    last_packet_ns: int = 0
    video_frames: int = 0
    bytes: int = 0
    segments: list[int] = field(default_factory=list)


class _Chunks:
    """The muxer's output file: collects what FFmpeg writes until the generator takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


@dataclass(frozen=True)
class Source:
    """One segment to remux: its wall start (stream time 0 of the file), the stretch of it to
    play, and how to get its file (`path`, blocking: it may fetch a peer's copy; None: it cannot
    be had, and the stream goes on without it). `recorder` is who holds it: when it changes, or
    after a segment that could not be had, the video resumes at the next keyframe, so that every
    frame written decodes. `writing`: the segment is still being written, so its end may be a
    fragment only partly on disk yet: what can be read of it is played, and the rest is not an
    error."""

    segment_id: int
    start_ns: int
    from_ns: int
    to_ns: int
    path: Callable[[], Path | None]
    recorder: str = ""
    writing: bool = False


def _start_offset_ns(path: Path, segment_start_ns: int, start_ns: int, writing: bool) -> int:
    """Offset (from the segment start) of the last keyframe at or before start_ns."""
    best = 0
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        for packet in _readable(container.demux(video), writing):
            if packet.pts is None:
                continue
            offset_ns = ticks_to_ns(packet.pts, packet.time_base)
            if segment_start_ns + offset_ns > start_ns:
                break
            if packet.is_keyframe:
                best = offset_ns
    return best


def _readable(packets: Iterator[Any], writing: bool) -> Iterator[Any]:
    """`packets` until the end of what is on disk: in a segment being written, a fragment only
    partly written yet ends the reading instead of failing it."""
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError:
            if not writing:
                raise
            return
        if writing and packet.is_corrupt:  # its bytes are not all on disk yet
            return
        yield packet


def remux_range(
    storage: Storage,
    rows: list[SegmentRow],
    start_ns: int,
    end_ns: int,
    stats: PlaybackStats,
    chunk_bytes: int = 256 * 1024,
) -> Iterator[bytes]:
    """Yield MPEG-TS bytes of the footage of `rows` (in time order) inside [start_ns, end_ns)."""
    sources = [
        Source(
            row.id,
            row.start_ns,
            start_ns,
            end_ns,
            functools.partial(storage.segment_path, row),
            writing=row.state is SegmentState.WRITING,
        )
        for row in rows
    ]
    return remux_sources(sources, stats, chunk_bytes)


def remux_sources(sources: list[Source], stats: PlaybackStats, chunk_bytes: int = 256 * 1024) -> Iterator[bytes]:
    """Yield MPEG-TS bytes of `sources` (in time order), each inside its [from_ns, to_ns); the
    first from the keyframe at or before its `from_ns`. Stream time 0 is the first packet."""
    sink = _Chunks()
    output: Any = None
    out_video: Any = None
    out_audio: Any = None
    # Audio at a segment boundary may be in both neighbours' time span; the muxer needs strictly
    # increasing DTS per stream, so anything not later than what was written is skipped.
    last_dts_ns = {"video": -1, "audio": -1}
    previous: Source | None = None
    try:
        for source in sources:
            path = source.path()
            if path is None:
                previous = None  # what follows resumes at a keyframe
                continue
            # The first source starts at a keyframe at or before its start; a change of recorder
            # (or a missing segment) waits for the next keyframe.
            wait_keyframe = output is not None and (previous is None or previous.recorder != source.recorder)
            try:
                container = av.open(str(path))
            except av.FFmpegError:
                if not source.writing:
                    raise
                previous = None  # a segment just begun: nothing of it is readable yet
                continue
            previous = source
            with container:
                video = container.streams.video[0]
                audio = container.streams.audio[0] if container.streams.audio else None
                skip_before_ns = source.from_ns
                if output is None:
                    offset_ns = _start_offset_ns(path, source.start_ns, source.from_ns, source.writing)
                    skip_before_ns = source.start_ns + offset_ns
                    output = av.open(sink, "w", format="mpegts")
                    out_video = output.add_stream_from_template(video)
                    if audio is not None:
                        out_audio = output.add_stream_from_template(audio)
                    stats.first_packet_ns = skip_before_ns
                name = _ANNEXB_FILTERS.get(video.codec_context.name)
                annexb = av.BitStreamFilterContext(name, video) if name else None
                stats.segments.append(source.segment_id)
                streams = [video] + ([audio] if audio is not None and out_audio is not None else [])
                for packet in _readable(container.demux(streams), source.writing):
                    if packet.size == 0 or packet.dts is None or packet.pts is None:
                        continue
                    tb = packet.time_base
                    pts_wall_ns = source.start_ns + ticks_to_ns(packet.pts, tb)
                    dts_wall_ns = source.start_ns + ticks_to_ns(packet.dts, tb)
                    is_video = packet.stream is video
                    if pts_wall_ns < skip_before_ns:
                        continue
                    if pts_wall_ns >= source.to_ns:
                        if is_video:
                            break
                        continue
                    if wait_keyframe:
                        if not (is_video and packet.is_keyframe):
                            continue
                        wait_keyframe = False
                    kind = "video" if is_video else "audio"
                    if dts_wall_ns <= last_dts_ns[kind]:
                        continue
                    last_dts_ns[kind] = dts_wall_ns
                    out = [*annexb.filter(packet)] if is_video and annexb is not None else [packet]
                    for item in out:
                        item.stream = out_video if is_video else out_audio
                        item.time_base = tb
                        item.pts = ns_to_ticks(pts_wall_ns - stats.first_packet_ns, tb)
                        item.dts = ns_to_ticks(dts_wall_ns - stats.first_packet_ns, tb)
                        output.mux(item)
                    if is_video:
                        stats.video_frames += 1
                        stats.last_packet_ns = max(stats.last_packet_ns, pts_wall_ns)
                    if sum(len(p) for p in sink.parts) >= chunk_bytes:
                        data = sink.take()
                        stats.bytes += len(data)
                        yield data
        if output is not None:
            output.close()
            output = None
        data = sink.take()
        if data:
            stats.bytes += len(data)
            yield data
    finally:
        if output is not None:
            try:
                output.close()
            except (av.FFmpegError, ValueError):
                pass  # the client went away mid-stream; nothing recorded depends on this
