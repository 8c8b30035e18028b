"""Evidence export: a camera's time range as a signed bundle that anyone can verify offline.

A bundle is a directory `<storage root>/exports/<export_id>/`:
  master.mp4                 the footage remuxed from the recorded packets, never re-encoded;
                             one continuous timeline (gaps cut out; `timeline` in the manifest maps
                             master time to wall time), moov up front (faststart), creation_time
                             set to the first frame's wall time. A change of stream parameters
                             (resolution, codec configuration) mid-range starts master-2.mp4, …
  segments/<day>T<time>.mp4  the recorded segment files, bit for bit (unless originals are off):
                             the native originals, re-hashable against the recorder's chain
  working-copy-redacted.mp4  only when asked: privacy-masked, re-encoded (a processed copy)
  recorder-public-key.pem    the recorder's Ed25519 public key
  README.txt                 how to verify, with vmsctl or by hand (openssl, sha256sum)
  SHA256SUMS                 `sha256sum -c` input for every file above
  manifest.json              what the bundle claims (manifest.py), including every file's hash
  manifest.sig               Ed25519 signature over manifest.json's exact bytes

A range that reaches into the segment being written (`--to now`) includes that segment's
complete fragments: the bytes up to its last complete `moof`+`mdat`, copied and hashed exactly,
listed with `open_at_export` (manifest.py). The requested time after them is a
`recording_in_progress` gap — recorded footage is never called `not_recorded`.

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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.manifest import iso_ns
from vmsd.export.redact import ENCODER, redact_steps
from vmsd.export.signing import RecorderKey, load_or_create
from vmsd.log import get_logger
from vmsd.recordings.search import NOT_RECORDED, Span, tile
from vmsd.retention.holds import Holds
from vmsd.storage.catalogue import SegmentRow
from vmsd.storage.fmp4 import complete_length, summarize
from vmsd.storage.layout import fsync_dir
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus, clock_status

log = get_logger(component="export")

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
MAX_EXPORT_NS = 7 * DAY_NS
MAX_CHUNK_BYTES = 1024 * 1024
_COPY_BYTES = 1024 * 1024
EXPORT_ID_RE = re.compile(r"\A\d{8}T\d{6}Z-[A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9a-f]{8}\Z")  # \Z: no trailing newline
_PARTIAL_SUFFIX = ".partial"
# Manifest, signature, key, README, checksums and container overhead, generously.
_BUNDLE_OVERHEAD_BYTES = 1024 * 1024
REDACTED_NAME = "working-copy-redacted.mp4"

ACTION_REQUESTED = "export.requested"
ACTION_COMPLETED = "export.completed"
ACTION_FAILED = "export.failed"
ACTION_DOWNLOADED = "export.downloaded"  # written by the control plane, per file served

# Share of the progress bar each phase gets (originals/hashing, remux, redaction, sealing).
_P_HASH, _P_REMUX, _P_REDACT = 0.3, 0.6, 0.95


@dataclass(frozen=True)
class CameraInfo:
    """What the manifest says about a camera, and the masks a redacted copy applies."""

    id: str
    name: str = ""
    location: str = ""
    privacy_masks: Sequence[Sequence[tuple[float, float]]] = ()


@dataclass(frozen=True)
class ExportRequest:
    camera_id: str
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    principal: str
    role: str = ""
    recipient: str = ""
    include_originals: bool = True
    redact: bool = False
    place_hold: bool = True
    hold_until_ns: int | None = None
    peer: str = ""


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    path: Path
    manifest: mf.Manifest
    bytes: int  # every file of the bundle, manifest and signature included


@dataclass(frozen=True)
class ExportProgress:
    """One step of a running export: `fraction` in [0, 1]; the last item carries the result."""

    phase: str  # requested | originals | hashing | remux | redact | sealing | done
    fraction: float
    result: ExportResult | None = None


@dataclass(frozen=True)
class BundleFile:
    name: str
    role: str  # a manifest file role, or "manifest" / "signature"
    bytes: int
    sha256: str


def _span(start_ns: int, end_ns: int) -> mf.TimeSpan:
    return mf.TimeSpan(start_ns=start_ns, end_ns=end_ns, start=iso_ns(start_ns), end=iso_ns(end_ns))


def no_such_export(export_id: str) -> VmsdError:
    """The answer for an absent export id, and for one outside the caller's scope (indistinguishable)."""
    return VmsdError(ErrorKind.NOT_FOUND, f"export_id {export_id!r} does not exist")


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
    ) -> None:
        self._storage = storage
        self._audit = audit
        self._clock = clock
        self._recorder_id = recorder_id
        self._camera_info = camera_info
        self._holds = holds
        self._time_sync = time_sync
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._software = software
        self._min_free = min_free
        self._max_total = max_total
        self._space_lock = threading.Lock()
        self._reserved_bytes = 0  # estimates of the exports running now
        self._key: RecorderKey | None = None
        self.root = storage.layout.exports_dir
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

    def export(self, request: ExportRequest, progress: Callable[[ExportProgress], None] | None = None) -> ExportResult:
        """Run an export to completion; `progress` sees every step. See `run()`."""
        result: ExportResult | None = None
        for step in self.run(request):
            if progress is not None:
                progress(step)
            result = step.result or result
        assert result is not None
        return result

    def run(self, request: ExportRequest) -> Iterator[ExportProgress]:
        """Export, yielding progress; the final item has `result` (phase "done").

        Raises VmsdError: INVALID_ARGUMENT (bad range/text), NOT_FOUND (unknown camera, or no
        finished footage in the range), FAILED_PRECONDITION (redaction asked for a camera without
        privacy masks), RESOURCE_EXHAUSTED (too many exports running), DATA_LOSS (a recorded file
        no longer matches its catalogue hash). Every outcome is audited (requested, then
        completed or failed). Abandoning the generator removes the partial bundle.
        """
        self._validate(request)
        if not self._slots.acquire(blocking=False):
            raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, "too many exports are running; try again shortly")
        try:
            reserved = self._reserve_space(request)
            try:
                yield from self._run(request)
            finally:
                with self._space_lock:
                    self._reserved_bytes -= reserved
        finally:
            self._slots.release()

    def _reserve_space(self, request: ExportRequest) -> int:
        """Check the export's estimated size against the free space and the quota (see the class
        docstring) and count it as reserved; returns the estimate. Blocking."""
        needed = self._estimate_bytes(request)
        with self._space_lock:
            stats = os.statvfs(self.root)
            total = stats.f_blocks * stats.f_frsize
            free = stats.f_bavail * stats.f_frsize - self._reserved_bytes
            keep = self._min_free(total)
            if free - needed < keep:
                raise VmsdError(
                    ErrorKind.RESOURCE_EXHAUSTED,
                    f"not enough free space for this export: it needs about {_size(needed)}, "
                    f"{_size(max(0, free))} is free and storage.min_free keeps {_size(keep)} for recording; "
                    "export a shorter range, or without originals",
                )
            if self._max_total is not None:
                quota = self._max_total(total)
                used = self.bundles_bytes() + self._reserved_bytes
                if used + needed > quota:
                    raise VmsdError(
                        ErrorKind.RESOURCE_EXHAUSTED,
                        f"export quota: the bundles kept on the recorder ({self.root}) use {_size(used)} of "
                        f"[export] max_total {_size(quota)}, and this export needs about {_size(needed)}; "
                        "remove bundles already handed over, or raise max_total",
                    )
            self._reserved_bytes += needed
        return needed

    def _estimate_bytes(self, request: ExportRequest) -> int:
        source_bytes = 0
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
        total = 0
        for entry in self.root.iterdir():
            if EXPORT_ID_RE.match(entry.name):
                total += sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and not p.is_symlink())
        return total

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

    def _run(self, request: ExportRequest) -> Iterator[ExportProgress]:
        camera = self._camera(request.camera_id)
        export_id = _new_export_id(request.camera_id, self._clock.wall_ns())
        base_detail = {
            "export_id": export_id,
            "recipient": request.recipient,
            "include_originals": request.include_originals,
            "redact": request.redact,
            "place_hold": request.place_hold,
        }
        self._audit_entry(request, ACTION_REQUESTED, "OK", base_detail)
        started_mono_ns = self._clock.mono_ns()
        yield ExportProgress("requested", 0.0)
        staging = self.root / f"{export_id}{_PARTIAL_SUFFIX}"
        try:
            result = yield from self._build(request, camera, export_id, staging)
        except VmsdError as error:
            self._audit_entry(request, ACTION_FAILED, error.kind.value, {**base_detail, "error": error.message})
            self.on_finished(error.kind.value, self._clock.mono_ns() - started_mono_ns)
            raise
        except BaseException as error:
            # GeneratorExit (the consumer went away) and crashes alike: no half bundle stays.
            outcome = "CANCELLED" if isinstance(error, GeneratorExit) else "INTERNAL"
            self._audit_entry(request, ACTION_FAILED, outcome, {**base_detail, "error": type(error).__name__})
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
            },
        )
        log.info("export_completed", export_id=export_id, camera_id=request.camera_id, bytes=result.bytes)
        self.on_finished("OK", self._clock.mono_ns() - started_mono_ns)
        yield ExportProgress("done", 1.0, result)

    def _exportable_rows(self, request: ExportRequest) -> list[SegmentRow]:
        """Finished segments in the range, and the one being written (its complete fragments are
        exported, see `_copy_open_segment`)."""
        rows = self._storage.catalogue.segments_in_range(request.camera_id, request.start_ns, request.end_ns)
        return [
            r
            for r in rows
            if r.state == "writing"
            or (r.state == "complete" and r.sha256 and r.end_ns is not None and r.bytes is not None)
        ]

    def _copy_open_segment(self, row: SegmentRow, target: Path) -> tuple[SegmentRow, str, int] | None:
        """Copy the complete fragments of a segment still being written to `target`.

        The writer only appends (its muxer output is not seekable), so the file's first bytes up
        to the end of its last complete `moof`+`mdat` never change: exactly those are copied and
        hashed, and the row returned describes them (end = the end of their last video sample).
        None when not one fragment is complete yet. If the segment was finished meanwhile and the
        copy is the whole file, its catalogue row is returned as it is (state 'complete').
        """
        source = self._storage.segment_path(row)
        length, fragments = complete_length(source)
        if fragments == 0:
            return None
        target.parent.mkdir(exist_ok=True)
        digest, size = _copy_hashing(source, target, limit=length)
        if size != length:
            raise VmsdError(ErrorKind.DATA_LOSS, f"recorded segment {row.path} shrank while it was being exported")
        now = self._storage.catalogue.segment(row.id)
        if now is not None and now.state == "complete" and now.sha256 == digest and now.bytes == size:
            return now, digest, size
        media = summarize(target)
        included = dataclasses.replace(
            row, end_ns=row.start_ns + media.duration_ns, bytes=size, sha256=digest, frames=media.video_frames
        )
        return included, digest, size

    def _build(
        self, request: ExportRequest, camera: CameraInfo, export_id: str, staging: Path
    ) -> Generator[ExportProgress, None, ExportResult]:
        if request.redact and not camera.privacy_masks:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"camera {camera.id!r} has no privacy_masks configured: there is nothing to redact",
            )
        if not self._exportable_rows(request):
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
        if not rows:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera.id!r} in the requested range")
        staging.mkdir(mode=0o750)
        total_bytes = max(1, sum(r.bytes or 0 for r in rows))
        after_remux = _P_REMUX if request.redact else _P_REDACT

        # 1. Originals (or hashes): the recorded bytes must still be what the catalogue says.
        files: list[mf.File] = []
        segments: list[mf.Segment] = []
        sources: list[tuple[SegmentRow, Path]] = []
        scratch: list[Path] = []  # copies made for the remux only (an open segment without originals)
        # Where the footage still being written begins to be missing from the bundle.
        in_progress_from_ns: int | None = None
        done_bytes = 0
        phase = "originals" if request.include_originals else "hashing"
        for row in rows:
            source = self._storage.segment_path(row)
            name: str | None = None
            open_at_export = False
            if row.state == "writing":
                name = _original_name(row.path) if request.include_originals else None
                copy = staging / (name or f"open-segment-{row.id}.mp4")
                included = self._copy_open_segment(row, copy)
                if included is None:
                    in_progress_from_ns = row.start_ns
                    continue
                row, digest, size = included
                open_at_export = row.state == "writing"
                if open_at_export:
                    assert row.end_ns is not None
                    in_progress_from_ns = row.end_ns
                sources.append((row, copy))
                if name is None:
                    scratch.append(copy)
            elif request.include_originals:
                name = _original_name(row.path)
                target = staging / name
                target.parent.mkdir(exist_ok=True)
                digest, size = _copy_hashing(source, target)
                sources.append((row, target))
            else:
                digest, size = _hash_file(source)
                sources.append((row, source))
            if digest != row.sha256 or size != row.bytes:
                raise VmsdError(
                    ErrorKind.DATA_LOSS,
                    f"recorded segment {row.path} no longer matches its catalogue hash "
                    f"(sha256 {digest[:16]}…, {size} bytes; recorded {str(row.sha256)[:16]}…, {row.bytes} bytes)",
                )
            assert row.end_ns is not None and row.sha256 is not None
            segments.append(
                mf.Segment(
                    start_ns=row.start_ns,
                    end_ns=row.end_ns,
                    bytes=size,
                    sha256=digest,
                    prev_sha256=row.prev_sha256,
                    recorded_path=row.path,
                    file=name,
                    open_at_export=open_at_export,
                )
            )
            if name is not None:
                files.append(mf.File(name=name, role=mf.ROLE_ORIGINAL, bytes=size, sha256=digest))
            done_bytes += size
            yield ExportProgress(phase, _P_HASH * done_bytes / total_bytes)

        if not sources:
            raise VmsdError(
                ErrorKind.NOT_FOUND,
                f"no footage of camera_id {camera.id!r} in the requested range has reached its file yet",
            )

        # 2. The master(s): stream copy onto one continuous timeline.
        remux = _Remux(sources, request.start_ns, request.end_ns, staging)
        for remuxed_bytes in remux.run():
            yield ExportProgress("remux", _P_HASH + (after_remux - _P_HASH) * remuxed_bytes / total_bytes)
        for path in scratch:
            path.unlink()
        masters = [part.entry() for part in remux.parts]
        for master in masters:
            digest, size = _hash_file(staging / master.file)
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
                digest, size = _hash_file(staging / name)
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
        _write_file(staging / mf.PUBLIC_KEY_NAME, key.public_pem)
        files.append(_file_entry(staging, mf.PUBLIC_KEY_NAME, mf.ROLE_PUBLIC_KEY))
        readme = _readme(
            export_id,
            camera,
            request,
            key.fingerprint,
            masters,
            redacted,
            bool(request.include_originals),
            any(segment.open_at_export for segment in segments),
        )
        _write_file(staging / mf.README_NAME, readme.encode("utf-8"))
        files.append(_file_entry(staging, mf.README_NAME, mf.ROLE_README))
        sums = "".join(f"{f.sha256}  {f.name}\n" for f in files)
        _write_file(staging / mf.SUMS_NAME, sums.encode("ascii"))
        files.append(_file_entry(staging, mf.SUMS_NAME, mf.ROLE_SUMS))

        erased = [
            mf.ErasedSegment(
                start_ns=t.start_ns,
                end_ns=t.end_ns,
                bytes=t.bytes,
                sha256=t.sha256,
                prev_sha256=t.prev_sha256,
                erased_ns=t.erased_ns,
                reason=t.reason,
            )
            for t in self._storage.catalogue.erased_overlapping(camera.id, request.start_ns, request.end_ns)
        ]
        spans = _contiguous_spans([row for row, _ in sources], request.start_ns, request.end_ns)
        gap_rows = self._storage.catalogue.gaps_in_range(camera.id, request.start_ns, request.end_ns)
        gaps = _label_in_progress(
            [
                mf.Gap(start_ns=g.start_ns, end_ns=g.end_ns, reason=g.reason, detail=g.detail)
                for g in tile(spans, gap_rows, request.start_ns, request.end_ns, now_ns)
            ],
            in_progress_from_ns,
            now_ns,
        )
        manifest = mf.Manifest(
            format=mf.FORMAT,
            export_id=export_id,
            recorder=mf.Recorder(id=self._recorder_id, key_fingerprint_sha256=key.fingerprint, software=self._software),
            camera=mf.Camera(id=camera.id, name=camera.name, location=camera.location),
            requested=_span(request.start_ns, request.end_ns),
            covered=remux.covered(),
            gaps=gaps,
            masters=masters,
            redacted=redacted,
            segments=segments,
            erased_segments=erased,
            chain_breaks=mf.chain_breaks(segments, erased),
            files=files,
            operator=mf.Operator(principal=request.principal, role=request.role),
            case_ref=request.case_ref,
            reason=request.reason,
            recipient=request.recipient,
            exported_at_ns=now_ns,
            exported_at=iso_ns(now_ns),
            hold_id=hold_id,
            clock=self._time_sync(),
        )
        manifest_bytes = manifest_json(manifest)
        _write_file(staging / mf.MANIFEST_NAME, manifest_bytes)
        _write_file(staging / mf.SIGNATURE_NAME, key.sign(manifest_bytes))
        for directory in (staging / "segments", staging):
            if directory.exists():
                fsync_dir(directory)
        final = self.root / export_id
        os.rename(staging, final)
        fsync_dir(self.root)
        total = sum(p.stat().st_size for p in final.rglob("*") if p.is_file())
        return ExportResult(export_id=export_id, path=final, manifest=manifest, bytes=total)

    # -- reading bundles ---------------------------------------------------------------------

    def bundle_path(self, export_id: str) -> Path:
        """The directory of a finished bundle; NOT_FOUND for unknown or malformed ids."""
        if not EXPORT_ID_RE.fullmatch(export_id):
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"export_id {export_id[:80]!r} is not an export id")
        path = self.root / export_id
        if not (path / mf.MANIFEST_NAME).is_file():
            raise no_such_export(export_id)
        return path

    def manifest(self, export_id: str) -> mf.Manifest:
        return mf.Manifest.model_validate_json((self.bundle_path(export_id) / mf.MANIFEST_NAME).read_bytes())

    def list_exports(self) -> list[mf.Manifest]:
        """Every finished bundle's manifest, oldest first (unreadable ones are logged and skipped)."""
        found: list[mf.Manifest] = []
        if not self.root.exists():
            return found
        for entry in sorted(self.root.iterdir()):
            if not EXPORT_ID_RE.fullmatch(entry.name):
                continue
            try:
                found.append(self.manifest(entry.name))
            except (OSError, ValueError, VmsdError):
                log.exception("unreadable_export_manifest", export_id=entry.name)
        return sorted(found, key=lambda m: m.exported_at_ns)

    def files(self, export_id: str) -> list[BundleFile]:
        """Every file to download, in a sensible order: the listed files, then manifest and signature."""
        path = self.bundle_path(export_id)
        manifest = self.manifest(export_id)
        listed = [BundleFile(f.name, f.role, f.bytes, f.sha256) for f in manifest.files]
        for name, role in ((mf.MANIFEST_NAME, "manifest"), (mf.SIGNATURE_NAME, "signature")):
            data = (path / name).read_bytes()
            listed.append(BundleFile(name, role, len(data), hashlib.sha256(data).hexdigest()))
        return listed

    def read_chunk(self, export_id: str, name: str, offset: int, size: int) -> bytes:
        """Up to `size` bytes (≤ 1 MiB) of a bundle file from `offset`; b"" at or past the end.

        Downloads resume by asking again from the offset they reached. Only files inside the
        bundle can be read (names with '..', absolute names or symlinks out are refused).
        """
        path = self.bundle_path(export_id)
        if offset < 0 or size <= 0:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "offset must be ≥ 0 and size > 0")
        if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", name) or any(p in ("", ".", "..") for p in name.split("/")):
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"name {name[:80]!r} is not a bundle file name")
        target = (path / name).resolve()
        if path.resolve() not in target.parents or not target.is_file():
            raise VmsdError(ErrorKind.NOT_FOUND, f"export {export_id} has no file {name!r}")
        with open(target, "rb") as f:
            if offset >= os.fstat(f.fileno()).st_size:
                return b""  # not seek(): an offset past what a file can hold is EINVAL there
            f.seek(offset)
            return f.read(min(size, MAX_CHUNK_BYTES))


def manifest_json(manifest: mf.Manifest) -> bytes:
    """The bytes written to manifest.json (and signed): UTF-8 JSON, fields in schema order."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _new_export_id(camera_id: str, now_ns: int) -> str:
    when = dt.datetime.fromtimestamp(now_ns // NS_PER_S, tz=dt.UTC)
    return f"{when:%Y%m%dT%H%M%SZ}-{camera_id}-{secrets.token_hex(4)}"


def _original_name(relpath: str) -> str:
    """segments/<day>T<file>: recordings/cam/2026-01-02/000001.000000000Z.mp4 → segments/2026-01-02T000001…"""
    parts = relpath.split("/")
    return f"segments/{parts[-2]}T{parts[-1]}" if len(parts) >= 2 else f"segments/{parts[-1]}"


def _label_in_progress(gaps: list[mf.Gap], from_ns: int | None, now_ns: int) -> list[mf.Gap]:
    """The time after the footage of the segment being written, up to the export, was recorded
    but not yet in the file: say so (`recording_in_progress`) rather than `not_recorded`."""
    if from_ns is None:
        return gaps
    labelled: list[mf.Gap] = []
    for gap in gaps:
        if gap.reason != NOT_RECORDED or gap.start_ns != from_ns or from_ns >= now_ns:
            labelled.append(gap)
            continue
        split_ns = min(gap.end_ns, now_ns)
        labelled.append(
            mf.Gap(
                start_ns=gap.start_ns,
                end_ns=split_ns,
                reason=mf.GAP_RECORDING_IN_PROGRESS,
                detail="the camera was being recorded; footage after the segment's last complete fragment "
                "(at most one GOP) had not reached its file when the export was made",
            )
        )
        if split_ns < gap.end_ns:  # the rest of the range was still in the future
            labelled.append(mf.Gap(start_ns=split_ns, end_ns=gap.end_ns, reason=gap.reason, detail=gap.detail))
    return labelled


def _copy_hashing(source: Path, target: Path, limit: int | None = None) -> tuple[str, int]:
    """Copy `source` (its first `limit` bytes, when given) to a new file, fsynced; its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(target, "xb") as dst:
        while chunk := src.read(_COPY_BYTES if limit is None else min(_COPY_BYTES, limit - size)):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _file_entry(staging: Path, name: str, role: mf.Role) -> mf.File:
    digest, size = _hash_file(staging / name)
    return mf.File(name=name, role=role, bytes=size, sha256=digest)


def _contiguous_spans(rows: list[SegmentRow], start_ns: int, end_ns: int) -> list[Span]:
    """Recorded spans of the exported rows, clipped to the range (for the gap tiling)."""
    spans: list[Span] = []
    previous_end_ns: int | None = None
    for row in rows:
        assert row.end_ns is not None
        first, last = max(row.start_ns, start_ns), min(row.end_ns, end_ns)
        if spans and previous_end_ns == row.start_ns:
            prev = spans[-1]
            spans[-1] = Span(prev.start_ns, last, prev.segments + 1, prev.bytes + (row.bytes or 0), "", 0, 0, False)
        else:
            spans.append(Span(first, last, 1, row.bytes or 0, row.video_codec, row.width, row.height, row.has_audio))
        previous_end_ns = row.end_ns
    return spans


# -- remux ------------------------------------------------------------------------------------


def _to_ns(value: int, tb: Any) -> int:
    return int(value) * int(tb.numerator) * NS_PER_S // int(tb.denominator)


def _from_ns(value_ns: int, tb: Any) -> int:
    return value_ns * int(tb.denominator) // (int(tb.numerator) * NS_PER_S)


def _stream_key(video: Any, audio: Any | None) -> tuple[Any, ...]:
    """What must not change inside one MP4: codec, picture size, parameter sets, audio format."""
    vcc = video.codec_context
    key: tuple[Any, ...] = (vcc.name, vcc.width, vcc.height, bytes(vcc.extradata or b""))
    if audio is not None:
        acc = audio.codec_context
        key += (acc.name, acc.sample_rate, acc.channels, bytes(acc.extradata or b""))
    return key


@dataclass
class _Piece:
    master_offset_ns: int
    start_ns: int
    end_ns: int


@dataclass
class _Part:
    """One master file being written."""

    file: str
    output: Any
    video: Any
    audio: Any
    key: tuple[Any, ...]
    video_codec: str
    width: int
    height: int
    pieces: list[_Piece] = field(default_factory=list)
    video_frames: int = 0
    last_dts_ns: dict[str, int] = field(default_factory=lambda: {"video": -(2**62), "audio": -(2**62)})

    def entry(self) -> mf.Master:
        start_ns = self.pieces[0].start_ns
        last = self.pieces[-1]
        return mf.Master(
            file=self.file,
            container="mp4",
            start_ns=start_ns,
            start=iso_ns(start_ns),
            end_ns=last.end_ns,
            duration_ns=last.master_offset_ns + last.end_ns - last.start_ns,
            creation_time=_creation_time(start_ns),
            video_codec=self.video_codec,
            width=self.width,
            height=self.height,
            has_audio=self.audio is not None,
            video_frames=self.video_frames,
            timeline=[
                mf.TimelinePiece(master_offset_ns=p.master_offset_ns, start_ns=p.start_ns, end_ns=p.end_ns)
                for p in self.pieces
            ],
        )


def _creation_time(start_ns: int) -> str:
    seconds, nanos = divmod(start_ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


class _Remux:
    """Stream-copies the packets of `sources` inside [start_ns, end_ns) into master MP4(s).

    Segment timelines start at 0 = the row's start_ns. The master starts at the last keyframe at
    or before start_ns (so its first frame decodes); contiguous segments continue one timeline,
    and after a gap the next footage follows on directly (a new timeline piece), so the master
    plays the covered footage without freezing through the gaps.
    """

    def __init__(self, sources: list[tuple[SegmentRow, Path]], start_ns: int, end_ns: int, directory: Path) -> None:
        self._sources = sources
        self._start_ns = start_ns
        self._end_ns = end_ns
        self._directory = directory
        self.parts: list[_Part] = []

    def covered(self) -> list[mf.TimeSpan]:
        spans: list[list[int]] = []
        for part in self.parts:
            for piece in part.pieces:
                if piece.end_ns <= piece.start_ns:
                    continue
                if spans and spans[-1][1] == piece.start_ns:
                    spans[-1][1] = piece.end_ns
                else:
                    spans.append([piece.start_ns, piece.end_ns])
        return [_span(a, b) for a, b in spans]

    def _first_keyframe_offset_ns(self, row: SegmentRow, path: Path) -> int:
        best = 0
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                offset_ns = _to_ns(packet.pts, packet.time_base)
                if row.start_ns + offset_ns > self._start_ns:
                    break
                if packet.is_keyframe:
                    best = offset_ns
        return best

    def _open_part(self, video: Any, audio: Any | None, key: tuple[Any, ...], start_ns: int) -> _Part:
        name = "master.mp4" if not self.parts else f"master-{len(self.parts) + 1}.mp4"
        # faststart rewrites the file at close (moov moved to the front): needs a real, seekable file.
        output = av.open(str(self._directory / name), "w", format="mp4", container_options={"movflags": "+faststart"})
        try:
            output.metadata["creation_time"] = _creation_time(start_ns)
            out_video = output.add_stream_from_template(video)
            out_audio = output.add_stream_from_template(audio) if audio is not None else None
        except BaseException:
            output.close()
            raise
        vcc = video.codec_context
        part = _Part(name, output, out_video, out_audio, key, vcc.name, vcc.width, vcc.height)
        part.pieces.append(_Piece(0, start_ns, start_ns))
        self.parts.append(part)
        return part

    def run(self) -> Iterator[int]:
        """Write the master(s), yielding the source bytes done after each segment."""
        done_bytes = 0
        part: _Part | None = None
        try:
            first_row, first_path = self._sources[0]
            first_offset_ns = self._first_keyframe_offset_ns(first_row, first_path)
            for index, (row, path) in enumerate(self._sources):
                assert row.end_ns is not None
                begin_ns = row.start_ns + first_offset_ns if index == 0 else row.start_ns
                with av.open(str(path)) as container:
                    video = container.streams.video[0]
                    audio = container.streams.audio[0] if container.streams.audio else None
                    key = _stream_key(video, audio)
                    if part is not None and key != part.key:
                        part.output.close()
                        part = None
                    if part is None:
                        part = self._open_part(video, audio, key, begin_ns)
                    elif part.pieces[-1].end_ns != begin_ns:  # a gap: the footage after it follows on
                        last = part.pieces[-1]
                        part.pieces.append(
                            _Piece(last.master_offset_ns + last.end_ns - last.start_ns, begin_ns, begin_ns)
                        )
                    self._copy_packets(part, container, video, audio, row, begin_ns)
                    part.pieces[-1].end_ns = min(row.end_ns, self._end_ns)
                done_bytes += row.bytes or 0
                yield done_bytes
            if part is not None:
                part.output.close()
                part = None
        finally:
            if part is not None:
                try:
                    part.output.close()
                except (av.FFmpegError, ValueError):
                    pass  # already failing; the partial bundle is removed by the caller

    def _copy_packets(
        self, part: _Part, container: Any, video: Any, audio: Any | None, row: SegmentRow, begin_ns: int
    ) -> None:
        piece = part.pieces[-1]
        streams = [video] + ([audio] if audio is not None and part.audio is not None else [])
        for packet in container.demux(streams):
            if packet.size == 0 or packet.dts is None or packet.pts is None:
                continue
            tb = packet.time_base
            pts_wall_ns = row.start_ns + _to_ns(packet.pts, tb)
            dts_wall_ns = row.start_ns + _to_ns(packet.dts, tb)
            is_video = packet.stream is video
            if pts_wall_ns < begin_ns:
                continue
            if pts_wall_ns >= self._end_ns:
                if is_video:
                    break
                continue
            kind = "video" if is_video else "audio"
            master_pts_ns = pts_wall_ns - piece.start_ns + piece.master_offset_ns
            master_dts_ns = dts_wall_ns - piece.start_ns + piece.master_offset_ns
            # Audio at a segment boundary can sit in both neighbours; the muxer needs strictly
            # increasing DTS per stream.
            if master_dts_ns <= part.last_dts_ns[kind]:
                continue
            part.last_dts_ns[kind] = master_dts_ns
            packet.stream = part.video if is_video else part.audio
            packet.time_base = tb
            packet.pts = _from_ns(master_pts_ns, tb)
            packet.dts = _from_ns(master_dts_ns, tb)
            part.output.mux(packet)
            if is_video:
                part.video_frames += 1


# -- README -------------------------------------------------------------------------------------


def _readme(
    export_id: str,
    camera: CameraInfo,
    request: ExportRequest,
    key_fingerprint: str,
    masters: list[mf.Master],
    redacted: list[mf.Redacted],
    originals: bool,
    open_segment: bool,
) -> str:
    master_lines = "\n".join(
        f"  {m.file}: {m.start} .. {iso_ns(m.end_ns)} ({m.duration_ns / NS_PER_S:.1f} s of footage,"
        f" {m.video_codec} {m.width}x{m.height}, not re-encoded)"
        for m in masters
    )
    extra = []
    if originals:
        extra.append("  segments/: the recorded segment files exactly as the recorder wrote them.")
    for r in redacted:
        extra.append(f"  {r.file}: a REDACTED WORKING COPY (re-encoded, privacy-masked) — not the master.")
    extras = "\n".join(extra)
    in_progress = (
        """
     The last segment was still being recorded when this export was made ("open_at_export"):
     its hash covers the complete fragments written by then, a prefix of the file the recorder
     finished later; the requested time after them is a "recording_in_progress" gap."""
        if open_segment
        else ""
    )
    return f"""\
Evidence export {export_id}
Camera: {camera.id} {camera.name} {camera.location}
Requested: {iso_ns(request.start_ns)} .. {iso_ns(request.end_ns)}
Case reference: {request.case_ref}

Contents
{master_lines}
{extras}
  manifest.json: every fact about this export (times in ns since 1970 UTC), including the gaps in
    the footage, the SHA-256 of every file and of every source segment with its hash-chain link.
  manifest.sig: the recorder's Ed25519 signature over manifest.json.
  recorder-public-key.pem: the recorder's public key (SHA-256 of the raw key:
    {key_fingerprint}).
    Confirm this fingerprint with the recorder's operator through a channel you trust
    (they print it with `vmsd key-fingerprint`); a fingerprint read from this bundle alone
    proves nothing, since anyone can sign a bundle with a key of their own.

To verify with vmsd's tool (offline, no connection to the recorder needed):
  vmsctl verify . --key-fingerprint <the fingerprint from the recorder's operator>

To verify by hand (in this directory):
  1. The signature:
       openssl pkeyutl -verify -pubin -inkey recorder-public-key.pem -rawin -in manifest.json -sigfile manifest.sig
     must print "Signature Verified Successfully".
  2. The key's fingerprint:
       openssl pkey -pubin -in recorder-public-key.pem -outform DER | tail -c 32 | sha256sum
     must print the recorder's fingerprint as its operator gave it to you (and the one above,
     which is also "key_fingerprint_sha256" in manifest.json).
  3. The files:
       sha256sum -c SHA256SUMS
     must report OK for every file, and `sha256sum SHA256SUMS` must equal the "sha256" listed for
     SHA256SUMS in manifest.json's "files".
  4. The chain: in manifest.json "segments", each segment's "prev_sha256" must equal the
     "sha256" of the segment listed before it (or lead to it through "erased_segments").{in_progress}

The master is a remux of the recorded packets (no re-encoding); its own hash therefore differs
from the source segments' hashes, which are listed (and, in segments/, included) separately.
"""
