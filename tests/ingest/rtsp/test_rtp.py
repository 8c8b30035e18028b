"""RTP header parsing, sequence tracking, the UDP reorder window, timestamp unwrap (rtp.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.ingest.rtsp.rtp import (
    DROP,
    ReorderWindow,
    RtpError,
    SequenceTracker,
    TimestampUnwrapper,
    parse_rtp,
)

from .rtp_streams import rtp


def test_header_fields_and_payload() -> None:
    p = parse_rtp(memoryview(rtp(65535, 0xFFFFFFFF, b"payload", marker=True, pt=97, ssrc=0xDEADBEEF)))
    assert (p.sequence, p.timestamp, p.marker, p.payload_type, p.ssrc) == (65535, 0xFFFFFFFF, True, 97, 0xDEADBEEF)
    assert bytes(p.payload) == b"payload"


def test_csrcs_extension_and_padding_are_stripped() -> None:
    data = rtp(1, 2, b"media", csrcs=3, extension=b"\x01\x02\x03\x04" * 2, padding=4)
    assert bytes(parse_rtp(memoryview(data)).payload) == b"media"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x80\x60\x00", "shorter"),
        (b"\x40" + b"\x00" * 15, "version"),
        (rtp(1, 1, b"")[:12].replace(b"\x80", b"\x90", 1), "extension"),
        (rtp(1, 1, b"ab")[:-1] + b"\x00", "padding"),
        (bytes([0xA0]) + rtp(1, 1, b"ab")[1:-1] + b"\x09", "no room"),
    ],
)
def test_malformed_packets_are_errors(data: bytes, words: str) -> None:
    if words == "padding":
        data = bytes([data[0] | 0x20]) + data[1:]
    with pytest.raises(RtpError, match=words):
        parse_rtp(memoryview(data))


def test_sequence_in_order_loss_duplicate_and_wrap() -> None:
    t = SequenceTracker()
    assert [t.accept(s) for s in (65533, 65534, 65535, 0, 3, 3, 2)] == [0, 0, 0, 0, 2, DROP, DROP]
    assert (t.lost, t.duplicates, t.received, t.extended_max) == (2, 2, 5, 65536 + 3)


def test_a_bogus_first_sequence_number_is_a_restart_not_sixty_thousand_losses() -> None:
    t = SequenceTracker()
    assert t.accept(0) == 0  # the camera's first packet, numbered apart from the rest
    assert t.accept(31000) == 1  # a discontinuity, not 30,999 lost packets
    assert t.accept(31001) == 0
    assert (t.lost, t.restarts, t.received) == (0, 1, 2)


def test_reorder_window_puts_packets_back_in_order() -> None:
    w: ReorderWindow[int] = ReorderWindow(window=8)
    out = []
    for seq in (10, 12, 11, 14, 13, 15):
        out += w.push(seq, seq)
    assert out == [(0, s) for s in range(10, 16)]


def test_reorder_window_gives_up_on_a_lost_packet_after_the_window() -> None:
    w: ReorderWindow[int] = ReorderWindow(window=4)
    out = w.push(1, 1)
    for seq in (3, 4, 5, 6):
        out += w.push(seq, seq)
    assert out == [(0, 1)]  # still waiting for 2
    out += w.push(7, 7)
    assert out == [(0, 1), (1, 3), (0, 4), (0, 5), (0, 6), (0, 7)]
    assert w.push(2, 2) == [] and w.dropped == 1  # too late now


def test_reorder_window_flush_and_restart() -> None:
    w: ReorderWindow[int] = ReorderWindow(window=8)
    w.push(100, 100)
    w.push(102, 102)
    assert w.flush() == [(1, 102)]
    assert w.push(40000, 40000) == [(1, 40000)]  # renumbered sender
    assert w.push(40001, 40001) == [(0, 40001)]


@given(st.integers(0, 65535), st.integers(1, 300), st.randoms(use_true_random=False))
def test_reorder_window_restores_any_bounded_shuffle(first: int, count: int, rng: random.Random) -> None:
    seqs = [(first + i) & 0xFFFF for i in range(count)]
    shuffled = seqs[:1] + sorted(seqs[1:], key=lambda s: ((s - first) & 0xFFFF) + rng.uniform(0, 6))
    w: ReorderWindow[int] = ReorderWindow(window=8)
    out = []
    for s in shuffled:
        out += w.push(s, s)
    out += w.flush()
    assert out == [(0, s) for s in seqs]


def test_timestamp_unwrap_across_the_32_bit_wrap_and_backward_jumps() -> None:
    u = TimestampUnwrapper()
    assert u.unwrap(0xFFFFF000) == 0xFFFFF000
    assert u.unwrap(0x00000F00) == 0x1_00000F00
    assert u.unwrap(0x00000E00) == 0x1_00000E00  # backwards stays backwards
    assert u.unwrap(0xFFFFF000) == 0xFFFFF000  # back across the wrap
    assert u.peek(0x00000010) == 0x1_00000010 and u.extended == 0xFFFFF000  # peeking changes nothing
