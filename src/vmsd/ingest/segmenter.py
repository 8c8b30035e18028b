"""Turning one camera's packets into segments: timing, rotation, runs and gaps.

Owned by the camera's ingest thread (not thread-safe, blocking: it writes through storage).
Per packet it decides, in this order:

1. Is it plausible video? Garbage is dropped and the stream skipped to the next keyframe.
2. Did the wall clock step? The segment and run end (gap reason `clock_step`); a forward step is
   adopted, a backward one is not (the timeline is held so nothing overlaps) and an alarm is set.
3. Where is it in wall time? (timeline.py) A jump in the camera's timestamps (backwards, or
   further than any tolerated stall) continues the timeline one frame later; at each segment
   boundary the camera's clock is slewed (≤ 1000 ppm) towards the recorder's.
4. Does a keyframe start a new segment? At the first keyframe at or after the next wall-clock
   boundary (multiples of segment_duration since the epoch), or when the in-band parameter sets
   (SPS/PPS/VPS) change — a new resolution or codec configuration gets its own segment.

Runs begin at their first segment and end with a reason that becomes the following gap's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from vmsd.clock import Clock
from vmsd.ingest.bitstream import looks_like_video, parameter_sets
from vmsd.ingest.fencing import Fencing
from vmsd.ingest.hub import AUDIO, VIDEO, CameraHub, RelayPacket, StreamConfig
from vmsd.ingest.timeline import ClockRate, Timeline, TimelineLimits
from vmsd.storage.catalogue import GapReason
from vmsd.storage.store import OpenSegment, SegmentInfo, Storage
from vmsd.storage.writer import StreamTemplate, init_segment
from vmsd.units import NS_PER_MS, NS_PER_S, ticks_to_ns

# A single access unit larger than this is not a plausible CCTV frame (a 4K I-frame at high
# quality is a few MB); refusing it bounds memory under a hostile stream.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Packets of one stream closer than this are duplicates or broken timestamps; dropping them keeps
# every sample's time strictly increasing in the MP4's own (coarser) time base.
MIN_SPACING_NS = NS_PER_MS
# Parameter sets and NAL headers sit at the start of an access unit.
HEAD_BYTES = 4096


@dataclass
class SegmenterCounters:
    video_packets: int = 0
    audio_packets: int = 0
    bytes: int = 0
    dropped_garbage: int = 0
    dropped_untimed: int = 0
    dropped_before_keyframe: int = 0
    dropped_audio: int = 0
    timestamp_jumps: int = 0
    clock_steps: int = 0
    segments_written: int = 0
    # Wall time of the newest keyframe written (function checks report it).
    last_keyframe_ns: int = 0


@dataclass
class SegmenterEvents:
    """Callbacks for what the recorder reports (logging, status)."""

    on_segment_closed: Callable[[OpenSegment, int], None] = lambda segment, end_ns: None
    on_alarm: Callable[[str, str], None] = lambda kind, message: None


@dataclass
class _Session:
    video: Any
    audio: Any
    codec: str
    # MP4-style (avcC/hvcC) streams carry length-prefixed NAL units; RTSP gives Annex B.
    length_prefixed: bool
    stream_parameter_sets: bytes | None
    parameter_sets: bytes | None = None
    need_keyframe: bool = True
    last_video_dts_wall_ns: int | None = None
    last_video_dts_media_ns: int | None = None
    last_video_pts_wall_ns: int = 0
    video_delta_ns: int = 40_000_000
    last_audio_dts_wall_ns: int | None = None
    width: int = 0
    height: int = 0
    # Packets carry MP4 samples (`packet.sample`, 4-byte NAL lengths; `bytes(packet)` Annex B):
    # inspected as samples, written by storage/fragments.py.
    own_fragments: bool = False
    configured: bool = False  # relay subscribers have been told this session's stream config


class Segmenter:
    def __init__(
        self,
        camera_id: str,
        storage: Storage,
        clock: Clock,
        *,
        segment_duration_ns: int,
        events: SegmenterEvents | None = None,
        limits: TimelineLimits | None = None,
        hub: CameraHub | None = None,
        fencing: Fencing | None = None,
    ) -> None:
        self.camera_id = camera_id
        # With [site]: the epoch runs are recorded under, and the request to stop at a boundary.
        self.fencing = fencing
        self._run_unfenced = False
        # Set when the run ended at a segment boundary because the camera was released (fencing).
        self.released = False
        # Live relay fan-out; the segmenter publishes only while someone wants it (hub.wanted).
        self.hub = hub
        self._storage = storage
        self._segment_duration_ns = segment_duration_ns
        self.timeline = Timeline(clock, limits)
        # The camera clock's measured rate (function checks); the timeline's slew rate is not it.
        self.clock_rate = ClockRate(self.timeline.limits.rate_span_ns)
        self.events = events or SegmenterEvents()
        self.counters = SegmenterCounters()
        self.segment: OpenSegment | None = None
        self._run_id: int | None = None
        self._session: _Session | None = None
        self._next_boundary_ns = 0
        # The end of the camera's footage so far: nothing new may start before it.
        self.last_end_ns = 0
        self.clock_held = False
        self._min_lateness_ns: int | None = None
        self._anchor_error_open = False  # anchored at a first keyframe, not slewed since

    # -- sessions ----------------------------------------------------------------------------

    def begin_session(self, video: Any, audio: Any | None, *, own_fragments: bool = False) -> None:
        """A camera connection opened; `video`/`audio` are its PyAV streams. `own_fragments`: its
        packets carry their MP4 samples (`packet.sample`, the native source), so the segment files
        are written by vmsd's fragment writer instead of PyAV's muxer (storage/fragments.py)."""
        if self.last_end_ns == 0:
            last = self._storage.catalogue.last_segment(self.camera_id)
            if last is not None and last.end_ns is not None:
                self.last_end_ns = last.end_ns
        self.clock_held = self.timeline.start_session(not_before_ns=self.last_end_ns)
        if self.clock_held:
            self.events.on_alarm(
                "clock_behind",
                "wall clock is behind the latest recorded footage; recorder time is held monotonic",
            )
        codec = video.codec_context.name
        extradata = bytes(video.codec_context.extradata or b"")
        length_prefixed = extradata[:1] == b"\x01"
        self._session = _Session(
            video=video,
            audio=audio,
            codec=codec,
            length_prefixed=length_prefixed,
            # avcC/hvcC extradata is used as is; only Annex-B extradata is compared with in-band sets.
            stream_parameter_sets=None if length_prefixed or not extradata else parameter_sets(codec, extradata),
            width=video.codec_context.width,
            height=video.codec_context.height,
            own_fragments=own_fragments,
        )

    def end_session(self, reason: GapReason, detail: str = "") -> None:
        """The connection ended: close the segment and the run; the gap that follows gets `reason`."""
        try:
            self._end_run(reason, detail)
        finally:
            self._session = None
            if self.hub is not None:
                self.hub.session_ended()

    # -- packets -----------------------------------------------------------------------------

    def push(self, packet: Any) -> None:
        session = self._session
        if session is None:
            raise RuntimeError("push() outside a session")
        if self.released:
            return  # the camera is recorded elsewhere now: nothing more is written here
        timestamp = packet.dts if packet.dts is not None else packet.pts
        if timestamp is None or packet.time_base is None:
            self.counters.dropped_untimed += 1
            return
        tb = packet.time_base
        dts_media_ns = ticks_to_ns(timestamp, tb)
        pts_media_ns = ticks_to_ns(packet.pts, tb) if packet.pts is not None else dts_media_ns
        if packet.stream is session.video:
            self._push_video(session, packet, dts_media_ns, pts_media_ns)
        else:
            self._push_audio(session, packet, dts_media_ns, pts_media_ns)

    def _push_video(self, session: _Session, packet: Any, dts_media_ns: int, pts_media_ns: int) -> None:
        keyframe = bool(packet.is_keyframe)
        size = packet.size
        if session.own_fragments:
            # An MP4 sample (4-byte NAL lengths), inspected as it is: no copy, no conversion.
            head, length_prefixed = packet.sample, True
        else:
            # Only the head of a packet is ever inspected: copy that, not the whole frame.
            head, length_prefixed = bytes(memoryview(packet)[:HEAD_BYTES]), session.length_prefixed
        if size > MAX_FRAME_BYTES or not looks_like_video(session.codec, head, length_prefixed):
            self.counters.dropped_garbage += 1
            session.need_keyframe = True
            return
        step_ns = self.timeline.wall_step_ns()
        if step_ns:
            self._clock_stepped(session, step_ns)
        timeline = self.timeline
        # When the packet reached vmsd: the native source stamps it at the ingest loop's read,
        # which a batch (up to 1 s) or a busy machine can leave well before this thread takes it;
        # FFmpeg's packets are read by this thread, so now. Taking the thread's time anchored
        # sessions ~150 ms late (after the stream's probe), then slewed at the limit for minutes.
        arrival_ns = timeline.arrival_ns(packet.arrival_mono_ns if session.own_fragments else None)
        if not timeline.anchored:
            if not keyframe:
                self.counters.dropped_before_keyframe += 1
                return
            timeline.anchor(dts_media_ns, max(arrival_ns, self.last_end_ns))
            self.clock_rate.restart(dts_media_ns, timeline.to_wall_ns(dts_media_ns))
            self._min_lateness_ns = None
            self._anchor_error_open = True
        elif session.last_video_dts_media_ns is not None:
            media_delta_ns = dts_media_ns - session.last_video_dts_media_ns
            if media_delta_ns <= 0 or media_delta_ns > timeline.limits.timestamp_jump_ns:
                # The camera's clock jumped: continue the timeline one frame after the last one.
                self.counters.timestamp_jumps += 1
                previous_ns = session.last_video_dts_wall_ns or arrival_ns
                timeline.anchor(dts_media_ns, previous_ns + session.video_delta_ns)
                self.clock_rate.restart(dts_media_ns, previous_ns + session.video_delta_ns)
                message = f"camera timestamps jumped by {media_delta_ns / NS_PER_S:.3f}s; timeline continued"
                self.events.on_alarm("timestamp_jump", message)
        dts_wall_ns = timeline.to_wall_ns(dts_media_ns)
        pts_wall_ns = dts_wall_ns + (pts_media_ns - dts_media_ns)
        previous_dts = session.last_video_dts_wall_ns
        if previous_dts is not None and dts_wall_ns < previous_dts + MIN_SPACING_NS:
            self.counters.dropped_untimed += 1
            return
        # Network delay only ever makes packets late, so the least lateness seen over a segment
        # estimates how far the camera's clock has drifted from the recorder's.
        lateness_ns = arrival_ns - dts_wall_ns
        if self._min_lateness_ns is None or lateness_ns < self._min_lateness_ns:
            self._min_lateness_ns = lateness_ns
        self.clock_rate.on_video(dts_media_ns, arrival_ns)
        session.last_video_dts_media_ns = dts_media_ns

        if keyframe:
            in_band = (
                None
                if session.length_prefixed
                else parameter_sets(session.codec, head[:HEAD_BYTES], length_prefixed, truncated=size > HEAD_BYTES)
            )
            changed = in_band is not None and session.parameter_sets is not None and in_band != session.parameter_sets
            if (
                self.fencing is not None
                and self.fencing.release
                and (self.segment is None or changed or dts_wall_ns >= self._next_boundary_ns)
            ):
                # A newer owner records the camera: end this run at the boundary, open nothing.
                self._release(dts_wall_ns)
                return
            if self.segment is None:
                self._open_segment(session, dts_wall_ns, in_band, packet)
            elif changed or dts_wall_ns >= self._next_boundary_ns:
                self._close_segment(dts_wall_ns)
                self._slew(dts_media_ns, dts_wall_ns)
                self._open_segment(session, dts_wall_ns, in_band, packet)
            session.need_keyframe = False
        elif session.need_keyframe or self.segment is None:
            self.counters.dropped_before_keyframe += 1
            return

        segment = self.segment
        assert segment is not None
        segment.writer.write(VIDEO, packet, pts_wall_ns - segment.start_ns, dts_wall_ns - segment.start_ns)
        if previous_dts is not None:
            session.video_delta_ns = dts_wall_ns - previous_dts
        session.last_video_dts_wall_ns = dts_wall_ns
        session.last_video_pts_wall_ns = max(session.last_video_pts_wall_ns, pts_wall_ns)
        self.counters.video_packets += 1
        self.counters.bytes += size
        if keyframe:
            self.counters.last_keyframe_ns = dts_wall_ns
        self._publish(VIDEO, packet, pts_wall_ns, dts_wall_ns, keyframe, dts_wall_ns - (previous_dts or dts_wall_ns))

    def _push_audio(self, session: _Session, packet: Any, dts_media_ns: int, pts_media_ns: int) -> None:
        segment = self.segment
        if segment is None or not self.timeline.anchored or session.audio is None:
            self.counters.dropped_audio += 1
            return
        dts_wall_ns = self.timeline.to_wall_ns(dts_media_ns)
        # Audio that belongs before the segment's first keyframe, or whose clock disagrees with
        # the video's, cannot be placed in this file without an overlap or a hole.
        latest_video_ns = session.last_video_dts_wall_ns or segment.start_ns
        if (
            dts_wall_ns < segment.start_ns
            or abs(dts_wall_ns - latest_video_ns) > self.timeline.limits.timestamp_jump_ns
            or (
                session.last_audio_dts_wall_ns is not None
                and dts_wall_ns < session.last_audio_dts_wall_ns + MIN_SPACING_NS
            )
        ):
            self.counters.dropped_audio += 1
            return
        pts_wall_ns = dts_wall_ns + (pts_media_ns - dts_media_ns)
        segment.writer.write(AUDIO, packet, pts_wall_ns - segment.start_ns, dts_wall_ns - segment.start_ns)
        session.last_audio_dts_wall_ns = dts_wall_ns
        self.counters.audio_packets += 1
        self._publish(AUDIO, packet, pts_wall_ns, dts_wall_ns, False)
        self.counters.bytes += packet.size

    # -- segments and runs -------------------------------------------------------------------

    def _open_segment(self, session: _Session, start_ns: int, in_band: bytes | None, keyframe: Any) -> None:
        parameter_sets_now = in_band or session.parameter_sets or session.stream_parameter_sets
        if in_band is not None and in_band != (session.parameter_sets or session.stream_parameter_sets):
            # New parameter sets in-band: learn the picture size they describe (rare: decode one frame).
            size = _probe_size(session.codec, in_band, bytes(keyframe))
            if size is not None:
                session.width, session.height = size
        changed = parameter_sets_now != session.parameter_sets or not session.configured
        session.parameter_sets = parameter_sets_now
        templates = [
            StreamTemplate(session.video, extradata=parameter_sets_now, width=session.width, height=session.height)
        ]
        if session.audio is not None:
            # The decoder configuration (AudioSpecificConfig) as the codec context has it: the
            # native source sets it there from the SDP (its stream was probed from ADTS, which
            # carries none), and a template's own parameters would leave the esds without it —
            # audio that FFmpeg guesses its way through but MPEG-TS relays and players cannot.
            config = bytes(session.audio.codec_context.extradata or b"")
            templates.append(StreamTemplate(session.audio, extradata=config or None))
        fencing = self.fencing
        if self._run_id is None:
            epoch = fencing.epoch if fencing is not None else None
            unfenced = fencing is not None and fencing.unfenced
            self._run_id = self._storage.begin_run(self.camera_id, start_ns, epoch=epoch, unfenced=unfenced)
            self._run_unfenced = unfenced
        else:
            self._note_unfenced()
        info = SegmentInfo(session.codec, session.width, session.height, session.audio is not None)
        self.segment = self._storage.open_segment(
            self.camera_id, self._run_id, start_ns, templates, info, own_fragments=session.own_fragments
        )
        session.last_audio_dts_wall_ns = None
        if self.hub is not None and changed:
            self._configure_hub(session, templates)
        self._next_boundary_ns = (start_ns // self._segment_duration_ns + 1) * self._segment_duration_ns

    def _configure_hub(self, session: _Session, templates: list[StreamTemplate]) -> None:
        """Tell relay subscribers what the stream now is (new session or new parameter sets)."""
        assert self.hub is not None
        session.configured = True
        audio = session.audio.codec_context if session.audio is not None else None
        self.hub.configure(
            StreamConfig(
                generation=self.hub.generation + 1,
                video_codec=session.codec,
                width=session.width,
                height=session.height,
                video_extradata=session.parameter_sets or b"",
                audio_codec=audio.name if audio is not None else "",
                audio_sample_rate=audio.sample_rate if audio is not None else 0,
                audio_channels=audio.channels if audio is not None else 0,
                audio_extradata=bytes(audio.extradata or b"") if audio is not None else b"",
                init_segment=init_segment(templates),
            )
        )

    def _publish(self, kind: int, packet: Any, pts_ns: int, dts_ns: int, keyframe: bool, duration_ns: int = 0) -> None:
        hub = self.hub
        if hub is not None and hub.wanted:
            hub.publish(
                RelayPacket(
                    kind, bytes(packet), pts_ns, dts_ns, keyframe, hub.generation, time.monotonic_ns(), duration_ns
                )
            )

    def _note_unfenced(self) -> None:
        """Mark the run unfenced once the site says so (at each segment boundary). The site also
        marks every open run the moment it loses its fencing; this covers a run begun meanwhile."""
        fencing = self.fencing
        if fencing is not None and fencing.unfenced and not self._run_unfenced and self._run_id is not None:
            self._storage.catalogue.mark_runs_unfenced(self._run_id)
            self._run_unfenced = True

    def _close_segment(self, end_ns: int) -> None:
        segment = self.segment
        if segment is None:
            return
        self._note_unfenced()
        self.segment = None
        self._storage.close_segment(segment, end_ns)
        self.last_end_ns = max(self.last_end_ns, end_ns)
        self.counters.segments_written += 1
        self.events.on_segment_closed(segment, end_ns)

    def _slew(self, media_ns: int, wall_ns: int) -> None:
        """At a segment boundary: re-anchor here (continuous) with a rate that absorbs the drift
        measured over the last segment during the next one."""
        drift_ns = self._min_lateness_ns or 0
        self._min_lateness_ns = None
        self.clock_rate.on_segment_end(wall_ns)
        # The first since an anchor mostly works off the anchor's error: faster (timeline.py).
        catch_up, self._anchor_error_open = self._anchor_error_open, False
        rate_ppm = drift_ns * 1_000_000 // self._segment_duration_ns
        self.timeline.anchor(media_ns, wall_ns, rate_ppm, catch_up=catch_up)

    def _footage_end_ns(self) -> int:
        session = self._session
        if session is None or session.last_video_dts_wall_ns is None:
            return self.last_end_ns
        return max(session.last_video_dts_wall_ns, session.last_video_pts_wall_ns) + session.video_delta_ns

    def _end_run(self, reason: GapReason, detail: str) -> None:
        if self.segment is not None:
            end_ns = self._footage_end_ns()
            try:
                self._close_segment(end_ns)
            except (OSError, av.FFmpegError):
                segment, self.segment = self.segment, None
                if segment is not None:
                    recovered = self._storage.abort_segment(segment, reason)
                    if recovered is not None and recovered.end_ns is not None:
                        end_ns = recovered.end_ns
                        self.last_end_ns = max(self.last_end_ns, end_ns)
                raise
            finally:
                if self._run_id is not None:
                    self._storage.end_run(self.camera_id, self._run_id, end_ns, reason, detail)
                    self._run_id = None
        if self._session is not None:
            self._session.last_video_dts_wall_ns = None
            self._session.last_video_dts_media_ns = None
            self._session.last_video_pts_wall_ns = 0

    def _release(self, end_ns: int) -> None:
        assert self.fencing is not None
        self._close_segment(end_ns)
        if self._run_id is not None:
            self._storage.end_run(self.camera_id, self._run_id, end_ns, GapReason.FAILOVER, self.fencing.release_detail)
            self._run_id = None
        self.released = True

    def _clock_stepped(self, session: _Session, step_ns: int) -> None:
        self.counters.clock_steps += 1
        forward = step_ns > 0
        detail = f"wall clock stepped {'forward' if forward else 'back'} by {abs(step_ns) / NS_PER_S:.3f}s"
        self._end_run(GapReason.CLOCK_STEP, detail)
        self.clock_held = self.timeline.rebase_after_step(not_before_ns=self.last_end_ns)
        session.need_keyframe = True
        self.events.on_alarm("clock_step", detail + ("; recorder time held monotonic" if self.clock_held else ""))

    def abort(self, reason: GapReason, detail: str = "") -> None:
        """A write failed: keep what reached the disk, end the run, forget the session."""
        segment, self.segment = self.segment, None
        run_id, self._run_id = self._run_id, None
        self._session = None
        # The session is forgotten even when the catalogue cannot record the abort (disk full,
        # read-only): the row left 'writing' is recovered before the camera's next segment opens.
        end_ns = self.last_end_ns
        if segment is not None:
            recovered = self._storage.abort_segment(segment, reason)
            if recovered is not None and recovered.end_ns is not None:
                end_ns = recovered.end_ns
                self.last_end_ns = max(self.last_end_ns, end_ns)
        if run_id is not None:
            self._storage.end_run(self.camera_id, run_id, end_ns, reason, detail)


def _probe_size(codec: str, extradata: bytes, keyframe: bytes) -> tuple[int, int] | None:
    """Width and height of a keyframe carrying new parameter sets (decodes that one frame)."""
    try:
        context: Any = av.CodecContext.create(codec, "r")
        context.extradata = extradata
        context.thread_count = 1
        frames = list(context.decode(av.Packet(keyframe))) + list(context.decode(None))
    except (av.FFmpegError, ValueError):
        return None
    return (frames[0].width, frames[0].height) if frames else None
