"""The asyncio client against the real camera simulator (GStreamer's rtsp-server): what it
yields decodes with PyAV, and the simulator's sender reports give a camera clock near 0."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from itertools import pairwise

import av
import pytest

from tests.support.clips import Clip, make_clip
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.ingest.rtsp.auth import AuthError
from vmsd.ingest.rtsp.client import ClientError, ClockSample, MediaUnit, RtspClient
from vmsd.ingest.rtsp.clock import ClockStatus
from vmsd.ingest.rtsp.drain import Drain
from vmsd.ingest.rtsp.sdp import aac_config
from vmsd.ingest.rtsp.session import SessionError, SessionOptions
from vmsd.units import NS_PER_MS, NS_PER_S

from .rtp_streams import clip_access_units, decode_video, length_prefixed, split_length_prefixed


def vcl_nals(codec: str, nals: list[bytes]) -> list[bytes]:
    return [n for n in nals if ((n[0] >> 1) & 0x3F < 32 if codec == "hevc" else 1 <= n[0] & 0x1F <= 5)]


pytestmark = pytest.mark.slow  # the real camera simulator

CLIPS_DIR = "/tmp/vmsd-test-clips"


@pytest.fixture(scope="module")
def clips() -> dict[str, Clip]:
    return {
        "h264": make_clip(CLIPS_DIR, codec="h264", width=320, height=240, seconds=4, audio=True),
        "h265": make_clip(CLIPS_DIR, codec="h265", width=320, height=240, seconds=4),
    }


@pytest.fixture(scope="module")
def sim(clips: dict[str, Clip]) -> Iterator[CameraSimulator]:
    with CameraSimulator([MountSpec("h264", clips["h264"]), MountSpec("h265", clips["h265"])]) as s:
        yield s


async def collect(client: RtspClient, *, seconds: float, clock_samples: int, limit_s: float = 20) -> list[object]:
    """Events for ``seconds`` and until enough clock samples came (or the limit passed)."""
    events: list[object] = []
    start = time.monotonic()
    async for event in client.events():
        events.append(event)
        clocks = sum(isinstance(e, ClockSample) for e in events)
        elapsed = time.monotonic() - start
        if (elapsed >= seconds and clocks >= clock_samples) or elapsed > limit_s:
            break
    return events


@pytest.mark.parametrize(("mount", "codec"), [("h264", "h264"), ("h265", "hevc")])
async def test_access_units_decode_and_the_camera_clock_is_near_zero(
    sim: CameraSimulator, clips: dict[str, Clip], mount: str, codec: str
) -> None:
    client = RtspClient(sim.url(mount))
    await client.start()
    try:
        events = await collect(client, seconds=5, clock_samples=1)
    finally:
        await client.aclose()
    video = [e for e in events if isinstance(e, MediaUnit) and e.track == 0]
    assert video[0].keyframe  # the stream starts at a keyframe
    frames = decode_video(codec, [u.data for u in video])
    assert len(frames) == len(video) >= 2 * clips[mount].gop_frames
    assert sum(u.keyframe for u in video) >= 2
    assert (frames[0].width, frames[0].height) == (320, 240)
    # 25 fps on a 90 kHz clock, nothing lost on loopback.
    assert {b.rtp_timestamp - a.rtp_timestamp for a, b in pairwise(video)} == {3600}
    assert client.counters.lost_packets == 0 and client.counters.bad_rtp == 0
    # Byte for byte what the encoder wrote: whole for other frames; keyframes compared by their
    # slices, since GStreamer's payloader (config-interval=-1) puts parameter sets before them.
    clip_units = clip_access_units(clips[mount])
    whole = {length_prefixed(nals) for nals in clip_units}
    slices = {length_prefixed(vcl_nals(codec, nals)) for nals in clip_units}
    for u in video:
        if u.keyframe:
            assert length_prefixed(vcl_nals(codec, split_length_prefixed(u.data))) in slices
        else:
            assert bytes(u.data) in whole
    samples = [e for e in events if isinstance(e, ClockSample)]
    assert samples, "no RTCP sender report within 20 s"
    reading = samples[-1].reading
    assert reading.status is ClockStatus.OK
    assert reading.offset_ns is not None and abs(reading.offset_ns) < 100 * NS_PER_MS
    assert client.clock_reading().status is ClockStatus.OK


async def test_rtp_over_udp(sim: CameraSimulator, clips: dict[str, Clip]) -> None:
    client = RtspClient(sim.url("h264"), SessionOptions(transport="udp"))
    await client.start()
    try:
        events = await collect(client, seconds=3, clock_samples=1)
    finally:
        await client.aclose()
    video_track = client.session.tracks[0]
    assert video_track.client_ports is not None and video_track.client_ports[0] % 2 == 0
    assert video_track.server_ports is not None
    video = [e for e in events if isinstance(e, MediaUnit) and e.track == 0]
    assert len(decode_video("h264", [u.data for u in video])) == len(video) > clips["h264"].gop_frames
    assert {b.rtp_timestamp - a.rtp_timestamp for a, b in pairwise(video)} == {3600}
    assert any(isinstance(e, MediaUnit) and e.codec == "aac" for e in events)
    assert [e for e in events if isinstance(e, ClockSample)][-1].reading.status is ClockStatus.OK
    assert client.counters.lost_packets == 0


async def test_two_cameras_read_on_one_drain_tick(sim: CameraSimulator) -> None:
    drain = Drain(tick_ns=20 * NS_PER_MS)
    seen: dict[str, list[MediaUnit]] = {"h264": [], "h265": []}

    def sink(mount: str) -> Callable[[object], None]:
        return lambda e: seen[mount].append(e) if isinstance(e, MediaUnit) and e.track == 0 else None

    clients = {m: RtspClient(sim.url(m), drain=drain, on_event=sink(m)) for m in seen}
    for c in clients.values():
        await c.start()
    try:
        started, ticks0 = time.monotonic(), drain.ticks
        reads0 = {m: c.counters.reads for m, c in clients.items()}
        while min(len(v) for v in seen.values()) < 60:
            assert time.monotonic() - started < 20, "not 60 units each within 20 s"
            await asyncio.sleep(0.1)
        ticks = drain.ticks - ticks0
    finally:
        for c in clients.values():
            await c.aclose()
    for mount, codec in (("h264", "h264"), ("h265", "hevc")):
        units = seen[mount]
        assert len(decode_video(codec, [u.data for u in units])) == len(units)
        assert {b.rtp_timestamp - a.rtp_timestamp for a, b in pairwise(units)} == {3600}
        # Read on the ticks only: never more reads than ticks (one per tick unless a read fills
        # the whole buffer, which 1 Mbit/s never does).
        assert 0 < clients[mount].counters.reads - reads0[mount] <= ticks
    stopped = drain.ticks
    await asyncio.sleep(0.1)
    assert drain.ticks == stopped  # the tick stopped with the last connection


async def test_a_drained_camera_going_away_ends_the_events(sim: CameraSimulator) -> None:
    client = RtspClient(sim.url("h265"), drain=Drain())
    await client.start()
    try:
        sim.drop("h265", 1)
        with pytest.raises(ClientError, match="closed the connection"):
            async for _ in client.events():
                pass
    finally:
        await client.aclose()


async def test_aac_frames_decode(sim: CameraSimulator) -> None:
    client = RtspClient(sim.url("h264"))
    await client.start()
    try:
        events = await collect(client, seconds=3, clock_samples=0)
    finally:
        await client.aclose()
    [audio_track] = [t for t in client.session.tracks if t.codec == "aac"]
    config = aac_config(audio_track.media)
    audio = [e for e in events if isinstance(e, MediaUnit) and e.codec == "aac"]
    assert len(audio) > 2 * config.sample_rate // config.frame_samples  # more than two seconds of it
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = config.audio_specific_config
    samples = sum(f.samples for a in audio for f in decoder.decode(av.Packet(a.data)))
    assert samples >= (len(audio) - 2) * config.frame_samples
    assert {b.rtp_timestamp - a.rtp_timestamp for a, b in pairwise(audio)} == {1024}


async def test_receiver_reports_and_keepalives_go_out(sim: CameraSimulator) -> None:
    client = RtspClient(sim.url("h265"))
    await client.start()
    try:
        client.session.timeout_s = 4  # keep-alive every 2 s instead of 30
        client.session._next_keepalive_ns = 0
        deadline = time.monotonic() + 8
        async for _ in client.events():
            if client.counters.receiver_reports >= 1 and client.session.keepalives_sent >= 2:
                break
            assert time.monotonic() < deadline, "no receiver report or keep-alives within 8 s"
    finally:
        await client.aclose()
    assert client.session.keepalives_refused == 0  # the simulator answers GET_PARAMETER


async def test_frames_claiming_a_time_30_s_ahead_are_a_clock_step(sim: CameraSimulator) -> None:
    """The simulator's ``jump`` moves the buffer times from which GStreamer derives both the RTP
    timestamps and the sender reports' NTP time: from then on the camera says its frames were
    taken 30 s later than they reach the recorder — its clock stepped by +30 s."""
    client = RtspClient(sim.url("h264"))
    await client.start()
    try:
        before = await collect(client, seconds=0, clock_samples=1)
        sim.jump("h264", 30)
        events = await collect(client, seconds=0, clock_samples=2)
    finally:
        sim.jump("h264", -30)
        await client.aclose()
    assert [e for e in before if isinstance(e, ClockSample)][-1].reading.status is ClockStatus.OK
    video = [e for e in before + events if isinstance(e, MediaUnit) and e.track == 0]
    assert max(b.rtp_timestamp - a.rtp_timestamp for a, b in pairwise(video)) >= 30 * 90000
    reading = [e for e in events if isinstance(e, ClockSample)][-1].reading
    assert reading.status is ClockStatus.STEPPED, reading
    assert reading.step_ns is not None and abs(reading.step_ns - 30 * NS_PER_S) < 500 * NS_PER_MS
    assert reading.offset_ns is not None and abs(reading.offset_ns - 30 * NS_PER_S) < 500 * NS_PER_MS


@pytest.fixture(scope="module")
def clocks(clips: dict[str, Clip]) -> Iterator[CameraSimulator]:
    """Cameras whose sender reports carry an uptime instead of the time of day, none at all, or
    (once ``skewed`` has jumped) a clock 30 s ahead from the start."""
    mounts = [
        MountSpec("uptime", clips["h265"], sender_reports="uptime"),
        MountSpec("silent", clips["h265"], sender_reports="none"),
        MountSpec("skewed", clips["h265"]),
    ]
    with CameraSimulator(mounts) as s:
        yield s


async def test_a_camera_clock_30_s_ahead_from_the_start_is_flagged(clocks: CameraSimulator) -> None:
    clocks.jump("skewed", 30)
    client = RtspClient(clocks.url("skewed"))
    await client.start()
    try:
        events = await collect(client, seconds=0, clock_samples=1)
    finally:
        await client.aclose()
    reading = [e for e in events if isinstance(e, ClockSample)][-1].reading
    assert reading.status is ClockStatus.OFFSET, reading
    assert reading.offset_ns is not None and abs(reading.offset_ns - 30 * NS_PER_S) < 500 * NS_PER_MS
    assert "ahead of the recorder's" in reading.reason


async def test_sender_reports_counting_uptime_are_unknown(clocks: CameraSimulator) -> None:
    client = RtspClient(clocks.url("uptime"))
    await client.start()
    try:
        events = await collect(client, seconds=0, clock_samples=1)
    finally:
        await client.aclose()
    samples = [e for e in events if isinstance(e, ClockSample)]
    assert samples, "no sender report within 20 s"
    reading = samples[-1].reading
    assert (reading.status, reading.offset_ns) == (ClockStatus.UNKNOWN, None)
    assert "wall-clock" in reading.reason
    assert samples[-1].sender_report.ntp_unix_ns < 0  # 1900 + a day and a bit


async def test_no_sender_reports_is_unknown_not_ok(clocks: CameraSimulator) -> None:
    client = RtspClient(clocks.url("silent"))
    await client.start()
    try:
        # Longer than the 5 s (× 0.5–1.5, RFC 3550 §6.2) a sender report would take to come.
        events = await collect(client, seconds=8, clock_samples=0)
    finally:
        await client.aclose()
    assert any(isinstance(e, MediaUnit) for e in events)
    assert not any(isinstance(e, ClockSample) for e in events)
    reading = client.clock_reading()
    assert reading.status is ClockStatus.UNKNOWN and "no RTCP sender report" in reading.reason


@pytest.fixture(scope="module")
def locked(clips: dict[str, Clip]) -> Iterator[CameraSimulator]:
    """A simulator whose mounts ask for Digest authentication (GStreamer's implementation)."""
    with CameraSimulator([MountSpec("locked", clips["h265"])], digest=("viewer", "pa:ss w@rd")) as s:
        yield s


async def test_digest_protected_mount(locked: CameraSimulator) -> None:
    sim = locked
    client = RtspClient(sim.url_with_credentials("locked", "viewer", "pa:ss w@rd"))
    await client.start()
    try:
        events = await collect(client, seconds=1, clock_samples=0)
    finally:
        await client.aclose()
    assert client.session.auth.scheme == "digest"
    video = [e for e in events if isinstance(e, MediaUnit)]
    assert len(decode_video("hevc", [u.data for u in video])) == len(video) > 0


async def test_wrong_digest_password_is_refused_without_quoting_it(locked: CameraSimulator) -> None:
    sim = locked
    client = RtspClient(sim.url_with_credentials("locked", "viewer", "not-the-password"))
    with pytest.raises(AuthError, match=r"refused the user name or password \(Digest") as info:
        await client.start()
    assert "not-the-password" not in str(info.value) and "viewer" not in str(info.value)
    anonymous = RtspClient(sim.url("locked"))
    with pytest.raises(AuthError, match="URL has no user name and password"):
        await anonymous.start()


async def test_an_unknown_mount_names_the_step_without_credentials(sim: CameraSimulator) -> None:
    url = sim.url("h264").replace("/h264", "/nothing").replace("rtsp://", "rtsp://admin:s3cret-pw@")
    client = RtspClient(url)
    with pytest.raises(
        SessionError, match=r"DESCRIBE rtsp://127\.0\.0\.1:\d+/nothing: the camera answered 404 Not Found"
    ) as info:
        await client.start()
    assert "s3cret-pw" not in str(info.value)


async def test_nothing_listening_is_a_client_error() -> None:
    client = RtspClient(f"rtsp://u:pw-secret@127.0.0.1:{free_port()}/x", open_timeout_ns=5 * NS_PER_S)
    with pytest.raises(ClientError, match=r"cannot connect to rtsp://127\.0\.0\.1:\d+/x") as info:
        await client.start()
    assert "pw-secret" not in str(info.value)


async def test_events_to_a_callback(sim: CameraSimulator) -> None:
    seen: list[object] = []
    client = RtspClient(sim.url("h265"), on_event=seen.append)
    await client.start()
    try:
        deadline = time.monotonic() + 10
        while not any(isinstance(e, MediaUnit) and e.keyframe for e in seen):
            assert time.monotonic() < deadline, "no keyframe to the callback within 10 s"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    assert [e async for e in client.events()] == []  # nothing queued: it all went to the callback


async def test_events_end_after_aclose(sim: CameraSimulator) -> None:
    client = RtspClient(sim.url("h265"))
    await client.start()
    await client.aclose()

    async def drain() -> list[object]:
        return [e async for e in client.events()]

    # What came before aclose() is still handed out; then the iteration ends instead of waiting.
    events = await asyncio.wait_for(drain(), 5)
    assert all(isinstance(e, MediaUnit | ClockSample) for e in events)


async def test_the_camera_going_away_ends_the_events(sim: CameraSimulator) -> None:
    client = RtspClient(sim.url("h264"))
    await client.start()
    try:
        sim.drop("h264", 1)
        with pytest.raises(ClientError, match="closed the connection"):
            async for _ in client.events():
                pass
    finally:
        await client.aclose()
