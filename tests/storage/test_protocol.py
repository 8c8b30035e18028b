"""The durability protocol: a crash between any two steps leaves a state that recovery turns
into agreement between files and catalogue, keeping every complete fragment."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.feed import feed
from vmsd import fsck
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.fmp4 import complete_length, summarize
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

S = 1_000_000_000
T = 1_767_225_600 * S


def _reopen(storage: Storage) -> Storage:
    """What a restart sees: same root, new process state."""
    storage.close()
    fresh = Storage(storage.layout.root)
    fresh.open()
    return fresh


def _record_without_closing(storage: Storage, media: Path, seconds: float) -> Segmenter:
    """Record `seconds` and then 'crash': the open segment is neither closed nor completed."""
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=60 * S)
    feed(segmenter, clock, media, seconds=seconds, end_reason=None)
    return segmenter


def test_crash_before_the_row_leaves_an_empty_orphan_that_is_removed(storage: Storage) -> None:
    fd, relpath = storage._create_file("cam", T)  # step 1 only: file created, directory synced
    os.close(fd)
    storage = _reopen(storage)
    report = reconcile(storage)
    assert report.removed_orphans == [relpath]
    assert not storage.layout.abspath(relpath).exists()
    assert fsck.check(storage).ok


def test_crash_mid_segment_keeps_every_complete_fragment(storage: Storage, h264_ts: Path) -> None:
    segmenter = _record_without_closing(storage, h264_ts, seconds=7)
    segment = segmenter.segment
    assert segment is not None
    path = storage.layout.abspath(segment.relpath)
    # Fragments are flushed at each keyframe: 0-2 s, 2-4 s, 4-6 s are on disk; 6-7 s is in memory.
    os.close(segment.fd)  # the process dies: the muxer's buffered fragment is lost
    with open(path, "ab") as f:  # and the kernel had taken half of a following write
        f.write(b"\x00\x00\x01\x00moof" + b"\x00" * 100)
    storage = _reopen(storage)
    report = reconcile(storage)
    assert report.recovered_segments == 1 and report.truncated_bytes == 108
    [row] = storage.catalogue.segments("cam")
    assert row.state == "complete"
    assert row.end_ns - row.start_ns == 6 * S  # lost: 1 s, less than one GOP
    assert summarize(path).duration_ns == 6 * S
    [gap] = storage.catalogue.gaps("cam")
    assert (gap.start_ns, gap.end_ns, gap.reason) == (row.end_ns, None, "crash")
    assert fsck.check(storage).ok


def test_crash_before_any_fragment_drops_the_row(storage: Storage, h264_ts: Path) -> None:
    segmenter = _record_without_closing(storage, h264_ts, seconds=1)
    assert segmenter.segment is not None
    os.close(segmenter.segment.fd)
    storage = _reopen(storage)
    report = reconcile(storage)
    assert report.dropped_rows == 1
    assert storage.catalogue.segments("cam") == []
    assert list(storage.layout.iter_segment_files()) == []
    assert fsck.check(storage).ok


def test_crash_after_the_file_is_finished_but_before_the_row_completes(storage: Storage, h264_ts: Path) -> None:
    segmenter = _record_without_closing(storage, h264_ts, seconds=5)
    segment = segmenter.segment
    assert segment is not None
    segment.writer.close(5 * S)  # file finished and fsynced …
    os.close(segment.fd)  # … and the process dies before catalogue.complete_segment()
    storage = _reopen(storage)
    reconcile(storage)
    [row] = storage.catalogue.segments("cam")
    assert row.end_ns - row.start_ns == 5 * S
    assert complete_length(storage.layout.abspath(row.path))[1] == 3
    assert fsck.check(storage).ok


def test_interrupted_deletion_is_finished_with_a_tombstone(storage: Storage, h264_ts: Path) -> None:
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=2 * S)
    feed(segmenter, clock, h264_ts, seconds=6)
    first, second, third = storage.catalogue.segments("cam")
    storage.catalogue.mark_garbage(first.id)  # step 1 of delete, then crash
    storage = _reopen(storage)
    assert reconcile(storage).finished_deletions == 1
    assert not storage.layout.abspath(first.path).exists()
    assert [r.id for r in storage.catalogue.segments("cam")] == [second.id, third.id]
    [tombstone] = storage.catalogue.erased_segments("cam")
    assert tombstone.sha256 == first.sha256
    assert fsck.check(storage).ok  # the chain still verifies across the erased segment


def test_a_second_process_cannot_open_the_same_root(storage: Storage) -> None:
    import pytest

    from vmsd.errors import VmsdError

    other = Storage(storage.layout.root)
    with pytest.raises(VmsdError, match="in use by another vmsd process"):
        other.open()
