"""Evidence export: a camera's time range as a signed bundle that anyone can verify offline.

What a bundle holds: the package docstring (vmsd/export/__init__.py).

Exports live outside recordings/, so retention and fsck never touch them. A bundle is built in
`<export_id>.partial/` and renamed into place once everything is fsynced, so an export directory
that exists is complete; `open()` removes partial ones left by a crash.

Before reading any footage the exporter places an evidence hold on the requested range (unless
told not to), so retention cannot erase a segment half-way through an export; the hold outlives a
failed export on purpose: whoever asked for the footage thinks it matters. Each source segment is
re-hashed as it is read (while being copied into the bundle, when originals are included) and
must match the catalogue's hash, so a bundle never signs footage that changed after recording —
and the master is remuxed from those very copies.

Blocking throughout (file I/O, PyAV, SQLite): run `run()`/`export()` on a worker thread.

The orchestration only: reading the recorded segments is sources.py, the remux engine remux.py,
the README readme.py, disk space quota.py, reading finished bundles serve.py, file copies and
hashes files.py, the manifest's gaps gaps.py. Longer than ~450 lines on purpose: `_build` is the
one pipeline of an export (hold, sources, master, redacted copies, seal), read top to bottom.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.export import manifest as mf
from vmsd.export.files import file_entry, write_new_file
from vmsd.export.gaps import carve_in_progress, contiguous_spans, label_in_progress
from vmsd.export.manifest import iso_ns, manifest_json, time_span
from vmsd.export.model import (
    ACTION_COMPLETED,
    ACTION_FAILED,
    ACTION_REQUESTED,
    MAX_EXPORT_NS,
    CameraInfo,
    ExportProgress,
    ExportRequest,
    ExportResult,
)
from vmsd.export.quota import ExportSpace
from vmsd.export.readme import readme_text
from vmsd.export.redact import ENCODER, redact_steps
from vmsd.export.remux import Remux, covered_union
from vmsd.export.serve import Archive, BundleFile, Bundles
from vmsd.export.signing import RecorderKey, load_or_create
from vmsd.export.site_parts import (
    CollectedPart,
    PartItem,
    SiteParts,
    collect_part,
    epochs_of_runs,
    erased_segments,
    read_part,
    recorder_dir,
    recorder_parts,
)
from vmsd.export.sources import SourceReader
from vmsd.files import fsync_dir, fsync_file, sha256_file
from vmsd.log import get_logger
from vmsd.recordings.search import SearchResult, merge, search, tile
from vmsd.retention.holds import Holds
from vmsd.storage.catalogue import SegmentRow
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus, clock_status
from vmsd.units import NS_PER_S

log = get_logger(component="export")

_PARTIAL_SUFFIX = ".partial"
# Manifest, signature, key, README, checksums and container overhead, generously.
_BUNDLE_OVERHEAD_BYTES = 1024 * 1024
REDACTED_NAME = "working-copy-redacted.mp4"

# Share of the progress bar each phase gets (originals/hashing, remux, redaction, sealing).
_P_HASH, _P_REMUX, _P_REDACT = 0.3, 0.6, 0.95


class Exporter:
    """Builds, lists and serves export bundles. The constructor does no I/O; `open()` does.

    Thread-safe: each export runs on its caller's thread; at most `max_concurrent` at once (more
    are refused with RESOURCE_EXHAUSTED rather than queued, so exports cannot pile up behind each
    other while competing with recording for the disk).

    Space: before an export starts, its size is estimated from the source segments (originals
    and master each about their size, a redacted copy as much again) and it is refused with
    RESOURCE_EXHAUSTED when it would leave less free space than `min_free(total bytes)` — the
    space recording keeps; eating into it would make retention erase other cameras' footage — or
    when the bundles kept plus the running exports' estimates would exceed `max_total(total
    bytes)` (`[export] max_total`; None: no quota).
    """

    def __init__(
        self,
        storage: Storage,
        audit: AuditLog,
        clock: Clock,
        *,
        recorder_id: str,
        camera_info: Callable[[str], CameraInfo | None],
        holds: Holds | None = None,
        time_sync: Callable[[], ClockStatus] = clock_status,
        max_concurrent: int = 2,
        software: str = "vmsd",
        min_free: Callable[[int], int] = lambda total_bytes: 0,
        max_total: Callable[[int], int] | None = None,
        events: EventBus | None = None,
    ) -> None:
        self._storage = storage
        self._events = events
        self._audit = audit
        self._clock = clock
        self._recorder_id = recorder_id
        self._camera_info = camera_info
        self._holds = holds
        self._time_sync = time_sync
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._software = software
        self._key: RecorderKey | None = None
        self.root = storage.layout.exports_dir
        self._space = ExportSpace(self.root, min_free, max_total)
        self._bundles = Bundles(self.root)
        # Told (outcome, duration_ns) when an export ends; the daemon feeds metrics from it.
        self.on_finished: Callable[[str, int], None] = lambda outcome, duration_ns: None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Create the exports directory, load (or make, once) the signing key, and remove
        half-built bundles a crash left behind. Blocking."""
        self.root.mkdir(mode=0o750, parents=True, exist_ok=True)
        self._key = load_or_create(self._storage.layout.keys_dir)
        # Logged so the operator can give it to recipients (also `vmsd key-fingerprint`).
        log.info("recorder_key", fingerprint=self._key.fingerprint, path=str(self._key.path))
        for entry in self.root.iterdir():
            if entry.name.endswith(_PARTIAL_SUFFIX) and entry.is_dir():
                log.warning("removing_partial_export", path=str(entry))
                shutil.rmtree(entry)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def key(self) -> RecorderKey:
        if self._key is None:
            raise RuntimeError("exporter is not open")
        return self._key

    # -- exporting ---------------------------------------------------------------------------

    def export(
        self,
        request: ExportRequest,
        progress: Callable[[ExportProgress], None] | None = None,
        *,
        site: SiteParts | None = None,
    ) -> ExportResult:
        """Run an export to completion; `progress` sees every step. See `run()`."""
        result: ExportResult | None = None
        for step in self.run(request, site=site):
            if progress is not None:
                progress(step)
            result = step.result or result
        assert result is not None
        return result

    def run(self, request: ExportRequest, *, site: SiteParts | None = None) -> Iterator[ExportProgress]:
        """Export, yielding progress; the final item has `result` (phase "done").

        With `site` naming peers (or missing parts), the footage of the other recorders of the
        site holding part of the range is fetched into the bundle too (site_parts.py), and the
        bundle is a vmsd-export/2 one (manifest.py); without, exactly this recorder's footage.

        Raises VmsdError: INVALID_ARGUMENT (bad range/text), NOT_FOUND (unknown camera, or no
        finished footage in the range), FAILED_PRECONDITION (redaction asked for a camera without
        privacy masks), RESOURCE_EXHAUSTED (too many exports running), DATA_LOSS (a recorded file
        no longer matches its catalogue hash; a peer's segment that does not match its), UNAVAILABLE
        (a peer holding part of the range cannot be reached). Every outcome is audited (requested, then
        completed or failed). Abandoning the generator removes the partial bundle.
        """
        self._validate(request)
        if not self._slots.acquire(blocking=False):
            raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, "too many exports are running; try again shortly")
        try:
            reserved = self._reserve_space(request, site)
            try:
                yield from self._run(request, site)
            finally:
                self._space.release(reserved)
        finally:
            self._slots.release()

    def _reserve_space(self, request: ExportRequest, site: SiteParts | None = None) -> int:
        """Reserve the export's estimated size (see `ExportSpace`); returns the estimate. Blocking."""
        needed = self._estimate_bytes(request, site.source_bytes if site is not None else 0)
        self._space.reserve(needed)
        return needed

    def _estimate_bytes(self, request: ExportRequest, peer_bytes: int = 0) -> int:
        source_bytes = peer_bytes
        for row in self._exportable_rows(request):
            if row.bytes is not None:
                source_bytes += row.bytes
            else:  # still being written: what it holds so far
                try:
                    source_bytes += self._storage.segment_path(row).stat().st_size
                except FileNotFoundError:
                    pass
        copies = 1 + int(request.include_originals) + int(request.redact)
        return source_bytes * copies + _BUNDLE_OVERHEAD_BYTES

    def bundles_bytes(self) -> int:
        """Bytes of the finished bundles kept under the exports directory. Blocking."""
        return self._space.bundles_bytes()

    def _validate(self, request: ExportRequest) -> None:
        if request.end_ns <= request.start_ns:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "the export range is empty: end must be after start")
        if request.end_ns - request.start_ns > MAX_EXPORT_NS:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "the export range is longer than 7 days")
        if not request.case_ref.strip():
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "case_ref is required")
        if not request.reason.strip():
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "reason is required")

    def _camera(self, camera_id: str) -> CameraInfo:
        info = self._camera_info(camera_id)
        if info is not None:
            return info
        # A removed camera's footage stays exportable; its name is whatever the catalogue knew.
        if camera_id in self._storage.catalogue.camera_ids():
            return CameraInfo(id=camera_id)
        raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} does not exist")

    def _audit_entry(self, request: ExportRequest, action: str, outcome: str, detail: dict[str, Any]) -> None:
        self._audit.append(
            AuditEntry(
                action=action,
                principal=request.principal,
                role=request.role,
                peer=request.peer,
                camera_id=request.camera_id,
                start_ns=request.start_ns,
                end_ns=request.end_ns,
                reason=request.reason,
                case_ref=request.case_ref,
                outcome=outcome,
                detail=detail,
            )
        )

    def _publish(self, kind: EventKind, request: ExportRequest, export_id: str, **fields: object) -> None:
        # Queued (events/bus.py). No case reference or reason: those are for roles that may export.
        if self._events is not None:
            self._events.publish(kind, request.camera_id, export_id=export_id, principal=request.principal, **fields)

    def _run(self, request: ExportRequest, site: SiteParts | None) -> Iterator[ExportProgress]:
        camera = self._camera(request.camera_id)
        export_id = _new_export_id(request.camera_id, self._clock.wall_ns())
        base_detail = {
            "export_id": export_id,
            "recipient": request.recipient,
            "include_originals": request.include_originals,
            "redact": request.redact,
            "place_hold": request.place_hold,
        }
        if site is not None and (site.peers or site.missing):
            # The other recorders holding part of the range (each audits its part "via" this one).
            base_detail["site_parts"] = site.peers
            if site.missing:
                base_detail["site_missing"] = [m.recorder for m in site.missing]
        self._audit_entry(request, ACTION_REQUESTED, "OK", base_detail)
        self._publish(EventKind.EXPORT_CREATED, request, export_id, start_ns=request.start_ns, end_ns=request.end_ns)
        started_mono_ns = self._clock.mono_ns()
        yield ExportProgress("requested", 0.0, export_id=export_id)
        staging = self.root / f"{export_id}{_PARTIAL_SUFFIX}"
        try:
            result = yield from self._build(request, camera, export_id, staging, site)
        except VmsdError as error:
            self._audit_entry(request, ACTION_FAILED, error.kind.value, {**base_detail, "error": error.message})
            self._publish(EventKind.EXPORT_FAILED, request, export_id, outcome=error.kind.value, error=error.message)
            self.on_finished(error.kind.value, self._clock.mono_ns() - started_mono_ns)
            raise
        except BaseException as error:
            # GeneratorExit (the consumer went away) and crashes alike: no half bundle stays.
            outcome = "CANCELLED" if isinstance(error, GeneratorExit) else "INTERNAL"
            self._audit_entry(request, ACTION_FAILED, outcome, {**base_detail, "error": type(error).__name__})
            self._publish(EventKind.EXPORT_FAILED, request, export_id, outcome=outcome)
            self.on_finished(outcome, self._clock.mono_ns() - started_mono_ns)
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self._audit_entry(
            request,
            ACTION_COMPLETED,
            "OK",
            {
                **base_detail,
                "hold_id": result.manifest.hold_id,
                "segments": len(result.manifest.segments),
                "bytes": result.bytes,
                "manifest_sha256": hashlib.sha256((result.path / mf.MANIFEST_NAME).read_bytes()).hexdigest(),
                **({"recorders": [r.id for r in result.manifest.recorders]} if result.manifest.recorders else {}),
            },
        )
        log.info("export_completed", export_id=export_id, camera_id=request.camera_id, bytes=result.bytes)
        self._publish(
            EventKind.EXPORT_COMPLETED,
            request,
            export_id,
            bytes=result.bytes,
            segments=len(result.manifest.segments),
            hold_id=result.manifest.hold_id,
        )
        self.on_finished("OK", self._clock.mono_ns() - started_mono_ns)
        yield ExportProgress("done", 1.0, result)

    def _exportable_rows(self, request: ExportRequest) -> list[SegmentRow]:
        """Finished segments in the range, and the one being written (its complete fragments are
        exported, see `SourceReader._copy_open_segment`)."""
        rows = self._storage.catalogue.segments_in_range(request.camera_id, request.start_ns, request.end_ns)
        return [
            r
            for r in rows
            if r.state == "writing"
            or (r.state == "complete" and r.sha256 and r.end_ns is not None and r.bytes is not None)
        ]

    def _build(
        self, request: ExportRequest, camera: CameraInfo, export_id: str, staging: Path, site: SiteParts | None
    ) -> Generator[ExportProgress, None, ExportResult]:
        peers = site.peers if site is not None else []
        # A bundle of several recorders' footage (vmsd-export/2), or of this one's (as ever).
        several = site is not None and bool(site.peers or site.missing)
        if request.redact and not camera.privacy_masks:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"camera {camera.id!r} has no privacy_masks configured: there is nothing to redact",
            )
        if not self._exportable_rows(request) and not peers:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera.id!r} in the requested range")
        hold_id: int | None = None
        if request.place_hold and self._holds is not None:
            hold = self._holds.add(
                camera_ids=[camera.id],
                start_ns=request.start_ns,
                end_ns=request.end_ns,
                case_ref=request.case_ref,
                reason=f"export {export_id}: {request.reason}",
                created_by=request.principal,
                until_ns=request.hold_until_ns,
            )
            hold_id = hold.id
        # Queried again under the hold: nothing listed now can be erased before it is read.
        rows = self._exportable_rows(request)
        if not rows and not peers:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera.id!r} in the requested range")
        staging.mkdir(mode=0o750)
        total_bytes = max(1, sum(r.bytes or 0 for r in rows) + (site.source_bytes if site is not None else 0))
        after_remux = _P_REMUX if request.redact else _P_REDACT

        # 1. Originals (or hashes): the recorded bytes must still be what the catalogue says.
        read = SourceReader(
            self._storage,
            rows,
            staging,
            include_originals=request.include_originals,
            recorder=self._recorder_id if several else "",
            epochs=epochs_of_runs(self._storage, camera.id) if several else None,
        )
        phase = "originals" if request.include_originals else "hashing"
        for done_bytes in read.run():
            yield ExportProgress(phase, _P_HASH * done_bytes / total_bytes)
        files, segments, sources, scratch = read.files, read.segments, read.sources, read.scratch
        in_progress_from_ns = read.in_progress_from_ns
        # 1b. The other recorders' parts, each segment checked against its recorder's catalogue.
        collected: list[CollectedPart] = []
        done_bytes = sum(segment.bytes for segment in segments)
        for peer in peers:
            assert site is not None
            part: CollectedPart | None = None
            with contextlib.closing(site.fetch(peer, export_id)) as items:
                receiving = collect_part(items, peer, camera.id, staging, include_originals=request.include_originals)
                for so_far, received in receiving:
                    part = so_far
                    yield ExportProgress(phase, _P_HASH * min(1.0, (done_bytes + received) / total_bytes))
            assert part is not None
            done_bytes += sum(segment.bytes for segment in part.segments)
            collected.append(part)
            files += part.files
            scratch += part.scratch

        if not sources and not any(part.sources for part in collected):
            raise VmsdError(
                ErrorKind.NOT_FOUND,
                f"no footage of camera_id {camera.id!r} in the requested range has reached its file yet",
            )

        # 2. The master(s): stream copy onto one continuous timeline — per recorder in a bundle
        # of several (two recorders' footage of the same time is never merged).
        groups = [(self._recorder_id if several else "", sources)] + [
            (part.header.recorder_id, part.sources) for part in collected
        ]
        groups = sorted((g for g in groups if g[1]), key=lambda g: g[1][0][0].start_ns)
        remuxes: list[Remux] = []
        remuxed_before = 0
        for recorder, group in groups:
            stem = f"master-{recorder_dir(recorder)}" if recorder else "master"
            remux = Remux(group, request.start_ns, request.end_ns, staging, stem=stem, recorder=recorder)
            for remuxed_bytes in remux.run():
                fraction = min(1.0, (remuxed_before + remuxed_bytes) / total_bytes)
                yield ExportProgress("remux", _P_HASH + (after_remux - _P_HASH) * fraction)
            remuxed_before += sum(row.bytes or 0 for row, _ in group)
            remuxes.append(remux)
        for path in scratch:
            path.unlink()
        masters = [part.entry() for remux in remuxes for part in remux.parts]
        for master in masters:
            fsync_file(staging / master.file)  # PyAV's muxer only closed it: durable before the rename
            digest, size = sha256_file(staging / master.file)
            files.append(mf.File(name=master.file, role=mf.ROLE_MASTER, bytes=size, sha256=digest))

        # 3. Redacted working copies (re-encoded), one per master.
        redacted: list[mf.Redacted] = []
        if request.redact:
            total_frames = max(1, sum(m.video_frames for m in masters))
            frames_before = 0
            for index, master in enumerate(masters):
                name = REDACTED_NAME if index == 0 else REDACTED_NAME.replace(".mp4", f"-{index + 1}.mp4")
                for frames in redact_steps(staging / master.file, staging / name, camera.privacy_masks):
                    fraction = (frames_before + frames) / total_frames
                    yield ExportProgress("redact", _P_REMUX + (_P_REDACT - _P_REMUX) * min(1.0, fraction))
                frames_before += master.video_frames
                fsync_file(staging / name)
                digest, size = sha256_file(staging / name)
                files.append(mf.File(name=name, role=mf.ROLE_REDACTED, bytes=size, sha256=digest))
                redacted.append(
                    mf.Redacted(
                        file=name,
                        source=master.file,
                        masks=[[(float(x), float(y)) for x, y in polygon] for polygon in camera.privacy_masks],
                        encoder=ENCODER,
                        note="processed working copy: decoded, privacy-masked and re-encoded; "
                        "not the evidential master; audio omitted",
                    )
                )

        # 4. Seal: key, README, checksums, manifest, signature.
        yield ExportProgress("sealing", _P_REDACT)
        key = self.key
        now_ns = self._clock.wall_ns()
        write_new_file(staging / mf.PUBLIC_KEY_NAME, key.public_pem)
        files.append(file_entry(staging, mf.PUBLIC_KEY_NAME, mf.ROLE_PUBLIC_KEY))
        readme = readme_text(
            export_id,
            camera,
            request,
            key.fingerprint,
            masters,
            redacted,
            bool(request.include_originals),
            any(segment.open_at_export for segment in segments),
            recorders=[self._recorder_id, *peers] if several else [],
        )
        write_new_file(staging / mf.README_NAME, readme.encode("utf-8"))
        files.append(file_entry(staging, mf.README_NAME, mf.ROLE_README))
        sums = "".join(f"{f.sha256}  {f.name}\n" for f in files)
        write_new_file(staging / mf.SUMS_NAME, sums.encode("ascii"))
        files.append(file_entry(staging, mf.SUMS_NAME, mf.ROLE_SUMS))

        erased = erased_segments(
            self._storage, camera.id, request.start_ns, request.end_ns, self._recorder_id if several else ""
        )
        spans = contiguous_spans([row for row, _ in sources], request.start_ns, request.end_ns)
        gap_rows = self._storage.catalogue.gaps_in_range(camera.id, request.start_ns, request.end_ns)
        tiled = tile(spans, gap_rows, request.start_ns, request.end_ns, now_ns)
        covered = remuxes[0].covered() if len(remuxes) == 1 else covered_union(remuxes)
        recorders: list[mf.RecorderPart] = []
        overlaps: list[mf.Overlap] = []
        if several:
            own = SearchResult([replace(span, recorder=self._recorder_id) for span in spans], tiled)
            merged = merge(
                [own, *(part.search_result(request.start_ns, request.end_ns) for part in collected)],
                request.start_ns,
                request.end_ns,
            )
            tiled = merged.gaps
            segments = sorted(
                [*segments, *(s for part in collected for s in part.segments)], key=lambda s: (s.start_ns, s.recorder)
            )
            erased = sorted(
                [
                    *erased,
                    *(
                        e.model_copy(update={"recorder": c.header.recorder_id})
                        for c in collected
                        for e in c.header.erased
                    ),
                ],
                key=lambda e: (e.start_ns, e.recorder),
            )
            overlaps = mf.overlaps(segments)
        gaps = [mf.Gap(start_ns=g.start_ns, end_ns=g.end_ns, reason=g.reason, detail=g.detail) for g in tiled]
        if not several:
            gaps = label_in_progress(gaps, in_progress_from_ns, now_ns)
        for from_ns in (
            [in_progress_from_ns, *(part.header.in_progress_from_ns for part in collected)] if several else []
        ):
            gaps = carve_in_progress(gaps, from_ns, now_ns)
        breaks = mf.chain_breaks(segments, erased)
        if several:
            fingerprints = {self._recorder_id: key.fingerprint} | {
                p.header.recorder_id: p.header.key_fingerprint for p in collected
            }
            recorders = recorder_parts(segments, breaks, masters, fingerprints, self._recorder_id)
        manifest = mf.Manifest(
            format=mf.FORMAT_SITE if several else mf.FORMAT,
            export_id=export_id,
            recorder=mf.Recorder(id=self._recorder_id, key_fingerprint_sha256=key.fingerprint, software=self._software),
            camera=mf.Camera(id=camera.id, name=camera.name, location=camera.location),
            requested=time_span(request.start_ns, request.end_ns),
            covered=covered,
            gaps=gaps,
            masters=masters,
            redacted=redacted,
            segments=segments,
            erased_segments=erased,
            chain_breaks=breaks,
            files=files,
            operator=mf.Operator(principal=request.principal, role=request.role),
            case_ref=request.case_ref,
            reason=request.reason,
            recipient=request.recipient,
            exported_at_ns=now_ns,
            exported_at=iso_ns(now_ns),
            hold_id=hold_id,
            clock=self._time_sync(),
            camera_clock=[
                mf.CameraClockReading.model_validate({**r._asdict(), "time": iso_ns(r.time_ns)})
                for r in self._storage.catalogue.camera_clock_in_range(camera.id, request.start_ns, request.end_ns)
            ],
            recorders=recorders,
            overlaps=overlaps,
            missing=site.missing if site is not None else [],
        )
        manifest_bytes = manifest_json(manifest)
        write_new_file(staging / mf.MANIFEST_NAME, manifest_bytes)
        write_new_file(staging / mf.SIGNATURE_NAME, key.sign(manifest_bytes))
        for directory in (staging / "segments", staging):
            if directory.exists():
                fsync_dir(directory)
        final = self.root / export_id
        os.rename(staging, final)
        fsync_dir(self.root)
        total = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
        return ExportResult(export_id=export_id, path=final, manifest=manifest, bytes=total)

    # -- a site export's parts (site_parts.py) ---------------------------------------------------

    def footage(self, camera_id: str, start_ns: int, end_ns: int) -> SearchResult:
        """This recorder's spans (each naming it) and gaps of the camera in the range. Blocking;
        NOT_FOUND for a camera neither configured nor in the catalogue."""
        self._camera(camera_id)
        found = search(self._storage.catalogue, camera_id, start_ns, end_ns, self._clock.wall_ns())
        return SearchResult([replace(s, recorder=self._recorder_id) for s in found.spans], found.gaps)

    def read_part(self, camera_id: str, start_ns: int, end_ns: int) -> Iterator[PartItem]:
        """This recorder's part of a peer's export of the camera and range (`site_parts.read_part`).
        Blocking; NOT_FOUND for a camera this recorder does not know."""
        self._camera(camera_id)
        return read_part(
            self._storage,
            camera_id,
            start_ns,
            end_ns,
            self._clock.wall_ns(),
            recorder_id=self._recorder_id,
            key_fingerprint=self._key.fingerprint if self._key is not None else "",
        )

    # -- reading bundles (serve.py) ------------------------------------------------------------

    def bundle_path(self, export_id: str) -> Path:
        return self._bundles.bundle_path(export_id)

    def manifest(self, export_id: str) -> mf.Manifest:
        return self._bundles.manifest(export_id)

    def list_exports(self) -> list[mf.Manifest]:
        return self._bundles.list_exports()

    def files(self, export_id: str) -> list[BundleFile]:
        return self._bundles.files(export_id)

    def read_chunk(self, export_id: str, name: str, offset: int, size: int) -> bytes:
        return self._bundles.read_chunk(export_id, name, offset, size)

    def archive(self, export_id: str, offset: int = 0, end: int | None = None) -> Archive:
        return self._bundles.archive(export_id, offset, end)


def _new_export_id(camera_id: str, now_ns: int) -> str:
    when = dt.datetime.fromtimestamp(now_ns // NS_PER_S, tz=dt.UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{camera_id}-{secrets.token_hex(4)}"
