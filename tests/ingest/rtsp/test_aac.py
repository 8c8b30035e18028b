"""RFC 3640 mpeg4-generic AAC depacketising (aac.py)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.ingest.rtsp.aac import AacDepacketizer, AacFrame, AacParameters

from .rtp_streams import adts_frames, real_clip


def hbr(frames: list[bytes], sizes: list[int] | None = None) -> bytes:
    """AAC-hbr: 13-bit size + 3-bit index (delta 0) per AU."""
    sizes = sizes or [len(f) for f in frames]
    headers = b"".join(struct.pack(">H", s << 3) for s in sizes)
    return struct.pack(">H", 16 * len(sizes)) + headers + b"".join(frames)


class Run:
    def __init__(self, params: AacParameters | None = None) -> None:
        self.frames: list[AacFrame] = []
        self.d = AacDepacketizer(self.frames.append, params)


def test_several_frames_per_packet_get_consecutive_timestamps() -> None:
    r = Run()
    r.d.push(memoryview(hbr([b"one", b"two!", b"three"])), 1000, True)
    assert [(f.timestamp, f.data) for f in r.frames] == [(1000, b"one"), (2024, b"two!"), (3048, b"three")]


def test_a_frame_fragmented_over_packets_and_loss_in_the_middle() -> None:
    r = Run()
    big = bytes(range(256)) * 10
    r.d.push(memoryview(hbr([big[:1000]], [len(big)])), 0, False)
    r.d.push(memoryview(hbr([big[1000:2000]], [len(big)])), 0, False)
    r.d.push(memoryview(hbr([big[2000:]], [len(big)])), 0, True)
    assert [f.data for f in r.frames] == [big]
    r.d.push(memoryview(hbr([big[:1000]], [len(big)])), 1024, False)
    r.d.push(memoryview(hbr([big[2000:]], [len(big)])), 1024, True, lost=1)
    assert len(r.frames) == 1 and r.d.counters.dropped_fragments == 1


def test_aac_lbr_with_six_bit_sizes() -> None:
    r = Run(AacParameters(sizelength=6, indexlength=2, indexdeltalength=2))
    header = (3 << 2) << 8 | (2 << 2)  # two 8-bit headers: size 3 then size 2 (index 0)
    payload = struct.pack(">HH", 16, header) + b"abcde"
    r.d.push(memoryview(payload), 0, True)
    assert [f.data for f in r.frames] == [b"abc", b"de"]


def test_bad_sizelength_is_refused() -> None:
    with pytest.raises(ValueError, match="sizelength"):
        AacDepacketizer(lambda f: None, AacParameters(sizelength=0))


def test_real_adts_clip_round_trips() -> None:
    clip = real_clip("h264", audio=True)
    assert clip.audio is not None
    frames = adts_frames(clip.audio)
    r = Run()
    for i in range(0, len(frames), 4):  # four frames per packet
        group = frames[i : i + 4]
        r.d.push(memoryview(hbr(group)), i * 1024, True)
    assert [f.data for f in r.frames] == frames
    assert [f.timestamp for f in r.frames] == [i * 1024 for i in range(len(frames))]


@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans(), st.booleans()), max_size=20))
def test_arbitrary_payloads_never_raise(packets: list[tuple[bytes, bool, bool]]) -> None:
    r = Run()
    for payload, marker, lost in packets:
        r.d.push(memoryview(payload), 0, marker, int(lost))
