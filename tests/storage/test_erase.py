"""The delete protocol, in its one home (storage/erase.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.feed import feed
from vmsd import fsck
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.catalogue import SegmentRow
from vmsd.storage.erase import erase_segment
from vmsd.storage.store import Storage

S = 1_000_000_000
T = 1_767_225_600 * S


def _three_segments(storage: Storage, media: Path) -> list[SegmentRow]:
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    feed(Segmenter("cam", storage, clock, segment_duration_ns=2 * S), clock, media, seconds=6)
    return storage.catalogue.segments("cam")


def test_erase_removes_file_and_row_and_keeps_a_tombstone(storage: Storage, h264_ts: Path) -> None:
    first, second, third = _three_segments(storage, h264_ts)
    erase_segment(storage.catalogue, storage.layout, first, erased_ns=T + 60 * S, reason="aged")
    assert not storage.layout.abspath(first.path).exists()
    assert [r.id for r in storage.catalogue.segments("cam")] == [second.id, third.id]
    [tombstone] = storage.catalogue.erased_segments("cam")
    assert (tombstone.sha256, tombstone.reason, tombstone.erased_ns) == (first.sha256, "aged", T + 60 * S)
    assert fsck.check(storage).ok


def test_erase_of_a_file_already_gone_still_drops_the_row(storage: Storage, h264_ts: Path) -> None:
    first, _second, _third = _three_segments(storage, h264_ts)
    storage.layout.abspath(first.path).unlink()
    erase_segment(storage.catalogue, storage.layout, first, erased_ns=T, reason="file_lost")
    assert first.id not in [r.id for r in storage.catalogue.segments("cam")]
    assert [t.reason for t in storage.catalogue.erased_segments("cam")] == ["file_lost"]
