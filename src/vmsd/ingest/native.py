"""One RTSP session with a camera through vmsd's own client (`source = "native"`, issue #16): a
sibling of `source.CameraSource` behind the same interface, so the recorder, segmenter, storage
writer, hub and stall watch are the ones the FFmpeg source uses.

    source = NativeSource(url, ...)  # no I/O
    source.open()                     # connect, PLAY, wait for the first keyframe (SourceError)
    for packet in source.packets():   # av.Packet per access unit / AAC frame, Annex B like FFmpeg's
        ...
    source.close()                    # TEARDOWN

Blocking, like `CameraSource`: it runs on the camera's recorder thread, which drives a private
asyncio loop for the client (one thread and loop per camera: the first version; the shared ingest
loop reading every camera on one `Drain` tick is the plan in docs/design/native-ingest.md).

What the client yields is turned into what the FFmpeg source yields, so that the segmenter's rules
(keyframe rotation, in-band parameter-set changes → new segment, timeline) and the storage
writer (PyAV's fMP4 muxer, hashed as written, the durability protocol) apply unchanged:

- video access units come with 4-byte NAL lengths; they are given to the segmenter in Annex B
  (start codes), as FFmpeg's RTSP demuxer gives them, with the RTP timestamp as pts = dts on a
  1/clock-rate time base;
- the PyAV streams the segmenter and writer take as templates (codec, picture size, parameter
  sets) come from probing the first keyframe with the SDP's parameter sets in front of it (the
  raw H.264/H.265 demuxer; nothing is decoded but that one frame), and for AAC from one ADTS
  frame built from the SDP's AudioSpecificConfig.

The camera's clock (RTCP sender reports → `ClockReading`, clock.py) is handed to `on_clock` as
each report comes; `clock_reading()` is the current status (it turns `unknown` when reports stop).

Stalls: a session that gives no video for `read_timeout_ns` ends with a SourceError (RTCP sender
reports and keep-alive answers do not count as video), which the recorder records as a stall.
"""

from __future__ import annotations

import asyncio
import collections
import io
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av

from vmsd.clock import Clock, SystemClock
from vmsd.ingest.rtsp.auth import AuthError
from vmsd.ingest.rtsp.client import ClientError, ClientEvent, ClockSample, MediaUnit, RtspClient
from vmsd.ingest.rtsp.clock import CameraClock, ClockLimits, ClockReading
from vmsd.ingest.rtsp.sdp import SdpError, aac_config, h264_parameters, h265_parameters
from vmsd.ingest.rtsp.session import SessionError, SessionOptions
from vmsd.ingest.source import SourceError
from vmsd.log import redact_url, scrub
from vmsd.units import NS_PER_S

START_CODE = b"\x00\x00\x00\x01"
_RAW_FORMAT = {"h264": "h264", "h265": "hevc"}
# MPEG-4 audio sampling frequency index (ISO/IEC 14496-3 table 1.18), for the ADTS header.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def annex_b(length_prefixed: bytes) -> bytes:
    """NAL units behind 4-byte lengths → the same units behind start codes (same size)."""
    out = bytearray(length_prefixed)
    position, end = 0, len(out)
    while position + 4 <= end:
        size = int.from_bytes(out[position : position + 4], "big")
        out[position : position + 4] = START_CODE
        position += 4 + size
    return bytes(out)


def adts_frame(audio_specific_config: bytes, frame: bytes) -> bytes:
    """One raw AAC frame with an ADTS header for its AudioSpecificConfig (object type 1–4)."""
    object_type = audio_specific_config[0] >> 3
    rate_index = ((audio_specific_config[0] & 0x07) << 1) | (audio_specific_config[1] >> 7)
    channels = (audio_specific_config[1] >> 3) & 0x0F
    length = 7 + len(frame)
    header = (
        (0xFFF << 44)
        | (1 << 40)  # ID 0 (MPEG-4), layer 0, protection_absent 1: no CRC, a 7-byte header
        | ((object_type - 1) << 38)
        | (rate_index << 34)
        | (channels << 30)
        | (length << 13)
        | (0x7FF << 2)
    )
    return struct.pack(">Q", header)[1:] + frame


def _probe_stream(data: bytes, format_name: str) -> Any:
    """The one stream of a raw elementary stream, as PyAV sees it (codec parameters found)."""
    container = av.open(io.BytesIO(data), format=format_name)
    streams = list(container.streams)
    if not streams:
        raise SourceError(f"no {format_name} stream found in the camera's first frame")
    return streams[0]


class NativeSource:
    """Same interface as `source.CameraSource` (open / packets / interrupt / close, `video`,
    `audio`, `skipped_audio_codec`, `safe_url`), plus the camera clock."""

    def __init__(
        self,
        url: str,
        *,
        transport: str,
        open_timeout_ns: int,
        read_timeout_ns: int,
        clock: Clock | None = None,
        clock_limits: ClockLimits | None = None,
        on_clock: Callable[[ClockReading], None] | None = None,
    ) -> None:
        self._url = url
        self._transport = transport
        self._open_timeout_ns = open_timeout_ns
        self._read_timeout_ns = read_timeout_ns
        self._clock = clock or SystemClock()
        self._clock_limits = clock_limits
        self._on_clock = on_clock
        self._client: RtspClient | None = None
        self.safe_url = redact_url(url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[MediaUnit] = collections.deque()
        self._wake: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None
        self._ended_flag = False
        self._watcher: asyncio.Task[None] | None = None
        self.video: Any = None
        self.audio: Any = None
        self.skipped_audio_codec: str | None = None
        self._video_track = 0
        self._audio_track: int | None = None
        self._time_bases: dict[int, Fraction] = {}
        self._audio_config = b""

    # -- the interface of CameraSource -----------------------------------------------------

    def open(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._open())
        except (SessionError, AuthError, ClientError, SdpError) as error:
            self.close()
            raise SourceError(f"cannot open {self.safe_url}: {scrub(str(error))}") from None
        except SourceError:
            self.close()
            raise
        except (av.FFmpegError, OSError, TimeoutError) as error:
            self.close()
            raise SourceError(f"cannot open {self.safe_url}: {scrub(str(error)) or type(error).__name__}") from None

    def packets(self) -> Iterator[Any]:
        """Packets of the recorded tracks until the camera ends or fails (SourceError)."""
        loop = self._loop
        assert loop is not None and self._client is not None, "open() first"
        pending = self._pending
        while True:
            while pending:
                packet = self._packet(pending.popleft())
                if packet is not None:
                    yield packet
            if self._ended_flag:
                break
            if not self._wait_on(loop, self._read_timeout_ns):
                silent_s = self._read_timeout_ns / NS_PER_S
                raise SourceError(f"reading {self.safe_url} failed: no video for {silent_s:.1f}s") from None
        if self._ended is not None:
            raise SourceError(f"reading {self.safe_url} failed: {scrub(str(self._ended))}") from None

    def interrupt(self) -> bool:
        """Make a blocked read give up now (safe from another thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._end, ClientError("interrupted: no video (stall)"))
        except RuntimeError:
            return False  # the loop closed meanwhile
        return True

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            if self._client is not None:
                loop.run_until_complete(self._client.aclose())
            if self._watcher is not None and not self._watcher.done():
                self._watcher.cancel()
                loop.run_until_complete(asyncio.gather(self._watcher, return_exceptions=True))
        finally:
            self._client = None
            loop.close()

    def clock_reading(self) -> ClockReading:
        """The camera clock now (ok / offset / stepped / unknown)."""
        client = self._client
        if client is None:
            return CameraClock(self._clock_limits).reading(self._clock.wall_ns())
        return client.clock_reading()

    def _wait_on(self, loop: asyncio.AbstractEventLoop, timeout_ns: int) -> bool:
        """Run the loop until media is pending or the session ended (True), or for timeout_ns
        (False). A bare future and a timer rather than a coroutine: `run_until_complete` of a
        coroutine makes a Task per call, and this runs once per read the camera's data took."""
        wake = self._wake = loop.create_future()
        timer = loop.call_later(timeout_ns / NS_PER_S, self._wake_up)
        try:
            loop.run_until_complete(wake)
        finally:
            timer.cancel()
            self._wake = None
        return bool(self._pending) or self._ended_flag

    # -- on the private loop ---------------------------------------------------------------

    async def _open(self) -> None:
        client = RtspClient(
            self._url,
            SessionOptions(transport=self._transport),
            clock=self._clock,
            clock_limits=self._clock_limits,
            open_timeout_ns=self._open_timeout_ns,
            on_event=self._on_event,
        )
        self._client = client
        began_ns = self._clock.mono_ns()
        await client.start()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(client))
        tracks = client.session.tracks
        videos = [i for i, t in enumerate(tracks) if t.codec in _RAW_FORMAT]
        if not videos:
            raise SourceError(f"{self.safe_url} has no H.264/H.265 video stream (streams: {[t.codec for t in tracks]})")
        self._video_track = videos[0]
        video = tracks[self._video_track]
        self._time_bases[self._video_track] = Fraction(1, video.media.clock_rate or 90000)
        # Wait for the first keyframe (the stream starts there), bounded by the open timeout.
        while True:
            keyframe = next((u for u in self._pending if u.track == self._video_track and u.keyframe), None)
            if keyframe is not None:
                break
            if self._ended_flag:
                raise SourceError(f"{self.safe_url} ended before its first keyframe: {self._ended}")
            left_ns = self._open_timeout_ns - (self._clock.mono_ns() - began_ns)
            if left_ns <= 0:
                raise SourceError(f"{self.safe_url} sent no keyframe within {self._open_timeout_ns / NS_PER_S:g} s")
            await self._next(left_ns)
        if video.codec == "h264":
            sdp_sets = h264_parameters(video.media).parameter_sets
        else:
            sdp_sets = h265_parameters(video.media).parameter_sets
        head = b"".join(START_CODE + nal for nal in sdp_sets)
        self.video = _probe_stream(head + annex_b(keyframe.data), _RAW_FORMAT[video.codec])
        if not (self.video.codec_context.width and self.video.codec_context.height):
            raise SourceError(f"{self.safe_url}: the picture size of the first keyframe could not be read")
        audios = [i for i, t in enumerate(tracks) if t.media.kind == "audio"]
        if audios and tracks[audios[0]].codec == "aac":
            index = audios[0]
            config = aac_config(tracks[index].media)
            frame = next((u for u in self._pending if u.track == index), None)
            if config.object_type in (1, 2, 3, 4) and config.sample_rate in _AAC_RATES:
                self._audio_config = config.audio_specific_config
                probe = adts_frame(config.audio_specific_config, frame.data if frame else bytes(8))
                self.audio = _probe_stream(probe, "aac")
                # The MP4 sample entry's decoder config: the camera's own, as FFmpeg's RTSP
                # demuxer takes it from the SDP.
                self.audio.codec_context.extradata = config.audio_specific_config
                self._audio_track = index
                self._time_bases[index] = Fraction(1, config.sample_rate)
            else:
                self.skipped_audio_codec = f"aac (object type {config.object_type})"
        elif audios:
            self.skipped_audio_codec = tracks[audios[0]].media.encoding.lower()

    async def _watch(self, client: RtspClient) -> None:
        """The client's events() ends or raises with the session (events go to _on_event)."""
        try:
            async for _ in client.events():
                pass
        except Exception as error:  # what ended the session, reported by packets()
            self._end(error)
        else:
            self._end(None)

    def _end(self, error: BaseException | None) -> None:
        if not self._ended_flag:
            self._ended_flag = True
            self._ended = error
        self._wake_up()

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, MediaUnit):
            if event.track == self._video_track or event.track == self._audio_track or self.video is None:
                self._pending.append(event)
                self._wake_up()
        elif isinstance(event, ClockSample) and self._on_clock is not None:
            self._on_clock(event.reading)

    def _wake_up(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _next(self, timeout_ns: int) -> None:
        """Wait until media is pending or the session ended; TimeoutError after timeout_ns."""
        if self._pending or self._ended_flag:
            return
        self._wake = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout_ns / NS_PER_S):
                await self._wake
        finally:
            self._wake = None

    # -- MediaUnit → packet ----------------------------------------------------------------

    def _packet(self, unit: MediaUnit) -> Any:
        if unit.track == self._video_track:
            packet = av.Packet(annex_b(unit.data))
            packet.stream = self.video
            packet.is_keyframe = unit.keyframe
        elif unit.track == self._audio_track and self.audio is not None:
            packet = av.Packet(unit.data)
            packet.stream = self.audio
        else:
            return None
        packet.time_base = self._time_bases[unit.track]
        packet.pts = packet.dts = unit.rtp_timestamp
        return packet
