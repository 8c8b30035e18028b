"""RTSP/1.0 messages (RFC 2326): requests built, responses (and server requests) parsed. No I/O.

Parsing is tolerant the way cameras need it to be: header names in any case, duplicate headers
kept in order, folded continuation lines joined, bare LF line ends, a missing reason phrase, and
bytes that are not a message start (noise, the tail of a lost interleaved frame) skipped and
counted. A message is returned only once it is complete (head and Content-Length body).

Contract: ``parse_message(buf, start, end)`` never raises for incomplete input (it answers
``None`` and how many bytes it skipped); it raises ``MessageError`` only for input that cannot
become a message (a head longer than ``MAX_HEAD_BYTES``, a bad status code, a bad
Content-Length), whose message quotes at most a short, printable prefix of the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 64 * 1024  # a status line and headers; SDP bodies come after and are bounded below
MAX_BODY_BYTES = 1024 * 1024  # an SDP of a megabyte is not a camera's
VERSION = b"RTSP/1.0"
# What may start a message from the server: a response, or a request (some cameras send
# GET_PARAMETER/SET_PARAMETER/OPTIONS/ANNOUNCE to the client on the same connection).
REQUEST_METHODS = (
    b"ANNOUNCE",
    b"GET_PARAMETER",
    b"OPTIONS",
    b"REDIRECT",
    b"SET_PARAMETER",
    b"PLAY_NOTIFY",
)
_STARTS = (b"RTSP/", *(m + b" " for m in REQUEST_METHODS))
_START_RE = re.compile(b"RTSP/|" + b"|".join(re.escape(m + b" ") for m in REQUEST_METHODS))
_HEAD_END_RE = re.compile(b"\r?\n\r?\n")


class MessageError(ValueError):
    """Bytes that cannot be an RTSP message; the message is safe to log."""


class Headers:
    """Header fields in arrival order; names compared without case."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = list(fields)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (duplicates: the first wins, as most clients do)."""
        key = name.lower()
        for k, v in self._fields:
            if k.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self._fields if k.lower() == key]

    def add(self, name: str, value: str) -> None:
        self._fields.append((name, value))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        # Authorization values carry credentials (Basic is base64 of user:password).
        shown = [(k, "***" if k.lower() in ("authorization", "www-authenticate") else v) for k, v in self._fields]
        return f"Headers({shown!r})"


@dataclass
class Response:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        """The CSeq echoed by the server, or None when it is missing or not a number."""
        return _cseq(self.headers)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Request:
    """A request: built by the client, or parsed when a server sends one."""

    method: str
    url: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def cseq(self) -> int | None:
        return _cseq(self.headers)


def _cseq(headers: Headers) -> int | None:
    value = headers.get("CSeq")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def encode_request(
    method: str, url: str, cseq: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    """The request's bytes. CR LF line ends; Content-Length added when there is a body."""
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def encode_response(status: int, reason: str, cseq: int | None, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A response to a request the server sent (e.g. 501 to an ANNOUNCE)."""
    lines = [f"RTSP/1.0 {status} {reason}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def looks_like_message_start(buf: bytes | bytearray | memoryview, pos: int, end: int) -> bool | None:
    """Whether ``buf[pos:]`` starts a message: True, False, or None (too few bytes to tell)."""
    head = bytes(buf[pos : min(end, pos + 16)])
    for start in _STARTS:
        n = min(len(head), len(start))
        if head[:n] == start[:n]:
            return True if n == len(start) else None
    return False


def parse_message(
    buf: bytes | bytearray | memoryview, start: int = 0, end: int | None = None
) -> tuple[Response | Request | None, int, int]:
    """Parse one message from ``buf[start:end]``.

    Returns ``(message, next_position, skipped)``: ``skipped`` bytes before the message were not
    the start of one (they are counted, not interpreted). With ``message`` None, the caller keeps
    ``buf[next_position:end]`` and calls again when more bytes have arrived.
    """
    end = len(buf) if end is None else end
    # re searches any bytes-like object in place: only the head and the body are copied.
    match = _START_RE.search(buf, start, end)
    if match is None:
        # Keep a tail that could be the beginning of a start token.
        keep = next(
            (k for k in range(min(15, end - start), 0, -1) if looks_like_message_start(buf, end - k, end) is None), 0
        )
        skipped = end - start - keep
        return None, start + skipped, skipped
    begin = match.start()
    skipped = begin - start
    head_end = _HEAD_END_RE.search(buf, begin, min(end, begin + MAX_HEAD_BYTES + 4))
    if head_end is None:
        if end - begin > MAX_HEAD_BYTES:
            raise MessageError(f"RTSP message head longer than {MAX_HEAD_BYTES} bytes")
        return None, begin, skipped
    lines = bytes(buf[begin : head_end.start()]).decode("utf-8", errors="replace").split("\n")
    lines = [line.rstrip("\r") for line in lines]
    headers = _parse_headers(lines[1:])
    length = _content_length(headers)
    body_start = head_end.end()
    if end - body_start < length:
        return None, begin, skipped
    message = _first_line(lines[0], headers, bytes(buf[body_start : body_start + length]))
    return message, body_start + length, skipped


def _first_line(line: str, headers: Headers, body: bytes) -> Response | Request:
    if line.startswith("RTSP/"):
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise MessageError(f"bad RTSP status line {_printable(line)!r}")
        return Response(int(parts[1]), parts[2].strip() if len(parts) > 2 else "", headers, body)
    method, _, rest = line.partition(" ")
    url = rest.rsplit(" ", 1)[0] if rest.endswith(("RTSP/1.0", "RTSP/2.0")) else rest
    return Request(method, url.strip(), headers, body)


def _parse_headers(lines: list[str]) -> Headers:
    fields: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            continue
        if line[0] in " \t" and fields:
            # A folded continuation (RFC 2616 §2.2 LWS, which RTSP/1.0 inherits).
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            continue  # a line that is not a header: ignored, as most clients do
        fields.append((name.strip(), value.strip()))
    return Headers(fields)


def _content_length(headers: Headers) -> int:
    value = headers.get("Content-Length")
    if value is None:
        return 0
    try:
        length = int(value.strip())
    except ValueError:
        raise MessageError(f"bad Content-Length {_printable(value)!r}") from None
    if not 0 <= length <= MAX_BODY_BYTES:
        raise MessageError(f"Content-Length {length} out of range (0 to {MAX_BODY_BYTES})")
    return length


def _printable(text: str, limit: int = 80) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def parse_session_header(value: str) -> tuple[str, int | None]:
    """``Session: id;timeout=60`` → ``("id", 60)``; timeout None when absent or unreadable."""
    session_id, _, params = value.partition(";")
    timeout: int | None = None
    for param in params.split(";"):
        name, _, raw = param.partition("=")
        if name.strip().lower() == "timeout":
            try:
                timeout = int(raw.strip().strip('"'))
            except ValueError:
                timeout = None
    return session_id.strip(), timeout


def parse_public(value: str | None) -> set[str]:
    """The methods a ``Public`` header lists, upper-cased."""
    if not value:
        return set()
    return {m.strip().upper() for m in value.split(",") if m.strip()}
