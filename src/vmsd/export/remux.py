"""The PyAV remux engine: recorded segments stream-copied (never re-encoded) into master MP4(s)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from vmsd.export import manifest as mf
from vmsd.export.manifest import iso_ns, time_span
from vmsd.storage.catalogue import SegmentRow
from vmsd.units import NS_PER_S, ns_to_ticks, ticks_to_ns


def _stream_key(video: Any, audio: Any | None) -> tuple[Any, ...]:
    """What must not change inside one MP4: codec, picture size, parameter sets, audio format."""
    vcc = video.codec_context
    key: tuple[Any, ...] = (vcc.name, vcc.width, vcc.height, bytes(vcc.extradata or b""))
    if audio is not None:
        acc = audio.codec_context
        key += (acc.name, acc.sample_rate, acc.channels, bytes(acc.extradata or b""))
    return key


@dataclass
class _Piece:
    master_offset_ns: int
    start_ns: int
    end_ns: int


@dataclass
class _Part:
    """One master file being written."""

    file: str
    output: Any
    video: Any
    audio: Any
    key: tuple[Any, ...]
    video_codec: str
    width: int
    height: int
    recorder: str
    pieces: list[_Piece] = field(default_factory=list)
    video_frames: int = 0
    last_dts_ns: dict[str, int] = field(default_factory=lambda: {"video": -(2**62), "audio": -(2**62)})

    def entry(self) -> mf.Master:
        start_ns = self.pieces[0].start_ns
        last = self.pieces[-1]
        return mf.Master(
            file=self.file,
            container="mp4",
            start_ns=start_ns,
            start=iso_ns(start_ns),
            end_ns=last.end_ns,
            duration_ns=last.master_offset_ns + last.end_ns - last.start_ns,
            creation_time=_creation_time(start_ns),
            video_codec=self.video_codec,
            width=self.width,
            height=self.height,
            has_audio=self.audio is not None,
            video_frames=self.video_frames,
            timeline=[
                mf.TimelinePiece(master_offset_ns=p.master_offset_ns, start_ns=p.start_ns, end_ns=p.end_ns)
                for p in self.pieces
            ],
            recorder=self.recorder,
        )


def _creation_time(start_ns: int) -> str:
    seconds, nanos = divmod(start_ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


def covered_union(remuxes: list[Remux]) -> list[mf.TimeSpan]:
    """The wall time the masters of `remuxes` cover: their timeline pieces joined where they touch
    or overlap (two recorders' masters of the same time cover it once)."""
    spans: list[list[int]] = []
    pieces = sorted(
        (piece.start_ns, piece.end_ns) for remux in remuxes for part in remux.parts for piece in part.pieces
    )
    for start_ns, end_ns in pieces:
        if end_ns <= start_ns:
            continue
        if spans and start_ns <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end_ns)
        else:
            spans.append([start_ns, end_ns])
    return [time_span(a, b) for a, b in spans]


class Remux:
    """Stream-copies the packets of `sources` inside [start_ns, end_ns) into master MP4(s).

    Segment timelines start at 0 = the row's start_ns. The master starts at the last keyframe at
    or before start_ns (so its first frame decodes); contiguous segments continue one timeline,
    and after a gap the next footage follows on directly (a new timeline piece), so the master
    plays the covered footage without freezing through the gaps.
    """

    def __init__(
        self,
        sources: list[tuple[SegmentRow, Path]],
        start_ns: int,
        end_ns: int,
        directory: Path,
        *,
        stem: str = "master",
        recorder: str = "",
    ) -> None:
        self._sources = sources
        # Masters are <stem>.mp4, <stem>-2.mp4, …; a bundle of several recorders has a remux per
        # recorder (stem master-<recorder>), each master naming its `recorder`.
        self._stem = stem
        self._recorder = recorder
        self._start_ns = start_ns
        self._end_ns = end_ns
        self._directory = directory
        self.parts: list[_Part] = []

    def covered(self) -> list[mf.TimeSpan]:
        return covered_union([self])

    def _first_keyframe_offset_ns(self, row: SegmentRow, path: Path) -> int:
        best = 0
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                offset_ns = ticks_to_ns(packet.pts, packet.time_base)
                if row.start_ns + offset_ns > self._start_ns:
                    break
                if packet.is_keyframe:
                    best = offset_ns
        return best

    def _open_part(self, video: Any, audio: Any | None, key: tuple[Any, ...], start_ns: int) -> _Part:
        name = f"{self._stem}.mp4" if not self.parts else f"{self._stem}-{len(self.parts) + 1}.mp4"
        # faststart rewrites the file at close (moov moved to the front): needs a real, seekable file.
        output = av.open(str(self._directory / name), "w", format="mp4", container_options={"movflags": "+faststart"})
        try:
            output.metadata["creation_time"] = _creation_time(start_ns)
            out_video = output.add_stream_from_template(video)
            out_audio = output.add_stream_from_template(audio) if audio is not None else None
        except BaseException:
            output.close()
            raise
        vcc = video.codec_context
        part = _Part(name, output, out_video, out_audio, key, vcc.name, vcc.width, vcc.height, self._recorder)
        part.pieces.append(_Piece(0, start_ns, start_ns))
        self.parts.append(part)
        return part

    def run(self) -> Iterator[int]:
        """Write the master(s), yielding the source bytes done after each segment."""
        done_bytes = 0
        part: _Part | None = None
        try:
            first_row, first_path = self._sources[0]
            first_offset_ns = self._first_keyframe_offset_ns(first_row, first_path)
            for index, (row, path) in enumerate(self._sources):
                assert row.end_ns is not None
                begin_ns = row.start_ns + first_offset_ns if index == 0 else row.start_ns
                with av.open(str(path)) as container:
                    video = container.streams.video[0]
                    audio = container.streams.audio[0] if container.streams.audio else None
                    key = _stream_key(video, audio)
                    if part is not None and key != part.key:
                        part.output.close()
                        part = None
                    if part is None:
                        part = self._open_part(video, audio, key, begin_ns)
                    elif part.pieces[-1].end_ns != begin_ns:  # a gap: the footage after it follows on
                        last = part.pieces[-1]
                        part.pieces.append(
                            _Piece(last.master_offset_ns + last.end_ns - last.start_ns, begin_ns, begin_ns)
                        )
                    self._copy_packets(part, container, video, audio, row, begin_ns)
                    part.pieces[-1].end_ns = min(row.end_ns, self._end_ns)
                done_bytes += row.bytes or 0
                yield done_bytes
            if part is not None:
                part.output.close()
                part = None
        finally:
            if part is not None:
                try:
                    part.output.close()
                except (av.FFmpegError, ValueError):
                    pass  # already failing; the partial bundle is removed by the caller

    def _copy_packets(
        self, part: _Part, container: Any, video: Any, audio: Any | None, row: SegmentRow, begin_ns: int
    ) -> None:
        piece = part.pieces[-1]
        streams = [video] + ([audio] if audio is not None and part.audio is not None else [])
        for packet in container.demux(streams):
            if packet.size == 0 or packet.dts is None or packet.pts is None:
                continue
            tb = packet.time_base
            pts_wall_ns = row.start_ns + ticks_to_ns(packet.pts, tb)
            dts_wall_ns = row.start_ns + ticks_to_ns(packet.dts, tb)
            is_video = packet.stream is video
            if pts_wall_ns < begin_ns:
                continue
            if pts_wall_ns >= self._end_ns:
                if is_video:
                    break
                continue
            kind = "video" if is_video else "audio"
            master_pts_ns = pts_wall_ns - piece.start_ns + piece.master_offset_ns
            master_dts_ns = dts_wall_ns - piece.start_ns + piece.master_offset_ns
            # Audio at a segment boundary can sit in both neighbours; the muxer needs strictly
            # increasing DTS per stream.
            if master_dts_ns <= part.last_dts_ns[kind]:
                continue
            part.last_dts_ns[kind] = master_dts_ns
            packet.stream = part.video if is_video else part.audio
            packet.time_base = tb
            packet.pts = ns_to_ticks(master_pts_ns, tb)
            packet.dts = ns_to_ticks(master_dts_ns, tb)
            part.output.mux(packet)
            if is_video:
                part.video_frames += 1


# -- README -------------------------------------------------------------------------------------
