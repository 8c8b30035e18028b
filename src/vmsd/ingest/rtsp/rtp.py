"""RTP (RFC 3550): header parsing, sequence tracking, a reorder window for UDP, timestamp unwrap.

No I/O. ``parse_rtp`` returns the payload as a memoryview of the packet (no copy): valid as long
as the packet's buffer is (see interleaved.py).

Sequence numbers are trusted only as far as they behave: the first packet seen starts the count
(RTP-Info's ``seq`` in the PLAY answer is not used: some cameras announce one and send another),
and a jump further than any plausible loss (``max_dropout`` forward, ``max_misorder`` back) is a
restart of the sender's numbering, reported as a discontinuity, never as 60,000 lost packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Generic, TypeVar

_HEADER = struct.Struct(">BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
MAX_DROPOUT = 3000  # RFC 3550 A.1: a forward jump up to this is loss
MAX_MISORDER = 100  # ... and a backward one up to this is a late or duplicate packet
SEQ_MOD = 1 << 16
# accept()'s answer for a packet to drop (duplicate, or later than the window allows).
DROP = -1

T = TypeVar("T")


class RtpError(ValueError):
    """Not an RTP packet (wrong version, too short, lengths past the end)."""


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: memoryview


def parse_rtp(data: memoryview) -> RtpPacket:
    """The header fields and the payload (CSRCs, header extension and padding removed)."""
    n = len(data)
    if n < 12:
        raise RtpError(f"RTP packet of {n} bytes is shorter than its 12-byte header")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise RtpError(f"RTP version {b0 >> 6}, not 2")
    off = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile id, 16-bit length in 32-bit words
        if off + 4 > n:
            raise RtpError("RTP header extension runs past the end of the packet")
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    end = n
    if b0 & 0x20:  # padding: the last byte counts the padding bytes, itself included
        pad = data[n - 1]
        if pad == 0:
            raise RtpError("RTP padding of 0 bytes")
        end -= pad
    if off > end:
        raise RtpError(f"RTP header ({off} bytes) and padding leave no room in a {n}-byte packet")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), seq, ts, ssrc, data[off:end])


class SequenceTracker:
    """In-order sequence accounting for one SSRC (TCP, or after the reorder window on UDP).

    ``accept(seq)`` answers ``DROP`` for a duplicate or late packet, else how many packets are
    missing before this one (0 normally). A restart of the numbering answers 1 (a discontinuity:
    whatever was being reassembled is incomplete) and is counted in ``restarts``, not ``lost``.
    """

    __slots__ = ("base", "cycles", "duplicates", "lost", "max_seq", "received", "restarts")

    def __init__(self) -> None:
        self.max_seq: int | None = None
        self.cycles = 0  # wraps of the 16-bit number, << 16 (RFC 3550 A.1)
        self.base = 0
        self.received = 0
        self.lost = 0
        self.duplicates = 0
        self.restarts = 0

    @property
    def extended_max(self) -> int:
        """Highest sequence number seen, extended by its wraps (for receiver reports)."""
        return self.cycles + (self.max_seq or 0)

    def accept(self, seq: int) -> int:
        if self.max_seq is None:
            self.max_seq = self.base = seq
            self.received = 1
            return 0
        delta = (seq - self.max_seq) & 0xFFFF
        if delta == 0 or SEQ_MOD - delta <= MAX_MISORDER:
            self.duplicates += 1
            return DROP
        self.received += 1
        if delta <= MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
            self.lost += delta - 1
            return delta - 1
        # Neither loss nor reordering: the sender renumbered (a restarted encoder, a bogus first
        # number). Start counting again from here.
        self.restarts += 1
        self.max_seq = self.base = seq
        self.cycles = 0
        self.received = 1
        return 1


class ReorderWindow(Generic[T]):
    """Puts UDP packets of one SSRC back in order, holding at most ``window`` of them.

    ``push(seq, item)`` returns the items now releasable, in order, each with the count of
    packets given up as lost just before it. A missing packet is waited for until ``window``
    later packets are held (the bound on added latency: ~0.1 s of a 4 Mbit/s camera at 64);
    ``flush()`` releases everything held (a stream ending, a keep-alive tick with no traffic).
    """

    __slots__ = ("_held", "_next", "dropped", "window")

    def __init__(self, window: int = 64) -> None:
        self.window = window
        self._held: dict[int, T] = {}
        self._next: int | None = None
        self.dropped = 0  # late or duplicate packets

    def push(self, seq: int, item: T) -> list[tuple[int, T]]:
        if self._next is None:
            self._next = seq
        ahead = (seq - self._next) & 0xFFFF
        if ahead >= SEQ_MOD - MAX_MISORDER or seq in self._held:
            self.dropped += 1  # behind what was already released, or a duplicate
            return []
        out: list[tuple[int, T]] = []
        if ahead > MAX_DROPOUT:
            # A renumbering sender: release what is held, then start again at this packet.
            out = self.flush()
            out.append((1, item))
            self._next = (seq + 1) & 0xFFFF
            return out
        self._held[seq] = item
        self._release(out, 0)
        while len(self._held) > self.window:
            # Give up on the missing packet(s): skip to the oldest held one.
            oldest = min(self._held, key=lambda s: (s - (self._next or 0)) & 0xFFFF)
            gap = (oldest - (self._next or 0)) & 0xFFFF
            self._next = oldest
            self._release(out, gap)
        return out

    def _release(self, out: list[tuple[int, T]], gap: int) -> None:
        while self._next in self._held:
            out.append((gap, self._held.pop(self._next)))
            gap = 0
            self._next = (self._next + 1) & 0xFFFF

    def flush(self) -> list[tuple[int, T]]:
        out: list[tuple[int, T]] = []
        while self._held:
            oldest = min(self._held, key=lambda s: (s - (self._next or 0)) & 0xFFFF)
            gap = (oldest - (self._next or 0)) & 0xFFFF
            self._next = oldest
            self._release(out, gap)
        return out


class TimestampUnwrapper:
    """32-bit RTP timestamps extended to unbounded ints: a step of less than 2**31 ticks either
    way is taken as that step (13 h at 90 kHz), so the wrap every 13.3 h is invisible and a
    backward jump stays backward."""

    __slots__ = ("_last", "extended")

    def __init__(self) -> None:
        self._last: int | None = None
        self.extended = 0

    def peek(self, ts: int) -> int:
        """What ``unwrap(ts)`` would answer, without taking ``ts`` as the newest (for the RTP
        timestamp of a sender report)."""
        if self._last is None:
            return ts
        return self.extended + ((ts - self._last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)

    def unwrap(self, ts: int) -> int:
        if self._last is None:
            self.extended = ts
        else:
            self.extended += ((ts - self._last + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
        self._last = ts
        return self.extended
