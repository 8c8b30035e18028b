"""The client's fast path for ordinary H.264 packets over TCP (`RtspClient._take_run`) gives
exactly what the general path gives (`_on_frame`: parse_rtp, SequenceTracker, the depacketiser's
push), whatever the camera sends: losses, duplicates, a renumbered or new SSRC, markers anywhere,
padding and extensions, RTCP and stray bytes between the frames, and any split into reads.

No socket: the session is opened with scripted answers and the bytes are put in the client's
read buffer as the drain's `recv_into` would."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vmsd.clock import FakeClock
from vmsd.ingest.rtsp.client import MediaUnit, RtspClient
from vmsd.ingest.rtsp.messages import Headers, Response

from .rtp_streams import h264_payloads, rtp

SPS = bytes.fromhex("6742c01e95a0a0fd") + bytes(4)
PPS = bytes.fromhex("68ce3c80")
IDR_HEAD = b"\x65\x88"
SLICE_HEAD = b"\x41\x9a"
SDP = (
    "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:t0\r\n"
    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/16000/1\r\n"
    "a=fmtp:97 streamtype=5;mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3\r\n"
    "a=control:t1\r\n"
)


def playing_client(fast: bool) -> tuple[RtspClient, list[MediaUnit]]:
    units: list[MediaUnit] = []
    client = RtspClient(
        "rtsp://127.0.0.1:554/cam",
        clock=FakeClock(),  # the same arrival times for both clients
        on_event=lambda e: units.append(e) if isinstance(e, MediaUnit) else None,
    )
    client.session.start(0)
    answers = [
        ([], b""),
        ([("Content-Base", "rtsp://127.0.0.1:554/cam/")], SDP.encode()),
        ([("Session", "1"), ("Transport", "RTP/AVP/TCP;interleaved=0-1")], b""),
        ([("Session", "1"), ("Transport", "RTP/AVP/TCP;interleaved=2-3")], b""),
        ([], b""),
    ]
    for headers, body in answers:
        client._on_message(Response(200, "OK", Headers([("CSeq", str(client.session.cseq)), *headers]), body))
    assert client.session.playing
    if not fast:
        client._fast = None  # every frame through _on_frame
    return client, units


def frame(channel: int, packet: bytes) -> bytes:
    return b"$" + struct.pack(">BH", channel, len(packet)) + packet


@st.composite
def camera_bytes(draw: st.DrawFn) -> bytes:
    """Interleaved frames of a few access units (keyframes and others, fragmented and not) with
    the faults a camera or a network produces between them."""
    out = bytearray()
    seq = draw(st.integers(0, 0xFFFF))
    ssrc = 0x1234
    ts = draw(st.integers(0, 0xFFFFFFFF))
    for i in range(draw(st.integers(1, 6))):
        key = i == 0 or draw(st.booleans())
        body = bytes(draw(st.integers(0, 255)) for _ in range(3)) * draw(st.integers(1, 2500))
        nals = [SPS, PPS, IDR_HEAD + body] if key else [SLICE_HEAD + body]
        payloads = h264_payloads(nals, draw(st.integers(60, 1400)))
        if draw(st.integers(0, 9)) == 0:
            payloads.append(b"\x7c\x05")  # an empty middle FU-A fragment
        for j, payload in enumerate(payloads):
            fault = draw(st.integers(0, 40))
            if fault == 0:
                seq += 1  # a packet lost before this one
            elif fault == 1:
                out += frame(0, rtp(seq - 1, ts, payload, ssrc=ssrc))  # a duplicate of the one before
            elif fault == 2:
                seq += 20000  # a renumbered sender
            elif fault == 3:
                ssrc += 1  # a new SSRC (a restarted encoder)
            elif fault == 4:
                out += frame(1, b"\x80\xc8\x00\x06" + bytes(24))  # RTCP (a short SR)
            elif fault == 5:
                out += b"garbage"
            marker = j == len(payloads) - 1 if draw(st.integers(0, 9)) else draw(st.booleans())
            padding = draw(st.integers(1, 4)) if fault == 6 else 0
            extension = b"\x00" * 4 if fault == 7 else None
            out += frame(0, rtp(seq, ts, payload, marker=marker, ssrc=ssrc, padding=padding, extension=extension))
            seq += 1
        ts = (ts + draw(st.sampled_from([3600, 3600, 0, 1 << 31]))) & 0xFFFFFFFF
    return bytes(out)


def feed(client: RtspClient, data: bytes, cuts: list[int]) -> None:
    pos = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        chunk = data[pos:cut]
        client._reader.writable()[: len(chunk)] = chunk
        client._on_bytes(len(chunk))
        assert isinstance(client.clock, FakeClock)
        client.clock.advance(20_000_000)
        pos = cut


@settings(max_examples=300, deadline=None)
@given(camera_bytes(), st.lists(st.integers(0, 1 << 20), max_size=12))
def test_the_fast_path_gives_what_the_general_path_gives(data: bytes, cuts: list[int]) -> None:
    fast, fast_units = playing_client(fast=True)
    slow, slow_units = playing_client(fast=False)
    assert fast._fast is not None
    feed(fast, data, cuts)
    feed(slow, data, cuts)
    key = lambda u: (u.track, u.rtp_timestamp, u.data, u.keyframe, u.parameter_sets_changed)  # noqa: E731
    assert [key(u) for u in fast_units] == [key(u) for u in slow_units]
    assert fast.counters == slow.counters
    f, s = fast._tracks[0], slow._tracks[0]
    assert f.depay.counters == s.depay.counters
    assert (f.sequence.max_seq, f.sequence.cycles, f.sequence.received, f.sequence.lost) == (
        s.sequence.max_seq,
        s.sequence.cycles,
        s.sequence.received,
        s.sequence.lost,
    )
    assert (f.read_ts, f.wall.wall_ns(f.unwrap.extended)) == (s.read_ts, s.wall.wall_ns(s.unwrap.extended))


def test_ordinary_packets_take_the_fast_path() -> None:
    """The property above holds trivially if nothing takes the fast path: most packets do."""
    client, units = playing_client(fast=True)
    calls = []
    general = client._on_frame
    client._on_frame = lambda channel, data: (calls.append(channel), general(channel, data))  # type: ignore[method-assign]
    body = bytes(range(256)) * 100
    packets = [
        (i * 3600, p, j == len(ps) - 1)
        for i in range(4)
        for ps in [h264_payloads([SPS, PPS, IDR_HEAD + body] if i == 0 else [SLICE_HEAD + body], 1400)]
        for j, p in enumerate(ps)
    ]
    data = b"".join(frame(0, rtp(seq, ts, p, marker=m)) for seq, (ts, p, m) in enumerate(packets))
    feed(client, data, [])
    assert len(units) == 4 and units[0].keyframe
    assert len(packets) > 70 and calls == [0]  # only the first packet (its SSRC is learnt there)
