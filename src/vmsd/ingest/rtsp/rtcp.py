"""RTCP (RFC 3550 §6): compound packets in (SR, RR, SDES, BYE), receiver reports out. No I/O.

Parsing is tolerant: a malformed packet ends the parse of its compound (what came before it is
kept) and unknown packet types (APP, XR, feedback) are skipped by their length. Which SSRC a
sender report is believed for is the caller's choice (``SenderReportFilter``): a camera's RTCP
may carry reports for SSRCs that are not the stream's (a stale session, a proxy's own).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from vmsd.units import NS_PER_S

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_UNIX_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
_COMMON = struct.Struct(">BBH")
_SR_BODY = struct.Struct(">IQIII")  # SSRC, NTP timestamp, RTP timestamp, packet count, octet count
_BLOCK = struct.Struct(">IIIIII")  # SSRC, fraction lost|cumulative, ext. highest seq, jitter, LSR, DLSR


class RtcpError(ValueError):
    """A malformed RTCP packet."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # of 256
    cumulative_lost: int  # 24-bit signed
    extended_highest_seq: int
    jitter: int
    last_sr: int  # middle 32 bits of the last SR's NTP timestamp
    delay_since_last_sr: int  # 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format: seconds since 1900 << 32 | fraction
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    @property
    def ntp_unix_ns(self) -> int:
        """The NTP timestamp as ns since the Unix epoch (negative for a clock not set past 1970,
        e.g. a camera counting seconds since boot from 1900)."""
        return ntp_to_unix_ns(self.ntp_timestamp)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    cnames: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: str = ""


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye


def ntp_to_unix_ns(ntp: int) -> int:
    seconds, fraction = ntp >> 32, ntp & 0xFFFFFFFF
    return (seconds - NTP_UNIX_OFFSET_S) * NS_PER_S + (fraction * NS_PER_S >> 32)


def unix_ns_to_ntp(unix_ns: int) -> int:
    seconds, rest_ns = divmod(unix_ns, NS_PER_S)
    return ((seconds + NTP_UNIX_OFFSET_S) & 0xFFFFFFFF) << 32 | ((rest_ns << 32) // NS_PER_S)


def parse_rtcp(data: bytes | memoryview) -> tuple[list[RtcpPacket], bool]:
    """The packets of a compound RTCP packet and whether parsing stopped at a malformed one."""
    packets: list[RtcpPacket] = []
    pos, n = 0, len(data)
    while pos + 4 <= n:
        b0, pt, words = _COMMON.unpack_from(data, pos)
        size = 4 * (words + 1)
        if b0 >> 6 != 2 or pos + size > n:
            return packets, True
        end = pos + size
        if b0 & 0x20:  # padding, only allowed on the last packet
            end -= data[end - 1]
        count = b0 & 0x1F
        try:
            parsed = _parse_one(pt, count, data, pos + 4, end)
        except (RtcpError, struct.error, UnicodeDecodeError):
            return packets, True
        if parsed is not None:
            packets.append(parsed)
        pos += size
    return packets, pos != n


def _parse_one(pt: int, count: int, data: bytes | memoryview, pos: int, end: int) -> RtcpPacket | None:
    if pt == SR:
        if pos + 24 > end:
            raise RtcpError("short SR")
        ssrc, ntp, rtp_ts, packets, octets = _SR_BODY.unpack_from(data, pos)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _blocks(data, pos + 24, end, count))
    if pt == RR:
        if pos + 4 > end:
            raise RtcpError("short RR")
        (ssrc,) = struct.unpack_from(">I", data, pos)
        return ReceiverReport(ssrc, _blocks(data, pos + 4, end, count))
    if pt == SDES:
        return _sdes(data, pos, end, count)
    if pt == BYE:
        if pos + 4 * count > end:
            raise RtcpError("short BYE")
        ssrcs = struct.unpack_from(f">{count}I", data, pos)
        reason = ""
        rest = pos + 4 * count
        if rest < end:
            length = data[rest]
            reason = bytes(data[rest + 1 : min(end, rest + 1 + length)]).decode("utf-8", "replace")
        return Goodbye(tuple(ssrcs), reason)
    return None  # APP, XR, feedback: not needed by a recorder


def _blocks(data: bytes | memoryview, pos: int, end: int, count: int) -> tuple[ReportBlock, ...]:
    if pos + 24 * count > end:
        raise RtcpError("report blocks run past the packet")
    out = []
    for i in range(count):
        ssrc, lost, high, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos + 24 * i)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        out.append(ReportBlock(ssrc, lost >> 24, cumulative, high, jitter, lsr, dlsr))
    return tuple(out)


def _sdes(data: bytes | memoryview, pos: int, end: int, count: int) -> SourceDescription:
    cnames: dict[int, str] = {}
    for _ in range(count):
        if pos + 4 > end:
            raise RtcpError("short SDES chunk")
        (ssrc,) = struct.unpack_from(">I", data, pos)
        pos += 4
        while pos < end and data[pos] != 0:
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise RtcpError("SDES item runs past the packet")
            kind, length = data[pos], data[pos + 1]
            if kind == 1:
                cnames[ssrc] = bytes(data[pos + 2 : pos + 2 + length]).decode("utf-8", "replace")
            pos += 2 + length
        pos = (pos + 4) & ~3  # the null item, then padding to a 32-bit boundary
    return SourceDescription(cnames)


class SenderReportFilter:
    """Which sender reports belong to the stream: those of its RTP SSRC.

    Reports can arrive before the first RTP packet (even before the PLAY answer), so until the
    stream's SSRC is known the latest report of every SSRC is held; ``set_ssrc`` then hands out
    the held one of that SSRC, if any. SSRCs that never carry media are ignored (``ignored``).
    """

    __slots__ = ("_held", "ignored", "ssrc")

    def __init__(self, ssrc: int | None = None) -> None:
        self.ssrc = ssrc
        self._held: dict[int, SenderReport] = {}
        self.ignored = 0

    def offer(self, report: SenderReport) -> SenderReport | None:
        """The report if it is the stream's; None if held or ignored."""
        if self.ssrc is None:
            if len(self._held) < 8 or report.ssrc in self._held:
                self._held[report.ssrc] = report
            return None
        if report.ssrc != self.ssrc:
            self.ignored += 1
            return None
        return report

    def set_ssrc(self, ssrc: int) -> SenderReport | None:
        """The stream's SSRC is now known (first RTP packet); returns a held report of it."""
        if self.ssrc == ssrc:
            return None
        self.ssrc = ssrc
        held, self._held = self._held, {}
        self.ignored += len(held) - (ssrc in held)
        return held.get(ssrc)


class ReceptionReport:
    """What the receiver report for one source says (RFC 3550 A.3, A.8). Times passed in."""

    __slots__ = (
        "_expected_prior",
        "_last_sr_mid",
        "_last_sr_ns",
        "_received_prior",
        "_transit",
        "clock_rate",
        "jitter",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.jitter = 0.0
        self._transit: int | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._last_sr_mid = 0
        self._last_sr_ns: int | None = None

    def on_packet(self, rtp_timestamp: int, arrival_ns: int) -> None:
        """Interarrival jitter (A.8), in RTP timestamp units."""
        arrival = arrival_ns * self.clock_rate // NS_PER_S
        transit = arrival - rtp_timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.clock_rate * 10:  # a timestamp jump is not jitter
                self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def on_sender_report(self, report: SenderReport, arrival_ns: int) -> None:
        self._last_sr_mid = (report.ntp_timestamp >> 16) & 0xFFFFFFFF
        self._last_sr_ns = arrival_ns

    def block(self, ssrc: int, base_seq: int, extended_max: int, received: int, now_ns: int) -> ReportBlock:
        expected = extended_max - base_seq + 1
        lost = max(-(1 << 23), min((1 << 23) - 1, expected - received))
        expected_interval = expected - self._expected_prior
        received_interval = received - self._received_prior
        self._expected_prior, self._received_prior = expected, received
        lost_interval = expected_interval - received_interval
        fraction = (
            0 if expected_interval <= 0 or lost_interval <= 0 else min(255, (lost_interval << 8) // expected_interval)
        )
        dlsr = 0 if self._last_sr_ns is None else max(0, (now_ns - self._last_sr_ns) * 65536 // NS_PER_S)
        return ReportBlock(
            ssrc, fraction, lost, extended_max & 0xFFFFFFFF, int(self.jitter), self._last_sr_mid, min(dlsr, 0xFFFFFFFF)
        )


def build_receiver_report(reporter_ssrc: int, blocks: list[ReportBlock], cname: str) -> bytes:
    """A compound RR + SDES(CNAME) packet (RFC 3550 §6.1: every compound starts with SR/RR and
    carries a CNAME)."""
    rr = bytearray(_COMMON.pack(0x80 | len(blocks), RR, 1 + 6 * len(blocks)))
    rr += struct.pack(">I", reporter_ssrc)
    for b in blocks:
        rr += _BLOCK.pack(
            b.ssrc,
            (b.fraction_lost & 0xFF) << 24 | (b.cumulative_lost & 0xFFFFFF),
            b.extended_highest_seq,
            b.jitter,
            b.last_sr,
            b.delay_since_last_sr,
        )
    name = cname.encode()[:255]
    item = struct.pack(">IBB", reporter_ssrc, 1, len(name)) + name + b"\x00"
    item += b"\x00" * (-len(item) % 4)
    sdes = _COMMON.pack(0x81, SDES, len(item) // 4) + item
    return bytes(rr) + sdes
