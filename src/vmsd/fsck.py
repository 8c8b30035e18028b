"""`vmsd fsck`: prove that the catalogue and the files agree (and that the audit trail is intact),
repair what can be repaired, or rebuild the catalogue from the files alone.

Checks: SQLite integrity; no unfinished ('writing'/'garbage') rows; every segment's file exists
with the recorded size and SHA-256; each camera's hash chain (segments and tombstones of erased
segments, in time order) links up; no two segments of a camera overlap; at most one open gap per
camera; no file under recordings/ without a row.

Repair never deletes footage that has a complete fragment and never rewrites a hash: a file whose
content no longer matches its hash is evidence of tampering or media failure and stays reported.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from vmsd.audit import AuditLog
from vmsd.clock import SystemClock
from vmsd.files import sha256_file
from vmsd.storage.catalogue import GENESIS_SHA256, Catalogue, GapReason, SegmentState
from vmsd.storage.fmp4 import MediaSummary, complete_length, summarize
from vmsd.storage.layout import parse_segment_relpath
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.units import NS_PER_MS

# What fixes each finding, said with it (an operator reading fsck's output should not have to
# guess whether --repair, --rebuild-index or a backup is the answer — or that nothing is).
FIX_UNFINISHED = "fix: completed at the next start of vmsd, or now with `vmsd fsck --repair`"
FIX_LOST = "fix: `vmsd fsck --repair` records the loss as a gap"
FIX_ALTERED = (
    "not repairable: the file changed after it was recorded (tampering or a failing disk); keep it as it is, "
    "check the disk, and restore the file from a backup if there is one"
)
FIX_UNINDEXED = "fix: `vmsd fsck --rebuild-index` adopts it"
FIX_EMPTY_ORPHAN = "fix: it holds no footage; removed at the next start of vmsd, or now with `vmsd fsck --repair`"
FIX_CATALOGUE = "fix: restore catalogue.db from a backup, or `vmsd fsck --rebuild-index` rebuilds it from the files"
FIX_CHAIN = (
    "fix: when a file is missing, `vmsd fsck --repair` records the loss and the chain links through it; "
    "otherwise not repairable (footage removed or altered outside vmsd)"
)
FIX_REPORT = "not repairable by fsck: keep the storage as it is and report this output"
FIX_AUDIT = "not repairable: restore audit.db and audit.anchor together from a backup (docs/install.md, Backups)"

# Consecutive segments whose end and start differ by less than this belong to one run when the
# index is rebuilt from files (sample durations are rounded to the muxer's time base).
CONTINUITY_TOLERANCE_NS = NS_PER_MS


@dataclass
class FsckResult:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    segments_checked: int = 0
    bytes_hashed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check(storage: Storage, *, verify_hashes: bool = True) -> FsckResult:
    result = FsckResult()
    catalogue = storage.catalogue
    integrity = catalogue.integrity_check()
    if integrity != "ok":
        result.problems.append(f"catalogue: SQLite integrity check failed: {integrity} — {FIX_CATALOGUE}")
    for state in (SegmentState.WRITING, SegmentState.GARBAGE):
        for row in catalogue.segments_in_state(state):
            result.problems.append(
                f"segment {row.id} ({row.path}): left in state '{state}' (unclean shutdown) — {FIX_UNFINISHED}"
            )
    known: set[str] = set()
    for camera_id in catalogue.camera_ids():
        rows = catalogue.segments(camera_id)
        previous_end: int | None = None
        for row in rows:
            known.add(row.path)
            if row.state != SegmentState.COMPLETE:
                continue
            result.segments_checked += 1
            path = storage.layout.abspath(row.path)
            if not path.exists():
                result.problems.append(f"segment {row.id} ({row.path}): file is missing — {FIX_LOST}")
            else:
                size = path.stat().st_size
                if size != row.bytes:
                    result.problems.append(
                        f"segment {row.id} ({row.path}): size {size} != catalogue {row.bytes} — {FIX_ALTERED}"
                    )
                elif verify_hashes:
                    digest, nbytes = sha256_file(path)
                    result.bytes_hashed += nbytes
                    if digest != row.sha256:
                        result.problems.append(
                            f"segment {row.id} ({row.path}): SHA-256 does not match the catalogue — {FIX_ALTERED}"
                        )
            if previous_end is not None and row.start_ns < previous_end:
                result.problems.append(f"segment {row.id} ({row.path}): overlaps the previous segment — {FIX_REPORT}")
            previous_end = row.end_ns
        _check_chain(catalogue, camera_id, result)
        open_gaps = [g for g in catalogue.gaps(camera_id) if g.end_ns is None]
        if len(open_gaps) > 1:
            result.problems.append(
                f"camera {camera_id}: {len(open_gaps)} open gaps (at most one expected) — {FIX_REPORT}"
            )
    for row in catalogue.segments():
        known.add(row.path)
    for relpath in storage.layout.iter_segment_files():
        if relpath not in known:
            fix = FIX_UNINDEXED if complete_length(storage.layout.abspath(relpath))[1] > 0 else FIX_EMPTY_ORPHAN
            result.problems.append(f"{relpath}: file has no catalogue row — {fix}")
    return result


def check_audit(storage: Storage, result: FsckResult) -> None:
    """Verify the audit trail's hash chain and anchors (when the daemon has written one)."""
    layout = storage.layout
    if not layout.audit_path.exists():
        return
    audit = AuditLog(layout.audit_path, SystemClock(), anchor_path=layout.audit_anchor_path)
    audit.open()
    try:
        verdict = audit.verify()
    finally:
        audit.close()
    if not verdict.ok:
        result.problems.append(
            f"audit: {verdict.first_problem} ({verdict.records_checked} record(s) checked) — {FIX_AUDIT}"
        )


def _check_chain(catalogue: Catalogue, camera_id: str, result: FsckResult) -> None:
    """Each segment's prev_sha256 must be the hash of the camera's previous segment (live or erased)."""
    links: list[tuple[int, str, str, str]] = [
        (row.start_ns, row.sha256 or "", row.prev_sha256, f"segment {row.id} ({row.path})")
        for row in catalogue.segments(camera_id)
        if row.state == SegmentState.COMPLETE
    ]
    links += [
        (row.start_ns, row.sha256, row.prev_sha256, f"erased segment of {camera_id} at {row.start_ns}")
        for row in catalogue.erased_segments(camera_id)
    ]
    links.sort(key=lambda item: item[0])
    expected = GENESIS_SHA256
    for index, (_start, sha256, prev_sha256, name) in enumerate(links):
        # The oldest erasure tombstones may themselves have been pruned; the chain is then
        # checked from the oldest record that remains.
        if index == 0 and prev_sha256 != GENESIS_SHA256:
            expected = prev_sha256
        if prev_sha256 != expected:
            result.problems.append(f"{name}: hash chain broken (previous segment missing or altered) — {FIX_CHAIN}")
        expected = sha256


def repair(storage: Storage) -> FsckResult:
    """Run recovery, then account for files that vanished (their rows become tombstones + gaps)."""
    result = FsckResult()
    report = reconcile(storage)
    if report.recovered_segments:
        result.repaired.append(f"completed {report.recovered_segments} torn segment(s)")
    if report.removed_orphans:
        result.repaired.append(f"removed {len(report.removed_orphans)} empty orphan file(s)")
    if report.finished_deletions:
        result.repaired.append(f"finished {report.finished_deletions} interrupted deletion(s)")
    now_ns = time.time_ns()
    catalogue = storage.catalogue
    for row in catalogue.segments():
        if row.state == SegmentState.COMPLETE and not storage.layout.abspath(row.path).exists():
            catalogue.delete_segment(row.id, erased_ns=now_ns, reason="file_lost")
            catalogue.insert_gap(row.camera_id, row.start_ns, row.end_ns, GapReason.STORAGE_ERROR, "segment file lost")
            result.repaired.append(f"segment {row.id} ({row.path}): file lost; recorded as a gap")
    return result


def rebuild_index(storage: Storage) -> FsckResult:
    """Build a new catalogue from the segment files (the old one is kept beside it, renamed).

    Segment times come from the file names (start) and the files' own timelines (duration);
    runs are re-derived from continuity, and each break becomes a gap of reason 'unknown'. The
    hash chain is re-linked over the files found, which proves integrity from now on but cannot
    prove what happened before the catalogue was lost.
    """
    result = FsckResult()
    catalogue_path = storage.layout.catalogue_path
    storage.catalogue.close()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for suffix in ("", "-wal", "-shm"):
        old = catalogue_path.with_name(catalogue_path.name + suffix)
        if old.exists():
            old.rename(catalogue_path.with_name(f"{catalogue_path.name}.replaced-{stamp}{suffix}"))
    storage.catalogue = Catalogue(catalogue_path)
    storage.catalogue.open()
    catalogue = storage.catalogue
    found: list[tuple[str, int, str]] = []
    for relpath in storage.layout.iter_segment_files():
        parsed = parse_segment_relpath(relpath)
        if parsed is None:
            result.problems.append(f"{relpath}: not a segment file name; left alone")
            continue
        found.append((parsed[0], parsed[1], relpath))
    found.sort()
    # First pass: make each file whole and read its facts; second pass: link and insert.
    scanned: list[tuple[str, int, str, MediaSummary, str, int]] = []
    for camera_id, start_ns, relpath in found:
        path = storage.layout.abspath(relpath)
        keep, fragments = complete_length(path)
        if fragments == 0:
            result.problems.append(f"{relpath}: no complete fragment; left alone")
            continue
        if os.path.getsize(path) > keep:
            with open(path, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
            result.repaired.append(f"{relpath}: truncated to its last complete fragment")
        digest, nbytes = sha256_file(path)
        scanned.append((camera_id, start_ns, relpath, summarize(path), digest, nbytes))
    now_ns = time.time_ns()
    previous: dict[str, tuple[int, str, int]] = {}  # camera -> (end_ns, sha256, run_id)
    for index, (camera_id, start_ns, relpath, summary, digest, nbytes) in enumerate(scanned):
        if camera_id not in previous:
            catalogue.upsert_camera(camera_id, "", "", now_ns)
        before = previous.get(camera_id)
        if before is None or abs(start_ns - before[0]) > CONTINUITY_TOLERANCE_NS:
            if before is not None:
                catalogue.end_run(before[2], before[0], GapReason.UNKNOWN)
                catalogue.insert_gap(camera_id, before[0], start_ns, GapReason.UNKNOWN, "rebuilt from files")
            run_id = catalogue.begin_run(camera_id, start_ns)
        else:
            run_id = before[2]
        end_ns = start_ns + summary.duration_ns
        following = scanned[index + 1] if index + 1 < len(scanned) else None
        if (
            following is not None
            and following[0] == camera_id
            and abs(following[1] - end_ns) <= CONTINUITY_TOLERANCE_NS
        ):
            end_ns = following[1]  # a continuous run: the next segment starts where this one ends
        catalogue.insert_complete_segment(
            camera_id=camera_id,
            run_id=run_id,
            path=relpath,
            start_ns=start_ns,
            end_ns=end_ns,
            nbytes=nbytes,
            sha256=digest,
            prev_sha256=before[1] if before else GENESIS_SHA256,
            video_codec=summary.codec,
            width=summary.width,
            height=summary.height,
            has_audio=summary.has_audio,
            frames=summary.video_frames,
        )
        previous[camera_id] = (end_ns, digest, run_id)
        result.segments_checked += 1
        result.bytes_hashed += nbytes
    for camera_id, (end_ns, _digest, run_id) in previous.items():
        catalogue.end_run(run_id, end_ns, GapReason.UNKNOWN)
        catalogue.open_gap(camera_id, end_ns, GapReason.UNKNOWN, "rebuilt from files")
    result.repaired.append(f"rebuilt the catalogue from {result.segments_checked} segment file(s)")
    return result
