"""The SDP of a DESCRIBE answer (RFC 4566, RFC 2326 appendix C): media, control URLs, codec
parameters. No I/O.

Tolerant: lines that are not ``x=value`` are skipped, attribute names compared without case,
fmtp parameters split on ``;`` with spaces around, and parameter sets that are missing or do not
decode are left out (``None`` / empty) rather than refused — the depacketisers take them from the
stream, where cameras repeat them before each keyframe.

Control URLs (RFC 2326 C.1.1): the base is Content-Base, else Content-Location, else the
DESCRIBE URL; a media ``a=control`` that is absolute is used as is, ``*`` or missing means the
base, and a relative one is appended to the base with one ``/`` between (not RFC 3986 resolution:
cameras answer ``rtsp://cam/live`` with ``trackID=1`` and expect ``rtsp://cam/live/trackID=1``,
query string and all, as FFmpeg and gortsplib send it).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


class SdpError(ValueError):
    """An SDP without anything to record; the message is safe to log."""


@dataclass
class Media:
    kind: str  # "video", "audio", ...
    port: int
    protocol: str
    payload_type: int
    encoding: str = ""  # upper-case rtpmap name: "H264", "H265", "MPEG4-GENERIC", ...
    clock_rate: int = 0
    channels: int = 1
    fmtp: dict[str, str] = field(default_factory=dict)  # names lower-cased
    control: str = ""  # as written
    url: str = ""  # resolved (see the module docstring)
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def codec(self) -> str | None:
        """ "h264", "h265", "aac" for what vmsd records, else None."""
        if self.encoding == "H264":
            return "h264"
        if self.encoding in ("H265", "HEVC"):
            return "h265"
        if self.encoding == "MPEG4-GENERIC" and self.fmtp.get("mode", "").lower().startswith("aac"):
            return "aac"
        return None


@dataclass
class SessionDescription:
    media: list[Media]
    base_url: str
    aggregate_url: str  # for PLAY/TEARDOWN with several tracks
    attributes: dict[str, str] = field(default_factory=dict)

    def first(self, codecs: tuple[str, ...]) -> Media | None:
        return next((m for m in self.media if m.codec in codecs), None)


def base_url(request_url: str, content_base: str | None, content_location: str | None) -> str:
    for candidate in (content_base, content_location):
        if candidate and candidate.strip():
            return candidate.strip()
    return request_url


def resolve_control(base: str, control: str) -> str:
    control = control.strip()
    if not control or control == "*":
        return base
    if control.lower().startswith(("rtsp://", "rtsps://", "rtspu://")):
        return control
    return base + control if base.endswith("/") else f"{base}/{control}"


def parse_sdp(text: str, base: str) -> SessionDescription:
    session_attrs: dict[str, str] = {}
    media: list[Media] = []
    current: Media | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            current = _media_line(value)
            if current is not None:
                media.append(current)
        elif kind == "a":
            name, _, attr = value.partition(":")
            name = name.strip().lower()
            if current is None:
                session_attrs.setdefault(name, attr.strip())
            elif current.kind != "skip":
                _media_attribute(current, name, attr.strip())
    session_control = session_attrs.get("control", "")
    aggregate = resolve_control(base, session_control)
    for m in media:
        m.url = resolve_control(base, m.control)
    return SessionDescription(media, base, aggregate, session_attrs)


def _media_line(value: str) -> Media | None:
    parts = value.split()
    if len(parts) < 4:
        return None
    try:
        port = int(parts[1].split("/")[0])
        pt = int(parts[3])
    except ValueError:
        return None
    return Media(parts[0].lower(), port, parts[2], pt)


def _media_attribute(m: Media, name: str, value: str) -> None:
    m.attributes.setdefault(name, value)
    if name == "control":
        m.control = value
    elif name == "rtpmap":
        pt, _, spec = value.partition(" ")
        if pt.strip() != str(m.payload_type):
            return
        fields = spec.strip().split("/")
        m.encoding = fields[0].upper()
        try:
            m.clock_rate = int(fields[1]) if len(fields) > 1 else 0
            m.channels = int(fields[2]) if len(fields) > 2 else 1
        except ValueError:
            pass
    elif name == "fmtp":
        pt, _, params = value.partition(" ")
        if pt.strip() != str(m.payload_type):
            return
        for item in params.split(";"):
            key, eq, val = item.partition("=")
            if eq and key.strip():
                m.fmtp[key.strip().lower()] = val.strip()


# -- codec parameters -------------------------------------------------------------------------


def _b64(text: str) -> bytes | None:
    text = text.strip()
    if not text:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class H264Parameters:
    packetization_mode: int
    profile_level_id: bytes | None  # 3 bytes: profile_idc, constraint flags, level_idc
    sps: bytes | None
    pps: bytes | None

    @property
    def parameter_sets(self) -> list[bytes]:
        return [x for x in (self.sps, self.pps) if x]


def h264_parameters(m: Media) -> H264Parameters:
    """From ``fmtp``; anything unreadable is None (the stream brings it)."""
    try:
        mode = int(m.fmtp.get("packetization-mode", "0"))
    except ValueError:
        mode = 0
    try:
        pli = bytes.fromhex(m.fmtp.get("profile-level-id", ""))
    except ValueError:
        pli = b""
    sps = pps = None
    for item in m.fmtp.get("sprop-parameter-sets", "").split(","):
        nal = _b64(item)
        if not nal or nal[0] & 0x80:
            continue
        kind = nal[0] & 0x1F
        if kind == 7 and sps is None and len(nal) >= 4:
            sps = nal
        elif kind == 8 and pps is None:
            pps = nal
    if len(pli) != 3:
        pli = sps[1:4] if sps else b""
    return H264Parameters(mode, pli or None, sps, pps)


@dataclass(frozen=True)
class H265Parameters:
    vps: bytes | None
    sps: bytes | None
    pps: bytes | None
    donl: bool  # sprop-max-don-diff > 0: DONL fields in the payloads

    @property
    def parameter_sets(self) -> list[bytes]:
        return [x for x in (self.vps, self.sps, self.pps) if x]


def h265_parameters(m: Media) -> H265Parameters:
    def one(name: str, kind: int) -> bytes | None:
        for item in m.fmtp.get(name, "").split(","):
            nal = _b64(item)
            if nal and len(nal) >= 3 and (nal[0] >> 1) & 0x3F == kind:
                return nal
        return None

    try:
        donl = int(m.fmtp.get("sprop-max-don-diff", "0")) > 0
    except ValueError:
        donl = False
    return H265Parameters(one("sprop-vps", 32), one("sprop-sps", 33), one("sprop-pps", 34), donl)


@dataclass(frozen=True)
class AacConfig:
    audio_specific_config: bytes
    object_type: int
    sample_rate: int
    channels: int
    sizelength: int
    indexlength: int
    indexdeltalength: int
    frame_samples: int


def aac_config(m: Media) -> AacConfig:
    """The mpeg4-generic parameters; SdpError when the AudioSpecificConfig is missing or bad
    (without it the frames cannot be stored as MP4 samples)."""
    try:
        asc = bytes.fromhex(m.fmtp.get("config", ""))
    except ValueError:
        asc = b""
    if len(asc) < 2:
        raise SdpError("AAC track without a readable AudioSpecificConfig (fmtp config=)")
    object_type = asc[0] >> 3
    rate_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    pos_bits = 9
    if rate_index == 15:
        if len(asc) < 5:
            raise SdpError("AAC AudioSpecificConfig too short for its explicit sample rate")
        rate = (int.from_bytes(asc[1:5], "big") >> 7) & 0xFFFFFF
        pos_bits = 33
    elif rate_index < len(_SAMPLE_RATES):
        rate = _SAMPLE_RATES[rate_index]
    else:
        raise SdpError(f"AAC AudioSpecificConfig with reserved sample rate index {rate_index}")
    word = int.from_bytes(asc[:6].ljust(6, b"\0"), "big")
    channels = (word >> (48 - pos_bits - 4)) & 0x0F
    frame_length_flag = (word >> (48 - pos_bits - 5)) & 1

    def num(name: str, default: int) -> int:
        try:
            return int(m.fmtp.get(name, str(default)))
        except ValueError:
            return default

    return AacConfig(
        asc,
        object_type,
        rate,
        channels,
        num("sizelength", 13),
        num("indexlength", 3),
        num("indexdeltalength", 3),
        num("constantduration", 960 if frame_length_flag else 1024),
    )
