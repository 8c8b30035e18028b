"""The native ingest spike's parser and depacketiser on real H.264 (issue #16).

Two sources of real RTP: a real Annex-B clip packetised here per RFC 6184 (single NAL units,
STAP-A for the parameter sets, FU-A above the MTU, cut into reads of awkward sizes), and what the
real GStreamer camera simulator sends over RTSP/TCP interleaved.  Either way the access units that
come out must be the clip's own NAL units, byte for byte.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest

from bench.spike_native_ingest import NAL_FU_A, NAL_IDR, NAL_STAP_A, FrameBuffer, H264Depacketizer, Session
from tests.support.clips import make_clip
from tests.support.simulator import CameraSimulator, MountSpec

NAL_AUD, NAL_SPS, NAL_PPS = 9, 7, 8
VCL = {1, 5}
MTU = 1400
TS_PER_FRAME = 90_000 // 25


def annexb_access_units(data: bytes) -> list[list[bytes]]:
    """The clip's access units (its encoder puts an AUD first in each), NAL units without start codes."""
    nals = [n for n in (c.rstrip(b"\x00") for c in data.split(b"\x00\x00\x01")) if n]
    units: list[list[bytes]] = []
    for nal in nals:
        if nal[0] & 0x1F == NAL_AUD or not units:
            units.append([])
        units[-1].append(nal)
    return units


def rtp_payloads(unit: list[bytes]) -> list[bytes]:
    """RFC 6184 non-interleaved packetisation, in decoding order: each run of SPS/PPS aggregated
    in one STAP-A, other NAL units single when they fit the MTU, FU-A fragments otherwise."""
    out: list[bytes] = []
    params: list[bytes] = []

    def flush_params() -> None:
        if params:
            nri = max(n[0] & 0x60 for n in params)
            out.append(bytes([nri | NAL_STAP_A]) + b"".join(struct.pack(">H", len(n)) + n for n in params))
            params.clear()

    for nal in unit:
        if nal[0] & 0x1F in (NAL_SPS, NAL_PPS):
            params.append(nal)
            continue
        flush_params()
        if len(nal) <= MTU:
            out.append(nal)
            continue
        indicator = (nal[0] & 0xE0) | NAL_FU_A
        body = nal[1:]
        chunks = [body[i : i + MTU] for i in range(0, len(body), MTU)]
        for i, chunk in enumerate(chunks):
            fu_header = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | (nal[0] & 0x1F)
            out.append(bytes([indicator, fu_header]) + chunk)
    flush_params()
    return out


def interleaved_stream(units: list[list[bytes]], first_seq: int) -> bytes:
    """RTP over RTSP interleaved channel 0; the marker bit on each unit's last packet. The sequence
    number starts near the wrap so that the wrap is crossed."""
    frames, seq = [], first_seq
    for i, unit in enumerate(units):
        payloads = rtp_payloads(unit)
        for j, payload in enumerate(payloads):
            marker = 0x80 if j == len(payloads) - 1 else 0
            header = struct.pack(">BBHII", 0x80, marker | 96, seq & 0xFFFF, (i * TS_PER_FRAME) & 0xFFFFFFFF, 0x1234)
            packet = header + payload
            frames.append(b"$\x00" + struct.pack(">H", len(packet)) + packet)
            seq += 1
    return b"".join(frames)


def depacketise(stream: bytes, read_sizes: list[int]) -> tuple[list[list[bytes]], H264Depacketizer]:
    """Feed ``stream`` through a FrameBuffer in reads of the given sizes (cycled)."""
    got: list[list[bytes]] = []
    depay = H264Depacketizer(lambda _ts, nals, _key: got.append(nals))
    rx = FrameBuffer(lambda channel, data: depay.push(data) if channel == 0 else None, size=1 << 16)
    pos, i = 0, 0
    while pos < len(stream):
        n = min(read_sizes[i % len(read_sizes)], len(stream) - pos, len(rx.buf) - rx.fill)
        rx.buf[rx.fill : rx.fill + n] = stream[pos : pos + n]
        rx.fill += n
        pos += n
        i += 1
        assert rx.consume() == 0
    assert rx.fill == 0, "a complete stream leaves nothing behind"
    return got, depay


@pytest.fixture(scope="module")
def clip_units(tmp_path_factory: pytest.TempPathFactory) -> list[list[bytes]]:
    clip = make_clip(tmp_path_factory.mktemp("clips"), width=640, height=360, seconds=4, bitrate="1M")
    return annexb_access_units(Path(clip.video).read_bytes())


def test_access_units_round_trip_through_rtp_and_interleaved_framing(clip_units: list[list[bytes]]) -> None:
    assert any(len(n) > MTU for u in clip_units for n in u), "the clip must need FU-A"
    stream = interleaved_stream(clip_units, first_seq=0xFFFF - 20)
    # Reads that cut headers, lengths and FU fragments anywhere, and one bulk read.
    for sizes in ([1], [7, 3, 1500, 2], [65536]):
        got, depay = depacketise(stream, sizes)
        assert got == clip_units
        assert depay.lost == 0 and depay.damaged == 0
        assert depay.keyframes == sum(any(n[0] & 0x1F == NAL_IDR for n in u) for u in clip_units) > 0


def interleaved_frames(stream: bytes) -> list[bytes]:
    frames = []
    pos = 0
    while pos < len(stream):
        size = struct.unpack(">H", stream[pos + 2 : pos + 4])[0]
        frames.append(stream[pos : pos + 4 + size])
        pos += 4 + size
    return frames


@pytest.mark.parametrize("lost", [0, 1], ids=["first packet", "second packet"])
def test_a_lost_packet_drops_its_access_unit_only(clip_units: list[list[bytes]], lost: int) -> None:
    frames = interleaved_frames(interleaved_stream(clip_units, first_seq=100))
    # Remove one packet of the first access unit after the first that has several.
    victim_unit = next(i for i, u in enumerate(clip_units) if i > 0 and len(rtp_payloads(u)) > 2)
    index = sum(len(rtp_payloads(u)) for u in clip_units[:victim_unit]) + lost
    got, depay = depacketise(b"".join(frames[:index] + frames[index + 1 :]), [4096])
    assert got == clip_units[:victim_unit] + clip_units[victim_unit + 1 :]
    assert (depay.lost, depay.damaged) == (1, 1)


def test_garbage_between_frames_is_skipped(clip_units: list[list[bytes]]) -> None:
    stream = interleaved_stream(clip_units[:3], first_seq=0)
    first = 4 + struct.unpack(">H", stream[2:4])[0]
    answer = b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n"
    got: list[list[bytes]] = []
    depay = H264Depacketizer(lambda _ts, nals, _key: got.append(nals))
    rx = FrameBuffer(lambda channel, data: depay.push(data) if channel == 0 else None, size=1 << 16)
    data = stream[:first] + answer + b"junk" + stream[first:]
    rx.buf[: len(data)] = data
    rx.fill = len(data)
    assert rx.consume() == len(answer) + len(b"junk")
    assert got == clip_units[:3]


@pytest.mark.timeout(60)
def test_what_the_simulator_sends_depacketises_to_the_clips_frames(tmp_path: Path) -> None:
    clip = make_clip(tmp_path, width=640, height=360, seconds=4, bitrate="1M")
    clip_vcl = [[n for n in u if n[0] & 0x1F in VCL] for u in annexb_access_units(Path(clip.video).read_bytes())]
    got: list[list[bytes]] = []

    async def receive(url: str) -> H264Depacketizer:
        loop = asyncio.get_running_loop()
        session = Session(url)
        session.depay.sink = lambda _ts, nals, _key: got.append(nals)
        try:
            await session.open(loop)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                n = await loop.sock_recv_into(session.sock, session.rx.view[session.rx.fill :])
                assert n, "the simulator closed the session"
                session.rx.fill += n
                session.rx.consume()
        finally:
            session.sock.shutdown(socket.SHUT_RDWR)
            session.sock.close()
        return session.depay

    with CameraSimulator([MountSpec("cam", clip)]) as sim:
        depay = asyncio.run(receive(sim.url("cam")))
    assert depay.lost == 0 and depay.damaged == 0
    assert len(got) >= 75, f"only {len(got)} access units in 4 s of a 25 fps camera"
    vcl = [[n for n in u if n[0] & 0x1F in VCL] for u in got]
    assert all(u in clip_vcl for u in vcl)
    # The simulator jumps to the clip's next keyframe when a client PLAYs (as cameras send a new
    # session an IDR), so the frames are the clip's in order from the first keyframe after the first.
    anchor = next(i for i, u in enumerate(vcl) if i > 0 and u[0][0] & 0x1F == NAL_IDR)
    assert len(vcl) - anchor >= 25
    start = clip_vcl.index(vcl[anchor])
    expected = [clip_vcl[(start + i) % len(clip_vcl)] for i in range(len(vcl) - anchor)]
    assert vcl[anchor:] == expected
