"""One fragmented-MP4 segment file whose fragments vmsd writes itself: one write per GOP.

The sibling of `writer.SegmentWriter` (same interface, same file, same durability), for sources
that hand over MP4 samples already (the native RTSP client, issue #16: access units with 4-byte
NAL lengths, raw AAC frames). PyAV's muxer costs ~100 µs of CPU per packet on these VMs; here a
track keeps the samples of the GOP in progress as the source handed them over (not copied), and
each GOP becomes one `moof`+`mdat` written with one `writev` of them, hashed as it goes, after
which they are let go. Until 2026-12-04 each sample was copied into a per-track anonymous map
whose pages were given back after every fragment: at 64 cameras the copy and the page faults of
refilling it cost the recorder threads ~0.02 of their ~0.08 cores, for no less memory (the
units sat in malloc'd buffers before the copy anyway; RSS measured the same, 1.1-1.2 MiB per
camera above the idle daemon). Hashing each sample with its own update costs no measurable GIL
traffic here.

The file is what PyAV's muxer would write for the same streams, fragment for fragment:

- the header (`ftyp`+`moov`) *is* PyAV's (`writer.init_segment`, the muxer run on no packets),
  so sample entries, decoder configurations (avcC/hvcC/esds), track ids and timescales are
  FFmpeg's; the fragments are read against the track ids and timescales found in it;
- one fragment per GOP, flushed when the next video keyframe comes (`frag_keyframe`), with
  `default-base-is-moof` offsets, a `tfdt` per track, sample durations from the next sample's
  decode time (times rounded to the track's timescale as FFmpeg rounds them), the video's last
  sample lasting until the segment's end at `close(end_ns)`, and sync flags from the keyframes;
- an audio track's newest frame is held back to the next fragment, because its duration is the
  time to the frame after it (as `SegmentWriter` holds a packet back for the muxer).

So a `kill -9` loses at most the fragment in progress, recovery (`storage/fmp4.py`) truncates a
torn file after its last complete `moof`+`mdat`, and fsck reads durations back with PyAV, exactly
as for PyAV-written files. The SHA-256 of the bytes written is the SHA-256 of the file.

Blocking: every method runs on the camera's recorder thread, never on an event loop.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any

from vmsd.storage.writer import StreamTemplate, WrittenSegment, _HashingFile, init_segment
from vmsd.units import NS_PER_S

_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2: decodes on its own
_NON_SYNC_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_SAMPLE = struct.Struct(">IIIi")  # trun entry: duration, size, flags, composition offset (version 1)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def boxes(
    data: bytes, start: int = 0, end: int | None = None, *, error: type[Exception] = ValueError
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end] (32-bit sizes only);
    `error` (naming the box) for a malformed one."""
    end = len(data) if end is None else end
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        if size < 8 or position + size > end:
            raise error(f"malformed MP4 box {kind!r} at byte {position}")
        yield kind, position + 8, position + size
        position += size


def child(data: bytes, start: int, end: int, kind: bytes, *, error: type[Exception] = ValueError) -> tuple[int, int]:
    """The payload span of the first `kind` box in data[start:end]; `error` when there is none."""
    for found, payload_start, payload_end in boxes(data, start, end, error=error):
        if found == kind:
            return payload_start, payload_end
    raise error(f"no {kind.decode()} box in the init segment")


def header_tracks(header: bytes) -> list[tuple[int, int]]:
    """(track_ID, timescale) of each `trak` of an init segment, in order."""
    tracks = []
    for kind, start, end in boxes(header, *child(header, 0, len(header), b"moov")):
        if kind != b"trak":
            continue
        tkhd, _ = child(header, start, end, b"tkhd")
        mdhd, _ = child(header, *child(header, start, end, b"mdia"), b"mdhd")
        # Version 1 boxes have 64-bit creation/modification times (and duration) before the field.
        track_id = struct.unpack_from(">I", header, tkhd + (20 if header[tkhd] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", header, mdhd + (20 if header[mdhd] == 1 else 12))[0]
        tracks.append((track_id, timescale))
    return tracks


class _Track:
    def __init__(self, track_id: int, timescale: int, video: bool) -> None:
        self.track_id = track_id
        self.timescale = timescale
        self.video = video
        # Queued samples of the fragment in progress: (size, pts ns, dts ns, keyframe), and their
        # bytes as the source handed them over (held, not copied, until the fragment is written).
        self.samples: list[tuple[int, int, int, bool]] = []
        self.buffers: list[Any] = []
        self.last_delta_ns = 0

    def ticks(self, ns: int) -> int:
        """Relative ns → the track's timescale, rounded to nearest (as FFmpeg rescales)."""
        return (ns * self.timescale + NS_PER_S // 2) // NS_PER_S

    def release(self) -> None:
        self.samples, self.buffers = [], []


class FragmentWriter:
    """`SegmentWriter`'s interface for packets that carry their MP4 sample: `packet.sample` (a
    bytes-like object: NAL units behind 4-byte lengths, or one raw AAC frame) and
    `packet.is_keyframe`. Stream 0 is the video (as the segmenter orders its templates). A sample
    is held, not copied, until its fragment is written: it must not change meanwhile (the native
    client hands each unit's buffer over and never touches it again)."""

    def __init__(self, fd: int, templates: list[StreamTemplate], sync_interval_ns: int) -> None:
        self._file = _HashingFile(fd, sync_interval_ns)
        self._templates = templates
        self._tracks: list[_Track] = []
        self._sequence = 0
        self.video_frames = 0

    def open(self) -> None:
        header = init_segment(self._templates)
        found = header_tracks(header)
        if len(found) != len(self._templates):
            raise ValueError(f"the segment header has {len(found)} tracks for {len(self._templates)} streams")
        self._tracks = [_Track(tid, scale, i == 0) for i, (tid, scale) in enumerate(found)]
        self._file.write_all([header])

    def write(self, index: int, packet: Any, pts_ns: int, dts_ns: int) -> None:
        """Queue a packet of output stream `index`; DTS must increase strictly per stream. A video
        keyframe writes the fragment before it (the GOP that it ends)."""
        track = self._tracks[index]
        keyframe = bool(packet.is_keyframe)
        if track.video and keyframe and track.samples:
            self._flush(dts_ns, None)
        samples = track.samples
        if samples:
            track.last_delta_ns = dts_ns - samples[-1][2]
        sample = packet.sample
        track.buffers.append(sample)
        samples.append((len(sample), pts_ns, dts_ns, keyframe))

    def close(self, end_ns: int) -> WrittenSegment:
        """Write what is queued (the video's last sample lasting until `end_ns`) and fsync."""
        self._flush(None, end_ns)
        for track in self._tracks:
            track.release()
        os.fsync(self._file.fd)
        self._file.release()
        return WrittenSegment(self._file.bytes_written, self._file.sha256.hexdigest(), self.video_frames)

    def abort(self) -> None:
        """Give up on the file: what is queued is not written (recovery keeps the complete
        fragments already on disk)."""
        for track in self._tracks:
            track.release()

    @property
    def bytes_written(self) -> int:
        return self._file.bytes_written

    def _flush(self, next_video_dts_ns: int | None, end_ns: int | None) -> None:
        """One fragment of everything queued. Mid-segment (`end_ns` None) the video ends at the
        next keyframe's time and each audio track keeps its newest frame for the next fragment."""
        trafs: list[tuple[_Track, list[tuple[int, int, int, bool]], list[int]]] = []
        payload: list[Any] = []
        for track in self._tracks:
            samples, buffers = track.samples, track.buffers
            if not samples:
                continue
            if end_ns is not None:
                keep: list[tuple[int, int, int, bool]] = []
                # As SegmentWriter: the video lasts until end_ns from its pts, audio its last delta.
                lasts_ns = end_ns - samples[-1][1] if track.video else track.last_delta_ns
                last_end_ns = samples[-1][2] + max(1, lasts_ns)
            elif track.video:
                keep, last_end_ns = [], next_video_dts_ns if next_video_dts_ns is not None else samples[-1][2]
            else:
                if len(samples) < 2:
                    continue
                keep, samples = samples[-1:], samples[:-1]
                last_end_ns = keep[0][2]
            track.samples = keep
            track.buffers = buffers[len(samples) :]
            payload += buffers[: len(samples)]
            ticks = [track.ticks(s[2]) for s in samples] + [track.ticks(last_end_ns)]
            trafs.append((track, samples, ticks))
        if not trafs:
            return
        self._sequence += 1
        # moof: header 8 + mfhd 16 + per traf (header 8, tfhd 16, tfdt 20, trun 20 + 16 per sample).
        moof_size = 8 + 16 + sum(64 + 16 * len(samples) for _, samples, _ in trafs)
        offset = moof_size + 8  # the first sample, after the moof and the mdat's header
        parts: list[bytes] = []
        for track, samples, ticks in trafs:
            entries = bytearray(16 * len(samples))
            sizes = 0
            for i, (size, pts_ns, _dts_ns, keyframe) in enumerate(samples):
                flags = _SYNC_FLAGS if keyframe or not track.video else _NON_SYNC_FLAGS
                dts = ticks[i]
                _SAMPLE.pack_into(entries, 16 * i, max(1, ticks[i + 1] - dts), size, flags, track.ticks(pts_ns) - dts)
                sizes += size
            parts.append(
                box(
                    b"traf",
                    full_box(b"tfhd", 0, 0x020000, struct.pack(">I", track.track_id)),  # default-base-is-moof
                    full_box(b"tfdt", 1, 0, struct.pack(">Q", ticks[0])),
                    # version 1: signed composition offsets; data offset, duration, size, flags, offset
                    full_box(b"trun", 1, 0x000F01, struct.pack(">Ii", len(samples), offset), bytes(entries)),
                )
            )
            offset += sizes
            if track.video:
                self.video_frames += len(samples)
        moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", self._sequence)), *parts)
        assert len(moof) == moof_size
        self._file.write_all([moof, struct.pack(">I4s", offset - moof_size, b"mdat"), *payload])
