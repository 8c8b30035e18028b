"""Evidence exports: create (a worker thread builds the bundle), list, get, download — over
vmsd.export.

Create reports progress while a worker thread runs the export (blocking PyAV and file I/O never
touch the event loop); the last step carries the finished bundle. If the consumer goes away, the
export still finishes: the evidence hold and audit records are already written, and the bundle
can be listed and downloaded later.

Download reads one file from an offset to its end in ≤ 1 MiB chunks; a broken download resumes
with the offset it reached. A browser downloads the whole bundle as one tar file instead
(`download_archive`). Every download is audited (export id, file, offset, bytes, and the
export's case reference).

With a site (issue #15), an export asked of any recorder covers the footage of every recorder
of the site holding part of the range (services/site_export.py): their parts are fetched over
the peer link for the asking principal. `fetch_segments` is the other side: this recorder's part
of a peer's export, for a principal forwarded by that peer (audited here with `via`).

Verify checks a finished bundle as `vmsctl verify` would, against this recorder's own key; the
last result per bundle is kept (in memory) for the console to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import cast

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.exporter import Exporter
from vmsd.export.model import MAX_EXPORT_NS, ExportProgress, ExportRequest
from vmsd.export.serve import EXPORT_ID_RE, Archive, BundleFile, no_such_export
from vmsd.export.site_parts import PartItem, PartSegment, SiteParts
from vmsd.export.verify import VerifyReport, verify_bundle
from vmsd.services import paging, site_export, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.site_export import SegmentSource
from vmsd.services.site_wide import Site
from vmsd.threads import iterate_in_thread

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExportInfo:
    """A finished bundle: its manifest and its files (with their sizes and SHA-256)."""

    manifest: mf.Manifest
    files: list[BundleFile]


@dataclass(frozen=True)
class ExportStep:
    phase: str
    fraction: float
    done: ExportInfo | None = None  # the last step: the finished bundle
    export_id: str = ""  # on the first step: the id the bundle will have


@dataclass(frozen=True)
class Verification:
    """A bundle checked as `vmsctl verify` checks it, against this recorder's key."""

    checked_ns: int
    verdict: str  # verified | intact_key_not_checked | failed
    problems: list[str]
    warnings: list[str]
    checks: list[str]


@dataclass(frozen=True)
class ArchiveDownload:
    """The whole bundle as one tar file; `chunks` reads it (on a worker thread) to its end."""

    name: str
    size: int  # of the whole archive
    chunks: AsyncGenerator[bytes, None]  # the bytes asked for
    etag: str


@dataclass(frozen=True)
class ExportOrder:
    """What a client asks to export (API field names)."""

    camera_id: str
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    recipient: str = ""
    exclude_originals: bool = False
    redact: bool = False
    no_hold: bool = False
    hold_until_ns: int = 0
    # With a site: export what the reachable recorders hold when one holding part of the range
    # cannot be asked (the manifest's `missing` says what may be missing), instead of refusing.
    allow_partial: bool = False


class ExportService:
    def __init__(
        self,
        exporter: Exporter,
        *,
        site: Site | None = None,
        segments: SegmentSource | None = None,
        on_hold_change: Callable[[], None] | None = None,
    ) -> None:
        self._exporter = exporter
        # Told (on the event loop) once an export has placed its evidence hold: with [site], the
        # site's hold sync publishes it at once, so every recorder holding the camera's footage
        # protects it too (site/holds.py), not only at the next periodic sync.
        self._on_hold_change = on_hold_change
        self._verified: dict[str, Verification] = {}
        # With [site]: the site, and the peer link that fetches a peer's part of an export.
        self._site = site
        self._segments = segments

    def _info(self, manifest: mf.Manifest) -> ExportInfo:
        """Blocking (hashes manifest.json and manifest.sig): call on a worker thread."""
        return ExportInfo(manifest, self._exporter.files(manifest.export_id))

    async def create(
        self, principal: Principal, activity: Activity, order: ExportOrder
    ) -> AsyncGenerator[ExportStep, None]:
        camera_id = validate.camera_id(order.camera_id)
        activity.touch(camera_id=camera_id, start_ns=order.start_ns, end_ns=order.end_ns)
        principal.require(Permission.EXPORT_CREATE, camera_id)
        start_ns, end_ns = validate.time_range(order.start_ns, order.end_ns, max_ns=MAX_EXPORT_NS)
        case_ref = validate.text(order.case_ref, "case_ref", required=True, max_len=200)
        reason = validate.text(order.reason, "reason", required=True)
        recipient = validate.text(order.recipient, "recipient", max_len=200)
        hold_until_ns = validate.until_ns(order.hold_until_ns, self._exporter.clock.wall_ns(), "hold_until_ns")
        if hold_until_ns is not None and order.no_hold:
            raise validate.invalid("hold_until_ns with no_hold: a review date needs a hold (drop one of them)")
        activity.touch(reason=reason, case_ref=case_ref)
        export_request = ExportRequest(
            camera_id=camera_id,
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            principal=principal.name,
            role=principal.role,
            peer=principal.peer,
            recipient=recipient,
            include_originals=not order.exclude_originals,
            redact=order.redact,
            place_hold=not order.no_hold,
            hold_until_ns=hold_until_ns,
        )
        site_parts = await self._site_parts(principal, activity, export_request, order.allow_partial)
        # Unbounded, and run to its end: a step per segment at most, and the worker must never
        # block on a consumer that went away (it would hold its export slot forever).
        run = functools.partial(self._exporter.run, export_request, site=site_parts)
        produced = cast("AsyncGenerator[ExportProgress, None]", iterate_in_thread(run, run_to_end=True))
        hold_told = order.no_hold or self._on_hold_change is None
        async with contextlib.aclosing(produced) as steps:
            async for step in steps:
                if not hold_told and step.phase != "requested":  # the hold is placed before any footage is read
                    hold_told = True
                    assert self._on_hold_change is not None
                    self._on_hold_change()
                done = None
                if step.result is not None:
                    activity.touch(
                        export_id=step.result.export_id, bytes=step.result.bytes, hold_id=step.result.manifest.hold_id
                    )
                    done = await asyncio.to_thread(self._info, step.result.manifest)
                yield ExportStep(step.phase, step.fraction, done, step.export_id)

    async def _site_parts(
        self, principal: Principal, activity: Activity, request: ExportRequest, allow_partial: bool
    ) -> SiteParts | None:
        """The other recorders' parts of the export (None without a site, for a call a peer
        forwarded — never a chain — or when no other recorder holds any of the range)."""
        if self._site is None or self._segments is None or principal.via:
            return None
        own = await asyncio.to_thread(self._exporter.footage, request.camera_id, request.start_ns, request.end_ns)
        return await site_export.plan(
            self._site,
            self._segments,
            principal,
            activity,
            own,
            camera_id=request.camera_id,
            start_ns=request.start_ns,
            end_ns=request.end_ns,
            now_ns=self._exporter.clock.wall_ns(),
            case_ref=request.case_ref,
            reason=request.reason,
            allow_partial=allow_partial,
        )

    async def fetch_segments(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        start_ns: int,
        end_ns: int,
        *,
        case_ref: str,
        reason: str,
        export_id: str,
    ) -> AsyncGenerator[PartItem, None]:
        """This recorder's part of a peer's export (site_parts.read_part): only for a principal a
        peer of the site forwards, who needs export rights on the camera HERE. Audited (by the
        call) with the export's case, reason and id, the segments and bytes sent."""
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id, start_ns=start_ns, end_ns=end_ns, export_id=export_id[:80])
        if not principal.via:
            raise VmsdError(
                ErrorKind.PERMISSION_DENIED, "FetchSegments is a call between the recorders of a site; use CreateExport"
            )
        principal.require(Permission.EXPORT_CREATE, camera_id)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_EXPORT_NS)
        activity.touch(
            case_ref=validate.text(case_ref, "case_ref", required=True, max_len=200),
            reason=validate.text(reason, "reason", required=True),
        )
        read = functools.partial(self._exporter.read_part, camera_id, start_ns, end_ns)
        # Bounded: a slow peer holds back the reader instead of filling memory with footage.
        produced = cast("AsyncGenerator[PartItem, None]", iterate_in_thread(read, maxsize=4))
        segments = sent = 0
        try:
            async with contextlib.aclosing(produced) as items:
                async for item in items:
                    if isinstance(item, bytes):
                        sent += len(item)
                    elif isinstance(item, PartSegment):
                        segments += 1
                    yield item
        finally:
            activity.touch(segments=segments, bytes=sent)

    async def list(
        self, principal: Principal, activity: Activity, *, camera_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> paging.Page[ExportInfo]:
        """Oldest first; the page token is the id of the last export sent (ids sort in creation order)."""
        if camera_id:
            activity.about(camera_id=validate.camera_id(camera_id))  # a denial names the camera
        principal.require(Permission.EXPORT_DOWNLOAD)
        if camera_id:
            principal.require(Permission.EXPORT_DOWNLOAD, validate.camera_id(camera_id))
        size = paging.page_size(("page_size", page_size))
        after = page_token
        if after and not EXPORT_ID_RE.fullmatch(after):
            raise paging.bad_token()
        manifests = await asyncio.to_thread(self._exporter.list_exports)
        visible = [
            m
            for m in manifests
            if m.export_id > after and principal.in_scope(m.camera.id) and (not camera_id or m.camera.id == camera_id)
        ]
        return paging.Page([await asyncio.to_thread(self._info, m) for m in visible[:size]], len(visible) > size)

    async def get(self, principal: Principal, activity: Activity, export_id: str) -> ExportInfo:
        principal.require(Permission.EXPORT_DOWNLOAD)
        manifest = await asyncio.to_thread(self._exporter.manifest, export_id)
        if not principal.in_scope(manifest.camera.id):
            activity.touch(camera_id=manifest.camera.id, export_id=export_id)
            raise _hidden(activity, export_id)
        return await asyncio.to_thread(self._info, manifest)

    async def download(
        self, principal: Principal, activity: Activity, export_id: str, name: str, offset: int
    ) -> AsyncGenerator[tuple[int, bytes], None]:
        """(offset, data) chunks of one file of the bundle, from `offset` to its end."""
        activity.touch(export_id=export_id[:80], file=name[:200], offset=offset)
        await self._downloadable(principal, activity, export_id)
        if offset < 0:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "offset must be ≥ 0")
        sent = 0
        try:
            while True:
                data = await asyncio.to_thread(self._exporter.read_chunk, export_id, name, offset, CHUNK_BYTES)
                if not data:
                    return
                yield offset, data
                offset += len(data)
                sent += len(data)
        finally:
            activity.touch(bytes=sent)

    async def download_archive(
        self, principal: Principal, activity: Activity, export_id: str, offset: int = 0, end: int | None = None
    ) -> ArchiveDownload:
        """The whole bundle as one tar file (Bundles.archive), or bytes `offset`..`end` of it (a
        resumed download), audited like a file download (the file is the archive; `bytes`: how
        much of it was sent)."""
        activity.touch(export_id=export_id[:80], file=f"{export_id[:80]}.tar", offset=offset)
        await self._downloadable(principal, activity, export_id)
        archive = await asyncio.to_thread(self._exporter.archive, export_id, offset, end)
        return ArchiveDownload(archive.name, archive.size, self._archive_chunks(activity, archive), archive.etag)

    async def _archive_chunks(self, activity: Activity, archive: Archive) -> AsyncGenerator[bytes, None]:
        # Bounded: a slow browser holds back the reader instead of filling memory with footage.
        produced = cast("AsyncGenerator[bytes, None]", iterate_in_thread(lambda: archive.chunks, maxsize=8))
        sent = 0
        try:
            async with contextlib.aclosing(produced) as chunks:
                async for data in chunks:
                    yield data
                    sent += len(data)
        finally:
            activity.touch(bytes=sent)

    async def _downloadable(self, principal: Principal, activity: Activity, export_id: str) -> None:
        """Authorise a download of the export, naming its footage for the audit record."""
        principal.require(Permission.EXPORT_DOWNLOAD)
        manifest = await asyncio.to_thread(self._exporter.manifest, export_id)
        activity.touch(
            camera_id=manifest.camera.id,
            start_ns=manifest.requested.start_ns,
            end_ns=manifest.requested.end_ns,
            case_ref=manifest.case_ref,
            reason=f"download of export {manifest.export_id}",
        )
        if not principal.in_scope(manifest.camera.id):
            raise _hidden(activity, export_id)

    async def verify(self, principal: Principal, activity: Activity, export_id: str) -> Verification:
        """Check the finished bundle now (reads and hashes every file, on a worker thread)."""
        await self.get(principal, activity, export_id)  # the same permission, scope and NOT_FOUND
        path = await asyncio.to_thread(self._exporter.bundle_path, export_id)
        fingerprint = self._exporter.key.fingerprint
        report: VerifyReport = await asyncio.to_thread(verify_bundle, path, expected_fingerprint=fingerprint)
        # Paths name the recorder's directories; a client knows the bundle by its id.
        strip = f"{path}/"
        verification = Verification(
            checked_ns=self._exporter.clock.wall_ns(),
            verdict=report.verdict,
            problems=[p.replace(strip, "") for p in report.problems],
            warnings=[w.replace(strip, "") for w in report.warnings],
            checks=list(report.checks),
        )
        self._verified[export_id] = verification
        return verification

    def last_verification(self, export_id: str) -> Verification | None:
        """The last `verify` of this bundle since the daemon started (callers have authorised)."""
        return self._verified.get(export_id)


def _hidden(activity: Activity, export_id: str) -> VmsdError:
    """An export outside the caller's scope is answered exactly like an absent id (so ids cannot
    be probed); the call's audit record says it was a denial."""
    activity.touch(denied="the export's camera is outside this principal's scope")
    return no_such_export(export_id)
