"""Test helpers: RTP packets built the way RFC 6184/7798/3640 senders build them, and access
units taken from real clips (tests/support/clips.py), so depacketisers can be checked against
bytes a real encoder produced."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import av

from tests.support.clips import Clip, make_clip

CLIPS_DIR = Path("/tmp/vmsd-test-clips")
_START = re.compile(b"\x00\x00\x01")


def rtp(
    seq: int,
    ts: int,
    payload: bytes,
    *,
    marker: bool = False,
    pt: int = 96,
    ssrc: int = 0x1234,
    csrcs: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | csrcs
    head = struct.pack(">BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    head += b"".join(struct.pack(">I", 0xC0000000 + i) for i in range(csrcs))
    if extension is not None:
        assert len(extension) % 4 == 0
        head += struct.pack(">HH", 0xBEDE, len(extension) // 4) + extension
    pad = b"\x00" * (padding - 1) + bytes((padding,)) if padding else b""
    return head + payload + pad


def split_nals(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte string (start codes removed)."""
    starts = [m.end() for m in _START.finditer(annexb)]
    out = []
    for i, s in enumerate(starts):
        e = starts[i + 1] - 3 if i + 1 < len(starts) else len(annexb)
        nal = annexb[s:e]
        out.append(nal.rstrip(b"\x00") if i + 1 < len(starts) else nal)
    return [n for n in out if n]


def length_prefixed(nals: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def split_length_prefixed(sample: bytes) -> list[bytes]:
    """The NAL units of a length-prefixed (AVCC/HVCC) sample."""
    nals, pos = [], 0
    while pos < len(sample):
        size = int.from_bytes(sample[pos : pos + 4], "big")
        nals.append(sample[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return nals


def annex_b(sample: bytes) -> bytes:
    """Length-prefixed NAL units (AVCC/HVCC sample) back to Annex-B, for decoders."""
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in split_length_prefixed(sample))


def decode_video(codec: str, samples: list[bytes]) -> list[av.VideoFrame]:
    """Decode length-prefixed access units with PyAV (FFmpeg): every frame it gives back."""
    decoder = av.CodecContext.create(codec, "r")
    frames = [f for s in samples for f in decoder.decode(av.Packet(annex_b(s)))]
    return frames + list(decoder.decode(None))


def h264_payloads(nals: list[bytes], mtu: int = 1200, aggregate: bool = True) -> list[bytes]:
    """RFC 6184 mode 1: small NAL units in STAP-A, big ones in FU-A, the rest alone."""
    out: list[bytes] = []
    stap: list[bytes] = []

    def flush() -> None:
        if len(stap) == 1:
            out.append(stap[0])
        elif stap:
            nri = max(n[0] & 0x60 for n in stap)
            out.append(bytes((nri | 24,)) + b"".join(struct.pack(">H", len(n)) + n for n in stap))
        stap.clear()

    for nal in nals:
        if len(nal) > mtu:
            flush()
            head, body = nal[0], nal[1:]
            chunks = [body[i : i + mtu - 2] for i in range(0, len(body), mtu - 2)]
            for i, chunk in enumerate(chunks):
                fu = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | (head & 0x1F)
                out.append(bytes(((head & 0xE0) | 28, fu)) + chunk)
        elif aggregate and sum(len(n) + 2 for n in stap) + len(nal) + 3 <= mtu:
            stap.append(nal)
        else:
            flush()
            stap.append(nal)
    flush()
    return out


def h265_payloads(nals: list[bytes], mtu: int = 1200) -> list[bytes]:
    """RFC 7798: small NAL units in APs, big ones in FUs."""
    out: list[bytes] = []
    ap: list[bytes] = []

    def flush() -> None:
        if len(ap) == 1:
            out.append(ap[0])
        elif ap:
            out.append(bytes(((48 << 1), 1)) + b"".join(struct.pack(">H", len(n)) + n for n in ap))
        ap.clear()

    for nal in nals:
        if len(nal) > mtu:
            flush()
            kind = (nal[0] >> 1) & 0x3F
            body = nal[2:]
            chunks = [body[i : i + mtu - 3] for i in range(0, len(body), mtu - 3)]
            for i, chunk in enumerate(chunks):
                fu = (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | kind
                out.append(bytes(((nal[0] & 0x81) | (49 << 1), nal[1], fu)) + chunk)
        elif sum(len(n) + 2 for n in ap) + len(nal) + 4 <= mtu:
            ap.append(nal)
        else:
            flush()
            ap.append(nal)
    flush()
    return out


def clip_access_units(clip: Clip) -> list[list[bytes]]:
    """The clip's access units (split at its AUDs), each a list of NAL units."""
    aud = 35 if clip.codec == "h265" else 9
    units: list[list[bytes]] = []
    for nal in split_nals(clip.video.read_bytes()):
        kind = (nal[0] >> 1) & 0x3F if clip.codec == "h265" else nal[0] & 0x1F
        if kind == aud or not units:
            units.append([])
        units[-1].append(nal)
    return units


def real_clip(codec: str, **kw: object) -> Clip:
    return make_clip(CLIPS_DIR, codec=codec, width=320, height=240, seconds=4, **kw)  # type: ignore[arg-type]


def adts_frames(path: Path) -> list[bytes]:
    """Raw AAC frames (ADTS headers removed) of an ADTS file."""
    data, pos, frames = path.read_bytes(), 0, []
    while pos + 7 <= len(data):
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        header = 7 if data[pos + 1] & 0x01 else 9
        frames.append(data[pos + header : pos + length])
        pos += length
    return frames
