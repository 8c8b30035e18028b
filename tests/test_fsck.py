"""fsck finds tampering and loss; repair accounts for lost files; rebuild-index restores a lost catalogue."""

from __future__ import annotations

from pathlib import Path

from tests.support.feed import feed
from vmsd import fsck
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.store import Storage

S = 1_000_000_000
T = 1_767_225_600 * S


def _record(storage: Storage, media: Path) -> None:
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=4 * S)
    feed(segmenter, clock, media, seconds=12)
    clock.advance(10 * S)
    feed(segmenter, clock, media, seconds=4)


def test_clean_recording_passes(storage: Storage, h264_ts: Path) -> None:
    _record(storage, h264_ts)
    result = fsck.check(storage)
    assert result.ok, result.problems
    assert result.segments_checked == 4


def test_an_altered_byte_is_found(storage: Storage, h264_ts: Path) -> None:
    _record(storage, h264_ts)
    row = storage.catalogue.segments("cam")[1]
    path = storage.segment_path(row)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = fsck.check(storage).problems
    assert problems == [f"segment {row.id} ({row.path}): SHA-256 does not match the catalogue — {fsck.FIX_ALTERED}"]
    assert "not repairable" in fsck.FIX_ALTERED and "backup" in fsck.FIX_ALTERED


def test_a_removed_segment_breaks_the_chain_and_repair_records_the_loss(storage: Storage, h264_ts: Path) -> None:
    _record(storage, h264_ts)
    rows = storage.catalogue.segments("cam")
    storage.segment_path(rows[1]).unlink()
    problems = fsck.check(storage).problems
    assert any("file is missing — fix: `vmsd fsck --repair` records the loss as a gap" in p for p in problems)
    repaired = fsck.repair(storage)
    assert any("file lost" in line for line in repaired.repaired)
    # The loss is now an explicit gap and a tombstone; the chain verifies through the tombstone.
    assert fsck.check(storage).ok
    assert any(g.reason == "storage_error" and g.start_ns == rows[1].start_ns for g in storage.catalogue.gaps("cam"))


def test_a_deleted_catalogue_row_is_found(storage: Storage, h264_ts: Path) -> None:
    _record(storage, h264_ts)
    row = storage.catalogue.segments("cam")[1]
    with storage.catalogue._tx() as conn:
        conn.execute("DELETE FROM segments WHERE id=?", (row.id,))
    problems = fsck.check(storage).problems
    assert any("hash chain broken" in p for p in problems)
    assert any("file has no catalogue row — fix: `vmsd fsck --rebuild-index` adopts it" in p for p in problems)
    assert all(" — fix: " in p or " — not repairable" in p for p in problems), problems


def test_an_unfinished_segment_says_that_the_next_start_or_repair_completes_it(storage: Storage, h264_ts: Path) -> None:
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=4 * S)
    feed(segmenter, clock, h264_ts, seconds=6, end_reason=None)  # as if the daemon had crashed
    problems = [p for p in fsck.check(storage).problems if "unclean shutdown" in p]
    assert problems
    assert all(
        p.endswith("— fix: completed at the next start of vmsd, or now with `vmsd fsck --repair`") for p in problems
    )
    fsck.repair(storage)
    assert not [p for p in fsck.check(storage).problems if "unclean shutdown" in p]


def test_rebuild_index_restores_segments_runs_and_gaps(storage: Storage, h264_ts: Path) -> None:
    _record(storage, h264_ts)
    before = [(r.path, r.start_ns, r.end_ns, r.sha256, r.bytes) for r in storage.catalogue.segments("cam")]
    gap_before = storage.catalogue.gaps("cam")[0]
    storage.layout.catalogue_path.unlink()  # the disaster (the open connection still sees the old file)
    result = fsck.rebuild_index(storage)
    assert result.segments_checked == 4
    after = [(r.path, r.start_ns, r.end_ns, r.sha256, r.bytes) for r in storage.catalogue.segments("cam")]
    assert after == before
    gaps = storage.catalogue.gaps("cam")
    assert (gaps[0].start_ns, gaps[0].end_ns) == (gap_before.start_ns, gap_before.end_ns)
    assert fsck.check(storage).ok


def test_a_segment_opened_after_the_newest_ones_were_erased_links_to_them(storage: Storage, h264_ts: Path) -> None:
    """Under disk pressure retention may erase a camera's newest footage (everything older is
    held) before the camera's next segment opens: that segment must link to the erased one."""
    storage.catalogue.upsert_camera("cam", "", "", 0)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=4 * S)
    feed(segmenter, clock, h264_ts, seconds=12)
    segmenter.end_session("camera_offline")
    rows = storage.catalogue.segments("cam")
    for row in rows[-2:]:  # the newest two go; the older ones stay (as if held)
        storage.delete_segment(row, erased_ns=T + 20 * S, reason="disk_pressure")
    assert storage.chain_head("cam") == rows[-1].sha256
    clock.advance(10 * S)
    feed(segmenter, clock, h264_ts, seconds=4)
    result = fsck.check(storage)
    assert result.ok, result.problems
