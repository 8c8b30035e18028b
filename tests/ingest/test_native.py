"""NativeSource: vmsd's RTSP client behind the recorder's source interface, against the real
simulator (what the segmenter and writer get is what FFmpeg's source gives: Annex-B access units,
PyAV streams with codec, size and parameter sets), and its stall and interrupt paths."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import pytest

from tests.support.clips import Clip, make_clip
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.ingest import native
from vmsd.ingest.native import START_CODE, NativeSource, adts_frame, annex_b
from vmsd.ingest.rtsp.clock import ClockReading, ClockStatus
from vmsd.ingest.rtsp.loop import IngestLoop
from vmsd.ingest.source import SourceError
from vmsd.units import NS_PER_MS, NS_PER_S

CLIPS_DIR = "/tmp/vmsd-test-clips"


def test_annex_b_replaces_each_length_by_a_start_code() -> None:
    units = [b"\x67\x64\x00\x1f", b"\x68\xee", b"\x65" + bytes(300)]
    prefixed = b"".join(len(u).to_bytes(4, "big") + u for u in units)
    assert annex_b(prefixed) == b"".join(START_CODE + u for u in units)
    assert annex_b(b"") == b""


def test_adts_frames_decode_with_ffmpeg() -> None:
    """An ADTS header built from an AudioSpecificConfig (AAC-LC, 16 kHz, mono: 0x1408) is read
    by FFmpeg's ADTS demuxer as that configuration."""
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 16000, "mono", "fltp"
    encoder.open()
    frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
    frame.sample_rate = 16000
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    raw = [bytes(p) for _ in range(4) for p in encoder.encode(frame)]
    assert raw
    container = av.open(io.BytesIO(b"".join(adts_frame(bytes.fromhex("1408"), r) for r in raw)), format="aac")
    stream = container.streams.audio[0]
    assert (stream.codec_context.name, stream.codec_context.sample_rate, stream.codec_context.channels) == (
        "aac",
        16000,
        1,
    )
    assert sum(1 for _ in container.demux(stream) if _.size) == len(raw)


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {
        "h264": make_clip(CLIPS_DIR, codec="h264", width=320, height=240, seconds=4, audio=True),
        "h265": make_clip(CLIPS_DIR, codec="h265", width=320, height=240, seconds=4),
    }


@pytest.fixture(scope="module")
def sim(clips: dict[str, Clip]) -> Iterator[CameraSimulator]:
    mounts = [MountSpec("h264", clips["h264"]), MountSpec("h265", clips["h265"]), MountSpec("stally", clips["h265"])]
    with CameraSimulator(mounts) as s:
        yield s


def source_for(url: str, readings: list[ClockReading] | None = None, read_timeout_s: float = 4) -> NativeSource:
    return NativeSource(
        url,
        transport="tcp",
        open_timeout_ns=10 * NS_PER_S,
        read_timeout_ns=int(read_timeout_s * NS_PER_S),
        on_clock=readings.append if readings is not None else None,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("mount", "codec"), [("h264", "h264"), ("h265", "hevc")])
def test_packets_are_what_the_ffmpeg_source_gives(sim: CameraSimulator, mount: str, codec: str) -> None:
    readings: list[ClockReading] = []
    source = source_for(sim.url(mount), readings)
    source.open()
    try:
        assert source.video.codec_context.name == codec
        assert (source.video.codec_context.width, source.video.codec_context.height) == (320, 240)
        extradata = bytes(source.video.codec_context.extradata or b"")
        assert extradata.startswith(b"\x00\x00\x00\x01") or extradata.startswith(b"\x00\x00\x01")  # Annex B sets
        video, audio = [], []
        began = time.monotonic()
        for packet in source.packets():
            (video if packet.stream is source.video else audio).append(packet)
            if time.monotonic() - began > 7 and readings:
                break
    finally:
        source.close()
    assert (source.audio is not None) == (mount == "h264")
    if source.audio is not None:
        assert source.audio.codec_context.name == "aac" and audio
        assert all(p.stream is source.audio and p.time_base == Fraction(1, 16000) for p in audio)
    assert video[0].is_keyframe and sum(p.is_keyframe for p in video) >= 2
    assert all(bytes(p)[:4] == START_CODE for p in video)
    assert {b.pts - a.pts for a, b in itertools.pairwise(video)} == {3600}  # 25 fps at 90 kHz
    assert all(p.time_base == Fraction(1, 90000) and p.pts == p.dts for p in video)
    # The frames decode as FFmpeg's own RTSP source's would.
    decoder = av.CodecContext.create(codec, "r")
    decoder.extradata = extradata
    frames = [f for p in video for f in decoder.decode(av.Packet(bytes(p)))]
    assert len(frames) >= len(video) - 2 and (frames[0].width, frames[0].height) == (320, 240)
    # The simulator's sender reports: the camera clock is right.
    assert readings[-1].status is ClockStatus.OK, readings[-1]


@pytest.mark.slow
def test_no_video_while_rtcp_goes_on_is_a_stall(sim: CameraSimulator) -> None:
    source = source_for(sim.url("stally"), read_timeout_s=2)
    source.open()
    try:
        packets = source.packets()
        next(packets)
        sim.stall("stally", 6)
        stalled = time.monotonic()
        with pytest.raises(SourceError, match=r"no video for 2\.0s"):
            for _ in packets:
                stalled = time.monotonic()
        assert 1.5 < time.monotonic() - stalled < 4
    finally:
        source.close()


@pytest.mark.slow
def test_interrupt_from_another_thread_ends_the_session(sim: CameraSimulator) -> None:
    source = source_for(sim.url("h265"), read_timeout_s=30)
    source.open()
    try:
        packets = source.packets()
        next(packets)
        threading.Timer(1.0, source.interrupt).start()
        with pytest.raises(SourceError, match="interrupted"):
            for _ in packets:
                pass
    finally:
        source.close()
    assert source.clock_reading().status is ClockStatus.UNKNOWN  # closed: nothing known


def test_an_unreachable_camera_is_a_source_error_without_credentials() -> None:
    source = NativeSource(
        "rtsp://admin:s3cret@127.0.0.1:1/x", transport="tcp", open_timeout_ns=2 * NS_PER_S, read_timeout_ns=NS_PER_S
    )
    with pytest.raises(SourceError) as error:
        source.open()
    assert "s3cret" not in str(error.value) and "cannot open" in str(error.value)


@pytest.mark.slow
def test_cameras_share_one_ingest_loop_and_their_units_come_in_batches(sim: CameraSimulator) -> None:
    """Two cameras on one ingest loop: both read on its one drain tick; recording alone wakes the
    reading thread at most once per batch (the loop's wake-ups, not the camera's packets, set the
    pace), and a camera someone watches live is not held back to the batch."""
    ingest = IngestLoop("ingest-test")
    ingest.start()
    batch_ns = 300 * NS_PER_MS
    sources = [
        NativeSource(
            sim.url(mount),
            transport="tcp",
            open_timeout_ns=10 * NS_PER_S,
            read_timeout_ns=4 * NS_PER_S,
            ingest=ingest,
            batch_ns=batch_ns,
            urgent=lambda watched=watched: watched,
        )
        for mount, watched in (("h264", False), ("h265", True))
    ]
    counts = [0, 0]
    keyframes = [0, 0]

    def read(index: int) -> None:
        for packet in sources[index].packets():
            video = packet.stream.type == "video"
            counts[index] += video
            keyframes[index] += video and packet.is_keyframe
            if counts[index] >= 50:  # 2 s of video
                return

    for source in sources:
        source.open()
    try:
        began_ns = time.monotonic_ns()
        assert len(ingest.drain._readers) == 2  # both sockets on the one drain
        ticks_before = ingest.drain.ticks
        other = threading.Thread(target=read, args=(1,))
        other.start()
        read(0)
        other.join(30)
        elapsed_ns = time.monotonic_ns() - began_ns
        assert counts == [50, 50]
        assert ingest.drain.ticks > ticks_before
        # Never more often than once per batch_ns or keyframe (the first wake-up aside) ...
        assert 1 <= sources[0].wake_ups <= elapsed_ns // batch_ns + keyframes[0] + 2
        # ... while the watched camera is woken on every tick that brought units.
        assert sources[1].wake_ups > sources[0].wake_ups
    finally:
        for source in sources:
            source.close()
    assert not ingest.drain._readers  # closing a session takes its socket off the drain


@pytest.mark.slow
def test_a_keyframe_wakes_the_recorder_thread_without_waiting_for_the_batch(sim: CameraSimulator) -> None:
    """A video keyframe ends the GOP before it, a fragment to write: the recorder thread gets it
    within a drain tick or two of its arrival, not at the end of a (here 60 s) batch — so what a
    kill -9 may lose stays the GOP in progress."""
    ingest = IngestLoop("ingest-keyframe-test")
    ingest.start()
    source = NativeSource(
        sim.url("h264"),
        transport="tcp",
        open_timeout_ns=10 * NS_PER_S,
        read_timeout_ns=90 * NS_PER_S,
        ingest=ingest,
        batch_ns=60 * NS_PER_S,
    )
    source.open()
    delays_ns: list[int] = []
    try:
        for packet in source.packets():
            if packet.stream.type == "video" and packet.is_keyframe:
                delays_ns.append(time.monotonic_ns() - packet.arrival_mono_ns)
                if len(delays_ns) == 3:  # the first (opening) and two mid-stream GOPs of 2 s
                    break
    finally:
        source.close()
    assert max(delays_ns[1:]) < 500 * NS_PER_MS, delays_ns  # the idle tick is 100 ms
    assert source.wake_ups <= 4  # the keyframes' (and the opening's), not a tick's each


@pytest.mark.slow
@pytest.mark.parametrize("bound", ["per camera", "shared by the loop's cameras"])
def test_a_recorder_that_takes_nothing_ends_the_session_instead_of_growing(
    sim: CameraSimulator, monkeypatch: pytest.MonkeyPatch, bound: str
) -> None:
    """A recorder thread stuck (a hanging disk) while the ingest loop keeps reading: past the
    bound the session ends with an error naming it, and nothing more is queued. The bound is
    the smaller of a camera's own and its share of the loop's (all cameras stuck at once)."""
    if bound == "per camera":
        monkeypatch.setattr(native, "MAX_PENDING_BYTES", 100_000)
    source = source_for(sim.url("h264"))
    source.open()
    if bound != "per camera":
        assert source._ingest is not None
        monkeypatch.setattr(native, "PENDING_BUDGET_BYTES", 100_000 * source._ingest.sessions)
    try:
        deadline = time.monotonic() + 20
        while not source._ended_flag and time.monotonic() < deadline:
            time.sleep(0.05)  # the recorder thread takes nothing
        assert source._ended_flag, "the session went on with 20 s of units waiting"
        taken = 0
        with pytest.raises(SourceError, match="not keeping up"):
            for packet in source.packets():
                taken += packet.size
        assert 100_000 < taken < 100_000 + 200_000  # the bound, and at most the unit that crossed it
    finally:
        source.close()
