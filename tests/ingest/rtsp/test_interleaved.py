"""`$` framing from a bulk buffer, with RTSP messages and garbage mixed in (interleaved.py)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.ingest.rtsp.interleaved import InterleavedReader
from vmsd.ingest.rtsp.messages import Request, Response

from .rtp_streams import rtp

KEEPALIVE_ANSWER = b"RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: 1\r\n\r\n"


def frame(channel: int, data: bytes) -> bytes:
    return b"$" + struct.pack(">BH", channel, len(data)) + data


class Collect:
    def __init__(self) -> None:
        self.items: list[tuple[int, bytes] | Response | Request] = []

    def frame(self, channel: int, data: memoryview) -> None:
        self.items.append((channel, bytes(data)))  # copied: the view is valid only now

    def message(self, message: Response | Request) -> None:
        self.items.append(message)


def run(reader: InterleavedReader, chunks: list[bytes]) -> Collect:
    out = Collect()
    for chunk in chunks:
        reader.feed(chunk)
        reader.process(out.frame, out.message)
    return out


def stream() -> tuple[bytes, list[object]]:
    a, b, c = rtp(1, 0, b"a" * 100), rtp(2, 0, b"b" * 3000), rtp(3, 0, b"\x80rtcp")
    data = frame(0, a) + KEEPALIVE_ANSWER + frame(0, b) + frame(1, c)
    return data, [(0, a), 5, (0, b), (1, c)]


def summary(items: list[object]) -> list[object]:
    return [x.cseq if isinstance(x, Response) else x for x in items]


def test_frames_and_messages_come_out_in_stream_order() -> None:
    data, expected = stream()
    reader = InterleavedReader()
    assert summary(run(reader, [data]).items) == expected
    assert (reader.frames, reader.messages, reader.skipped_bytes, reader.buffered) == (3, 1, 0, 0)


def test_any_split_between_reads_gives_the_same_result() -> None:
    data, expected = stream()
    for cut in range(0, len(data), 7):
        reader = InterleavedReader()
        assert summary(run(reader, [data[:cut], data[cut:]]).items) == expected, cut
        assert reader.skipped_bytes == 0


def test_byte_by_byte_reads() -> None:
    data, expected = stream()
    assert summary(run(InterleavedReader(), [bytes((b,)) for b in data]).items) == expected


def test_resync_after_garbage_counts_the_bytes_skipped() -> None:
    data, expected = stream()
    garbage = b"\x17\x00garbage\xff" * 3
    reader = InterleavedReader()
    out = run(reader, [garbage + data[:200], data[200:] + garbage])
    assert summary(out.items) == expected
    assert reader.skipped_bytes == 2 * len(garbage)


def test_a_dollar_in_garbage_does_not_swallow_the_next_frame() -> None:
    # '$' on an unknown channel, and '$' followed by a byte that is not RTP version 2.
    good = rtp(9, 0, b"x" * 50)
    data = b"$\x07\xff\xff" + b"$\x00\x10\x00\x00junk" + frame(0, good)
    reader = InterleavedReader(channels={0, 1})
    out = run(reader, [data])
    assert out.items == [(0, good)]
    assert reader.skipped_bytes == len(data) - len(frame(0, good))


def test_a_server_request_between_frames_is_delivered() -> None:
    request = b"SET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc"
    out = run(InterleavedReader(), [frame(0, rtp(1, 0, b"a")) + request + frame(0, rtp(2, 0, b"b"))])
    assert isinstance(out.items[1], Request) and out.items[1].body == b"abc"
    assert len(out.items) == 3


def test_a_broken_message_is_skipped_as_garbage() -> None:
    good = rtp(1, 0, b"z")
    reader = InterleavedReader()
    out = run(reader, [b"RTSP/1.0 abc\r\n\r\n" + frame(0, good)])
    assert out.items == [(0, good)]
    assert reader.skipped_bytes == len(b"RTSP/1.0 abc\r\n\r\n")


def test_a_full_buffer_that_cannot_complete_does_not_wedge_the_reader() -> None:
    reader = InterleavedReader(size=70 * 1024)
    # A message head that never ends and fills the buffer.
    out = run(reader, [b"RTSP/1.0 200 OK\r\n" + b"X" * (70 * 1024 - 17)])
    assert out.items == [] and reader.buffered < 70 * 1024
    good = rtp(1, 0, b"q")
    out = run(reader, [frame(0, good)])
    assert out.items[-1] == (0, good)


def test_commit_beyond_the_free_space_is_refused() -> None:
    reader = InterleavedReader()
    with pytest.raises(ValueError, match="free"):
        reader.commit(len(reader.writable()) + 1)


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_arbitrary_bytes_never_crash(chunks: list[bytes]) -> None:
    reader = InterleavedReader(size=70 * 1024)
    run(reader, chunks)
    assert reader.buffered <= 70 * 1024


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=40).filter(lambda b: b"$" not in b and b"RTSP/" not in b and b"OPTIONS" not in b),
            st.binary(min_size=0, max_size=1500),
        ),
        max_size=10,
    ),
    st.integers(1, 5000),
)
def test_frames_survive_any_garbage_without_a_start_byte(pieces: list[tuple[bytes, bytes]], cut: int) -> None:
    data = b""
    expected = []
    garbage = 0
    for noise, payload in pieces:
        packet = rtp(len(expected), 0, payload)
        data += noise + frame(0, packet)
        expected.append((0, packet))
        garbage += len(noise)
    reader = InterleavedReader(channels={0, 1})
    out = run(reader, [data[:cut], data[cut:]])
    assert out.items == expected
    assert reader.skipped_bytes == garbage
