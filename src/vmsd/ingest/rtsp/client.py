"""One camera's RTSP session over TCP (RTP interleaved) on an asyncio loop: the I/O around the
sans-I/O modules of this package.

    client = RtspClient(url)            # no I/O
    await client.start()                # connect, OPTIONS … PLAY (SessionError / AuthError / ClientError)
    async for event in client.events(): # MediaUnit (video access units, AAC frames) and ClockSample
        ...
    await client.aclose()               # TEARDOWN (best effort), close

Reads are bulk and copy-free into the reader's buffer: an ``asyncio.BufferedProtocol`` hands the
loop ``InterleavedReader.writable()`` and parses what arrived in place, so a read brings as much
as the socket holds. A 1 s timer per session drives keep-alives (session.py), the request
deadlines while opening, and an RTCP receiver report per track every ``RECEIVER_REPORT_NS`` (some
servers count those as liveness too).

Per track: RTP header → sequence tracking (losses, restarts) → timestamp unwrap → depacketiser.
Arrival-time bookkeeping (the media-to-wall map, the receiver report's jitter) is done once per
read with the newest packet of the read: over TCP every packet of a read arrived at the same
moment as far as the client can tell, and it halves the per-packet cost.
Sender reports are taken only for the video track's SSRC (held until its first packet if they
come first) and turned into camera-clock readings (clock.py), with the recorder's wall time of
the report's RTP timestamp taken from the packets' arrival (MediaWallMap).

With ``SessionOptions(transport="udp")`` RTP and RTCP come over UDP instead (udp.py): one port
pair per track, bound before SETUP, packets put back in order by a ``ReorderWindow`` (held ones
are let go when a timer tick passes with no datagram), receiver reports sent to the camera's
RTCP port.

Recording: ``ingest/native.py`` (``[[cameras]] source = "native"``) runs every camera's client
on the process's ingest loop (loop.py), read on its one drain tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from vmsd.clock import Clock, SystemClock
from vmsd.ingest.rtsp.aac import AacDepacketizer, AacFrame, AacParameters
from vmsd.ingest.rtsp.access_unit import MAX_ACCESS_UNIT_BYTES, AccessUnit, VideoDepacketizer
from vmsd.ingest.rtsp.auth import AuthError
from vmsd.ingest.rtsp.clock import CameraClock, ClockLimits, ClockReading, MediaWallMap
from vmsd.ingest.rtsp.drain import Drain
from vmsd.ingest.rtsp.h264 import FU_A, H264Depacketizer
from vmsd.ingest.rtsp.h265 import H265Depacketizer
from vmsd.ingest.rtsp.interleaved import DEFAULT_BUFFER_BYTES, DOLLAR, InterleavedReader
from vmsd.ingest.rtsp.messages import Request, Response
from vmsd.ingest.rtsp.rtcp import (
    Goodbye,
    ReceptionReport,
    SenderReport,
    SenderReportFilter,
    build_receiver_report,
    parse_rtcp,
)
from vmsd.ingest.rtsp.rtp import (
    DROP,
    SEQ_MOD,
    ReorderWindow,
    RtpError,
    RtpPacket,
    SequenceTracker,
    TimestampUnwrapper,
    parse_rtp,
)
from vmsd.ingest.rtsp.sdp import aac_config, h264_parameters, h265_parameters
from vmsd.ingest.rtsp.session import RtspSession, SessionError, SessionOptions, State, Track
from vmsd.ingest.rtsp.udp import PortPair
from vmsd.units import NS_PER_S

TIMER_NS = NS_PER_S
RECEIVER_REPORT_NS = 5 * NS_PER_S
# After an RTCP BYE on the video track, video must resume within this (a camera that changed
# SSRC, e.g. a restarted encoder) or the session is over: ended now, not after the stall timeout.
GOODBYE_GRACE_NS = NS_PER_S // 2
# Sender reports that put two tracks further apart than this from their arrival are not used to
# synchronise them (media_offset_ns).
REPORT_SYNC_LIMIT_NS = NS_PER_S
MAX_QUEUED_EVENTS = 2000  # ~1 min of video at 25 fps with audio; then the oldest are not kept
_INTERLEAVED = struct.Struct(">cBH")
_RTP_HEADER = struct.Struct(">BBHII")
# An interleaved frame's header, the RTP header and the two FU-A bytes, read in one call.
_RUN_HEADER = struct.Struct(">BBHBBHIIBB")


class ClientError(Exception):
    """The connection failed or ended; the message is safe to log (no URL credentials)."""


@dataclass(frozen=True, slots=True)
class MediaUnit:
    track: int  # index into ``session.tracks``
    codec: str  # "h264", "h265", "aac"
    rtp_timestamp: int  # unwrapped
    media_ns: int  # rtp_timestamp in ns of the track's clock
    # The recorder's monotonic clock at the read that completed it: when the unit reached vmsd,
    # however long it then waits for the recorder thread (the footage's anchor, timeline.py).
    arrival_mono_ns: int
    data: bytes | bytearray  # video: NAL units behind 4-byte lengths; AAC: one raw frame (never changed)
    keyframe: bool
    parameter_sets_changed: bool = False


@dataclass(frozen=True, slots=True)
class ClockSample:
    reading: ClockReading
    sender_report: SenderReport


ClientEvent = MediaUnit | ClockSample


@dataclass
class ClientCounters:
    bytes: int = 0
    reads: int = 0
    rtp_packets: int = 0
    rtcp_packets: int = 0
    bad_rtp: int = 0
    bad_rtcp: int = 0
    lost_packets: int = 0
    sequence_restarts: int = 0
    events_dropped: int = 0
    receiver_reports: int = 0
    # RTCP BYEs on a track's RTCP channel, whatever SSRC they name (VLC's name SSRC 0, not its
    # stream's). On the video track, no video within GOODBYE_GRACE_NS after one ends the session.
    goodbyes: int = 0


class _TrackState:
    def __init__(self, index: int, track: Track, client: RtspClient) -> None:
        self.index = index
        self.track = track
        self.codec = track.codec
        self.clock_rate = track.media.clock_rate or (90000 if track.codec != "aac" else 0)
        self.sequence = SequenceTracker()
        self.unwrap = TimestampUnwrapper()
        self.reports = SenderReportFilter(track.ssrc)
        self.reception = ReceptionReport(max(self.clock_rate, 1))
        self.wall = MediaWallMap(max(self.clock_rate, 1))
        # Media time − camera NTP time of the latest sender report (ns), for inter-track sync.
        self.report_offset_ns: int | None = None
        self.ssrc: int | None = None
        self.arrival_ns = 0  # wall time of the current read (the camera clock's map)
        self.arrival_mono_ns = 0  # and the monotonic time (the units')
        # The newest RTP timestamp of the current read (unwrapped, and as sent), or None: the
        # arrival-time bookkeeping is done once per read, not per packet.
        self.read_ts: int | None = None
        self.read_ts32 = 0
        self.reorder: ReorderWindow[RtpPacket] = ReorderWindow()  # UDP only
        self.datagrams = 0  # since the last timer tick (UDP)
        self._client = client
        self.depay: VideoDepacketizer | AacDepacketizer
        if track.codec == "h264":
            self.depay = H264Depacketizer(self._video, h264_parameters(track.media).parameter_sets)
        elif track.codec == "h265":
            p = h265_parameters(track.media)
            self.depay = H265Depacketizer(self._video, p.parameter_sets, donl=p.donl)
        else:
            c = aac_config(track.media)
            self.clock_rate = self.clock_rate or c.sample_rate
            params = AacParameters(c.sizelength, c.indexlength, c.indexdeltalength, c.frame_samples)
            self.depay = AacDepacketizer(self._audio, params)
        # A packet with none lost before it (the fast path of RtspClient._on_frame).
        self.push_next: Callable[[memoryview, int, bool], None] = (
            self.depay.push_next if isinstance(self.depay, H264Depacketizer) else self.depay.push
        )

    def _media_ns(self, ts: int) -> int:
        return ts * NS_PER_S // max(self.clock_rate, 1)

    def _video(self, u: AccessUnit) -> None:
        self._client._emit(
            MediaUnit(
                self.index,
                self.codec,
                u.timestamp,
                self._media_ns(u.timestamp),
                self.arrival_mono_ns,
                u.data,
                u.keyframe,
                u.parameter_sets_changed,
            )
        )

    def _audio(self, f: AacFrame) -> None:
        self._client._emit(
            MediaUnit(self.index, "aac", f.timestamp, self._media_ns(f.timestamp), self.arrival_mono_ns, f.data, True)
        )


class _Protocol(asyncio.BufferedProtocol):
    def __init__(self, client: RtspClient) -> None:
        self.client = client

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.client._reader.writable()

    def buffer_updated(self, nbytes: int) -> None:
        self.client._on_bytes(nbytes)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._on_lost(exc)


class RtspClient:
    def __init__(
        self,
        url: str,
        options: SessionOptions | None = None,
        *,
        clock: Clock | None = None,
        clock_limits: ClockLimits | None = None,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        open_timeout_ns: int = 15 * NS_PER_S,
        on_event: Callable[[ClientEvent], None] | None = None,
        drain: Drain | None = None,
    ) -> None:
        """``on_event``: called with each event on the loop, as it is parsed, instead of queueing
        it for ``events()`` (which then yields nothing, but still ends or raises with the
        session): what an ingest loop wants, without a task wake-up per event.
        ``drain``: once playing, the connection is read on the drain's tick (drain.py) instead of
        whenever bytes arrive (TCP only)."""
        self.session = RtspSession(url, options)
        self.safe_url = self.session.safe_url
        self.clock: Clock = clock or SystemClock()
        self.camera_clock = CameraClock(clock_limits)
        self.counters = ClientCounters()
        self.open_timeout_ns = open_timeout_ns
        self._reader = InterleavedReader(buffer_bytes)
        self._tracks: dict[int, _TrackState] = {}  # by RTP channel (TCP) or track index (UDP)
        self._rtcp: dict[int, _TrackState] = {}  # by RTCP channel (TCP)
        self._pairs: list[PortPair] = []  # UDP: one per track the session may set up
        self._transport: asyncio.Transport | None = None
        # Events, then what ended them: an exception, or None after aclose().
        self._queue: asyncio.Queue[ClientEvent | BaseException | None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None
        self._closing = False
        self._next_report_ns = 0
        # After an RTCP BYE on the video track: its sequence tracker and packet count then (a
        # packet since, or a new tracker for a new SSRC, means video went on).
        self._goodbye_mark: tuple[SequenceTracker, int] | None = None
        self._goodbye_timer: asyncio.TimerHandle | None = None
        self._reporter_ssrc = int.from_bytes(os.urandom(4), "big")
        self._on_event = on_event
        self._drain = drain if self.session.options.transport == "tcp" else None
        self._drain_socket: socket.socket | None = None
        # The H.264 video track over TCP, whose ordinary packets take _take_run.
        self._fast: _TrackState | None = None

    # -- public --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and play; raises SessionError, AuthError or ClientError."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._started = loop.create_future()
        self._closed = loop.create_future()
        parts = urlsplit(self.session.url)
        host, port = parts.hostname or "", parts.port or 554
        timeout_s = self.open_timeout_ns / NS_PER_S
        try:
            async with asyncio.timeout(timeout_s):
                transport, _ = await loop.create_connection(lambda: _Protocol(self), host, port)
                self._transport = transport
                if self.session.options.transport == "udp":
                    await self._open_udp(transport)
                self._schedule_timer(loop)
                self._send(self.session.start(self.clock.mono_ns()))
                await self._started
                if self._drain is not None:
                    self._hand_to_drain(transport)
        except TimeoutError:
            await self.aclose()
            raise ClientError(f"{self.safe_url}: not playing after {timeout_s:g} s") from None
        except OSError as error:
            await self.aclose()
            raise ClientError(f"cannot connect to {self.safe_url}: {error.strerror or error}") from None
        except BaseException:
            await self.aclose()
            raise

    def _hand_to_drain(self, transport: asyncio.Transport) -> None:
        """From now on the drain's tick reads the connection (a duplicate of its socket, so the
        transport keeps its own for writing and closing)."""
        assert self._drain is not None
        transport.pause_reading()
        raw = transport.get_extra_info("socket")
        self._drain_socket = socket.socket(fileno=os.dup(raw.fileno()))
        self._drain_socket.setblocking(False)
        self._drain.add(self._drain_socket.fileno(), self._drain_read)

    def _drain_read(self) -> None:
        sock = self._drain_socket
        while sock is not None and self._error is None:
            view = self._reader.writable()
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                return
            except OSError as error:
                self._on_lost(error)
                return
            if n == 0:
                self._on_lost(None)
                return
            self._on_bytes(n)
            if n < len(view):
                return

    def _release_drain(self) -> None:
        sock, self._drain_socket = self._drain_socket, None
        if sock is not None:
            if self._drain is not None:
                self._drain.remove(sock.fileno())
            sock.close()

    async def _open_udp(self, transport: asyncio.Transport) -> None:
        camera = transport.get_extra_info("peername")[0]
        local = transport.get_extra_info("sockname")[0]
        ports = []
        for index in range(2):  # a video and an audio track at most (session.py)
            pair = PortPair(camera, functools.partial(self._on_datagram, index))
            self._pairs.append(pair)
            ports.append(await pair.open(local))
        self.session.options.udp_client_ports = ports

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Media units and clock samples in arrival order; raises what ended the session, ends
        after ``aclose()``."""
        assert self._queue is not None, "start() first"
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def clock_reading(self) -> ClockReading:
        return self.camera_clock.reading(self.clock.wall_ns())

    def media_offset_ns(self, index: int, reference: int) -> tuple[int, bool] | None:
        """What to add to track ``index``'s media time (its RTP timestamps in ns) to put it on
        track ``reference``'s, and whether it comes from sender reports. Each track's RTP
        timestamps start at a random value (RFC 3550), so an audio track's say nothing of the
        video's. Once both tracks have had a sender report, from those (RFC 3550 §6.4.1: the
        camera stamps both on one NTP clock); before, from when their packets arrived (the
        least-delayed of each, ``MediaWallMap``: tens of ms off, as the camera sends audio and
        video with different delays). Reports more than ``REPORT_SYNC_LIMIT_NS`` from the
        arrival estimate are not trusted (a camera whose tracks' NTP clocks disagree). None
        until both tracks have had packets. (Safe from another thread: reads of ints.)"""
        tracks = {t.index: t for t in list(self._tracks.values())}
        track, other = tracks.get(index), tracks.get(reference)
        if track is None or other is None:
            return None
        track_ns, other_ns = track.wall.offset_ns, other.wall.offset_ns
        if track_ns is None or other_ns is None:
            return None
        arrival_ns = track_ns - other_ns
        track_report, other_report = track.report_offset_ns, other.report_offset_ns
        if track_report is not None and other_report is not None:
            reported_ns = other_report - track_report
            if abs(reported_ns - arrival_ns) <= REPORT_SYNC_LIMIT_NS:
                return reported_ns, True
        return arrival_ns, False

    async def aclose(self) -> None:
        """TEARDOWN when a session exists (not waited for), then close the connection."""
        for timer in (self._timer, self._goodbye_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._goodbye_timer = None
        for pair in self._pairs:
            pair.close()
        self._release_drain()
        transport, self._transport = self._transport, None
        if not self._closing and self._queue is not None:
            self._queue.put_nowait(None)
        self._closing = True
        if transport is None:
            return
        if not transport.is_closing():
            teardown = self.session.teardown(self.clock.mono_ns())
            if teardown is not None:
                transport.write(teardown)
            transport.close()
        if self._closed is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await asyncio.shield(self._closed)

    # -- I/O callbacks --------------------------------------------------------------------

    def _send(self, data: bytes | None) -> None:
        if data is not None and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _on_bytes(self, n: int) -> None:
        c = self.counters
        c.reads += 1
        c.bytes += n
        self._reader.commit(n)
        now = self.clock.wall_ns()
        now_mono = self.clock.mono_ns()
        for t in self._tracks.values():
            t.arrival_ns = now
            t.arrival_mono_ns = now_mono
        try:
            self._reader.process(self._on_frame, self._on_message, self._take_run)
        except (SessionError, AuthError) as error:
            self._fail(error)
        for t in self._tracks.values():
            self._after_read(t, now)

    @staticmethod
    def _after_read(t: _TrackState, now_ns: int) -> None:
        if t.read_ts is not None:
            t.wall.on_packet(t.read_ts, now_ns)
            t.reception.on_packet(t.read_ts32, now_ns)
            t.read_ts = None

    def _on_datagram(self, index: int, rtcp: bool, data: bytes) -> None:
        t = self._tracks.get(index) if self.session.options.transport == "udp" else None
        if t is None:
            return  # before SETUP finished, or a pair no track uses
        if rtcp:
            self._on_rtcp(t, memoryview(data))
            return
        try:
            p = parse_rtp(memoryview(data))
        except RtpError:
            self.counters.bad_rtp += 1
            return
        now = self.clock.wall_ns()
        t.arrival_ns = now
        t.arrival_mono_ns = self.clock.mono_ns()
        t.datagrams += 1
        for _, q in t.reorder.push(p.sequence, p):
            self._rtp_in_order(t, q)
        self._after_read(t, now)

    def _on_message(self, message: Response | Request) -> None:
        self._send(self.session.on_message(message, self.clock.mono_ns()))
        if not self._tracks and self.session.state in (State.PLAY, State.PLAYING):
            # Every track is set up: from here media may come, even before PLAY's answer (a
            # sender report often does).
            self._begin_media()
        if self.session.playing and self._started is not None and not self._started.done():
            self._started.set_result(None)

    def _begin_media(self) -> None:
        udp = self.session.options.transport == "udp"
        for i, track in enumerate(self.session.tracks):
            state = _TrackState(i, track, self)
            if udp:
                self._tracks[i] = state
            else:
                self._tracks[track.rtp_channel] = state
                self._rtcp[track.rtcp_channel] = state
                if self._fast is None and isinstance(state.depay, H264Depacketizer):
                    self._fast = state
        # Over UDP nothing but RTSP messages may come on the connection.
        self._reader.channels = set(self._tracks) | set(self._rtcp) if not udp else set()
        self._next_report_ns = self.clock.mono_ns() + RECEIVER_REPORT_NS

    def _on_frame(self, channel: int, data: memoryview) -> None:
        t = self._tracks.get(channel)
        if t is not None:
            # The common case inline (~400 packets per camera-second): a plain header (version 2,
            # no padding, extension or CSRCs) of the track's SSRC, next in sequence. It does what
            # parse_rtp + SequenceTracker.accept + _rtp_in_order do for such a packet, without a
            # packet object and three calls; anything else takes the general path.
            if len(data) >= 12:
                b0, b1, seq, ts32, ssrc = _RTP_HEADER.unpack_from(data)
                s = t.sequence
                if b0 == 0x80 and ssrc == t.ssrc and s.max_seq is not None and seq == (s.max_seq + 1) & 0xFFFF:
                    if seq == 0:
                        s.cycles += SEQ_MOD
                    s.max_seq = seq
                    s.received += 1
                    self.counters.rtp_packets += 1
                    ts = t.unwrap.unwrap(ts32)
                    if t.read_ts is None or ts > t.read_ts:
                        t.read_ts, t.read_ts32 = ts, ts32
                    t.push_next(data[12:], ts, b1 >= 0x80)
                    return
            self._on_rtp(t, data)
            return
        t = self._rtcp.get(channel)
        if t is not None:
            self._on_rtcp(t, data)

    def _take_run(self, buf: bytearray, view: memoryview, pos: int, fill: int) -> int:
        """The common case without a call per packet (~400 packets per camera-second): the
        interleaved frames from ``pos`` on the H.264 track's channel with a plain RTP header
        (version 2, no padding, extension or CSRCs) of the track's SSRC, each next in sequence,
        are taken here, up to the first frame that is not one (left to ``_on_frame``). What
        ``parse_rtp``, ``SequenceTracker.accept`` and ``_rtp_in_order`` would do for them is done
        inline; a middle FU-A fragment of the unit in progress (~9 in 10 packets of a 4 Mbit/s
        camera) is appended to the unit's buffer here, any other payload goes to ``push``.
        Returns the position after the frames taken."""
        t = self._fast
        if t is None or t.ssrc is None:
            return pos
        s = t.sequence
        if s.max_seq is None:
            return pos
        ssrc, channel, depay = t.ssrc, t.track.rtp_channel, t.depay
        assert isinstance(depay, H264Depacketizer)
        unpack = _RUN_HEADER.unpack_from
        expected = (s.max_seq + 1) & 0xFFFF
        ts32_now = ts = -1
        au: bytearray | None = None
        taken = 0
        while fill - pos >= 18:
            dollar, ch, size, b0, b1, seq, ts32, packet_ssrc, fu_indicator, fu_header = unpack(buf, pos)
            end = pos + 4 + size
            if (
                dollar != DOLLAR
                or ch != channel
                or size < 12
                or end > fill
                or b0 != 0x80
                or packet_ssrc != ssrc
                or seq != expected
            ):
                break
            if ts32 != ts32_now:
                ts32_now, ts = ts32, t.unwrap.unwrap(ts32)
                if t.read_ts is None or ts > t.read_ts:
                    t.read_ts, t.read_ts32 = ts, ts32
                au = depay.fragment_buffer(ts)
            if (
                au is not None
                and b1 < 0x80
                and size > 14
                and fu_indicator & 0x1F == FU_A
                and not fu_header & 0xC0
                and len(au) + size <= MAX_ACCESS_UNIT_BYTES
            ):
                au += view[pos + 18 : end]
            else:
                depay.push(view[pos + 16 : end], ts, b1 >= 0x80)
                au = depay.fragment_buffer(ts)
            if seq == 0:
                s.cycles += SEQ_MOD
            expected = (seq + 1) & 0xFFFF
            taken += 1
            pos = end
        if taken:
            s.max_seq = (expected - 1) & 0xFFFF
            s.received += taken
            self.counters.rtp_packets += taken
        return pos

    def _on_rtp(self, t: _TrackState, data: memoryview) -> None:
        try:
            p = parse_rtp(data)
        except RtpError:
            self.counters.bad_rtp += 1
            return
        self._rtp_in_order(t, p)

    def _rtp_in_order(self, t: _TrackState, p: RtpPacket) -> None:
        """One packet in sequence order (TCP, or out of the UDP reorder window)."""
        c = self.counters
        c.rtp_packets += 1
        if p.ssrc != t.ssrc:
            # The first packet, or a camera that changed SSRC (a restarted encoder): its numbers
            # and timestamps start again.
            first = t.ssrc is None
            t.ssrc = p.ssrc
            t.sequence, t.unwrap = SequenceTracker(), TimestampUnwrapper()
            held = t.reports.set_ssrc(p.ssrc)
            lost = 0 if first else 1
            t.sequence.accept(p.sequence)
            ts = t.unwrap.unwrap(p.timestamp)
            t.wall = MediaWallMap(t.wall.clock_rate)
            t.read_ts = None
            t.wall.on_packet(ts, t.arrival_ns)
            t.depay.push(p.payload, ts, p.marker, lost)
            if held is not None:
                self._sender_report(t, held)
            return
        lost = t.sequence.accept(p.sequence)
        if lost == DROP:
            return
        c.lost_packets += max(lost, 0)
        ts = t.unwrap.unwrap(p.timestamp)
        if t.read_ts is None or ts > t.read_ts:
            t.read_ts, t.read_ts32 = ts, p.timestamp
        t.depay.push(p.payload, ts, p.marker, lost)

    def _on_rtcp(self, t: _TrackState, data: memoryview) -> None:
        packets, malformed = parse_rtcp(data)
        self.counters.rtcp_packets += 1
        self.counters.bad_rtcp += malformed
        for packet in packets:
            if isinstance(packet, SenderReport):
                report = t.reports.offer(packet)
                if report is not None:
                    self._sender_report(t, report)
            elif isinstance(packet, Goodbye):
                # A BYE naming an SSRC other than the stream's still comes from its sender: one
                # sender per track, and some servers (VLC) put 0 in their RTCP, not the RTP SSRC.
                self.counters.goodbyes += 1
                if t.index == 0 and self._goodbye_timer is None:
                    self._goodbye_mark = (t.sequence, t.sequence.received)
                    loop = asyncio.get_running_loop()
                    self._goodbye_timer = loop.call_later(GOODBYE_GRACE_NS / NS_PER_S, self._after_goodbye, t)

    def _after_goodbye(self, t: _TrackState) -> None:
        self._goodbye_timer = None
        mark, self._goodbye_mark = self._goodbye_mark, None
        if mark is not None and t.sequence is mark[0] and t.sequence.received == mark[1]:
            # Ended now, so the recorder reconnects at once (FFmpeg ends its read on a BYE too)
            # instead of recording nothing until its stall timeout.
            self._fail(ClientError(f"{self.safe_url}: the camera ended the stream (RTCP BYE) and sent no more video"))

    def _sender_report(self, t: _TrackState, report: SenderReport) -> None:
        t.reception.on_sender_report(report, self.clock.mono_ns())
        rtp_timestamp = t.unwrap.peek(report.rtp_timestamp)
        t.report_offset_ns = rtp_timestamp * NS_PER_S // max(t.clock_rate, 1) - report.ntp_unix_ns
        if t.index != 0:
            return  # the camera's clock is read from the video track
        recorder_ns = t.wall.wall_ns(rtp_timestamp)
        if recorder_ns is None:
            return
        reading = self.camera_clock.observe(report.ntp_unix_ns, recorder_ns, self.clock.wall_ns())
        self._emit(ClockSample(reading, report))

    def _emit(self, event: ClientEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
            return
        q = self._queue
        if q is None:
            return
        if q.qsize() >= MAX_QUEUED_EVENTS:
            self.counters.events_dropped += 1
            return
        q.put_nowait(event)

    def _on_lost(self, exc: Exception | None) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if not self._closing:
            detail = f": {exc.strerror or exc}" if isinstance(exc, OSError) else ""
            self._fail(ClientError(f"{self.safe_url}: the camera closed the connection{detail}"))

    def _fail(self, error: BaseException) -> None:
        if self._error is not None:
            return
        self._error = error
        self._release_drain()
        if self._started is not None and not self._started.done():
            self._started.set_exception(error)
        if self._queue is not None:
            self._queue.put_nowait(error)
        if self._transport is not None:
            self._transport.close()

    # -- the timer ------------------------------------------------------------------------

    def _schedule_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        # On whole multiples of the period in the loop's time: the timers of every session on a
        # shared ingest loop then run in one loop iteration (one wake-up), not one each.
        period_s = TIMER_NS / NS_PER_S
        self._timer = loop.call_at((loop.time() // period_s + 1) * period_s, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self.clock.mono_ns()
        try:
            self._send(self.session.poll(now))
        except SessionError as error:
            self._fail(error)
            return
        if self.session.playing and now >= self._next_report_ns:
            self._next_report_ns = now + RECEIVER_REPORT_NS
            self._send_receiver_reports(now)
        if self.session.options.transport == "udp":
            self._flush_quiet_windows()
        self._schedule_timer(loop)

    def _flush_quiet_windows(self) -> None:
        """Packets held for one that never came, on a track that went quiet for a whole tick."""
        now = self.clock.wall_ns()
        for t in self._tracks.values():
            if t.datagrams == 0:
                for _, q in t.reorder.flush():
                    self._rtp_in_order(t, q)
                self._after_read(t, now)
            t.datagrams = 0

    def _send_receiver_reports(self, now_ns: int) -> None:
        for t in self._tracks.values():
            if t.ssrc is None:
                continue
            s = t.sequence
            block = t.reception.block(t.ssrc, s.base, s.extended_max, s.received, now_ns)
            rr = build_receiver_report(self._reporter_ssrc, [block], "vmsd")
            if self.session.options.transport == "udp":
                if t.track.server_ports is None:
                    continue
                self._pairs[t.index].send_rtcp(rr, t.track.server_ports[1])
            else:
                self._send(_INTERLEAVED.pack(b"$", t.track.rtcp_channel, len(rr)) + rr)
            self.counters.receiver_reports += 1
