"""RFC 6184 depacketising into AVCC access units (h264.py over access_unit.py)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vmsd.ingest.rtsp.access_unit import AccessUnit
from vmsd.ingest.rtsp.h264 import H264Depacketizer

from .rtp_streams import clip_access_units, decode_video, h264_payloads, length_prefixed, real_clip

SPS = bytes.fromhex("6742c01e95a0a0fd00f1")  # type 7
PPS = bytes.fromhex("68ce3c80")  # type 8
IDR = b"\x65" + bytes(range(1, 200))  # type 5
P = b"\x41" + bytes(range(7, 150))  # type 1


class Run:
    def __init__(self, parameter_sets: list[bytes] | None = None) -> None:
        self.units: list[AccessUnit] = []
        self.d = H264Depacketizer(self.units.append, parameter_sets)

    def send(self, payloads: list[bytes], ts: int, *, marker: bool = True, lost_first: int = 0) -> None:
        for i, p in enumerate(payloads):
            self.d.push(memoryview(p), ts, marker and i == len(payloads) - 1, lost_first if i == 0 else 0)


def fu(nal: bytes, chunks: list[int]) -> list[bytes]:
    """FU-A packets of ``nal`` with the given fragment sizes (summing to len(nal) - 1)."""
    out, pos, body = [], 0, nal[1:]
    for i, n in enumerate(chunks):
        flags = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
        out.append(bytes(((nal[0] & 0xE0) | 28, flags | (nal[0] & 0x1F))) + body[pos : pos + n])
        pos += n
    return out


def test_single_stap_a_and_fu_a_make_length_prefixed_units() -> None:
    r = Run()
    stap = b"\x18" + struct.pack(">H", len(SPS)) + SPS + struct.pack(">H", len(PPS)) + PPS
    r.send([stap, *fu(IDR, [50, 50, 99])], 3000)
    r.send([P], 6000)
    assert [(u.timestamp, u.keyframe) for u in r.units] == [(3000, True), (6000, False)]
    assert r.units[0].data == length_prefixed([SPS, PPS, IDR])
    assert r.units[1].data == length_prefixed([P])
    assert r.d.parameter_sets == {7: SPS, 8: PPS}


def test_missing_marker_bits_end_units_at_the_timestamp_change() -> None:
    r = Run()
    r.send([SPS, PPS, IDR], 0, marker=False)
    r.send([P], 3000, marker=False)
    assert [u.timestamp for u in r.units] == [0]
    r.send([P], 6000, marker=False)
    assert [u.timestamp for u in r.units] == [0, 3000]
    r.d.flush()
    assert [u.timestamp for u in r.units] == [0, 3000, 6000]


def test_a_misplaced_marker_is_noticed_once_and_timestamps_rule_after() -> None:
    r = Run()
    r.send([SPS, PPS, IDR], 0)
    # Marker on the first of two packets of one frame.
    r.d.push(memoryview(P), 3000, True)
    r.d.push(memoryview(P), 3000, False)
    assert r.d.counters.misplaced_markers == 1 and not r.d.markers_reliable
    r.send([SPS, PPS, IDR], 6000, marker=True)  # the marker is now ignored ...
    r.send([P], 9000, marker=True)  # ... so this ends the keyframe unit
    assert [(u.timestamp, u.keyframe) for u in r.units] == [(0, True), (3000, False), (6000, True)]
    assert r.d.counters.dropped_damaged == 1  # the rest of the cut frame


def test_fu_with_start_and_end_both_set_and_empty_fragments() -> None:
    r = Run()
    both = bytes(((IDR[0] & 0xE0) | 28, 0xC0 | 5)) + IDR[1:]
    r.send([SPS, PPS, both], 0)
    r.send([bytes((0x7C, 0x81)) + P[1:40], bytes((0x7C, 0x01)), bytes((0x7C, 0x41)) + P[40:]], 3000)
    assert r.units[0].data == length_prefixed([SPS, PPS, IDR])
    # The middle fragment (FU header only) adds nothing; the NAL header is rebuilt from the FU's.
    assert r.units[1].data == length_prefixed([bytes(((0x7C & 0xE0) | 1,)) + P[1:]])
    assert r.d.counters.empty_fragments == 1


def test_a_start_and_end_fu_with_no_payload_adds_nothing() -> None:
    r = Run()
    r.send([SPS, PPS, IDR, bytes((0x7C, 0xC1))], 0)
    assert r.units[0].data == length_prefixed([SPS, PPS, IDR])


def test_loss_inside_a_fragmented_frame_drops_to_the_next_keyframe() -> None:
    r = Run()
    r.send([SPS, PPS, IDR], 0)
    frags = fu(P, [40, 40, 63])
    r.send([frags[0]], 3000, marker=False)
    r.send([frags[2]], 3000, lost_first=1)  # the middle fragment never came
    r.send([P], 6000)  # decodable only with the lost frame: dropped
    r.send([SPS, PPS, IDR], 9000)
    r.send([P], 12000)
    assert [u.timestamp for u in r.units] == [0, 9000, 12000]
    assert (r.d.counters.dropped_damaged, r.d.counters.dropped_before_keyframe) == (1, 1)


def test_the_stream_starts_at_its_first_keyframe() -> None:
    r = Run()
    r.send([P], 0)
    r.send([SPS, PPS, IDR], 3000)
    assert [u.timestamp for u in r.units] == [3000]


def test_parameter_sets_from_sdp_and_a_change_in_band() -> None:
    r = Run([SPS, PPS])
    r.send([SPS, PPS, IDR], 0)
    assert not r.units[0].parameter_sets_changed  # the same as the SDP's
    new_sps = SPS[:-1] + b"\x01"
    r.send([new_sps, PPS, IDR], 3000)
    assert r.units[1].parameter_sets_changed and r.d.parameter_sets[7] == new_sps
    r.send([P], 6000)
    assert not r.units[2].parameter_sets_changed


def test_parameter_sets_with_their_own_timestamp_go_with_the_next_unit() -> None:
    r = Run()
    r.send([SPS, PPS], 0)
    r.send([IDR], 3000)
    assert [u.timestamp for u in r.units] == [3000]
    assert r.units[0].data == length_prefixed([SPS, PPS, IDR])
    assert r.d.counters.carried_non_vcl == 1


def test_unsupported_and_malformed_payloads_are_counted() -> None:
    r = Run()
    r.send([SPS, PPS, IDR], 0)
    r.send([b"\x1a\x00\x01", b"\x1f", P], 3000)  # MTAP16, reserved 31
    r.send([b"\x18\x00\x50\x41"], 6000)  # STAP-A whose size runs past the packet
    assert r.d.counters.ignored_nal_units == 2
    assert r.d.counters.malformed_payloads == 1
    assert [u.timestamp for u in r.units] == [0, 3000]


@given(st.lists(st.integers(1, 4000), min_size=1, max_size=6), st.integers(60, 1500))
def test_fu_a_reassembly_of_random_nal_sizes_round_trips(sizes: list[int], mtu: int) -> None:
    kinds = [0x65] + [0x41] * (len(sizes) - 1)
    slices = [
        bytes((k,)) + bytes((i * 7 + j) % 251 for j in range(n))
        for i, (k, n) in enumerate(zip(kinds, sizes, strict=True))
    ]
    nals = [SPS, PPS, *slices]
    r = Run()
    r.send(h264_payloads(nals, mtu), 90000)
    assert len(r.units) == 1 and r.units[0].data == length_prefixed(nals)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.binary(max_size=60), st.integers(0, 3), st.booleans(), st.integers(0, 2)), max_size=30))
def test_arbitrary_payloads_never_raise(packets: list[tuple[bytes, int, bool, int]]) -> None:
    r = Run()
    for payload, ts, marker, lost in packets:
        r.d.push(memoryview(payload), ts, marker, lost)
    r.d.flush()
    for u in r.units:
        pos = 0
        while pos < len(u.data):  # every unit is well-formed AVCC
            size = int.from_bytes(u.data[pos : pos + 4], "big")
            assert size > 0 and pos + 4 + size <= len(u.data)
            pos += 4 + size


def test_real_clip_round_trips_byte_identical_and_decodes() -> None:
    clip = real_clip("h264")
    units = clip_access_units(clip)
    r = Run()
    for i, nals in enumerate(units):
        r.send(h264_payloads(nals, 1200), i * 3600)
    assert [u.data for u in r.units] == [length_prefixed(n) for n in units]
    assert sum(u.keyframe for u in r.units) == len(units) // clip.gop_frames
    assert len(decode_video("h264", [u.data for u in r.units])) == len(units)


@settings(max_examples=300)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=8), st.integers(60, 1500), st.data())
def test_push_next_is_push_without_loss(sizes: list[int], mtu: int, data: st.DataObject) -> None:
    """The fast path for packets next in sequence gives exactly what push gives, for fragmented
    units of any size with markers and timestamps anywhere (early, missing, repeated units) and
    stray bytes in between."""
    nals = [IDR[:1] + bytes(n % 251 for n in range(size)) for size in sizes]
    packets = []
    for payload in h264_payloads(nals, mtu) + data.draw(st.lists(st.binary(max_size=40), max_size=4)):
        ts = data.draw(st.sampled_from([3600, 3600, 3600, 7200]))
        packets.append((memoryview(payload), ts, data.draw(st.booleans())))
    via_push, via_next = Run(), Run()
    for payload, ts, marker in packets:
        via_push.d.push(payload, ts, marker)
        via_next.d.push_next(payload, ts, marker)
    via_push.d.flush()
    via_next.d.flush()
    assert via_next.units == via_push.units
    assert via_next.d.counters == via_push.d.counters
