"""One RTSP session with a camera through vmsd's own client (`source = "native"`, issue #16): a
sibling of `source.CameraSource` behind the same interface, so the recorder, segmenter, storage
writer, hub and stall watch are the ones the FFmpeg source uses.

    source = NativeSource(url, ...)  # no I/O
    source.open()                     # connect, PLAY, wait for the first keyframe (SourceError)
    for packet in source.packets():   # a NativePacket per access unit / AAC frame (bytes(): Annex B)
        ...
    source.close()                    # TEARDOWN

Blocking, like `CameraSource`: it runs on the camera's recorder thread. The RTSP client itself
runs on the process's ingest loop (rtsp/loop.py: one thread reading every native camera's socket
on one drain tick, 20 ms while a camera opens or is watched live, else 100 ms); its units are
queued there and taken by the recorder thread, which the loop wakes at most once per tick, and
while nobody watches the camera live (`urgent()`) only when a video keyframe came or `batch_ns`
(1 s) after the last wake-up. The recorder thread does all the slow work (segment files, fsync,
SQLite, the camera clock's catalogue rows); the ingest loop never waits on a disk.

What the client yields is turned into what the FFmpeg source yields, so that the segmenter's rules
(keyframe rotation, in-band parameter-set changes → new segment, timeline) and the storage
writer's durability protocol (hashed as written, recovery, fsck) apply unchanged:

- video access units come with 4-byte NAL lengths, as MP4 samples; they are given to the
  segmenter as they are, with the RTP timestamp as pts = dts on a 1/clock-rate time base, as
  `NativePacket`s (av.Packet's fields, no PyAV packet, `sample` the unit as received): the
  segmenter reads their NAL headers and parameter sets from the lengths, the segment files are
  written by storage/fragments.py from them, one write per GOP, instead of PyAV's muxer, and
  `bytes(packet)` gives the unit in Annex B (start codes), as FFmpeg's RTSP demuxer gives it,
  for the live relay;
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
import contextlib
import io
import struct
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av

from vmsd.clock import Clock, SystemClock
from vmsd.ingest.rtsp.auth import AuthError
from vmsd.ingest.rtsp.client import ClientError, ClientEvent, ClockSample, MediaUnit, RtspClient
from vmsd.ingest.rtsp.clock import CameraClock, ClockLimits, ClockReading
from vmsd.ingest.rtsp.loop import IngestLoop
from vmsd.ingest.rtsp.sdp import SdpError, aac_config, h264_parameters, h265_parameters
from vmsd.ingest.rtsp.session import SessionError, SessionOptions
from vmsd.ingest.source import SourceError
from vmsd.log import redact_url, scrub
from vmsd.units import NS_PER_MS, NS_PER_S, ns_to_ticks

START_CODE = b"\x00\x00\x00\x01"
_RAW_FORMAT = {"h264": "h264", "h265": "hevc"}
# While nobody watches a camera live, its recorder thread takes the units when a video keyframe
# came (the GOP before it is then a fragment to write: what a kill -9 may lose stays that GOP) and
# otherwise at most this often: a wake-up costs ~25-60 µs of CPU, and recording needs nothing
# sooner. At 64 cameras, 1 s instead of 100 ms took the recorder threads from 0.114 to 0.098
# cores (2026-12-04).
DEFAULT_BATCH_NS = 1000 * NS_PER_MS
# An audio-to-video offset that moves by more than this is taken again (timestamps that jumped).
AUDIO_RESYNC_NS = NS_PER_S
# Units waiting for a recorder thread that does not take them (a disk that hangs): past this the
# session ends with an error (a gap with its reason, then a reconnect) rather than memory growing.
MAX_PENDING_BYTES = 64 * 1024 * 1024
# And what may wait for all of the loop's cameras together, shared out evenly: a disk that hangs
# holds every camera up at once (1 GiB: 5 MiB, ~10 s of a 4 Mbit/s camera, each at 192 cameras;
# 16 MiB at 64). The stall watch no longer cuts a session whose recorder thread is held up while
# its camera still sends (recorder.py), so this is what bounds the memory.
PENDING_BUDGET_BYTES = 1024 * 1024 * 1024
# MPEG-4 audio sampling frequency index (ISO/IEC 14496-3 table 1.18), for the ADTS header.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def _annex_b(length_prefixed: bytes | bytearray) -> bytearray:
    out = bytearray(length_prefixed)
    position, end = 0, len(out)
    while position + 4 <= end:
        size = int.from_bytes(out[position : position + 4], "big")
        out[position : position + 4] = START_CODE
        position += 4 + size
    return out


def annex_b(length_prefixed: bytes | bytearray) -> bytes:
    """NAL units behind 4-byte lengths → the same units behind start codes (same size)."""
    return bytes(_annex_b(length_prefixed))


class NativePacket:
    """What the segmenter reads of an `av.Packet` (`pts`, `dts`, `time_base`, `stream`,
    `is_keyframe`, `size`, and its bytes through `bytes()`), without PyAV's packet allocation
    and copy per unit; and `sample`, the unit as the client gave it, an MP4 sample (4-byte NAL
    lengths; an AAC frame as it is), which the segmenter inspects and the fragment writer
    (storage/fragments.py) writes without converting it. `bytes(packet)` is the unit as FFmpeg's
    RTSP source gives it (video in Annex B): made only when asked for (the live relay, a probe
    of new parameter sets), not once per unit."""

    __slots__ = ("arrival_mono_ns", "dts", "is_keyframe", "length_prefixed", "pts", "sample", "stream", "time_base")

    def __init__(
        self,
        sample: bytes | bytearray,
        stream: Any,
        is_keyframe: bool,
        time_base: Fraction,
        pts: int,
        length_prefixed: bool,
        arrival_mono_ns: int,
    ) -> None:
        self.sample = sample
        # When the unit reached vmsd (the ingest loop's read), not when the recorder thread took
        # it: up to a batch (1 s) later, or more on a busy machine (segmenter, timeline.py).
        self.arrival_mono_ns = arrival_mono_ns
        self.stream = stream
        self.is_keyframe = is_keyframe
        self.time_base = time_base
        self.pts = self.dts = pts
        self.length_prefixed = length_prefixed

    @property
    def size(self) -> int:
        return len(self.sample)

    def __bytes__(self) -> bytes:
        return annex_b(self.sample) if self.length_prefixed else bytes(self.sample)


def adts_frame(audio_specific_config: bytes, frame: bytes | bytearray) -> bytes:
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
    file = io.BytesIO(data)
    container = av.open(file, "r", format=format_name)
    streams = list(container.streams)
    if not streams:
        raise SourceError(f"no {format_name} stream found in the camera's first frame")
    # The container lives as long as the session (its stream is the segments' template); what
    # it read while probing is not needed: the packets it buffered and the bytes it read from.
    with contextlib.suppress(av.FFmpegError):
        for _ in container.demux():
            pass
    file.seek(0)
    file.truncate(0)
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
        urgent: Callable[[], bool] | None = None,
        batch_ns: int | None = None,
        ingest: IngestLoop | None = None,
    ) -> None:
        """`on_clock` is called on the caller's thread (the one iterating `packets()`).
        `urgent()` (read on the ingest loop, lock-free): the units are wanted at once (a live
        viewer), so the recorder thread is woken on every drain tick that brought some rather
        than every `batch_ns`."""
        self._url = url
        self._transport = transport
        self._open_timeout_ns = open_timeout_ns
        self._read_timeout_ns = read_timeout_ns
        self._clock = clock or SystemClock()
        self._clock_limits = clock_limits
        self._on_clock = on_clock
        self._urgent = urgent
        self._batch_ns = DEFAULT_BATCH_NS if batch_ns is None else batch_ns
        self._ingest = ingest
        self._client: RtspClient | None = None
        self.safe_url = redact_url(url)
        # Filled on the ingest loop, emptied by packets() on the recorder thread (deque appends
        # and pops are atomic); _ready wakes that thread, at most once per drain tick.
        self._pending: collections.deque[MediaUnit | ClockSample] = collections.deque()
        self._ready = threading.Event()
        self._dirty = False
        self._keyframe_waiting = False  # a video keyframe is among the units not yet taken
        self._last_wake_mono_ns = 0
        self.wake_ups = 0  # of the recorder thread by the ingest loop (what batching saves)
        # Bytes of units queued (written by the ingest loop only) and taken (by the recorder
        # thread only): what waits is their difference, without a lock.
        self._queued_bytes = 0
        self._taken_bytes = 0
        self._wake: asyncio.Future[None] | None = None  # while opening, on the ingest loop
        # When video last reached vmsd (the ingest loop's read), for the stall watch: it is not
        # the camera's fault when the recorder thread has not taken it yet.
        self.last_video_mono_ns = 0
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
        self._audio_offset_ns: int | None = None  # audio media time → video media time (ns)
        self._audio_offset: int | None = None  # the same in audio ticks
        self._audio_offset_reported = False  # from sender reports (else from arrival)

    # -- the interface of CameraSource -----------------------------------------------------

    def open(self) -> None:
        ingest = self._ingest = self._ingest or IngestLoop.shared()
        # The opening is bounded on the loop (connect, PLAY, first keyframe); the margin only
        # guards against a loop that does not answer at all.
        timeout_s = 2 * self._open_timeout_ns / NS_PER_S + 5
        try:
            ingest.run(self._open(), timeout_s)
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
        """Packets of the recorded tracks until the camera ends or fails (SourceError). Camera
        clock readings are passed to `on_clock` in between, on this thread."""
        assert self._client is not None, "open() first"
        pending, ready = self._pending, self._ready
        while True:
            ready.clear()
            while pending:
                item = pending.popleft()
                if isinstance(item, ClockSample):
                    if self._on_clock is not None:
                        self._on_clock(item.reading)
                    continue
                self._taken_bytes += len(item.data)
                packet = self._packet(item)
                if packet is not None:
                    yield packet
            if self._ended_flag:
                break
            if not ready.wait(self._read_timeout_ns / NS_PER_S) and not pending and not self._ended_flag:
                silent_s = self._read_timeout_ns / NS_PER_S
                raise SourceError(f"reading {self.safe_url} failed: no video for {silent_s:.1f}s") from None
        if self._ended is not None:
            raise SourceError(f"reading {self.safe_url} failed: {scrub(str(self._ended))}") from None

    def interrupt(self) -> bool:
        """Make a blocked read give up now (safe from another thread)."""
        ingest = self._ingest
        if ingest is None or self._client is None:
            return False
        try:
            ingest.call_soon(self._end, ClientError("interrupted: no video (stall)"))
        except RuntimeError:
            return False  # the loop closed meanwhile
        return True

    def finish(self) -> bool:
        """Ask packets() to end after what has already arrived (safe from another thread): the
        session takes no more media, the recorder thread is woken at once, and the units queued
        for it (while nobody watches live, up to a batch: 1 s of footage) are still yielded, so a
        clean stop does not drop them. False when there is no session."""
        ingest = self._ingest
        if ingest is None or self._client is None:
            return False
        try:
            ingest.call_soon(self._end, None)
        except RuntimeError:
            return False  # the loop closed meanwhile
        return True

    def close(self) -> None:
        ingest = self._ingest
        if ingest is None:
            return
        try:
            ingest.run(self._aclose(), 10)
        except TimeoutError:
            pass  # the connection is left to the loop; nothing of it reaches this camera any more
        finally:
            self._client = None

    def clock_reading(self) -> ClockReading:
        """The camera clock now (ok / offset / stepped / unknown)."""
        client = self._client
        if client is None:
            return CameraClock(self._clock_limits).reading(self._clock.wall_ns())
        return client.clock_reading()

    # -- on the ingest loop ----------------------------------------------------------------

    async def _aclose(self) -> None:
        assert self._ingest is not None
        self._ingest.off_tick(self._tick)
        if self._client is not None:
            await self._client.aclose()
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)

    async def _open(self) -> None:
        assert self._ingest is not None
        client = RtspClient(
            self._url,
            SessionOptions(transport=self._transport),
            clock=self._clock,
            clock_limits=self._clock_limits,
            open_timeout_ns=self._open_timeout_ns,
            on_event=self._on_event,
            drain=self._ingest.drain,
        )
        self._client = client
        began_ns = self._clock.mono_ns()
        self._ingest.on_tick(self._tick)
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
            keyframe = next((u for u in self._units() if u.track == self._video_track and u.keyframe), None)
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
            frame = next((u for u in self._units() if u.track == index), None)
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

    def _units(self) -> list[MediaUnit]:
        return [u for u in self._pending if isinstance(u, MediaUnit)]

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
        self._ready.set()

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, MediaUnit):
            if self._ended_flag:
                return  # nobody will take it
            if event.track == self._video_track or event.track == self._audio_track or self.video is None:
                self._pending.append(event)
                self._queued_bytes += len(event.data)
                self._dirty = True
                self._wake_up()
                if event.track == self._video_track:
                    self.last_video_mono_ns = event.arrival_mono_ns
                    self._keyframe_waiting |= event.keyframe
                waiting = self._queued_bytes - self._taken_bytes
                if waiting > self._pending_limit() and not self._ended_flag:
                    message = f"the recorder is not keeping up: {waiting >> 20} MiB of video waiting"
                    self._end(ClientError(message))
        elif isinstance(event, ClockSample):
            self._pending.append(event)
            self._dirty = True

    def _tick(self) -> bool:
        """After each drain tick: wake the recorder thread if this tick brought units and they
        are wanted now (a live viewer), a video keyframe is among them (a fragment to write), or
        the last wake-up is `batch_ns` old. True while they are wanted now, and while opening:
        the drain then ticks at its short period, so the first keyframe, whose arrival anchors
        the footage's wall times (timeline.py), is read as soon after it came as before the idle
        tick existed."""
        urgent = self._urgent is not None and self._urgent()
        hurry = urgent or self.video is None
        if not self._dirty:
            return hurry
        now_ns = self._clock.mono_ns()
        if urgent or self._keyframe_waiting or now_ns - self._last_wake_mono_ns >= self._batch_ns:
            self._dirty = self._keyframe_waiting = False
            self._last_wake_mono_ns = now_ns
            self.wake_ups += 1
            self._ready.set()
        return hurry

    def _pending_limit(self) -> int:
        sessions = self._ingest.sessions if self._ingest is not None else 1
        return min(MAX_PENDING_BYTES, PENDING_BUDGET_BYTES // max(1, sessions))

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

    def _packet(self, unit: MediaUnit) -> NativePacket | None:
        track = unit.track
        if track == self._video_track:
            stream, keyframe, pts, length_prefixed = self.video, unit.keyframe, unit.rtp_timestamp, True
        elif track == self._audio_track and self.audio is not None:
            offset = self._audio_offset_ticks(track)
            if offset is None:
                return None  # nothing yet to place it against
            stream, keyframe, pts, length_prefixed = self.audio, True, unit.rtp_timestamp + offset, False
        else:
            return None
        time_base = self._time_bases[track]
        return NativePacket(unit.data, stream, keyframe, time_base, pts, length_prefixed, unit.arrival_mono_ns)

    def _audio_offset_ticks(self, track: int) -> int | None:
        """What to add to the audio's RTP timestamps to put them on the video's media time (the
        segmenter times every track on the video's timeline; each track's RTP timestamps start
        at a random value, so without this every audio frame was dropped as too far from the
        video). Kept for the session once known, so that arrival jitter does not move audio
        times; taken again once when sender reports make it exact (RFC 3550 inter-media sync,
        `RtspClient.media_offset_ns`), and when it moves by more than AUDIO_RESYNC_NS (a camera
        whose timestamps jumped)."""
        client = self._client
        found = client.media_offset_ns(track, self._video_track) if client is not None else None
        if found is not None:
            now_ns, reported = found
            fixed_ns = self._audio_offset_ns
            if (
                fixed_ns is None
                or (reported and not self._audio_offset_reported)
                or abs(now_ns - fixed_ns) > AUDIO_RESYNC_NS
            ):
                self._audio_offset_ns, self._audio_offset_reported = now_ns, reported
                self._audio_offset = ns_to_ticks(now_ns, self._time_bases[track])
        return self._audio_offset
