"""Startup reconciliation: make the catalogue and the files agree after any crash.

Runs before any recorder starts (and from `vmsd fsck --repair`). Every step is idempotent, so a
crash during recovery is recovered by the next start.

- 'writing' rows: the daemon died while appending. The file is truncated after its last complete
  fragment, hashed and completed; the camera's run is ended and a 'crash' gap opened at the end of
  what survived. A file with no complete fragment (or no file at all) loses its row.
- 'garbage' rows: a deletion was interrupted; it is finished.
- files under recordings/ with no row: when empty (a crash between create and insert) they are
  removed. A file that holds footage is never removed here — it is reported, and
  `vmsd fsck --rebuild-index` adopts it (the catalogue may have been lost or replaced).
- runs left open: ended at their last segment's end.

The gaps say `crash`, or `storage_error` when the previous process stopped because its storage
was lost (storage/watch.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

import av

from vmsd.files import fsync_dir, sha256_file
from vmsd.log import get_logger
from vmsd.storage.catalogue import Catalogue, GapReason, SegmentRow, SegmentState
from vmsd.storage.erase import erase_segment
from vmsd.storage.fmp4 import complete_length, summarize
from vmsd.storage.layout import Layout


class Storage(Protocol):
    """What recovery needs of the store (storage/store.py, which calls recovery: no import back)."""

    @property
    def catalogue(self) -> Catalogue: ...

    @property
    def layout(self) -> Layout: ...


log = get_logger(component="recovery")


@dataclass
class RecoveryReport:
    recovered_segments: int = 0
    truncated_bytes: int = 0
    dropped_rows: int = 0
    finished_deletions: int = 0
    removed_orphans: list[str] = field(default_factory=list)
    unindexed_files: list[str] = field(default_factory=list)
    closed_runs: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.recovered_segments
            or self.dropped_rows
            or self.finished_deletions
            or self.removed_orphans
            or self.closed_runs
        )


def recover_writing_segment(
    storage: Storage, row: SegmentRow, report: RecoveryReport | None = None, *, reason: GapReason = GapReason.CRASH
) -> SegmentRow | None:
    """Complete a torn segment from its complete fragments, or drop it when it has none."""
    report = report or RecoveryReport()
    catalogue = storage.catalogue
    path = storage.layout.abspath(row.path)
    keep = 0
    if path.exists():
        keep, _fragments = complete_length(path)
    summary = None
    if keep:
        size = os.path.getsize(path)
        if size > keep:
            with open(path, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
            report.truncated_bytes += size - keep
        try:
            summary = summarize(path)
        except (av.FFmpegError, IndexError, OSError):
            summary = None
    if summary is None or summary.video_frames == 0:
        log.warning("segment_unrecoverable", camera_id=row.camera_id, path=row.path, start_ns=row.start_ns)
        erase_segment(catalogue, storage.layout, row, erased_ns=row.start_ns, reason="torn_without_fragments")
        report.dropped_rows += 1
        catalogue.open_gap(row.camera_id, row.start_ns, reason, "segment had no complete fragment")
        return None
    sha256, nbytes = sha256_file(path)
    end_ns = row.start_ns + summary.duration_ns
    catalogue.complete_segment(row.id, end_ns=end_ns, nbytes=nbytes, sha256=sha256, frames=summary.video_frames)
    catalogue.open_gap(row.camera_id, end_ns, reason, "footage after the last complete fragment was lost")
    if row.run_id is not None:
        catalogue.end_run(row.run_id, end_ns, reason)
    report.recovered_segments += 1
    log.info("segment_recovered", camera_id=row.camera_id, path=row.path, end_ns=end_ns, bytes=nbytes)
    return catalogue.segment(row.id)


def reconcile(storage: Storage, *, reason: GapReason = GapReason.CRASH) -> RecoveryReport:
    """Bring catalogue and files into agreement (see the module docstring); `reason` is why the
    previous process stopped without closing its runs."""
    report = RecoveryReport()
    catalogue = storage.catalogue
    for row in catalogue.segments_in_state(SegmentState.WRITING):
        recover_writing_segment(storage, row, report, reason=reason)
    for row in catalogue.segments_in_state(SegmentState.GARBAGE):
        erase_segment(catalogue, storage.layout, row, erased_ns=row.start_ns, reason="interrupted_deletion")
        report.finished_deletions += 1
    known = {row.path for row in catalogue.segments()}
    for relpath in storage.layout.iter_segment_files():
        if relpath in known:
            continue
        path = storage.layout.abspath(relpath)
        if complete_length(path)[1] > 0:
            log.error("unindexed_footage", path=relpath, hint="run `vmsd fsck --rebuild-index` to adopt it")
            report.unindexed_files.append(relpath)
            continue
        log.warning("orphan_file_removed", path=relpath, bytes=path.stat().st_size)
        path.unlink()
        fsync_dir(path.parent)
        report.removed_orphans.append(relpath)
    for run_id, camera_id, start_ns in catalogue.open_runs():
        last = catalogue.last_segment(camera_id)
        end_ns = last.end_ns if last is not None and last.end_ns is not None else start_ns
        catalogue.end_run(run_id, end_ns, reason)
        catalogue.open_gap(camera_id, end_ns, reason, "recorder stopped without closing the run")
        report.closed_runs += 1
    if report.changed:
        log.info(
            "recovery_done",
            recovered_segments=report.recovered_segments,
            truncated_bytes=report.truncated_bytes,
            dropped_rows=report.dropped_rows,
            finished_deletions=report.finished_deletions,
            removed_orphans=len(report.removed_orphans),
            unindexed_files=len(report.unindexed_files),
            closed_runs=report.closed_runs,
        )
    return report
