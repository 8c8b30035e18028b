"""One fragmented-MP4 segment file, written with PyAV, hashed while it is written.

The muxer runs with `frag_keyframe+empty_moov+default_base_moof`: the header is written up front
and each GOP becomes one `moof`+`mdat` fragment, flushed to the file when the next keyframe
arrives. So a `kill -9` loses at most the fragment in progress, and each flush is one large
write instead of one per packet. The file object given to FFmpeg is not seekable, which keeps the
muxer strictly sequential — the SHA-256 of the bytes it writes is the SHA-256 of the file.

Blocking: every method runs on the camera's ingest thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from vmsd.units import ticks_to_ns

NS_TIME_BASE = Fraction(1, 1_000_000_000)
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
_IOV_MAX = 1000  # buffers per writev, below Linux's 1024
# Written footage is handed back to the kernel's page cache each time this much more was written.
_RELEASE_BYTES = 1 << 20


@dataclass
class StreamTemplate:
    """What an output stream copies: an input stream's parameters, optionally with new
    parameter sets (in-band SPS/PPS that changed mid-session) and picture size."""

    stream: Any  # av.stream.Stream of the camera session
    extradata: bytes | None = None
    width: int = 0
    height: int = 0


class _HashingFile:
    """The file object FFmpeg writes through: appends, hashes, counts, syncs periodically and
    hands written pages back to the kernel (`release`)."""

    def __init__(self, fd: int, sync_interval_ns: int) -> None:
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.bytes_written = 0
        self._sync_interval_ns = sync_interval_ns
        self._last_sync_ns = time.monotonic_ns()
        self._released_at = 0

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.sha256.update(data)
        self.bytes_written += len(data)
        self._maybe_sync()
        self._maybe_release()
        return len(data)

    def write_all(self, buffers: list[Any]) -> None:
        """Append the buffers in order with as few `writev` calls as the kernel allows (one
        fragment of a GOP is one call), hashing each; a short write continues where it stopped."""
        views = [memoryview(b).cast("B") for b in buffers]
        position = 0
        while position < len(views):
            batch = views[position : position + _IOV_MAX]
            written = os.writev(self.fd, batch)
            for view in batch:
                if written >= len(view):
                    written -= len(view)
                    self.sha256.update(view)
                    self.bytes_written += len(view)
                    position += 1
                    continue
                if written:
                    self.sha256.update(view[:written])
                    self.bytes_written += written
                    views[position] = view[written:]
                break
        self._maybe_sync()
        self._maybe_release()

    def _maybe_sync(self) -> None:
        now_ns = time.monotonic_ns()
        if now_ns - self._last_sync_ns >= self._sync_interval_ns:
            # Bound what a power cut can take; kill -9 already keeps what reached the page cache.
            os.fdatasync(self.fd)
            self._last_sync_ns = now_ns

    def _maybe_release(self) -> None:
        if self.bytes_written - self._released_at >= _RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        """Hand the file's written pages back to the kernel: DONTNEED drops the pages that are
        clean and starts (without waiting) the writeback of the dirty ones, which the next call
        drops. Footage is not read back soon (playback and export read it from disk like any
        older footage), and a page the kernel reuses at once is cheap, while one it has left
        free for a while may have gone back to the hypervisor: on these VMs copying into such
        pages cost ~2 ms/MiB against ~0.12 for recycled ones, as much CPU as the rest of
        recording (measured, issue #16). Durability is unchanged: the fdatasync cadence above
        and the fsync at close are what the durability protocol counts on. Advice only: a
        filesystem that refuses it costs the saving, never the recording."""
        self._released_at = self.bytes_written
        with contextlib.suppress(OSError):
            os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)


@dataclass(frozen=True)
class WrittenSegment:
    bytes: int
    sha256: str
    video_frames: int


class SegmentWriter:
    """Writes packets whose times are nanoseconds relative to the segment start.

    The last packet of each stream is held back until the next one arrives, so that every sample
    gets its true duration and the file's timeline ends exactly where the next segment begins.
    The file must already exist (created by storage, which owns the durability protocol).
    """

    def __init__(self, fd: int, templates: list[StreamTemplate], sync_interval_ns: int) -> None:
        self._file = _HashingFile(fd, sync_interval_ns)
        self._templates = templates
        self._container: Any = None
        self._streams: list[Any] = []
        self._pending: list[tuple[Any, int, int] | None] = [None] * len(templates)
        self._last_delta_ns: list[int] = [0] * len(templates)
        self.video_frames = 0

    def open(self) -> None:
        self._container = av.open(self._file, "w", format="mp4", options={"movflags": MOVFLAGS})
        self._streams = _add_streams(self._container, self._templates)

    def write(self, index: int, packet: Any, pts_ns: int, dts_ns: int) -> None:
        """Queue a packet of output stream `index`; DTS must increase strictly per stream."""
        pending = self._pending[index]
        if pending is not None:
            delta_ns = dts_ns - pending[2]
            self._last_delta_ns[index] = delta_ns
            self._mux(index, pending, delta_ns)
        self._pending[index] = (packet, pts_ns, dts_ns)

    def _mux(self, index: int, item: tuple[Any, int, int], duration_ns: int) -> None:
        packet, pts_ns, dts_ns = item
        packet.stream = self._streams[index]
        packet.time_base = NS_TIME_BASE
        packet.pts = pts_ns
        packet.dts = dts_ns
        packet.duration = max(1, duration_ns)
        self._container.mux(packet)
        if self._streams[index].type == "video":
            self.video_frames += 1

    def close(self, end_ns: int) -> WrittenSegment:
        """Flush held packets (the video one lasting until `end_ns`), finish the file and fsync it."""
        for index, pending in enumerate(self._pending):
            if pending is None:
                continue
            if self._streams[index].type == "video":
                duration_ns = end_ns - pending[1]
            else:
                duration_ns = self._last_delta_ns[index] or _packet_duration_ns(pending[0])
            self._mux(index, pending, duration_ns)
            self._pending[index] = None
        self._container.close()
        self._container = None
        os.fsync(self._file.fd)
        self._file.release()
        return WrittenSegment(self._file.bytes_written, self._file.sha256.hexdigest(), self.video_frames)

    def abort(self) -> None:
        """Give up on the file without finishing it (recovery truncates it to its last fragment)."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError, ValueError):
                pass  # the file is recovered from its complete fragments, whatever happened here
            self._container = None

    @property
    def bytes_written(self) -> int:
        return self._file.bytes_written


def _add_streams(container: Any, templates: list[StreamTemplate]) -> list[Any]:
    streams = []
    for template in templates:
        stream = container.add_stream_from_template(template.stream)
        if template.extradata:
            stream.codec_context.extradata = template.extradata
        if template.width and template.height:
            stream.codec_context.width = template.width
            stream.codec_context.height = template.height
        streams.append(stream)
    return streams


class _Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def init_segment(templates: list[StreamTemplate]) -> bytes:
    """The fMP4 header (ftyp+moov) a segment with these streams starts with.

    Live relay clients use it to set up a muxer or decoder exactly as the recording was made.
    """
    sink = _Collect()
    container = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS})
    try:
        _add_streams(container, templates)
        container.start_encoding()
        return bytes(sink.data)
    finally:
        try:
            container.close()
        except (av.FFmpegError, ValueError):
            pass  # only the header was wanted


def _packet_duration_ns(packet: Any) -> int:
    if packet.duration and packet.time_base is not None:
        return ticks_to_ns(packet.duration, packet.time_base)
    return 1
