"""Segmenting under a fake clock: exact integer timestamps, wall-clock-aligned rotation,
parameter-set changes, timestamp jumps, clock steps and garbage."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.feed import feed
from vmsd import fsck
from vmsd.clock import FakeClock
from vmsd.ingest.bitstream import nal_units
from vmsd.ingest.fencing import Fencing
from vmsd.ingest.native import NativePacket
from vmsd.ingest.segmenter import Segmenter
from vmsd.ingest.timeline import TimelineLimits
from vmsd.storage.fmp4 import summarize
from vmsd.storage.store import Storage

S = 1_000_000_000
# 2026-01-01T00:00:55Z: five seconds before a minute boundary.
T0 = 1_767_225_655 * S
# 2026-01-01T00:00:00Z: a minute boundary, so a 60 s segment does not rotate for a while.
T_MIN = 1_767_225_600 * S


def _segmenter(
    storage: Storage, clock: FakeClock, duration_ns: int = 10 * S, limits: TimelineLimits | None = None
) -> Segmenter:
    storage.catalogue.upsert_camera("cam", "", "", 0)
    return Segmenter("cam", storage, clock, segment_duration_ns=duration_ns, limits=limits)


def test_rotation_is_aligned_to_the_wall_clock_with_exact_times(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T0)
    segmenter = _segmenter(storage, clock)
    feed(segmenter, clock, h264_ts)
    rows = storage.catalogue.segments("cam")
    # Keyframes every 2 s from :55 → the first keyframe at/after :00 is :01, then :11 … the
    # clip is 20 s long, so footage ends at :15.
    assert [(r.start_ns - T0, r.end_ns - T0) for r in rows] == [(0, 6 * S), (6 * S, 16 * S), (16 * S, 20 * S)]
    assert [r.frames for r in rows] == [150, 250, 100]
    assert all(r.state == "complete" for r in rows)
    # Each file's own timeline matches its catalogue row exactly (no drift, no holes).
    for row in rows:
        summary = summarize(storage.segment_path(row))
        assert summary.duration_ns == row.end_ns - row.start_ns
        assert (summary.codec, summary.width, summary.height) == ("h264", 320, 240)
    # The run ended with a gap that stays open until the camera records again.
    gaps = storage.catalogue.gaps("cam")
    assert [(g.start_ns - T0, g.end_ns, g.reason) for g in gaps] == [(20 * S, None, "camera_offline")]
    assert fsck.check(storage).ok


def test_next_session_closes_the_gap_and_links_the_chain(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T0)
    segmenter = _segmenter(storage, clock)
    feed(segmenter, clock, h264_ts, seconds=4)
    clock.advance(7 * S)  # camera away for 7 s
    feed(segmenter, clock, h264_ts, seconds=4)
    rows = storage.catalogue.segments("cam")
    gaps = storage.catalogue.gaps("cam")
    assert gaps[0].start_ns == rows[0].end_ns == T0 + 4 * S
    assert gaps[0].end_ns == rows[1].start_ns
    # 4 s of footage, then the clock moved 3.96 s (last frame) + 7 s before the next session's
    # first keyframe arrived.
    assert rows[1].start_ns - T0 == 4 * S - 40_000_000 + 7 * S
    assert rows[1].prev_sha256 == rows[0].sha256
    assert fsck.check(storage).ok


def test_h265_and_audio_are_recorded(storage: Storage, h265_ts: Path, h264_aac_mkv: Path) -> None:
    clock = FakeClock(wall_ns=T0)
    segmenter = _segmenter(storage, clock, 60 * S)
    feed(segmenter, clock, h265_ts)
    storage.catalogue.upsert_camera("aud", "", "", 0)
    audio_segmenter = Segmenter("aud", storage, clock, segment_duration_ns=60 * S)
    feed(audio_segmenter, clock, h264_aac_mkv)
    hevc = storage.catalogue.segments("cam")
    assert {r.video_codec for r in hevc} == {"hevc"}
    assert summarize(storage.segment_path(hevc[0])).codec == "hevc"
    with_audio = storage.catalogue.segments("aud")
    assert all(r.has_audio for r in with_audio)
    with av.open(str(storage.segment_path(with_audio[0]))) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        audio_packets = sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
    assert audio_packets > 0
    assert audio_segmenter.counters.audio_packets > 300


def _native(packet: Any, video: Any, arrival_mono_ns: int) -> NativePacket:
    """The packet as the native source hands it over: an MP4 sample (4-byte NAL lengths)."""
    data = bytes(packet)
    sample = b"".join(len(data[a:b]).to_bytes(4, "big") + data[a:b] for a, b in nal_units(data, len(data), False))
    return NativePacket(sample, video, packet.is_keyframe, packet.time_base, packet.pts, True, arrival_mono_ns)


@pytest.mark.parametrize("native", [False, True])
def test_new_parameter_sets_start_a_new_segment(
    storage: Storage, h264_ts: Path, h264_ts_small: Path, native: bool
) -> None:
    """Also for the native source's packets (MP4 samples, written by the fragment writer)."""
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)
    # One session whose stream switches to another resolution mid-way (in-band SPS change).
    first = av.open(str(h264_ts))
    second = av.open(str(h264_ts_small))
    video = first.streams.video[0]
    segmenter.begin_session(video, None, own_fragments=native)
    last_ns = None
    offset_ns = 0
    for container, limit in ((first, 4 * S), (second, 4 * S)):
        base = None
        for packet in container.demux(container.streams.video[0]):
            if packet.pts is None:
                continue
            t_ns = packet.pts * packet.time_base.numerator * S // packet.time_base.denominator
            base = t_ns if base is None else base
            if t_ns - base >= limit:
                break
            now = offset_ns + t_ns - base
            if last_ns is not None:
                clock.advance(now - last_ns)
            last_ns = now
            # Present the packet as the session's video stream with continuous timestamps.
            packet.stream = video  # type: ignore[misc]
            packet.pts = packet.dts = (offset_ns + t_ns - base) * 90_000 // S
            packet.time_base = video.time_base
            segmenter.push(_native(packet, video, clock.mono_ns()) if native else packet)
        offset_ns += limit
    segmenter.end_session("camera_offline")
    rows = storage.catalogue.segments("cam")
    assert [(r.width, r.height) for r in rows] == [(320, 240), (160, 120)]
    assert rows[0].end_ns == rows[1].start_ns == T_MIN + 4 * S
    assert (summarize(storage.segment_path(rows[1])).width, summarize(storage.segment_path(rows[1])).height) == (
        160,
        120,
    )
    assert not storage.catalogue.gaps("cam")[0].end_ns
    assert fsck.check(storage).ok


def test_garbage_packets_are_dropped_until_the_next_keyframe(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)
    rng = random.Random(7)

    def corrupt(index: int, packet: Any) -> None:
        if 60 <= index < 65:  # five frames of random bytes in the second GOP
            packet.update(bytes(rng.getrandbits(8) for _ in range(packet.size)))

    feed(segmenter, clock, h264_ts, seconds=8, before_packet=corrupt)
    assert segmenter.counters.dropped_garbage >= 4
    # The rest of that GOP (after the garbage) is skipped until the keyframe at frame 100.
    assert segmenter.counters.video_packets == 200 - (100 - 60)
    rows = storage.catalogue.segments("cam")
    assert len(rows) == 1 and fsck.check(storage).ok


def test_camera_timestamp_jump_reanchors_without_overlap(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)

    def jump(index: int, packet: Any) -> None:
        if index >= 100:  # the camera's clock leaps an hour ahead at frame 100
            packet.pts = packet.dts = packet.pts + 3600 * 90_000

    feed(segmenter, clock, h264_ts, seconds=8, before_packet=jump)
    assert segmenter.counters.timestamp_jumps == 1
    rows = storage.catalogue.segments("cam")
    # Still one continuous segment of the 8 s that really elapsed.
    assert [(r.start_ns - T_MIN, r.end_ns - T_MIN) for r in rows] == [(0, 8 * S)]


def test_forward_clock_step_splits_the_run(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)

    def step(index: int, packet: Any) -> None:
        if index == 75:
            clock.step_wall(3600 * S)

    feed(segmenter, clock, h264_ts, seconds=8, before_packet=step)
    rows = storage.catalogue.segments("cam")
    gaps = storage.catalogue.gaps("cam")
    assert gaps[0].reason == "clock_step"
    assert "forward by 3600.000s" in gaps[0].detail
    assert rows[0].end_ns == gaps[0].start_ns
    # Footage ends after frame 74 (3 s); frames 75-99 wait for a keyframe; frame 100 (4 s) is
    # placed on the stepped clock.
    assert rows[1].start_ns - rows[0].end_ns == 3600 * S + 1 * S
    assert "clock_step" in [g.reason for g in gaps]
    assert fsck.check(storage).ok


def test_backward_clock_step_never_overlaps(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)

    def step(index: int, packet: Any) -> None:
        if index == 75:
            clock.step_wall(-3600 * S)

    feed(segmenter, clock, h264_ts, seconds=8, before_packet=step)
    # and a new session after the step starts no earlier than the footage already recorded
    feed(segmenter, clock, h264_ts, seconds=2)
    rows = storage.catalogue.segments("cam")
    for before, after in itertools.pairwise(rows):
        assert after.start_ns >= before.end_ns
    assert segmenter.clock_held
    assert storage.catalogue.gaps("cam")[0].reason == "clock_step"
    assert fsck.check(storage).ok


def test_network_freeze_and_burst_keeps_the_cameras_timing(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 60 * S)

    def freeze(index: int, packet: Any) -> None:
        if index == 60:  # nothing arrives for 3 s, then everything queued arrives late
            clock.advance(3 * S)

    feed(segmenter, clock, h264_ts, seconds=8, before_packet=freeze)
    assert segmenter.counters.timestamp_jumps == 0
    [row] = storage.catalogue.segments("cam")
    assert (row.start_ns - T_MIN, row.end_ns - T_MIN, row.frames) == (0, 8 * S, 200)


def test_camera_clock_drift_is_slewed_at_segment_boundaries(storage: Storage, h264_ts: Path) -> None:
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 2 * S, TimelineLimits(rate_span_ns=8 * S))

    def drift(index: int, packet: Any) -> None:
        if index and index % 25 == 0:  # the recorder's clock runs 1 ms per second ahead of the camera's
            clock.advance(1_000_000)

    feed(segmenter, clock, h264_ts, seconds=16, before_packet=drift)
    rows = storage.catalogue.segments("cam")
    for before, after in itertools.pairwise(rows):
        assert after.start_ns == before.end_ns  # slewing never breaks continuity
    # Without slewing the footage would end 16 ms early; slewing recovers most of it.
    assert segmenter.timeline.rate_ppm > 0
    assert abs(rows[-1].end_ns - (T_MIN + 16 * S + 16_000_000)) < 6_000_000
    # And the camera clock's rate is measured as it is: 1 ms per second.
    assert 900 <= segmenter.clock_rate.rate_ppm <= 1100


def test_a_late_first_keyframe_is_slewed_away_but_is_not_a_clock_rate(storage: Storage, h264_ts: Path) -> None:
    """Encoders take longer over a session's first keyframe, so it arrives later than the frames
    after it: the timeline works that off at its slew limit, but the camera's clock runs at the
    recorder's rate and is reported so (a function check warned "-1000 ppm" for every camera)."""
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 2 * S, TimelineLimits(rate_span_ns=8 * S))
    _feed_native(segmenter, clock, h264_ts, 16 * S, lambda media_ns: 100_000_000 if media_ns == 0 else media_ns)
    assert segmenter.timeline.rate_ppm == -1000
    assert abs(segmenter.clock_rate.rate_ppm) <= 50


def test_a_late_first_keyframe_is_caught_up_within_a_segment(storage: Storage, h264_ts: Path) -> None:
    """Its 100 ms are worked off during the first full segment (1 %), not over 100 s at 1000 ppm:
    the footage ends when its last frame arrived, give or take the 1000 ppm that remain."""
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 10 * S)
    _feed_native(segmenter, clock, h264_ts, 20 * S, lambda media_ns: 100_000_000 if media_ns == 0 else media_ns)
    rows = storage.catalogue.segments("cam")
    assert rows[0].start_ns == T_MIN + 100_000_000  # the first keyframe's own (late) arrival
    for before, after in itertools.pairwise(rows):
        assert after.start_ns == before.end_ns
    assert abs(rows[-1].end_ns - (T_MIN + 20 * S)) <= 1_000_000


def _feed_native(
    segmenter: Segmenter,
    clock: FakeClock,
    path: Path,
    duration_ns: int,
    arrival: Callable[[int], int],
    batch_ns: int = 0,
    first_taken_ns: int = 0,
) -> None:
    """One session of the file's video as the native source gives it: each unit stamped on
    arrival (`arrival(media_ns)` after the session began), taken by the recorder thread at the
    end of its batch of `batch_ns` but not before `first_taken_ns`."""
    container = av.open(str(path))
    video = container.streams.video[0]
    segmenter.begin_session(video, None, own_fragments=True)
    began_mono_ns = clock.mono_ns()
    first_media_ns: int | None = None
    for packet in container.demux(video):
        if packet.size == 0 or packet.pts is None:
            continue
        media_ns = packet.pts * S * packet.time_base.numerator // packet.time_base.denominator
        first_media_ns = media_ns if first_media_ns is None else first_media_ns
        if media_ns - first_media_ns >= duration_ns:
            break
        arrival_ns = arrival(media_ns - first_media_ns)
        taken_ns = max(first_taken_ns, -(-arrival_ns // batch_ns) * batch_ns if batch_ns else arrival_ns)
        clock.advance(max(0, began_mono_ns + taken_ns - clock.mono_ns()))
        segmenter.push(_native(packet, video, began_mono_ns + arrival_ns))
    segmenter.end_session("camera_offline")
    container.close()


def test_native_units_are_timed_by_their_arrival_not_by_when_the_recorder_takes_them(
    storage: Storage, h264_ts: Path
) -> None:
    """The native source stamps each unit at the ingest loop's read; its recorder thread takes
    them in batches (every 100 ms), the first ones 300 ms late (the stream is probed first). The
    footage starts when the first keyframe arrived and no clock drift is invented: taking the
    thread's time had anchored it late, then slewed it at the limit for minutes."""
    clock = FakeClock(wall_ns=T_MIN)
    segmenter = _segmenter(storage, clock, 2 * S)
    _feed_native(segmenter, clock, h264_ts, 6 * S, lambda media_ns: media_ns, 100_000_000, 300_000_000)
    rows = storage.catalogue.segments("cam")
    assert rows[0].start_ns == T_MIN
    assert segmenter.timeline.rate_ppm == 0
    assert rows[-1].end_ns == T_MIN + 6 * S
    for before, after in itertools.pairwise(rows):
        assert after.start_ns == before.end_ns


def test_a_site_run_carries_its_epoch_and_a_release_ends_it_at_the_next_boundary(
    storage: Storage, h264_ts: Path
) -> None:
    clock = FakeClock(wall_ns=T0)
    fencing = Fencing(epoch=41)
    storage.catalogue.upsert_camera("cam", "", "", 0)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=10 * S, fencing=fencing)

    def release_at_8s(index: int, packet: Any) -> None:
        if index == 200:  # 8 s in (25 fps): inside the second segment
            fencing.unfenced = True  # past the fencing deadline by then
            fencing.release_detail = "recorded by rec-b from epoch 57"
            fencing.release = True

    feed(segmenter, clock, h264_ts, before_packet=release_at_8s, end_reason=None)
    assert segmenter.released
    rows = storage.catalogue.segments("cam")
    # :00-:06, then :06 until the next boundary keyframe (:16): nothing is opened after it.
    assert [(r.start_ns - T0, r.end_ns - T0) for r in rows] == [(0, 6 * S), (6 * S, 16 * S)]
    [run] = storage.catalogue.site_runs("cam")
    assert (run.epoch, run.unfenced, run.end_reason, run.end_ns) == (41, True, "failover", T0 + 16 * S)
    [gap] = storage.catalogue.gaps("cam")
    assert (gap.reason, gap.start_ns, gap.end_ns, gap.detail) == (
        "failover",
        T0 + 16 * S,
        None,
        "recorded by rec-b from epoch 57",
    )
    assert fsck.check(storage).ok
