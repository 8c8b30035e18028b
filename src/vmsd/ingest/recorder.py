"""The per-camera supervisor: connect, record, detect stalls, reconnect with backoff — forever.

Each camera runs on its own thread (PyAV's demux and mux release the GIL), so the event loop
never sits between a camera and its segment files, and a slow control plane cannot delay a
packet. The asyncio side only starts the thread, reads `status`, and asks it to stop.

States: connecting → recording → reconnecting (after a failure) → offline (after failing for
`offline_after`) → recording again when the camera returns. Every transition is one log event
with the camera id bound; per-packet work is never logged.
"""

from __future__ import annotations

import asyncio
import enum
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import av

from vmsd.clock import Clock
from vmsd.config import CameraConfig, IngestConfig
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.ingest.fencing import Fencing
from vmsd.ingest.hub import CameraHub
from vmsd.ingest.native import NativeSource
from vmsd.ingest.rtsp.clock import ClockLimits, ClockReading, ClockStatus
from vmsd.ingest.segmenter import Segmenter, SegmenterEvents
from vmsd.ingest.source import CameraSource, SourceError
from vmsd.log import get_logger, register_url_credentials, scrub
from vmsd.storage.catalogue import GapReason
from vmsd.storage.errors import StorageError
from vmsd.storage.store import OpenSegment, Storage
from vmsd.units import NS_PER_MS, NS_PER_S

INITIAL_BACKOFF_NS = 250_000_000
# Reconnect attempts after a failure bound the RTSP handshake by what this camera needed the last
# time it connected (× RETRY_OPEN_FACTOR, at least RETRY_OPEN_FLOOR_NS), not by open_timeout: an
# attempt made while the camera is still silent (a half-open path) would otherwise hold a camera
# that has come back for the whole socket timeout (measured: 4.1 s after its return, goal 2 s).
# So that a camera which became slower than that still gets in, every RETRY_FULL_EVERY-th
# consecutive failed attempt waits the full open_timeout again, as the first attempt always does.
RETRY_OPEN_FACTOR = 3
RETRY_OPEN_FLOOR_NS = NS_PER_S
RETRY_FULL_EVERY = 4
CLOCK_ROW_INTERVAL_NS = 60 * NS_PER_S
FIRST_REPORT_WAIT_NS = 10 * NS_PER_S
# How long a stop goes on writing what a native session had queued (normally up to a second's
# worth, written in milliseconds) before it stops as the FFmpeg source does, at the next unit.
FINISH_LIMIT_NS = 5 * NS_PER_S
FFMPEG_CLOCK_UNKNOWN = 'offset unknown: the FFmpeg source does not pass on RTCP sender reports (source = "native" does)'


class CameraState(enum.Enum):
    CONNECTING = "connecting"
    RECORDING = "recording"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass
class CameraStatus:
    """A snapshot for the control plane and health checks (copied under the recorder's lock)."""

    camera_id: str
    state: CameraState = CameraState.CONNECTING
    state_since_ns: int = 0
    last_error: str = ""
    reconnects: int = 0
    last_packet_ns: int = 0
    video_packets: int = 0
    bytes: int = 0
    segments_written: int = 0
    current_segment_start_ns: int = 0
    last_keyframe_ns: int = 0
    audio_packets: int = 0
    dropped_packets: int = 0  # garbage, untimed or before the first keyframe: never recorded
    gaps: int = 0  # sessions that ended with a gap (offline, stall, errors) since start-up
    timestamp_jumps: int = 0
    clock_steps: int = 0
    camera_clock_ppm: int = 0  # how fast the camera's clock runs against the recorder's (measured)
    # The camera's own clock against the recorder's, from its RTCP sender reports (native source
    # only; FFmpeg does not pass them on): ok / offset / stepped / unknown, the offset (camera
    # minus recorder; None when unknown) and the reason in words.
    camera_source: str = "ffmpeg"  # [[cameras]] source
    camera_clock_status: str = ClockStatus.UNKNOWN.value
    camera_clock_offset_ns: int | None = None
    camera_clock_reason: str = "no RTCP sender report yet"
    alarms: dict[str, str] = field(default_factory=dict)


class _Stalled(Exception):
    def __init__(self, silent_ns: int) -> None:
        super().__init__(silent_ns)
        self.silent_ns = silent_ns


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CameraRecorder:
    """Records one camera until `aclose()`. The constructor does no I/O."""

    def __init__(
        self,
        camera: CameraConfig,
        ingest: IngestConfig,
        storage: Storage,
        clock: Clock,
        *,
        segment_duration_ns: int,
        events: EventBus | None = None,
        fencing: Fencing | None = None,
        camera_clock_tolerance_ns: int = 2 * NS_PER_S,
    ) -> None:
        self.camera = camera
        self.fencing = fencing
        self._clock_limits = ClockLimits(tolerance_ns=camera_clock_tolerance_ns)
        self._events = events
        # The reason of the gap this recorder's last session opened, until recording resumes.
        self._open_gap_reason: GapReason | None = None
        self._ingest = ingest
        self._storage = storage
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._status = CameraStatus(camera.id, camera_source=camera.source)
        if camera.source == "ffmpeg":
            self._status.camera_clock_reason = FFMPEG_CLOCK_UNKNOWN
        self._thread: threading.Thread | None = None
        self._log = get_logger(camera_id=camera.id)
        self.hub = CameraHub(camera.id)
        self.segmenter = Segmenter(
            camera.id,
            storage,
            clock,
            segment_duration_ns=segment_duration_ns,
            events=SegmenterEvents(on_segment_closed=self._segment_closed, on_alarm=self._alarm),
            hub=self.hub,
            fencing=fencing,
        )
        # Progress marker for the watchdog: bumped by the thread on every loop iteration.
        self.heartbeat_mono_ns = 0
        # The current camera session and when it last gave video (read by check_stall()).
        self._source: CameraSource | NativeSource | None = None
        self._last_video_mono_ns = 0
        self._stall_detail = ""
        self._finishing = False  # request_stop() asked the source to end after what it holds
        self._stop_mono_ns = 0
        # How long the last successful handshake took (None: never connected), consecutive failed
        # attempts, and the time the latest failed attempt spent (counted against its backoff).
        self._last_open_ns: int | None = None
        self._failed_opens = 0
        self._failed_open_spent_ns = 0
        self._down_announced = False  # camera_disconnected/unreachable sent since the last connect
        # The camera clock reading last stored in the catalogue, and when the next may be.
        self._stored_clock_status: ClockStatus | None = None
        self._next_clock_row_mono_ns = 0
        register_url_credentials(camera.url)

    # -- asyncio side ------------------------------------------------------------------------

    async def run(self) -> None:
        """Record until aclose(); returns when the recorder thread has finished cleanly."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def target() -> None:
            try:
                self._thread_main()
            finally:
                loop.call_soon_threadsafe(_resolve, done)

        self._thread = threading.Thread(target=target, name=f"rec-{self.camera.id}", daemon=True)
        self._thread.start()
        await done

    def request_stop(self) -> None:
        source = self._source
        # A native session still hands over what had arrived before the stop (its recorder thread
        # takes units in batches of up to a second), then ends: a clean stop drops no footage.
        # The flags come first: the session may end on the ingest loop before finish() returns,
        # and the recorder thread must then read that end as this stop, not the camera's.
        self._stop_mono_ns = self._clock.mono_ns()
        self._finishing = source is not None
        self._stop.set()
        if source is None or not source.finish():
            self._finishing = False

    def release(self, detail: str) -> None:
        """Stop recording at the next segment boundary (at once when no segment is open): a
        newer owner of the camera records it now. The run ends with a `failover` gap (`detail`)."""
        if self.fencing is None:
            raise RuntimeError("release() of a camera recorded without [site]")
        self.fencing.release_detail = detail
        self.fencing.release = True
        if self._source is None:
            # Not connected: nothing to finish. While connected, the segmenter ends the run at the
            # next keyframe that would open a segment (never by this stop flag, which could land
            # between two segments of a rotation and end the run as a mere restart).
            self._stop.set()

    @property
    def released(self) -> bool:
        """The run ended at a boundary after release(): the recorder has stopped or is stopping."""
        return self.segmenter.released

    async def aclose(self) -> None:
        self.request_stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    @property
    def status(self) -> CameraStatus:
        with self._lock:
            snapshot = CameraStatus(**vars(self._status))
            snapshot.alarms = dict(self._status.alarms)
        # The camera clock as of now: a reading turns `unknown` when sender reports stop coming,
        # which no report can announce. (Read off the recorder thread: a few plain attributes.)
        reading = self.camera_clock()
        if reading is not None:
            snapshot.camera_clock_status = reading.status.value
            snapshot.camera_clock_offset_ns = reading.offset_ns
            snapshot.camera_clock_reason = reading.reason
        return snapshot

    # -- recorder thread ---------------------------------------------------------------------

    def _set_state(self, state: CameraState, error: str = "") -> None:
        with self._lock:
            if self._status.state is state and not error:
                return
            previous = self._status.state
            self._status.state = state
            self._status.state_since_ns = self._clock.wall_ns()
            if error:
                self._status.last_error = error
            # Why a camera is not recording goes with the transition that reports it: an operator
            # who reads "offline" (say after a restart that records nothing) must see why.
            failing = state in (CameraState.RECONNECTING, CameraState.OFFLINE)
            reason = self._status.last_error if failing else ""
        if previous is not state:
            log = self._log.warning if error or state is CameraState.OFFLINE else self._log.info
            log("camera_state", state=state.value, previous=previous.value, **({"error": reason} if reason else {}))

    def _publish(self, kind: EventKind, **fields: object) -> None:
        # Queued, never waited for (events/bus.py): the recorder thread does not touch SQLite for it.
        if self._events is not None:
            self._events.publish(kind, self.camera.id, **fields)

    def _thread_main(self) -> None:
        backoff_ns = INITIAL_BACKOFF_NS
        failing_since_mono_ns: int | None = None
        while not self._stop.is_set():
            self.heartbeat_mono_ns = self._clock.mono_ns()
            recorded = False
            try:
                recorded = self._record_session()
            except Exception:  # keep recording the other cameras whatever this one did
                self._log.exception("recorder_failed")
                self._set_state(CameraState.RECONNECTING, "internal error (see the log)")
            if self._stop.is_set() or (self.fencing is not None and self.fencing.release):
                break  # released: a session that ended (stall, disconnect) is not retried
            if recorded:
                backoff_ns = INITIAL_BACKOFF_NS
                failing_since_mono_ns = None
            now_mono_ns = self._clock.mono_ns()
            if failing_since_mono_ns is None:
                failing_since_mono_ns = now_mono_ns
            with self._lock:
                self._status.reconnects += 1
            if now_mono_ns - failing_since_mono_ns >= self._ingest.offline_after_ns:
                self._set_state(CameraState.OFFLINE)
            else:
                self._set_state(CameraState.RECONNECTING)
            # Capped exponential backoff with ±25 % jitter, so many cameras behind one failed
            # switch do not reconnect in lock-step. A handshake that timed out has already waited:
            # attempts start at most once per backoff interval, not a full interval after a timeout.
            delay_ns = int(backoff_ns * random.uniform(0.75, 1.25)) - self._failed_open_spent_ns
            self._failed_open_spent_ns = 0
            if delay_ns > 0:
                self._stop.wait(delay_ns / NS_PER_S)
            backoff_ns = min(backoff_ns * 2, self._ingest.max_backoff_ns)
        self._set_state(CameraState.STOPPED)
        self.hub.close()

    def _record_session(self) -> bool:
        """One connection: returns True if any footage was recorded before it ended."""
        with self._lock:
            if self._status.state not in (CameraState.RECONNECTING, CameraState.OFFLINE):
                self._status.state = CameraState.CONNECTING
        source = self._new_source()
        segmenter = self.segmenter
        reason, detail = GapReason.RESTART, "recorder stopped"
        recorded_before = segmenter.counters.video_packets
        self._stall_detail = ""
        open_began_mono_ns = self._clock.mono_ns()
        try:
            source.open()  # bounded by handshake_timeout_ns(); the stall check only watches open sessions
        except SourceError as error:
            self._failed_opens += 1
            self._failed_open_spent_ns = self._clock.mono_ns() - open_began_mono_ns
            with self._lock:
                self._status.last_error = str(error)
            self._log.debug("connect_failed", error=str(error))
            if not self._down_announced:
                # Once per outage: a camera that never connected (or whose session ended without
                # a camera_disconnected) is otherwise silent to integrators while it retries.
                self._down_announced = True
                self._publish(EventKind.CAMERA_UNREACHABLE, detail=str(error))
            return False
        self._last_open_ns = self._clock.mono_ns() - open_began_mono_ns
        self._failed_opens = 0
        # A camera's first sender report comes within ~7.5 s (RFC 3550: 5 s × 0.5–1.5); until
        # then its clock is not stored as unknown.
        self._next_clock_row_mono_ns = max(self._next_clock_row_mono_ns, self._clock.mono_ns() + FIRST_REPORT_WAIT_NS)
        # The stall clock starts once connected: a slow session set-up is not a stall.
        last_video_mono_ns = self._last_video_mono_ns = self._clock.mono_ns()
        self._source = source
        self._log.info(
            "camera_connected",
            video=source.video.codec_context.name,
            audio=source.audio is not None,
            source=self.camera.source,
            # The RTSP handshake and the wait for the first keyframe: slow ones explain a late start.
            connect_ms=self._last_open_ns // NS_PER_MS,
        )
        self._publish(EventKind.CAMERA_CONNECTED, video_codec=source.video.codec_context.name)
        self._down_announced = False
        try:
            if source.skipped_audio_codec:
                self._log.info("audio_not_recorded", codec=source.skipped_audio_codec)
            # The native source's packets carry their MP4 samples: its segments skip PyAV's muxer.
            segmenter.begin_session(source.video, source.audio, own_fragments=isinstance(source, NativeSource))
            for packet in source.packets():
                now_mono_ns = self._clock.mono_ns()
                self.heartbeat_mono_ns = now_mono_ns
                if self._stop.is_set():
                    # Finishing writes what had arrived, not a backlog of a slow disk past
                    # systemd's stop timeout; and a stop is never read as a stall meanwhile.
                    if not self._finishing or now_mono_ns - self._stop_mono_ns > FINISH_LIMIT_NS:
                        break
                elif (
                    now_mono_ns - last_video_mono_ns > self._ingest.stall_timeout_ns
                    and now_mono_ns - self._last_video_seen_ns() > self._ingest.stall_timeout_ns
                ):
                    # Video included: when its read times out on a silent connection, FFmpeg hands
                    # over the frame it was still assembling; taking that as a live camera hid a
                    # half-open connection for a second read timeout (measured: 8 s, not 4 s).
                    raise _Stalled(now_mono_ns - self._last_video_seen_ns())
                if packet.stream is source.video:
                    last_video_mono_ns = self._last_video_mono_ns = now_mono_ns
                segmenter.push(packet)
                if now_mono_ns >= self._next_clock_row_mono_ns and isinstance(source, NativeSource):
                    self._store_camera_clock(source.clock_reading(), now_mono_ns)
                if segmenter.released:
                    self._stop.set()
                    fencing = segmenter.fencing
                    reason, detail = GapReason.FAILOVER, fencing.release_detail if fencing else ""
                    break
                if segmenter.segment is not None:
                    self._record_progress(segmenter.segment)
            else:
                if not self._stop.is_set():  # not the end that request_stop() asked for
                    reason, detail = GapReason.CAMERA_OFFLINE, "camera ended the stream"
        except _Stalled as stalled:
            reason, detail = GapReason.STALL, f"no video for {stalled.silent_ns / NS_PER_S:.1f}s"
        except SourceError as error:
            # A read that gave up after stall_timeout without video is a stall (a half-open
            # connection, or a camera that keeps RTCP alive but sends no media), not a disconnect.
            silent_ns = self._clock.mono_ns() - max(last_video_mono_ns, self._last_video_seen_ns())
            if silent_ns >= self._ingest.stall_timeout_ns * 9 // 10:
                reason, detail = GapReason.STALL, f"no video for {silent_ns / NS_PER_S:.1f}s"
            else:
                reason, detail = GapReason.CAMERA_OFFLINE, str(error)
        except (OSError, StorageError) as error:
            # A full or read-only filesystem fails the segment file (OSError) or the catalogue
            # (StorageError, e.g. StorageFull); both are storage errors, not recorder bugs.
            reason, detail = GapReason.STORAGE_ERROR, scrub(str(error))
            self._log.error("storage_write_failed", error=detail)
            try:
                segmenter.abort(reason, detail)
            except (OSError, StorageError, av.FFmpegError) as abort_error:
                self._log.error("segment_abort_failed", error=scrub(str(abort_error)))
        except av.FFmpegError as error:
            reason, detail = GapReason.STREAM_ERROR, scrub(str(error))
            self._log.error("stream_write_failed", error=detail)
            segmenter.abort(reason, detail)
        finally:
            self._source = None
            if self._stall_detail and reason != GapReason.RESTART:
                # The session ended because check_stall() cut it off (it then reads as an EOF).
                reason, detail = GapReason.STALL, self._stall_detail
            source.close()
            try:
                segmenter.end_session(reason, detail)
            except (OSError, StorageError, av.FFmpegError) as error:
                self._log.error("segment_close_failed", error=scrub(str(error)))
        if reason != GapReason.RESTART:
            with self._lock:
                self._status.last_error = detail
                self._status.gaps += 1
            self._log.info("session_ended", reason=reason, detail=detail)
        recorded = segmenter.counters.video_packets > recorded_before
        self._session_ended(reason, detail, recorded=recorded)
        return recorded

    def _new_source(self) -> CameraSource | NativeSource:
        """The camera's session, by its `source` (FFmpeg through PyAV, or vmsd's own client)."""
        if self.camera.source == "native":
            return NativeSource(
                self.camera.url,
                transport=self.camera.transport,
                open_timeout_ns=self.handshake_timeout_ns(),
                read_timeout_ns=self._ingest.stall_timeout_ns,
                clock=self._clock,
                clock_limits=self._clock_limits,
                on_clock=self._camera_clock,
                # A live viewer wants each frame as it comes; recording alone takes them in batches.
                urgent=lambda: self.hub.wanted,
            )
        return CameraSource(
            self.camera.url,
            transport=self.camera.transport,
            open_timeout_ns=self.handshake_timeout_ns(),
            read_timeout_ns=self._ingest.stall_timeout_ns,
        )

    def _camera_clock(self, reading: ClockReading) -> None:
        """A sender report's camera-clock reading (on the recorder thread)."""
        with self._lock:
            status = self._status
            status.camera_clock_status = reading.status.value
            status.camera_clock_offset_ns = reading.offset_ns
            status.camera_clock_reason = reading.reason
        self._store_camera_clock(reading, self._clock.mono_ns())

    def _store_camera_clock(self, reading: ClockReading, now_mono_ns: int) -> None:
        """Keep the camera clock over time in the catalogue (an export's manifest states it for
        its range): a row when the status changes, and one a minute while it holds. Called for
        each sender report and, so that a camera sending none is kept as `unknown` too, from the
        packet loop once the next row is due."""
        if reading.status is self._stored_clock_status and now_mono_ns < self._next_clock_row_mono_ns:
            return
        self._stored_clock_status = reading.status
        self._next_clock_row_mono_ns = now_mono_ns + CLOCK_ROW_INTERVAL_NS
        try:
            self._storage.catalogue.add_camera_clock(
                self.camera.id, self._clock.wall_ns(), reading.status.value, reading.offset_ns, reading.reason
            )
        except StorageError as error:  # a full or failing catalogue must not stop recording
            self._log.warning("camera_clock_not_stored", error=scrub(str(error)))

    def camera_clock(self) -> ClockReading | None:
        """The camera clock now (it turns unknown when reports stop), None for an FFmpeg source."""
        source = self._source
        if isinstance(source, NativeSource):
            return source.clock_reading()
        return None

    def _session_ended(self, reason: GapReason, detail: str, *, recorded: bool) -> None:
        if reason == GapReason.STALL:
            self._publish(EventKind.CAMERA_STALLED, reason=reason, detail=detail)
        elif reason == GapReason.STORAGE_ERROR:
            self._publish(EventKind.STORAGE_ERROR, reason=reason, detail=detail)
        elif reason != GapReason.RESTART:
            self._publish(EventKind.CAMERA_DISCONNECTED, reason=reason, detail=detail)
            self._down_announced = True
        if recorded:
            # The run ended: the segmenter opened the gap that follows it (storage/store.py end_run).
            self._publish(EventKind.RECORDING_STOPPED, reason=reason)
            self._publish(EventKind.GAP_OPENED, reason=reason, detail=detail)
            self._open_gap_reason = reason

    def handshake_timeout_ns(self) -> int:
        """The bound on the next connection attempt's RTSP handshake (see RETRY_OPEN_FACTOR)."""
        full_ns = self._ingest.open_timeout_ns
        if self._last_open_ns is None or self._failed_opens % RETRY_FULL_EVERY == RETRY_FULL_EVERY - 1:
            return full_ns
        return min(full_ns, max(RETRY_OPEN_FLOOR_NS, RETRY_OPEN_FACTOR * self._last_open_ns))

    def check_stall(self) -> bool:
        """Called from outside the recorder thread (the event loop, every half second): interrupt a
        read that has produced no video for stall_timeout.

        FFmpeg's RTSP demuxer can block in one read for as long as the camera keeps RTCP alive
        without sending media (its socket timeout sees traffic), and no read timeout is set in
        PyAV (see source.py: it costs the GIL on every I/O check); the blocked thread cannot
        notice by itself. Returns True when it interrupted.
        """
        source = self._source
        if source is None or self._clock.mono_ns() - self._last_video_seen_ns() <= self._ingest.stall_timeout_ns:
            return False
        silent_ns = self._clock.mono_ns() - self._last_video_seen_ns()
        if source.interrupt():
            self._log.info("stall_interrupted", silent_s=silent_ns / NS_PER_S)
            self._stall_detail = f"no video for {silent_ns / NS_PER_S:.1f}s"
            self._last_video_mono_ns = self._clock.mono_ns()  # once per stall, not every check
            return True
        return False

    def _last_video_seen_ns(self) -> int:
        """When the session last gave video: taken by this thread or, from the native source,
        read by the ingest loop. A recorder thread held up by a slow disk while its camera still
        sends is not a camera stall (it was counted as one: a gap and a reconnect after 4 s); the
        native source's pending bound ends such a session if the thread never catches up."""
        source = self._source
        arrived_ns = source.last_video_mono_ns if isinstance(source, NativeSource) else 0
        return max(self._last_video_mono_ns, arrived_ns)

    def _record_progress(self, segment: OpenSegment) -> None:
        counters = self.segmenter.counters
        with self._lock:
            status = self._status
            status.last_packet_ns = self._clock.wall_ns()
            status.video_packets = counters.video_packets
            status.audio_packets = counters.audio_packets
            status.bytes = counters.bytes
            status.current_segment_start_ns = segment.start_ns
            status.last_keyframe_ns = counters.last_keyframe_ns
            first = status.state is not CameraState.RECORDING
        if first:
            self._set_state(CameraState.RECORDING)
            self._publish(EventKind.RECORDING_STARTED, segment_start_ns=segment.start_ns)
            if self._open_gap_reason is not None:
                self._publish(EventKind.GAP_CLOSED, reason=self._open_gap_reason, end_ns=segment.start_ns)
                self._open_gap_reason = None

    def _segment_closed(self, segment: OpenSegment, end_ns: int) -> None:
        # Slow-moving figures are copied once per segment, not per packet.
        counters = self.segmenter.counters
        with self._lock:
            status = self._status
            status.segments_written = counters.segments_written
            status.dropped_packets = (
                counters.dropped_garbage + counters.dropped_untimed + counters.dropped_before_keyframe
            )
            status.timestamp_jumps = counters.timestamp_jumps
            status.clock_steps = counters.clock_steps
            status.camera_clock_ppm = self.segmenter.clock_rate.rate_ppm

    def _alarm(self, kind: str, message: str) -> None:
        with self._lock:
            self._status.alarms[kind] = message
        self._log.error("alarm", alarm=kind, message=message)
        self._publish(EventKind.CLOCK_ALARM, alarm=kind, message=message)

    def status_fields(self) -> dict[str, Any]:
        status = self.status
        return {"camera_id": status.camera_id, "state": status.state.value, "segments": status.segments_written}
