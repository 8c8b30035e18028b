"""Minimal Annex-B inspection of H.264/H.265 access units, done only where it pays.

The recorder never decodes. It looks at NAL headers for two reasons: to notice that the camera
sent new parameter sets in-band (a new SPS means a new resolution or profile, so a new segment
with new codec configuration), and to reject packets that cannot be video at all (random bytes
from a broken camera or a hostile stream) before they reach a segment file.
"""

from __future__ import annotations

H264_PARAMETER_SETS = {7, 8}  # SPS, PPS
H265_PARAMETER_SETS = {32, 33, 34}  # VPS, SPS, PPS


def _nal_units(data: bytes, limit: int) -> list[tuple[int, int]]:
    """(offset, end) of each NAL unit in the first `limit` bytes (start codes excluded)."""
    units: list[tuple[int, int]] = []
    position = data.find(b"\x00\x00\x01", 0, limit)
    while position != -1:
        start = position + 3
        following = data.find(b"\x00\x00\x01", start, limit)
        end = len(data) if following == -1 else following
        # A 4-byte start code leaves a trailing zero on the previous unit; trim it.
        trimmed = end
        while following != -1 and trimmed > start and data[trimmed - 1] == 0:
            trimmed -= 1
        units.append((start, trimmed))
        position = following
    return units


def _length_prefixed_units(data: bytes, limit: int) -> list[tuple[int, int]]:
    """(offset, end) of each NAL unit of an MP4-style (4-byte length prefixed) access unit."""
    units: list[tuple[int, int]] = []
    position = 0
    while position + 4 <= min(len(data), limit):
        size = int.from_bytes(data[position : position + 4], "big")
        start = position + 4
        if size == 0 or start + size > len(data):
            break
        units.append((start, start + size))
        position = start + size
    return units


def nal_units(data: bytes, limit: int, length_prefixed: bool) -> list[tuple[int, int]]:
    return _length_prefixed_units(data, limit) if length_prefixed else _nal_units(data, limit)


def nal_type(codec: str, first_byte: int) -> int:
    return (first_byte >> 1) & 0x3F if codec == "hevc" else first_byte & 0x1F


def is_vcl(codec: str, kind: int) -> bool:
    return kind < 32 if codec == "hevc" else 1 <= kind <= 5


def parameter_sets(codec: str, data: bytes, length_prefixed: bool = False, truncated: bool = False) -> bytes | None:
    """The in-band parameter sets before the first slice of an access unit, as Annex-B bytes.

    Callers pass only the head of the packet: parameter sets come before the first slice, and a
    keyframe can be megabytes long.
    """
    wanted = H265_PARAMETER_SETS if codec == "hevc" else H264_PARAMETER_SETS
    found: list[bytes] = []
    for start, end in nal_units(data, len(data), length_prefixed):
        if start >= len(data) or (truncated and end >= len(data)):
            continue  # a unit cut off by the end of a truncated head is not taken
        kind = nal_type(codec, data[start])
        if kind in wanted:
            found.append(b"\x00\x00\x00\x01" + data[start:end])
        elif is_vcl(codec, kind):
            break
    return b"".join(found) if found else None


def looks_like_video(codec: str, data: bytes, length_prefixed: bool = False) -> bool:
    """False for packets that are certainly not an access unit of this codec.

    Checks the first NAL header only: a start code (or, for MP4-style streams, a length that
    fits) at the beginning and the forbidden bit clear (and, for H.265, a sane temporal id).
    Cheap enough to run on every packet.
    """
    if codec not in ("h264", "hevc"):
        return True
    if length_prefixed:
        if len(data) < 6 or int.from_bytes(data[:4], "big") > len(data) - 4:
            return False
        header = 4
    elif data.startswith(b"\x00\x00\x00\x01"):
        header = 4
    elif data.startswith(b"\x00\x00\x01"):
        header = 3
    else:
        return False
    if len(data) <= header + 1:
        return False
    first = data[header]
    if first & 0x80:
        return False
    if codec == "hevc":
        temporal_id_plus1 = data[header + 1] & 0x07
        return temporal_id_plus1 != 0 and nal_type(codec, first) <= 40
    return nal_type(codec, first) not in (0,) and nal_type(codec, first) <= 23
