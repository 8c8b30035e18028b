"""RTSP message building and tolerant parsing (vmsd.ingest.rtsp.messages)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.ingest.rtsp.messages import (
    MAX_HEAD_BYTES,
    Headers,
    MessageError,
    Request,
    Response,
    encode_request,
    encode_response,
    parse_message,
    parse_public,
    parse_session_header,
)

DESCRIBE_ANSWER = (
    b"RTSP/1.0 200 OK\r\n"
    b"CSeq: 2\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Base: rtsp://cam/live/\r\n"
    b"Content-Length: 10\r\n"
    b"\r\n"
    b"v=0\r\no=- x"
)


def parse_all(data: bytes) -> Response | Request:
    message, end, skipped = parse_message(data)
    assert message is not None
    assert end == len(data) and skipped == 0
    return message


def test_request_is_crlf_terminated_with_cseq_first_and_content_length_for_a_body() -> None:
    raw = encode_request("SET_PARAMETER", "rtsp://cam/x", 7, [("Session", "abc")], b"k: v\r\n")
    assert raw == (
        b"SET_PARAMETER rtsp://cam/x RTSP/1.0\r\nCSeq: 7\r\nSession: abc\r\nContent-Length: 6\r\n\r\nk: v\r\n"
    )
    assert encode_response(501, "Not Implemented", 3) == b"RTSP/1.0 501 Not Implemented\r\nCSeq: 3\r\n\r\n"


def test_response_with_body() -> None:
    r = parse_all(DESCRIBE_ANSWER)
    assert isinstance(r, Response)
    assert (r.status, r.reason, r.cseq, r.ok) == (200, "OK", 2, True)
    assert r.headers.get("content-base") == "rtsp://cam/live/"
    assert r.body == b"v=0\r\no=- x"


def test_bare_lf_line_ends_missing_reason_and_header_case() -> None:
    r = parse_all(b"RTSP/1.0 454\nCSEQ: 9\nsession:  12345;timeout=30 \n\n")
    assert isinstance(r, Response)
    assert (r.status, r.reason, r.cseq) == (454, "", 9)
    assert r.headers.get("Session") == "12345;timeout=30"


def test_duplicate_and_folded_headers() -> None:
    r = parse_all(
        b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n"
        b'WWW-Authenticate: Digest realm="cam",\r\n nonce="abc"\r\n'
        b'WWW-Authenticate: Basic realm="cam"\r\n'
        b"not a header line\r\n\r\n"
    )
    assert r.headers.get_all("www-authenticate") == ['Digest realm="cam", nonce="abc"', 'Basic realm="cam"']
    assert r.headers.get("WWW-Authenticate") == 'Digest realm="cam", nonce="abc"'
    assert len(r.headers) == 3


def test_garbage_before_a_response_is_skipped_and_counted() -> None:
    data = b"\x00\xffjunk RTSP" + DESCRIBE_ANSWER
    message, end, skipped = parse_message(data)
    assert isinstance(message, Response) and message.cseq == 2
    assert (end, skipped) == (len(data), 11)


def test_incomplete_messages_wait_for_more_bytes_at_every_split() -> None:
    for cut in range(len(DESCRIBE_ANSWER)):
        message, pos, skipped = parse_message(DESCRIBE_ANSWER[:cut])
        assert message is None, cut
        # Nothing that could still become the message is given up.
        assert pos == 0 and skipped == 0, cut


def test_garbage_without_a_message_start_is_skipped_except_a_possible_start() -> None:
    message, pos, skipped = parse_message(b"xxxxxxRTS")
    assert message is None and (pos, skipped) == (6, 6)


def test_a_request_from_the_server() -> None:
    r = parse_all(b"GET_PARAMETER rtsp://client/ RTSP/1.0\r\nCSeq: 4\r\n\r\n")
    assert isinstance(r, Request)
    assert (r.method, r.url, r.cseq) == ("GET_PARAMETER", "rtsp://client/", 4)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"RTSP/1.0 2000 OK\r\n\r\n", "status line"),
        (b"RTSP/1.0 OK\r\n\r\n", "status line"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: ten\r\n\r\n", "Content-Length"),
        (b"RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", "out of range"),
    ],
)
def test_what_cannot_be_a_message_is_an_error_naming_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(MessageError, match=words):
        parse_message(data)


def test_an_endless_head_is_an_error_not_a_growing_buffer() -> None:
    with pytest.raises(MessageError, match="longer than"):
        parse_message(b"RTSP/1.0 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6 + 1))


def test_session_header_and_public() -> None:
    assert parse_session_header("ABCD;timeout=30") == ("ABCD", 30)
    assert parse_session_header(" ABCD ") == ("ABCD", None)
    assert parse_session_header('x; Timeout="45"') == ("x", 45)
    assert parse_session_header("x;timeout=soon") == ("x", None)
    assert parse_public("OPTIONS, DESCRIBE,get_parameter,") == {"OPTIONS", "DESCRIBE", "GET_PARAMETER"}
    assert parse_public(None) == set()


def test_headers_repr_hides_credentials() -> None:
    text = repr(Headers([("Authorization", "Basic dXNlcjpwYXNz"), ("CSeq", "1")]))
    assert "dXNlcjpwYXNz" not in text and "CSeq" in text


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_message_error(data: bytes) -> None:
    try:
        _, pos, skipped = parse_message(data)
    except MessageError:
        return
    assert 0 <= skipped <= pos <= len(data)


@given(st.binary(max_size=60).filter(lambda b: b"RTSP/" not in b and b"$" not in b), st.integers(0, 200))
def test_a_response_after_noise_parses_the_same_at_every_split(noise: bytes, cut: int) -> None:
    data = noise + DESCRIBE_ANSWER
    try:
        first, pos, _ = parse_message(data[: min(cut, len(data))])
    except MessageError:
        return
    if first is None:
        message, _, _ = parse_message(data, pos)
        assert isinstance(message, Response) and message.body == b"v=0\r\no=- x"
