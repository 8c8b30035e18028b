"""RTCP compound parsing, sender-report selection by SSRC, receiver reports (rtcp.py)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from vmsd.ingest.rtsp.rtcp import (
    Goodbye,
    ReceiverReport,
    ReceptionReport,
    ReportBlock,
    SenderReport,
    SenderReportFilter,
    SourceDescription,
    build_receiver_report,
    ntp_to_unix_ns,
    parse_rtcp,
    unix_ns_to_ntp,
)
from vmsd.units import NS_PER_S

NOW_NS = 1_764_000_000 * NS_PER_S + 250_000_000


def sender_report(ssrc: int, unix_ns: int, rtp_ts: int, blocks: int = 0) -> bytes:
    body = struct.pack(">IQIII", ssrc, unix_ns_to_ntp(unix_ns), rtp_ts, 10, 1000)
    body += b"".join(struct.pack(">IIIIII", 0x77, 0x01000002, 5, 6, 7, 8) for _ in range(blocks))
    return struct.pack(">BBH", 0x80 | blocks, 200, len(body) // 4) + body


def sdes(ssrc: int, cname: bytes) -> bytes:
    item = struct.pack(">IBB", ssrc, 1, len(cname)) + cname + b"\x00"
    item += b"\x00" * (-len(item) % 4)
    return struct.pack(">BBH", 0x81, 202, len(item) // 4) + item


def bye(ssrc: int, reason: bytes = b"") -> bytes:
    body = struct.pack(">I", ssrc) + (bytes((len(reason),)) + reason if reason else b"")
    body += b"\x00" * (-len(body) % 4)
    return struct.pack(">BBH", 0x81, 203, len(body) // 4) + body


def test_ntp_conversion_round_trips_to_the_nanosecond_grain() -> None:
    assert abs(ntp_to_unix_ns(unix_ns_to_ntp(NOW_NS)) - NOW_NS) <= 1
    assert ntp_to_unix_ns(0) < 0  # a clock counting from 1900 is no wall clock


def test_compound_sr_sdes_bye_and_an_unknown_type() -> None:
    app = struct.pack(">BBH", 0x80, 204, 2) + b"name" + b"data"
    data = sender_report(0xAA, NOW_NS, 90000, blocks=1) + sdes(0xAA, b"cam@host") + app + bye(0xAA, b"bye")
    packets, malformed = parse_rtcp(data)
    assert not malformed
    sr, desc, goodbye = packets
    assert isinstance(sr, SenderReport) and isinstance(desc, SourceDescription) and isinstance(goodbye, Goodbye)
    assert (sr.ssrc, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (0xAA, 90000, 10, 1000)
    assert abs(sr.ntp_unix_ns - NOW_NS) <= 1
    assert sr.reports == (ReportBlock(0x77, 1, 2, 5, 6, 7, 8),)
    assert desc.cnames == {0xAA: "cam@host"}
    assert goodbye == Goodbye((0xAA,), "bye")


def test_a_malformed_packet_ends_the_compound_but_keeps_what_came_before() -> None:
    data = sender_report(1, NOW_NS, 0) + struct.pack(">BBH", 0x80, 201, 40) + b"\x00" * 8
    packets, malformed = parse_rtcp(data)
    assert malformed and [type(p) for p in packets] == [SenderReport]


def test_receiver_report_round_trips_through_the_parser() -> None:
    block = ReportBlock(0x1234, 12, -3, 70000, 45, 0xABCD1234, 65536)
    packets, malformed = parse_rtcp(build_receiver_report(0x99, [block], "vmsd"))
    assert not malformed
    assert packets == [ReceiverReport(0x99, (block,)), SourceDescription({0x99: "vmsd"})]


def test_reports_from_an_unknown_ssrc_are_ignored() -> None:
    f = SenderReportFilter()
    early = SenderReport(0x11, 1, 2, 0, 0)
    assert f.offer(early) is None  # before the first RTP packet (even before PLAY's answer)
    assert f.offer(SenderReport(0x22, 1, 2, 0, 0)) is None
    assert f.set_ssrc(0x11) == early  # the held report of the stream's SSRC
    assert f.offer(SenderReport(0x33, 1, 2, 0, 0)) is None
    mine = SenderReport(0x11, 5, 6, 0, 0)
    assert f.offer(mine) == mine
    assert f.ignored == 2


def test_reception_report_fraction_lost_and_delay_since_last_sr() -> None:
    r = ReceptionReport(90000)
    r.on_sender_report(SenderReport(1, unix_ns_to_ntp(NOW_NS), 0, 0, 0), NOW_NS)
    block = r.block(1, base_seq=100, extended_max=199, received=75, now_ns=NOW_NS + NS_PER_S // 2)
    assert block.cumulative_lost == 25
    assert block.fraction_lost == 25 * 256 // 100
    assert block.delay_since_last_sr == 32768
    assert block.last_sr == (unix_ns_to_ntp(NOW_NS) >> 16) & 0xFFFFFFFF
    # The next interval: nothing lost.
    assert r.block(1, 100, 299, 175, NOW_NS + NS_PER_S).fraction_lost == 0


def test_jitter_of_evenly_spaced_packets_is_zero_and_grows_with_irregular_arrival() -> None:
    r = ReceptionReport(90000)
    for i in range(10):
        r.on_packet(i * 3600, NOW_NS + i * 40_000_000)
    assert r.jitter == 0
    r.on_packet(10 * 3600, NOW_NS + 10 * 40_000_000 + 20_000_000)
    assert r.jitter > 0


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_rtcp(data)
