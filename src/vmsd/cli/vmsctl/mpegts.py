"""Relayed packets muxed into MPEG-TS, playable while written (also to a pipe)."""

from __future__ import annotations

from typing import Any

from vmsd.units import NS_PER_S


class TsWriter:
    """Muxes relayed packets into MPEG-TS (playable while written, also to a pipe)."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._output: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._extradata = b""
        self._codec = ""
        self._origin_ns: int | None = None
        self._last_dts: dict[int, int] = {}
        self.frames = 0

    def configure(self, config: Any) -> None:
        import io

        import av

        self._extradata = bytes(config.video_extradata)
        self._codec = config.video_codec
        if self._output is not None:
            # The camera reconnected or changed parameters: in-band parameter sets at the next
            # keyframe carry the change; MPEG-TS decoders follow them.
            return
        template = av.open(io.BytesIO(bytes(config.init_segment)), format="mp4")
        self._output = av.open(self._sink, "w", format="mpegts", options={"flush_packets": "1"})
        self._video = self._output.add_stream_from_template(template.streams.video[0])
        if template.streams.audio:
            self._audio = self._output.add_stream_from_template(template.streams.audio[0])
        template.close()

    def write(self, packet: Any) -> None:
        from fractions import Fraction

        import av

        from vmsd.ingest.bitstream import parameter_sets

        if self._output is None:
            return
        video = packet.kind == 1
        stream = self._video if video else self._audio
        if stream is None:
            return
        data = bytes(packet.data)
        if video and packet.keyframe and parameter_sets(self._codec, data[:4096]) is None:
            data = self._extradata + data  # a camera that sends its SPS/PPS only out of band
        if self._origin_ns is None:
            if not (video and packet.keyframe):
                return  # start the file on a keyframe
            self._origin_ns = packet.dts_ns
        dts = (packet.dts_ns - self._origin_ns) * 90_000 // NS_PER_S
        pts = (packet.pts_ns - self._origin_ns) * 90_000 // NS_PER_S
        if dts < 0 or dts <= self._last_dts.get(packet.kind, -1):
            return
        self._last_dts[packet.kind] = dts
        out = av.Packet(data)
        out.stream = stream
        out.time_base = Fraction(1, 90_000)
        out.dts, out.pts = dts, max(pts, dts)
        out.is_keyframe = bool(packet.keyframe)
        try:
            self._output.mux(out)
        except BrokenPipeError:
            self._output = None  # the reader has gone: not even the trailer can be written
            raise
        self.frames += video

    def close(self) -> None:
        if self._output is not None:
            self._output.close()
