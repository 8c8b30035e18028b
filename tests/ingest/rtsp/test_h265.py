"""RFC 7798 depacketising into HVCC access units (h265.py over access_unit.py)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vmsd.ingest.rtsp.access_unit import AccessUnit
from vmsd.ingest.rtsp.h265 import H265Depacketizer

from .rtp_streams import clip_access_units, decode_video, h265_payloads, length_prefixed, real_clip

VPS = bytes((32 << 1, 1)) + b"\x0c\x01\xff\xff"
SPS = bytes((33 << 1, 1)) + b"\x01\x01\x60\x00"
PPS = bytes((34 << 1, 1)) + b"\xc1\x73"
IDR = bytes((19 << 1, 1)) + bytes(range(2, 240))  # IDR_W_RADL
TRAIL = bytes((1 << 1, 1)) + bytes(range(9, 120))  # TRAIL_R


class Run:
    def __init__(self, donl: bool = False) -> None:
        self.units: list[AccessUnit] = []
        self.d = H265Depacketizer(self.units.append, [VPS, SPS, PPS], donl=donl)

    def send(self, payloads: list[bytes], ts: int, lost_first: int = 0) -> None:
        for i, p in enumerate(payloads):
            self.d.push(memoryview(p), ts, i == len(payloads) - 1, lost_first if i == 0 else 0)


def test_single_aggregation_and_fragmentation_units() -> None:
    r = Run()
    r.send(h265_payloads([VPS, SPS, PPS, IDR], mtu=100), 0)
    r.send([TRAIL], 3000)
    assert [(u.timestamp, u.keyframe) for u in r.units] == [(0, True), (3000, False)]
    assert r.units[0].data == length_prefixed([VPS, SPS, PPS, IDR])
    assert r.units[1].data == length_prefixed([TRAIL])
    assert not r.units[0].parameter_sets_changed  # the SDP's sets again


def test_fu_start_and_end_in_one_packet_and_loss_to_the_next_keyframe() -> None:
    r = Run()
    whole = bytes(((49 << 1), 1, 0xC0 | 19)) + IDR[2:]
    r.send([whole], 0)
    assert r.units[0].data == length_prefixed([IDR])
    frags = h265_payloads([TRAIL], mtu=40)
    r.d.push(memoryview(frags[0]), 3000, False)
    r.send(frags[2:], 3000, lost_first=1)  # the second fragment never came
    r.send([TRAIL], 6000)  # refers to the lost frame: dropped
    r.send([IDR], 9000)
    assert [u.timestamp for u in r.units] == [0, 9000]
    assert (r.d.counters.dropped_damaged, r.d.counters.dropped_before_keyframe) == (1, 1)


def test_donl_fields_are_skipped() -> None:
    r = Run(donl=True)
    single = IDR[:2] + b"\x00\x07" + IDR[2:]
    ap = (
        bytes((48 << 1, 1))
        + b"\x00\x01"
        + struct.pack(">H", len(VPS))
        + VPS
        + b"\x00"
        + struct.pack(">H", len(SPS))
        + SPS
    )
    r.send([ap, single], 0)
    assert r.units[0].data == length_prefixed([VPS, SPS, IDR])


def test_a_new_sps_in_band_is_flagged() -> None:
    r = Run()
    r.send([VPS, SPS[:-1] + b"\x01", PPS, IDR], 0)
    assert r.units[0].parameter_sets_changed


@given(st.lists(st.integers(1, 3000), min_size=1, max_size=5), st.integers(60, 1500))
def test_fu_reassembly_of_random_nal_sizes_round_trips(sizes: list[int], mtu: int) -> None:
    nals = [VPS, SPS, PPS] + [IDR[:2] + bytes((i + j) % 256 for j in range(n)) for i, n in enumerate(sizes)]
    r = Run()
    r.send(h265_payloads(nals, mtu), 7)
    assert len(r.units) == 1 and r.units[0].data == length_prefixed(nals)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(max_size=60), st.integers(0, 3), st.booleans(), st.booleans()), max_size=30))
def test_arbitrary_payloads_never_raise(packets: list[tuple[bytes, int, bool, bool]]) -> None:
    for donl in (False, True):
        r = Run(donl)
        for payload, ts, marker, lost in packets:
            r.d.push(memoryview(payload), ts, marker, int(lost))
        r.d.flush()


def test_real_clip_round_trips_byte_identical_and_decodes() -> None:
    clip = real_clip("h265")
    units = clip_access_units(clip)
    r = Run()
    for i, nals in enumerate(units):
        r.send(h265_payloads(nals, 1200), i * 3600)
    assert [u.data for u in r.units] == [length_prefixed(n) for n in units]
    assert len(decode_video("hevc", [u.data for u in r.units])) == len(units)
