"""Live fragmented MP4 for browsers (Media Source Extensions): one init segment per stream
configuration and one `moof`+`mdat` fragment per video frame, written by hand.

Contract:

- `LiveTrack.of(config)` turns a hub `StreamConfig` into what a browser needs first: the exact
  MSE codec string (`avc1.PPCCLL` from the avcC; `hvc1.…` from the hvcC, ISO/IEC 14496-15
  annex E) and a video-only init segment (`ftyp`+`moov`, one track, 90 kHz, sample entry `avc1`
  or `hvc1`). The decoder configuration record (avcC/hvcC) is taken from the recorder's own init
  segment, where FFmpeg built it from the camera's parameter sets; nothing is decoded.
- `LiveTrack.fragment(packet)` is one video frame as a fragment: `tfdt` is the packet's dts in
  90 kHz ticks of wall time (so `currentTime` × 10⁹ is wall-clock ns), the sample lasts the
  packet's `duration_ns` (the time since the previous frame: the next frame's time is not known
  yet, and waiting for it would cost a frame of latency; an estimate only shifts where a frame
  stops showing, never when the next starts; 1/25 s for a session's first frame), composition
  offset pts − dts, sync-sample flags from `keyframe`. The sample is length-prefixed (4 bytes)
  with the parameter sets and access unit delimiters removed: `avc1`/`hvc1` carry their
  parameter sets in the sample entry only, and a change of them comes as a new configuration
  (the segmenter starts a new one on an SPS change).
- `live_track(config)` / `live_fragment(track, packet)` memoise both on the hub's item, so N
  viewers of a camera cost one fragment per frame and share the same bytes object.

Video only: audio is not relayed to browsers (G.711, common on cameras, has no MSE form; AAC would
need a second track interleaved by time). Pure functions of their inputs, no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from vmsd.ingest.bitstream import nal_type, nal_units
from vmsd.ingest.hub import VIDEO, RelayPacket, StreamConfig, encoded_once
from vmsd.storage import fragments
from vmsd.storage.fragments import box, full_box
from vmsd.units import NS_PER_S

TIMESCALE = 90_000  # ticks per second of the live track (the RTP video clock)
TRACK_ID = 1
UNKNOWN_DURATION_NS = NS_PER_S // 25  # a session's first frame: the time since the previous one is unknown

# NAL units that stay out of `avc1`/`hvc1` samples: parameter sets (they are in the sample entry)
# and access unit delimiters (meaningless once samples are framed).
_STRIPPED = {"h264": frozenset({7, 8, 9, 13}), "hevc": frozenset({32, 33, 34, 35})}
_SAMPLE_ENTRIES = {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc"}
_CONFIG_BOX = {"h264": b"avcC", "hevc": b"hvcC"}
_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2: decodes on its own
_NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


class LiveFormatError(ValueError):
    """The stream cannot be carried as live fMP4 (unsupported codec, no parameter sets yet)."""


def ticks(ns: int) -> int:
    """Wall-clock (or relative) nanoseconds as live-track ticks, rounded down."""
    return ns * TIMESCALE // NS_PER_S


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end] (32-bit sizes only)."""
    return fragments.boxes(data, start, end, error=LiveFormatError)


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    return fragments.child(data, start, end, kind, error=LiveFormatError)


def _video_sample_entry(init_segment: bytes) -> tuple[str, bytes]:
    """(codec, avcC/hvcC payload) of the first video track of an fMP4 init segment."""
    moov = _child(init_segment, 0, len(init_segment), b"moov")
    for kind, start, end in boxes(init_segment, *moov):
        if kind != b"trak":
            continue
        stbl = _child(init_segment, *_child(init_segment, *_child(init_segment, start, end, b"mdia"), b"minf"), b"stbl")
        stsd_start, stsd_end = _child(init_segment, *stbl, b"stsd")
        for entry, entry_start, entry_end in boxes(init_segment, stsd_start + 8, stsd_end):  # after version+count
            codec = _SAMPLE_ENTRIES.get(entry.decode("latin-1"))
            if codec is not None:
                # A VisualSampleEntry's own fields are 78 bytes; its child boxes follow.
                config = _child(init_segment, entry_start + 78, entry_end, _CONFIG_BOX[codec])
                return codec, init_segment[config[0] : config[1]]
    raise LiveFormatError("no H.264 or H.265 video track in the stream's init segment")


def avc_codec_string(avcc: bytes) -> str:
    """`avc1.PPCCLL`: profile_idc, constraint flags and level_idc of the avcC, in hex."""
    if len(avcc) < 4 or avcc[0] != 1:
        raise LiveFormatError("the avcC record is too short or not version 1")
    return f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hevc_codec_string(hvcc: bytes) -> str:
    """`hvc1.[A-C]P.C.TL.B…` (ISO/IEC 14496-15 E.3) from the profile_tier_level fields of an hvcC."""
    if len(hvcc) < 23 or hvcc[0] != 1:
        raise LiveFormatError("the hvcC record is too short or not version 1")
    profile_space, tier, profile_idc = hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F
    compatibility = int.from_bytes(hvcc[2:6], "big")
    reversed_compatibility = int(f"{compatibility:032b}"[::-1], 2)
    constraints = bytearray(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()  # trailing zero bytes are left out
    parts = [
        "hvc1",
        f"{'' if profile_space == 0 else 'ABC'[profile_space - 1]}{profile_idc}",
        f"{reversed_compatibility:X}",
        f"{'LH'[tier]}{hvcc[12]}",
        *(f"{b:X}" for b in constraints),
    ]
    return ".".join(parts)


def _complete_hvcc(hvcc: bytes) -> bytes:
    """The hvcC with array_completeness set on every array: in `hvc1` samples carry no parameter
    sets, all of them are here (FFmpeg clears the bit when it writes `hev1`)."""
    out = bytearray(hvcc)
    position = 23
    for _ in range(out[22]):
        if position + 3 > len(out):
            raise LiveFormatError("the hvcC record's NAL arrays are truncated")
        out[position] |= 0x80
        count = int.from_bytes(out[position + 1 : position + 3], "big")
        position += 3
        for _ in range(count):
            position += 2 + int.from_bytes(out[position : position + 2], "big")
    return bytes(out)


def _init_segment(sample_entry: bytes, config_box: bytes, width: int, height: int) -> bytes:
    visual = box(
        sample_entry,
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined, reserved
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),
        config_box,
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), visual),
        full_box(b"stts", 0, 0, bytes(4)),
        full_box(b"stsc", 0, 0, bytes(4)),
        full_box(b"stsz", 0, 0, bytes(8)),
        full_box(b"stco", 0, 0, bytes(4)),
    )
    minf = box(
        b"minf",
        full_box(b"vmhd", 0, 1, bytes(8)),
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = box(
        b"mdia",
        full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0)),  # language "und"
        full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"vmsd live\x00"),
        minf,
    )
    tkhd = full_box(
        b"tkhd",
        0,
        3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),
        struct.pack(">IH", 0x00010000, 0x0100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso6mp41")
    return ftyp + box(b"moov", mvhd, box(b"trak", tkhd, mdia), mvex)


@dataclass(frozen=True)
class LiveTrack:
    """One stream configuration as live fMP4: codec string, init segment, fragment writer."""

    generation: int
    video_codec: str  # "h264" | "hevc"
    codec: str  # the MSE codec string, e.g. avc1.64001f
    width: int
    height: int
    init_segment: bytes
    annexb: bool  # the hub's packets use start codes (RTSP) rather than 4-byte lengths

    @classmethod
    def of(cls, config: StreamConfig) -> LiveTrack:
        """Raises LiveFormatError for a stream browsers cannot be given (naming what is missing)."""
        if config.video_codec not in _CONFIG_BOX:
            raise LiveFormatError(f"live video in the browser needs H.264 or H.265, not {config.video_codec!r}")
        codec, record = _video_sample_entry(config.init_segment)
        if codec == "h264":
            codec_string, entry, config_box = avc_codec_string(record), b"avc1", box(b"avcC", record)
        else:
            codec_string, entry, config_box = hevc_codec_string(record), b"hvc1", box(b"hvcC", _complete_hvcc(record))
        return cls(
            generation=config.generation,
            video_codec=codec,
            codec=codec_string,
            width=config.width,
            height=config.height,
            init_segment=_init_segment(entry, config_box, config.width, config.height),
            # The segmenter passes Annex-B parameter sets on when the camera sends Annex-B (RTSP
            # does); a length-prefixed source has them in its avcC/hvcC only.
            annexb=bool(config.video_extradata),
        )

    def fragment(self, packet: RelayPacket) -> bytes:
        """One video frame as `moof`+`mdat` (see the module docstring for the timing rules)."""
        data = packet.data
        stripped = _STRIPPED[self.video_codec]
        view = memoryview(data)
        sample: list[bytes | memoryview] = []
        size = 0
        for start, end in nal_units(data, len(data), not self.annexb):
            if end <= start or nal_type(self.video_codec, data[start]) in stripped:
                continue
            sample += [struct.pack(">I", end - start), view[start:end]]
            size += 4 + end - start
        dts = ticks(packet.dts_ns)
        # 104 bytes of moof: mfhd 16, traf 80 (tfhd 16, tfdt 20, trun 36), headers 8.
        moof = box(
            b"moof",
            # An increasing number derived from the frame's own time (ms, wrapping after 49 days),
            # so that any viewer's first fragment of a frame is the same bytes as everyone's.
            full_box(b"mfhd", 0, 0, struct.pack(">I", (packet.dts_ns // 1_000_000) & 0xFFFFFFFF)),
            box(
                b"traf",
                full_box(b"tfhd", 0, 0x020000, struct.pack(">I", TRACK_ID)),  # default-base-is-moof
                full_box(b"tfdt", 1, 0, struct.pack(">Q", dts)),
                full_box(
                    b"trun",
                    1,  # signed composition offsets
                    0x000F01,  # data offset, sample duration, size, flags, composition offset
                    struct.pack(
                        ">IiIIIi",
                        1,
                        104 + 8,  # the sample starts after this moof and the mdat header
                        max(1, ticks(packet.dts_ns + (packet.duration_ns or UNKNOWN_DURATION_NS)) - dts),
                        size,
                        _SYNC_FLAGS if packet.keyframe else _NON_SYNC_FLAGS,
                        ticks(packet.pts_ns) - dts,
                    ),
                ),
            ),
        )
        return b"".join([moof, struct.pack(">I4s", 8 + size, b"mdat"), *sample])


def live_track(config: StreamConfig) -> LiveTrack:
    """The configuration's LiveTrack, built once and shared by every viewer."""
    return encoded_once(config, "fmp4", lambda: LiveTrack.of(config))


def live_fragment(track: LiveTrack, packet: RelayPacket) -> bytes:
    """The packet's fragment, built by the first viewer that needs it; the same bytes object for all."""
    if packet.kind != VIDEO or packet.generation != track.generation:
        raise ValueError("live_fragment takes video packets of the track's own stream configuration")
    return encoded_once(packet, "fmp4", lambda: track.fragment(packet))
