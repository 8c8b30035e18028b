"""One RTSP session's state machine, without I/O: messages in, request bytes out, times passed in.

    OPTIONS → DESCRIBE (401 → answer the challenge → DESCRIBE again) → SETUP per track → PLAY
    → PLAYING (keep-alives) → TEARDOWN

The I/O side (client.py, or a test) sends what ``start``/``on_message``/``poll``/``teardown``
return, feeds every message the server sends to ``on_message`` and calls ``poll`` when
``next_deadline_ns`` passes.

Tolerated, because cameras do it: OPTIONS refused (DESCRIBE follows anyway); responses without
CSeq (matched to the oldest request outstanding); a Session header with or without ``timeout``
(60 s assumed); SETUP answers that move the interleaved channels (the answer's channels are
used); keep-alives unanswered or refused (counted, never fatal: the media and RTCP flow tell
whether the camera is alive). Keep-alives go every ``min(timeout, 60 s) / 2`` with
GET_PARAMETER when the camera's ``Public`` lists it, else OPTIONS; a GET_PARAMETER that is
refused switches the session to OPTIONS. Requests a camera sends to the client (OPTIONS,
GET_PARAMETER as pings; ANNOUNCE, REDIRECT) are answered.

Errors (``SessionError``, ``auth.AuthError``) name the step and the camera's answer in words; the
URL in them is redacted (``vmsd.log.redact_url``) and credentials never appear.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from vmsd.ingest.rtsp.auth import Authenticator, AuthError, split_credentials
from vmsd.ingest.rtsp.messages import (
    Request,
    Response,
    encode_request,
    encode_response,
    parse_public,
    parse_session_header,
)
from vmsd.ingest.rtsp.sdp import Media, SdpError, SessionDescription, aac_config, base_url, h264_parameters, parse_sdp
from vmsd.log import redact_url
from vmsd.units import NS_PER_S

DEFAULT_TIMEOUT_S = 60  # RFC 2326 §12.37
MAX_REDIRECTS = 3


class SessionError(Exception):
    """The session cannot go on; the message is safe to log."""


class State(enum.Enum):
    INIT = "init"
    OPTIONS = "options"
    DESCRIBE = "describe"
    SETUP = "setup"
    PLAY = "play"
    PLAYING = "playing"
    TEARDOWN = "teardown"
    CLOSED = "closed"


@dataclass
class SessionOptions:
    transport: str = "tcp"  # "tcp" (interleaved) or "udp"
    audio: bool = True
    user_agent: str = "vmsd"
    request_timeout_ns: int = 10 * NS_PER_S  # for the requests that open the session
    # UDP: the (RTP, RTCP) client ports the I/O side has bound, one pair per track to set up.
    udp_client_ports: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Track:
    media: Media
    codec: str  # "h264", "h265", "aac"
    url: str
    rtp_channel: int = -1  # TCP interleaved
    rtcp_channel: int = -1
    client_ports: tuple[int, int] | None = None  # UDP
    server_ports: tuple[int, int] | None = None
    ssrc: int | None = None  # from the SETUP answer's Transport, when the camera says
    rtp_info_seq: int | None = None  # from PLAY's RTP-Info (informational: not trusted)
    rtp_info_timestamp: int | None = None


@dataclass
class _Pending:
    method: str
    url: str
    sent_ns: int
    extra: list[tuple[str, str]]
    keepalive: bool = False


class RtspSession:
    def __init__(self, url: str, options: SessionOptions | None = None, auth: Authenticator | None = None) -> None:
        self.url, credentials = split_credentials(url)
        self.safe_url = redact_url(self.url)
        # A copy: the client fills in its UDP ports, and one options object may serve many cameras.
        self.options = (
            replace(options, udp_client_ports=list(options.udp_client_ports)) if options else SessionOptions()
        )
        if self.options.transport not in ("tcp", "udp"):
            raise ValueError(f"RTSP transport must be 'tcp' or 'udp', not {self.options.transport!r}")
        self.auth = auth or Authenticator(credentials)
        self.state = State.INIT
        self.cseq = 0
        self.session_id: str | None = None
        self.timeout_s = DEFAULT_TIMEOUT_S
        self.public: set[str] = set()
        self.sdp: SessionDescription | None = None
        self.tracks: list[Track] = []
        self.keepalive_method = "OPTIONS"
        self.keepalives_sent = 0
        self.keepalives_refused = 0
        self.keepalives_unanswered = 0
        self.server_requests = 0
        self.unmatched_responses = 0
        self.skipped_audio: str | None = None  # why an AAC track was not set up
        self._pending: dict[int, _Pending] = {}
        self._setup_index = 0
        self._redirects = 0
        self._next_keepalive_ns: int | None = None

    # -- the I/O side calls these ----------------------------------------------------------

    def start(self, now_ns: int) -> bytes:
        if self.state is not State.INIT:
            raise RuntimeError("session already started")
        self.state = State.OPTIONS
        return self._request("OPTIONS", self.url, now_ns)

    def on_message(self, message: Response | Request, now_ns: int) -> bytes | None:
        """A message from the server; returns what to send next (or None)."""
        if isinstance(message, Request):
            return self._answer_server_request(message)
        pending = self._match(message)
        if pending is None:
            self.unmatched_responses += 1
            return None
        if pending.keepalive:
            return self._keepalive_answered(pending, message, now_ns)
        if message.status == 401 and self.state in (State.OPTIONS, State.DESCRIBE, State.SETUP, State.PLAY):
            self.auth.on_unauthorized(message.headers.get_all("WWW-Authenticate"))
            return self._request(pending.method, pending.url, now_ns, pending.extra)
        step = {
            State.OPTIONS: self._options_answered,
            State.DESCRIBE: self._describe_answered,
            State.SETUP: self._setup_answered,
            State.PLAY: self._play_answered,
            State.TEARDOWN: self._teardown_answered,
        }.get(self.state)
        return None if step is None else step(message, now_ns)

    def poll(self, now_ns: int) -> bytes | None:
        """Check deadlines: a request unanswered too long while opening (SessionError), a
        keep-alive due (its bytes), keep-alives long unanswered (forgotten, counted)."""
        if self.state in (State.OPTIONS, State.DESCRIBE, State.SETUP, State.PLAY):
            for p in self._pending.values():
                if now_ns - p.sent_ns > self.options.request_timeout_ns:
                    raise SessionError(
                        f"{p.method} {self.safe_url}: no answer from the camera within "
                        f"{self.options.request_timeout_ns / NS_PER_S:g} s"
                    )
            return None
        if self.state is not State.PLAYING or self._next_keepalive_ns is None:
            return None
        interval = self.keepalive_interval_ns
        for cseq in [c for c, p in self._pending.items() if p.keepalive and now_ns - p.sent_ns >= interval]:
            del self._pending[cseq]
            self.keepalives_unanswered += 1
        if now_ns < self._next_keepalive_ns:
            return None
        self._next_keepalive_ns = now_ns + interval
        self.keepalives_sent += 1
        url = self._aggregate_url()
        return self._request(self.keepalive_method, url, now_ns, keepalive=True)

    def next_deadline_ns(self) -> int | None:
        """When ``poll`` next has something to do (None: nothing scheduled)."""
        if self.state in (State.OPTIONS, State.DESCRIBE, State.SETUP, State.PLAY) and self._pending:
            return min(p.sent_ns for p in self._pending.values()) + self.options.request_timeout_ns + 1
        if self.state is State.PLAYING:
            return self._next_keepalive_ns
        return None

    def teardown(self, now_ns: int) -> bytes | None:
        """The TEARDOWN to send (None when there is no session to end)."""
        if self.session_id is None or self.state in (State.TEARDOWN, State.CLOSED):
            self.state = State.CLOSED
            return None
        self.state = State.TEARDOWN
        return self._request("TEARDOWN", self._aggregate_url(), now_ns)

    @property
    def keepalive_interval_ns(self) -> int:
        return min(max(self.timeout_s, 2), 60) * NS_PER_S // 2

    @property
    def playing(self) -> bool:
        return self.state is State.PLAYING

    # -- requests ---------------------------------------------------------------------------

    def _request(
        self, method: str, url: str, now_ns: int, extra: list[tuple[str, str]] | None = None, keepalive: bool = False
    ) -> bytes:
        self.cseq += 1
        extra = list(extra or [])
        headers = [("User-Agent", self.options.user_agent)]
        if self.session_id is not None:
            headers.append(("Session", self.session_id))
        authorization = self.auth.authorization(method, url)
        if authorization is not None:
            headers.append(("Authorization", authorization))
        self._pending[self.cseq] = _Pending(method, url, now_ns, extra, keepalive)
        return encode_request(method, url, self.cseq, headers + extra)

    def _match(self, response: Response) -> _Pending | None:
        cseq = response.cseq
        if cseq is None:
            if not self._pending:
                return None
            cseq = min(self._pending)  # cameras that drop CSeq answer in order
        return self._pending.pop(cseq, None)

    def _fail(self, step: str, response: Response) -> SessionError:
        reason = f" {response.reason}" if response.reason else ""
        return SessionError(f"{step} {self.safe_url}: the camera answered {response.status}{reason}")

    def _aggregate_url(self) -> str:
        if self.sdp is not None:
            return self.sdp.aggregate_url
        return self.url

    # -- answers ---------------------------------------------------------------------------

    def _options_answered(self, response: Response, now_ns: int) -> bytes:
        # A camera that refuses OPTIONS may still describe and play: go on regardless.
        if response.ok:
            self.public = parse_public(response.headers.get("Public"))
        if "GET_PARAMETER" in self.public:
            self.keepalive_method = "GET_PARAMETER"
        self.state = State.DESCRIBE
        return self._request("DESCRIBE", self.url, now_ns, [("Accept", "application/sdp")])

    def _describe_answered(self, response: Response, now_ns: int) -> bytes:
        if response.status in (301, 302, 303, 305, 307) and response.headers.get("Location"):
            return self._redirect(response, now_ns)
        if not response.ok:
            raise self._fail("DESCRIBE", response)
        base = base_url(self.url, response.headers.get("Content-Base"), response.headers.get("Content-Location"))
        self.sdp = parse_sdp(response.body.decode("utf-8", errors="replace"), base)
        self.tracks = self._choose_tracks(self.sdp)
        self.state = State.SETUP
        self._setup_index = 0
        return self._setup(now_ns)

    def _redirect(self, response: Response, now_ns: int) -> bytes:
        location = (response.headers.get("Location") or "").strip()
        self._redirects += 1
        old, new = urlsplit(self.url), urlsplit(location)
        if self._redirects > MAX_REDIRECTS:
            raise SessionError(f"DESCRIBE {self.safe_url}: more than {MAX_REDIRECTS} redirects")
        if new.scheme not in ("rtsp", "rtsps") or (new.hostname, new.port) != (old.hostname, old.port):
            # Credentials go only where the operator configured them.
            raise SessionError(
                f"DESCRIBE {self.safe_url}: the camera redirects to another server ({redact_url(location)})"
            )
        self.url, _ = split_credentials(location)
        self.safe_url = redact_url(self.url)
        return self._request("DESCRIBE", self.url, now_ns, [("Accept", "application/sdp")])

    def _choose_tracks(self, sdp: SessionDescription) -> list[Track]:
        video = None
        for m in sdp.media:
            if m.codec in ("h264", "h265"):
                if m.codec == "h264" and h264_parameters(m).packetization_mode == 2:
                    continue  # interleaved mode: not supported, look for another track
                video = m
                break
        if video is None:
            kinds = ", ".join(f"{m.kind} {m.encoding or m.payload_type}" for m in sdp.media) or "none"
            raise SessionError(f"DESCRIBE {self.safe_url}: no H.264 or H.265 video track (tracks: {kinds})")
        chosen = [Track(video, str(video.codec), video.url)]
        audio = sdp.first(("aac",)) if self.options.audio else None
        if audio is not None:
            try:
                aac_config(audio)
            except SdpError as error:
                # Without its config the audio cannot be stored; the video still can.
                self.skipped_audio = str(error)
                audio = None
        if audio is not None:
            chosen.append(Track(audio, "aac", audio.url))
        return chosen

    def _setup(self, now_ns: int) -> bytes:
        i = self._setup_index
        track = self.tracks[i]
        if self.options.transport == "tcp":
            track.rtp_channel, track.rtcp_channel = 2 * i, 2 * i + 1
            transport = f"RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}"
        else:
            if i >= len(self.options.udp_client_ports):
                raise SessionError(f"SETUP {self.safe_url}: no UDP ports bound for track {i + 1}")
            track.client_ports = self.options.udp_client_ports[i]
            transport = f"RTP/AVP;unicast;client_port={track.client_ports[0]}-{track.client_ports[1]}"
        return self._request("SETUP", track.url, now_ns, [("Transport", transport)])

    def _setup_answered(self, response: Response, now_ns: int) -> bytes:
        track = self.tracks[self._setup_index]
        if not response.ok:
            if response.status == 461 and self.options.transport == "tcp":
                raise SessionError(
                    f"SETUP {self.safe_url}: the camera does not offer RTP over TCP (461); configure transport udp"
                )
            raise self._fail("SETUP", response)
        session = response.headers.get("Session")
        if session:
            session_id, timeout = parse_session_header(session)
            if self.session_id is None:
                self.session_id = session_id
            if timeout is not None and timeout > 0:
                self.timeout_s = timeout
        elif self.session_id is None:
            raise SessionError(f"SETUP {self.safe_url}: the camera's answer has no Session header")
        _apply_transport(track, response.headers.get("Transport") or "")
        self._setup_index += 1
        if self._setup_index < len(self.tracks):
            return self._setup(now_ns)
        self.state = State.PLAY
        return self._request("PLAY", self._aggregate_url(), now_ns, [("Range", "npt=0.000-")])

    def _play_answered(self, response: Response, now_ns: int) -> bytes | None:
        if not response.ok:
            raise self._fail("PLAY", response)
        session = response.headers.get("Session")
        if session:
            _, timeout = parse_session_header(session)
            if timeout is not None and timeout > 0:
                self.timeout_s = timeout
        _apply_rtp_info(self.tracks, response.headers.get("RTP-Info") or "")
        self.state = State.PLAYING
        self._next_keepalive_ns = now_ns + self.keepalive_interval_ns
        return None

    def _keepalive_answered(self, pending: _Pending, response: Response, now_ns: int) -> bytes | None:
        if not response.ok:
            self.keepalives_refused += 1
            if response.status == 401:
                # A nonce gone stale mid-session: the next keep-alive answers the new one.
                with contextlib.suppress(AuthError):
                    self.auth.on_unauthorized(response.headers.get_all("WWW-Authenticate"))
            if pending.method == "GET_PARAMETER":
                self.keepalive_method = "OPTIONS"  # refused: the camera may still take OPTIONS
        return None

    def _teardown_answered(self, response: Response, now_ns: int) -> bytes | None:
        self.state = State.CLOSED
        return None

    def _answer_server_request(self, request: Request) -> bytes:
        self.server_requests += 1
        if request.method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER"):
            return encode_response(200, "OK", request.cseq)
        return encode_response(501, "Not Implemented", request.cseq)


def _params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split(";"):
        name, _, value = item.partition("=")
        out.setdefault(name.strip().lower(), value.strip())
    return out


def _pair(value: str) -> tuple[int, int] | None:
    first, _, second = value.partition("-")
    try:
        a = int(first)
        return a, int(second) if second else a + 1
    except ValueError:
        return None


def _apply_transport(track: Track, transport: str) -> None:
    # Several transports may be listed; the first is the one the camera chose.
    params = _params(transport.split(",")[0])
    channels = _pair(params.get("interleaved", ""))
    if channels is not None:
        track.rtp_channel, track.rtcp_channel = channels
    ports = _pair(params.get("server_port", ""))
    if ports is not None:
        track.server_ports = ports
    ssrc = params.get("ssrc", "")
    try:
        track.ssrc = int(ssrc, 16) & 0xFFFFFFFF if ssrc else None
    except ValueError:
        track.ssrc = None


def _apply_rtp_info(tracks: list[Track], rtp_info: str) -> None:
    for entry in rtp_info.split(","):
        params = _params(entry)
        url = params.get("url", "")
        if not url:
            continue
        for track in tracks:
            if url == track.url or track.url.endswith(url) or url.endswith(track.url.rsplit("/", 1)[-1]):
                try:
                    track.rtp_info_seq = int(params["seq"]) if "seq" in params else None
                    track.rtp_info_timestamp = int(params["rtptime"]) if "rtptime" in params else None
                except ValueError:
                    pass
                break
