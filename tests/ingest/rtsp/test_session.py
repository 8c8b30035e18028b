"""The RTSP session state machine, driven by scripted camera answers (session.py)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmsd.ingest.rtsp.auth import AuthError
from vmsd.ingest.rtsp.messages import Headers, Request, Response, parse_message
from vmsd.ingest.rtsp.session import RtspSession, SessionError, SessionOptions, State
from vmsd.units import NS_PER_S

URL = "rtsp://admin:hunter22@127.0.0.1:8554/cam1"
SDP = (
    "v=0\r\ns=x\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={base64.b64encode(b'gB').decode()}\r\n"
    "a=control:stream=0\r\n"
    "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000/1\r\n"
    "a=fmtp:97 mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3\r\n"
    "a=control:stream=1\r\n"
)


def request(raw: bytes | None) -> Request:
    """A request the client built (parse_message reads only what a server may send)."""
    assert raw is not None and raw.endswith(b"\r\n\r\n")
    first, *lines = raw.decode().split("\r\n")[:-2]
    method, url, version = first.split(" ")
    assert version == "RTSP/1.0"
    return Request(method, url, Headers([(k, v.strip()) for k, _, v in (x.partition(":") for x in lines)]))


def answer(to: bytes | None, status: int = 200, headers: dict[str, str] | None = None, body: str = "") -> Response:
    cseq = request(to).cseq
    lines = [f"RTSP/1.0 {status} Whatever", f"CSeq: {cseq}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body.encode())}")
    message, _, _ = parse_message(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
    assert isinstance(message, Response)
    return message


def open_session(
    s: RtspSession, *, public: str = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN", timeout: str = ""
) -> int:
    """OPTIONS → DESCRIBE → SETUP ×2 → PLAY with plain answers; returns the time it ended."""
    now = 0
    out = s.start(now)
    out = s.on_message(answer(out, headers={"Public": public}), now)
    out = s.on_message(answer(out, headers={"Content-Base": "rtsp://127.0.0.1:8554/cam1/"}, body=SDP), now)
    assert request(out).method == "SETUP"
    out = s.on_message(
        answer(out, headers={"Session": f"S1{timeout}", "Transport": "RTP/AVP/TCP;interleaved=0-1"}), now
    )
    out = s.on_message(answer(out, headers={"Session": "S1", "Transport": "RTP/AVP/TCP;interleaved=2-3"}), now)
    assert request(out).method == "PLAY"
    assert s.on_message(answer(out), now) is None
    assert s.state is State.PLAYING
    return now


def test_digest_protected_camera_opens_with_two_tracks() -> None:
    s = RtspSession(URL, auth=None)
    out = s.start(0)
    r = request(out)
    assert (r.method, r.url, r.cseq) == ("OPTIONS", "rtsp://127.0.0.1:8554/cam1", 1)
    assert b"hunter22" not in (out or b"") and b"admin" not in (out or b"")
    out = s.on_message(answer(out, headers={"Public": "OPTIONS, DESCRIBE, GET_PARAMETER"}), 0)
    assert request(out).method == "DESCRIBE"
    challenge = 'Digest realm="cam", nonce="n1", qop="auth"'
    out = s.on_message(answer(out, 401, {"WWW-Authenticate": challenge}), 0)
    r = request(out)
    assert r.method == "DESCRIBE" and r.cseq == 3
    assert (r.headers.get("Authorization") or "").startswith('Digest username="admin", realm="cam", nonce="n1"')
    out = s.on_message(answer(out, headers={"Content-Base": "rtsp://127.0.0.1:8554/cam1/"}, body=SDP), 0)
    r = request(out)
    assert (r.method, r.url) == ("SETUP", "rtsp://127.0.0.1:8554/cam1/stream=0")
    assert r.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert r.headers.get("Session") is None and "Authorization" in r.headers
    out = s.on_message(
        answer(out, headers={"Session": "ABC;timeout=30", "Transport": "RTP/AVP/TCP;interleaved=0-1;ssrc=1A2B3C4D"}), 0
    )
    r = request(out)
    assert (r.url, r.headers.get("Session"), r.headers.get("Transport")) == (
        "rtsp://127.0.0.1:8554/cam1/stream=1",
        "ABC",
        "RTP/AVP/TCP;unicast;interleaved=2-3",
    )
    # The camera moves the audio track's channels: its choice is used.
    out = s.on_message(answer(out, headers={"Session": "ABC", "Transport": "RTP/AVP/TCP;interleaved=6-7"}), 0)
    r = request(out)
    assert (r.method, r.url, r.headers.get("Range")) == ("PLAY", "rtsp://127.0.0.1:8554/cam1/", "npt=0.000-")
    rtp_info = "url=rtsp://127.0.0.1:8554/cam1/stream=0;seq=100;rtptime=5000,url=stream=1;seq=7;rtptime=9"
    assert s.on_message(answer(out, headers={"RTP-Info": rtp_info}), NS_PER_S) is None
    assert s.playing and s.session_id == "ABC" and s.timeout_s == 30
    video, audio = s.tracks
    assert (video.codec, video.rtp_channel, video.rtcp_channel, video.ssrc) == ("h264", 0, 1, 0x1A2B3C4D)
    assert (audio.codec, audio.rtp_channel, audio.rtcp_channel) == ("aac", 6, 7)
    assert (video.rtp_info_seq, video.rtp_info_timestamp, audio.rtp_info_seq) == (100, 5000, 7)
    # Keep-alive: half of min(timeout, 60) after PLAY, GET_PARAMETER since Public lists it.
    assert s.next_deadline_ns() == NS_PER_S + 15 * NS_PER_S
    assert s.poll(NS_PER_S + 15 * NS_PER_S - 1) is None
    r = request(s.poll(NS_PER_S + 15 * NS_PER_S))
    assert (r.method, r.headers.get("Session")) == ("GET_PARAMETER", "ABC")
    assert "Authorization" in r.headers


@pytest.mark.parametrize(("timeout", "interval_s"), [("", 30), (";timeout=120", 30), (";timeout=10", 5)])
def test_keepalive_interval_is_half_of_the_timeout_capped_at_60_s(timeout: str, interval_s: int) -> None:
    s = RtspSession(URL)
    open_session(s, timeout=timeout)
    assert s.keepalive_interval_ns == interval_s * NS_PER_S


def test_keepalives_without_get_parameter_unanswered_and_refused() -> None:
    s = RtspSession(URL)
    open_session(s, public="OPTIONS, DESCRIBE, SETUP, PLAY")
    first = s.poll(30 * NS_PER_S)
    assert request(first).method == "OPTIONS"
    second = s.poll(60 * NS_PER_S)  # the first was never answered: forgotten, counted, no error
    assert s.keepalives_unanswered == 1
    assert s.on_message(answer(second, 500), 60 * NS_PER_S) is None
    assert (s.keepalives_sent, s.keepalives_refused, s.state) == (2, 1, State.PLAYING)


def test_a_refused_get_parameter_switches_keepalives_to_options() -> None:
    s = RtspSession(URL)
    open_session(s)
    out = s.poll(30 * NS_PER_S)
    assert request(out).method == "GET_PARAMETER"
    s.on_message(answer(out, 405), 30 * NS_PER_S)
    assert request(s.poll(60 * NS_PER_S)).method == "OPTIONS"


def test_a_stale_nonce_on_a_keepalive_is_taken_for_the_next_one() -> None:
    s = RtspSession(URL)
    out = s.start(0)
    out = s.on_message(answer(out, headers={"Public": "GET_PARAMETER"}), 0)
    out = s.on_message(answer(out, 401, {"WWW-Authenticate": 'Digest realm="r", nonce="old"'}), 0)
    out = s.on_message(answer(out, body=SDP), 0)
    out = s.on_message(answer(out, headers={"Session": "S"}), 0)
    out = s.on_message(answer(out, headers={"Session": "S"}), 0)
    s.on_message(answer(out), 0)
    keepalive = s.poll(30 * NS_PER_S)
    s.on_message(answer(keepalive, 401, {"WWW-Authenticate": 'Digest realm="r", nonce="new", stale=true'}), 0)
    assert 'nonce="new"' in (request(s.poll(60 * NS_PER_S)).headers.get("Authorization") or "")


def test_options_refused_and_answers_without_cseq_are_tolerated() -> None:
    s = RtspSession(URL)
    out = s.start(0)
    out = s.on_message(answer(out, 404), 0)  # OPTIONS not supported: go on
    assert request(out).method == "DESCRIBE"
    message, _, _ = parse_message(f"RTSP/1.0 200 OK\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}".encode())
    assert isinstance(message, Response)
    out = s.on_message(message, 0)  # no CSeq: matched to the one request outstanding
    assert request(out).method == "SETUP"
    assert s.keepalive_method == "OPTIONS"


def test_an_unanswered_request_while_opening_is_an_error_without_credentials() -> None:
    s = RtspSession(URL, SessionOptions(request_timeout_ns=5 * NS_PER_S))
    out = s.start(0)
    s.on_message(answer(out), 0)
    assert s.next_deadline_ns() == 5 * NS_PER_S + 1
    assert s.poll(5 * NS_PER_S) is None
    with pytest.raises(SessionError, match=r"DESCRIBE rtsp://127\.0\.0\.1:8554/cam1: no answer .* within 5 s") as info:
        s.poll(5 * NS_PER_S + 1)
    assert "hunter22" not in str(info.value) and "admin" not in str(info.value)


@pytest.mark.parametrize(
    ("step", "status", "words"),
    [
        ("DESCRIBE", 404, "DESCRIBE rtsp://127.0.0.1:8554/cam1: the camera answered 404 Whatever"),
        ("SETUP", 461, "does not offer RTP over TCP .* configure transport udp"),
        ("SETUP", 500, "SETUP rtsp://127.0.0.1:8554/cam1: the camera answered 500"),
        ("PLAY", 454, "PLAY .* answered 454"),
    ],
)
def test_refusals_while_opening_name_the_step(step: str, status: int, words: str) -> None:
    s = RtspSession(URL, SessionOptions(audio=False))
    out = s.on_message(answer(s.start(0)), 0)
    if step != "DESCRIBE":
        out = s.on_message(answer(out, body=SDP), 0)
    if step == "PLAY":
        out = s.on_message(answer(out, headers={"Session": "S"}), 0)
    with pytest.raises(SessionError, match=words):
        s.on_message(answer(out, status), 0)


def test_wrong_credentials_fail_once() -> None:
    s = RtspSession(URL)
    out = s.on_message(answer(s.start(0)), 0)
    out = s.on_message(answer(out, 401, {"WWW-Authenticate": 'Basic realm="cam"'}), 0)
    with pytest.raises(AuthError, match="refused"):
        s.on_message(answer(out, 401, {"WWW-Authenticate": 'Basic realm="cam"'}), 0)


def test_no_video_track_is_an_error_listing_what_there_is() -> None:
    s = RtspSession(URL)
    out = s.on_message(answer(s.start(0)), 0)
    sdp = "v=0\r\nm=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\nm=audio 0 RTP/AVP 0\r\n"
    with pytest.raises(SessionError, match=r"no H.264 or H.265 video track \(tracks: video JPEG, audio 0\)"):
        s.on_message(answer(out, body=sdp), 0)


def test_an_aac_track_without_its_config_is_left_out_and_video_goes_on() -> None:
    s = RtspSession(URL)
    out = s.on_message(answer(s.start(0)), 0)
    out = s.on_message(answer(out, body=SDP.replace("config=1408;", "")), 0)
    out = s.on_message(answer(out, headers={"Session": "S"}), 0)
    assert request(out).method == "PLAY"
    assert [t.codec for t in s.tracks] == ["h264"]
    assert s.skipped_audio is not None and "AudioSpecificConfig" in s.skipped_audio


def test_a_stale_nonce_while_opening_is_answered_at_once() -> None:
    s = RtspSession(URL)
    out = s.on_message(answer(s.start(0)), 0)
    out = s.on_message(answer(out, 401, {"WWW-Authenticate": 'Digest realm="r", nonce="a", qop="auth"'}), 0)
    out = s.on_message(answer(out, 401, {"WWW-Authenticate": 'Digest realm="r", nonce="b", qop="auth", stale=true'}), 0)
    r = request(out)
    assert r.method == "DESCRIBE" and 'nonce="b"' in (r.headers.get("Authorization") or "")
    assert request(s.on_message(answer(out, body=SDP), 0)).method == "SETUP"


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([200, 200, 200, 302, 401, 404, 454, 461, 500]),
            st.one_of(st.just(SDP), st.text(max_size=80)),
        ),
        max_size=10,
    )
)
def test_any_answers_end_in_a_named_error_or_go_on(answers: list[tuple[int, str]]) -> None:
    """Whatever a camera answers, the session goes on, or stops with an error that names the
    step in words and never the password."""
    s = RtspSession(URL)
    out: bytes | None = s.start(0)
    headers = {"Session": "S", "WWW-Authenticate": 'Digest realm="r", nonce="n"', "Location": "rtsp://127.0.0.1:8554/x"}
    for status, body in answers:
        if out is None:
            out = s.poll(10**12)
            if out is None:
                break
        try:
            out = s.on_message(answer(out, status, headers, body if s.state is State.DESCRIBE else ""), 0)
        except (SessionError, AuthError) as error:
            assert "hunter22" not in str(error) and "admin" not in str(error)
            return


def test_udp_transport_uses_the_bound_ports() -> None:
    options = SessionOptions(transport="udp", audio=False, udp_client_ports=[(50000, 50001)])
    s = RtspSession(URL, options)
    s.options.udp_client_ports.append((50002, 50003))
    assert options.udp_client_ports == [(50000, 50001)]  # the caller's options are not changed
    out = s.on_message(answer(s.start(0)), 0)
    out = s.on_message(answer(out, body=SDP), 0)
    assert request(out).headers.get("Transport") == "RTP/AVP;unicast;client_port=50000-50001"
    out = s.on_message(answer(out, headers={"Session": "S", "Transport": "RTP/AVP;unicast;server_port=6970-6971"}), 0)
    assert request(out).method == "PLAY"
    assert (s.tracks[0].client_ports, s.tracks[0].server_ports) == ((50000, 50001), (6970, 6971))


def test_redirects_are_followed_on_the_same_server_only() -> None:
    s = RtspSession(URL)
    out = s.on_message(answer(s.start(0)), 0)
    out = s.on_message(answer(out, 302, {"Location": "rtsp://127.0.0.1:8554/other"}), 0)
    assert request(out).url == "rtsp://127.0.0.1:8554/other"
    with pytest.raises(SessionError, match="redirects to another server"):
        s.on_message(answer(out, 302, {"Location": "rtsp://10.9.9.9/x"}), 0)


def test_requests_from_the_camera_are_answered() -> None:
    s = RtspSession(URL)
    open_session(s)
    ping, _, _ = parse_message(b"OPTIONS * RTSP/1.0\r\nCSeq: 77\r\n\r\n")
    announce, _, _ = parse_message(b"ANNOUNCE rtsp://x RTSP/1.0\r\nCSeq: 78\r\n\r\n")
    assert ping is not None and announce is not None
    assert s.on_message(ping, 0) == b"RTSP/1.0 200 OK\r\nCSeq: 77\r\n\r\n"
    assert s.on_message(announce, 0) == b"RTSP/1.0 501 Not Implemented\r\nCSeq: 78\r\n\r\n"


def test_teardown() -> None:
    s = RtspSession(URL)
    assert s.teardown(0) is None and s.state is State.CLOSED
    s = RtspSession(URL)
    open_session(s)
    out = s.teardown(0)
    r = request(out)
    assert (r.method, r.url, r.headers.get("Session")) == ("TEARDOWN", "rtsp://127.0.0.1:8554/cam1/", "S1")
    s.on_message(answer(out), 0)
    assert s.state is State.CLOSED and s.poll(10**12) is None
