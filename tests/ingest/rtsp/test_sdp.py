"""SDP parsing, control URL rules and codec parameters (sdp.py)."""

from __future__ import annotations

import base64

import pytest

from vmsd.ingest.rtsp.sdp import (
    SdpError,
    aac_config,
    base_url,
    h264_parameters,
    h265_parameters,
    parse_sdp,
    resolve_control,
)

SPS = bytes.fromhex("6742c01e95a0a0fd00f1")
PPS = bytes.fromhex("68ce3c80")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# What GStreamer's rtsp-server (the simulator) answers, shortened.
GSTREAMER = f"""v=0
o=- 1188340656180883 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=now-
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
a=rtpmap:96 H264/90000
a=framerate:25
a=fmtp:96 packetization-mode=1;sprop-parameter-sets={b64(SPS)},{b64(PPS)};profile-level-id=42c01e
a=control:stream=0
m=audio 0 RTP/AVP 97
a=rtpmap:97 MPEG4-GENERIC/16000/1
a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3
a=control:stream=1
"""

# The shape of a Hikvision/Dahua answer: absolute controls, a query string, CRLF, odd spacing.
CAMERA = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=Media Presentation\r\n"
    "a=control:rtsp://10.0.0.2/cam/realmonitor?channel=1&subtype=0/\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=Control:trackID=0\r\n"
    "a=rtpmap:96 H265/90000\r\n"
    f"a=fmtp:96 sprop-vps={b64(bytes((64, 1, 12)))}; sprop-sps={b64(bytes((66, 1, 1)))};"
    f" sprop-pps={b64(bytes((68, 1, 193)))}\r\n"
    "m=application 0 RTP/AVP 107\r\n"
    "a=control:trackID=4\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\n"
    "garbage line\r\n"
)


def test_gstreamer_sdp() -> None:
    sdp = parse_sdp(GSTREAMER, "rtsp://127.0.0.1:8554/cam1/")
    video, audio = sdp.media
    assert (video.kind, video.codec, video.clock_rate, video.url) == (
        "video",
        "h264",
        90000,
        "rtsp://127.0.0.1:8554/cam1/stream=0",
    )
    assert (audio.codec, audio.clock_rate, audio.channels) == ("aac", 16000, 1)
    assert sdp.aggregate_url == "rtsp://127.0.0.1:8554/cam1/"
    p = h264_parameters(video)
    assert (p.packetization_mode, p.sps, p.pps, p.profile_level_id) == (1, SPS, PPS, bytes.fromhex("42c01e"))
    c = aac_config(audio)
    assert (c.object_type, c.sample_rate, c.channels, c.sizelength, c.frame_samples) == (2, 16000, 1, 13, 1024)


def test_camera_sdp_with_query_string_and_h265() -> None:
    base = "rtsp://10.0.0.2/cam/realmonitor?channel=1&subtype=0"
    sdp = parse_sdp(CAMERA, base)
    assert [m.codec for m in sdp.media] == ["h265", None]
    assert sdp.media[0].url == base + "/trackID=0"
    assert sdp.aggregate_url == "rtsp://10.0.0.2/cam/realmonitor?channel=1&subtype=0/"
    p = h265_parameters(sdp.media[0])
    assert (p.vps, p.sps, p.pps, p.donl) == (bytes((64, 1, 12)), bytes((66, 1, 1)), bytes((68, 1, 193)), False)
    assert sdp.first(("h264", "h265")) is sdp.media[0]


@pytest.mark.parametrize(
    ("base", "control", "url"),
    [
        ("rtsp://cam/live", "trackID=1", "rtsp://cam/live/trackID=1"),
        ("rtsp://cam/live/", "trackID=1", "rtsp://cam/live/trackID=1"),
        ("rtsp://cam/live", "*", "rtsp://cam/live"),
        ("rtsp://cam/live", "", "rtsp://cam/live"),
        ("rtsp://cam/live", "RTSP://other/x", "RTSP://other/x"),
        ("rtsp://cam/live?a=1", "track1", "rtsp://cam/live?a=1/track1"),
    ],
)
def test_control_url_rules(base: str, control: str, url: str) -> None:
    assert resolve_control(base, control) == url


def test_base_url_prefers_content_base_then_content_location() -> None:
    assert base_url("rtsp://a/x", "rtsp://b/y/", "rtsp://c/z") == "rtsp://b/y/"
    assert base_url("rtsp://a/x", " ", "rtsp://c/z") == "rtsp://c/z"
    assert base_url("rtsp://a/x", None, None) == "rtsp://a/x"


def test_bad_or_missing_parameter_sets_are_left_to_the_stream() -> None:
    sdp = parse_sdp(
        "m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "a=fmtp:96 sprop-parameter-sets=!!notbase64,;profile-level-id=zz;packetization-mode=x\n",
        "rtsp://cam/",
    )
    p = h264_parameters(sdp.media[0])
    assert (p.sps, p.pps, p.profile_level_id, p.packetization_mode, p.parameter_sets) == (None, None, None, 0, [])
    p = h264_parameters(parse_sdp("m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n", "rtsp://c/").media[0])
    assert p.parameter_sets == []
    # A parameter set of the wrong NAL type is not taken either; profile-level-id then comes from the SPS.
    sdp = parse_sdp(
        f"m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 sprop-parameter-sets={b64(PPS)},{b64(SPS)}\n", "r"
    )
    p = h264_parameters(sdp.media[0])
    assert (p.sps, p.pps, p.profile_level_id) == (SPS, PPS, SPS[1:4])
    h = h265_parameters(
        parse_sdp("m=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000\na=fmtp:96 sprop-sps=@@\n", "r").media[0]
    )
    assert h.parameter_sets == []


def test_fmtp_and_rtpmap_for_another_payload_type_are_ignored() -> None:
    m = parse_sdp("m=video 0 RTP/AVP 96\na=rtpmap:97 H264/90000\na=fmtp:97 packetization-mode=1\n", "r").media[0]
    assert (m.encoding, m.fmtp, m.codec) == ("", {}, None)


def test_aac_config_needs_a_readable_audio_specific_config() -> None:
    m = parse_sdp("m=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/48000/2\na=fmtp:97 mode=AAC-hbr\n", "r").media[0]
    with pytest.raises(SdpError, match="AudioSpecificConfig"):
        aac_config(m)
    m.fmtp["config"] = "1190"  # AAC-LC, 48 kHz, stereo
    c = aac_config(m)
    assert (c.object_type, c.sample_rate, c.channels) == (2, 48000, 2)
