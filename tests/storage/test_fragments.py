"""vmsd's own fragment writer (storage/fragments.py) against PyAV's muxer (storage/writer.py):
the same access units in, files that FFmpeg reads back with the same samples and times, the
same header bytes, one fragment per GOP, the hash of the file, and a torn last fragment cut off
by recovery's reading of the file. Real clips (H.264, H.265 and H.264 + AAC), real ffprobe."""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest

from tests.support.clips import Clip, make_clip
from vmsd.ingest.bitstream import nal_units
from vmsd.storage.fmp4 import complete_length, summarize
from vmsd.storage.fragments import FragmentWriter
from vmsd.storage.writer import SegmentWriter, StreamTemplate, init_segment

CLIPS = "/tmp/vmsd-test-clips"
FRAME_NS = 40_000_000  # 25 fps
AAC_FRAME_NS = 64_000_000  # 1024 samples at 16 kHz


class _Sample(bytes):
    """A packet as the native source hands it over: Annex-B bytes, the MP4 sample beside them."""

    is_keyframe: bool
    sample: bytes


def _length_prefixed(annex_b: bytes) -> bytes:
    return b"".join(
        len(annex_b[s:e]).to_bytes(4, "big") + annex_b[s:e] for s, e in nal_units(annex_b, len(annex_b), False)
    )


def _units(clip: Clip, limit: int) -> tuple[Any, list[tuple[bytes, bool]], Any, list[bytes]]:
    """The clip's video stream (a template) and access units, its audio stream and AAC frames."""
    video = av.open(str(clip.video), format="hevc" if clip.codec == "h265" else "h264")
    units = [(bytes(p), bool(p.is_keyframe)) for p in video.demux(video.streams.video[0]) if p.size][:limit]
    audio_stream, frames = None, []
    if clip.audio is not None:
        audio = av.open(str(clip.audio), format="aac")
        audio_stream = audio.streams.audio[0]
        frames = [bytes(p)[7:] for p in audio.demux(audio_stream) if p.size]  # ADTS header off
    return video.streams.video[0], units, audio_stream, frames


def _write(writer_class: type, path: Path, clip: Clip, limit: int, end_extra_ns: int = 0) -> tuple[Any, int]:
    template, units, audio_template, frames = _units(clip, limit)
    templates = [StreamTemplate(template)]
    if audio_template is not None:
        templates.append(StreamTemplate(audio_template))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        writer = writer_class(fd, templates, 10**12)
        writer.open()
        audio_index = 0
        for i, (data, keyframe) in enumerate(units):
            dts_ns = i * FRAME_NS
            while audio_template is not None and audio_index < len(frames) and audio_index * AAC_FRAME_NS <= dts_ns:
                writer.write(
                    1,
                    _packet(writer_class, frames[audio_index], frames[audio_index], True, audio_template),
                    audio_index * AAC_FRAME_NS,
                    audio_index * AAC_FRAME_NS,
                )
                audio_index += 1
            writer.write(0, _packet(writer_class, data, _length_prefixed(data), keyframe, template), dts_ns, dts_ns)
        written = writer.close(len(units) * FRAME_NS + end_extra_ns)
    finally:
        os.close(fd)
    return written, len(units)


def _packet(writer_class: type, data: bytes, sample: bytes, keyframe: bool, stream: Any) -> Any:
    if writer_class is SegmentWriter:
        packet = av.Packet(data)
        packet.is_keyframe = keyframe
        return packet
    packet = _Sample(data)
    packet.is_keyframe, packet.sample = keyframe, sample
    return packet


def _ffprobe_packets(path: Path, stream: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_data_hash",
            "sha256",
            "-show_entries",
            "packet=pts_time,duration_time,flags,size,data_hash",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return list(json.loads(out.stdout)["packets"])


@pytest.mark.parametrize(
    "clip_args",
    [{"codec": "h264"}, {"codec": "h265"}, {"codec": "h264", "audio": True}],
    ids=["h264", "h265", "h264+aac"],
)
def test_the_same_units_give_the_file_pyav_writes(tmp_path: Path, clip_args: dict[str, Any]) -> None:
    clip = make_clip(CLIPS, seconds=10, **clip_args)
    ours, theirs = tmp_path / "ours.mp4", tmp_path / "pyav.mp4"
    written, frames = _write(FragmentWriter, ours, clip, 120, end_extra_ns=FRAME_NS // 2)
    _write(SegmentWriter, theirs, clip, 120, end_extra_ns=FRAME_NS // 2)

    # The header is PyAV's own, byte for byte.
    header = init_segment(
        [StreamTemplate(_units(clip, 1)[0])] + ([StreamTemplate(_units(clip, 1)[2])] if clip.audio else [])
    )
    assert ours.read_bytes()[: len(header)] == header
    # FFmpeg reads back the same samples (their bytes' hashes) with the same times and keyframe
    # flags, for every track.
    for stream in ["v:0"] + (["a:0"] if clip.audio else []):
        assert _ffprobe_packets(ours, stream) == _ffprobe_packets(theirs, stream)
    # One fragment per GOP (120 frames, GOP 50: three), the hash and size of the file.
    assert complete_length(ours) == (ours.stat().st_size, 3)
    assert written.video_frames == frames == 120
    assert written.sha256 == hashlib.sha256(ours.read_bytes()).hexdigest()
    assert written.bytes == ours.stat().st_size
    # The last frame lasts until the end asked for: what recovery and fsck read as the duration.
    assert summarize(ours).duration_ns == 120 * FRAME_NS + FRAME_NS // 2
    assert summarize(ours).video_frames == 120


def test_a_torn_last_fragment_is_left_out_by_recovery(tmp_path: Path) -> None:
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    path = tmp_path / "torn.mp4"
    _write(FragmentWriter, path, clip, 120)
    whole, fragments = complete_length(path)
    assert fragments == 3
    with open(path, "r+b") as f:
        f.truncate(whole - 1000)  # a kill -9 in the middle of the last fragment's write
    keep, fragments = complete_length(path)
    assert fragments == 2 and keep < whole - 1000
    os.truncate(path, keep)
    assert summarize(path).video_frames == 100  # two GOPs of 50


def test_abort_writes_nothing_more(tmp_path: Path) -> None:
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    template, units, _, _ = _units(clip, 60)
    path = tmp_path / "aborted.mp4"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        writer = FragmentWriter(fd, [StreamTemplate(template)], 10**12)
        writer.open()
        for i, (data, keyframe) in enumerate(units):
            writer.write(
                0, _packet(FragmentWriter, data, _length_prefixed(data), keyframe, template), i * FRAME_NS, i * FRAME_NS
            )
        writer.abort()
    finally:
        os.close(fd)
    assert complete_length(path) == (path.stat().st_size, 1)  # the first GOP, ended by the second's keyframe
    assert summarize(path).video_frames == 50
    assert writer.bytes_written == path.stat().st_size


def test_a_written_fragment_lets_its_samples_go(tmp_path: Path) -> None:
    """The writer holds a GOP's samples (not copies) only until its fragment is written: a
    camera's GOP would otherwise stay in memory for the life of the segment."""
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    template, units, _, _ = _units(clip, 51)
    samples = [bytearray(_length_prefixed(data)) for data, _ in units]
    baseline = sys.getrefcount(samples[0])
    fd = os.open(tmp_path / "gop.mp4", os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        writer = FragmentWriter(fd, [StreamTemplate(template)], 10**12)
        writer.open()
        for i, ((data, keyframe), sample) in enumerate(zip(units, samples, strict=True)):
            if i == 50:  # the GOP is whole and held, not yet written
                held = sys.getrefcount(samples[0])  # (pytest's assert would keep what it reads)
                assert held > baseline
            writer.write(0, _packet(FragmentWriter, data, sample, keyframe, template), i * FRAME_NS, i * FRAME_NS)
        after = sys.getrefcount(samples[0])
        assert after == baseline  # written at the keyframe, and let go
        assert writer.bytes_written > sum(len(sample) for sample in samples[:50])
        writer.abort()
    finally:
        os.close(fd)


def _skip_without_page_cache(path: Path) -> None:
    """tmpfs keeps files in memory: there is no page cache to hand back there."""
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()
    if kind == "tmpfs":
        pytest.skip(f"{path} is on tmpfs")


def _cached_bytes(path: Path) -> int:
    """Bytes of the file that are in the page cache (mincore(2) over a private map of it, which
    reads nothing in)."""
    size = path.stat().st_size
    libc = ctypes.CDLL(None, use_errno=True)
    pages = -(-size // mmap.PAGESIZE)
    vector = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        del address
    return sum(mmap.PAGESIZE for flag in vector if flag & 1)


@pytest.mark.parametrize("writer_class", [SegmentWriter, FragmentWriter])
def test_a_closed_segment_leaves_nothing_in_the_page_cache(tmp_path: Path, writer_class: type) -> None:
    """Footage is not read back soon: once a segment is fsync'd its pages go back to the kernel
    (reused pages are cheap to write into; pages left free a while may have gone to the host)."""
    _skip_without_page_cache(tmp_path)
    path = tmp_path / "segment.mp4"
    _write(writer_class, path, make_clip(CLIPS, codec="h264", seconds=10), 250)
    assert path.stat().st_size > 64 * mmap.PAGESIZE
    assert _cached_bytes(path) == 0


def test_written_fragments_leave_the_page_cache_while_the_segment_grows(tmp_path: Path) -> None:
    """Every MiB written, what is clean is dropped (with a sync at every write here, all of it)."""
    _skip_without_page_cache(tmp_path)
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    template, units, _, _ = _units(clip, 1)
    big = _length_prefixed(units[0][0]) * (600_000 // len(units[0][0]) + 1)  # ~0.6 MB samples
    path = tmp_path / "grows.mp4"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        writer = FragmentWriter(fd, [StreamTemplate(template)], 0)
        writer.open()
        for i in range(12):  # a keyframe every 2 samples: fragments of ~1.2 MB
            writer.write(0, _packet(FragmentWriter, b"", big, i % 2 == 0, template), i * FRAME_NS, i * FRAME_NS)
        assert writer.bytes_written > 6 * len(big)
        assert _cached_bytes(path) <= 2 * mmap.PAGESIZE
        writer.abort()
    finally:
        os.close(fd)
