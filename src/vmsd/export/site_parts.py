"""Recorders' parts of a site export (issue #15): one recorder's segments of a camera, sent to
the peer that builds the bundle, and received there.

The recorder holding the footage (`read_part`) sends a `PartHeader` (who it is, its gaps and
erasure tombstones in the range), then for each finished segment its catalogue row
(`PartSegment`) followed by its bytes in chunks. The recorder building the bundle
(`collect_part`) writes each segment into the bundle (or a scratch file, without originals)
while hashing it, and refuses it (DATA_LOSS) unless its SHA-256 and size are what the sender's
catalogue row says — so a bundle never signs a peer's footage that changed after it was recorded.
Transport-neutral: the gRPC call is vmsd.site.peers / vmsd.rpc.export's.

Blocking (file I/O, SQLite): run on a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.files import original_name
from vmsd.export.gaps import contiguous_spans
from vmsd.recordings.search import Gap, SearchResult, search
from vmsd.storage.catalogue import SegmentRow, SegmentState
from vmsd.storage.store import Storage

CHUNK_BYTES = 1024 * 1024
# One component of a bundle path (manifest.BundleName): never '.', '..' nor a folder.
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,150}")


@dataclass(frozen=True)
class PartHeader:
    recorder_id: str
    key_fingerprint: str  # "" when the recorder has no export key
    gaps: list[Gap]  # its own gaps tiling the range (as its search says)
    erased: list[mf.ErasedSegment]
    segments: int  # how many PartSegments follow
    bytes: int
    in_progress_from_ns: int | None  # a segment being written starts here (not sent)


@dataclass(frozen=True)
class PartSegment:
    """A finished segment's catalogue row on the recorder that holds it."""

    start_ns: int
    end_ns: int
    bytes: int
    sha256: str
    prev_sha256: str
    recorded_path: str
    epoch: int | None  # ownership epoch of its run; None: recorded outside a site
    unfenced: bool
    video_codec: str
    width: int
    height: int
    has_audio: bool


PartItem = PartHeader | PartSegment | bytes


@dataclass(frozen=True)
class SiteParts:
    """What the exporter needs to add other recorders' footage (built by the service layer).

    `fetch(recorder_id, export_id)` is a blocking iterator of that recorder's items (header
    first), raising VmsdError (UNAVAILABLE when it cannot be reached); closing it ends the call.
    """

    peers: list[str]  # recorders (other than this one) holding footage in the range
    source_bytes: int  # their footage in the range, for the space estimate
    fetch: Callable[[str, str], Generator[PartItem, None, None]]
    missing: list[mf.MissingPart] = field(default_factory=list)  # accepted as missing (partial export)


def erased_segments(
    storage: Storage, camera_id: str, start_ns: int, end_ns: int, recorder: str = ""
) -> list[mf.ErasedSegment]:
    """The manifest's entries for the camera's erasure tombstones overlapping the range (naming
    `recorder` in a bundle of several recorders). Blocking (SQLite)."""
    return [
        mf.ErasedSegment(
            start_ns=t.start_ns,
            end_ns=t.end_ns,
            bytes=t.bytes,
            sha256=t.sha256,
            prev_sha256=t.prev_sha256,
            erased_ns=t.erased_ns,
            reason=t.reason,
            recorder=recorder,
        )
        for t in storage.catalogue.erased_overlapping(camera_id, start_ns, end_ns)
    ]


def epochs_of_runs(storage: Storage, camera_id: str) -> dict[int, tuple[int, bool]]:
    """run id → (ownership epoch, unfenced) of the camera's runs recorded as a site member."""
    return {run.id: (run.epoch, run.unfenced) for run in storage.catalogue.site_runs(camera_id)}


def read_part(
    storage: Storage,
    camera_id: str,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    *,
    recorder_id: str,
    key_fingerprint: str,
) -> Iterator[PartItem]:
    """This recorder's part of the camera's footage in [start_ns, end_ns): the header, then each
    finished segment's row and bytes. A segment still being written is not sent (its start is
    `in_progress_from_ns`). NOT_FOUND when a listed file is gone (erased meanwhile)."""
    catalogue = storage.catalogue
    rows = catalogue.segments_in_range(camera_id, start_ns, end_ns)
    finished = [
        r
        for r in rows
        if r.state is SegmentState.COMPLETE and r.sha256 and r.end_ns is not None and r.bytes is not None
    ]
    writing = [r for r in rows if r.state is SegmentState.WRITING]
    found = search(catalogue, camera_id, start_ns, end_ns, now_ns)
    runs = epochs_of_runs(storage, camera_id)
    yield PartHeader(
        recorder_id=recorder_id,
        key_fingerprint=key_fingerprint,
        gaps=found.gaps,
        erased=erased_segments(storage, camera_id, start_ns, end_ns),
        segments=len(finished),
        bytes=sum(r.bytes or 0 for r in finished),
        in_progress_from_ns=writing[0].start_ns if writing else None,
    )
    for row in finished:
        assert row.end_ns is not None and row.bytes is not None and row.sha256 is not None
        epoch, unfenced = runs.get(row.run_id, (None, False)) if row.run_id is not None else (None, False)
        yield PartSegment(
            start_ns=row.start_ns, end_ns=row.end_ns, bytes=row.bytes, sha256=row.sha256,
            prev_sha256=row.prev_sha256, recorded_path=row.path, epoch=epoch, unfenced=unfenced,
            video_codec=row.video_codec, width=row.width, height=row.height, has_audio=row.has_audio,
        )  # fmt: skip
        try:
            with open(storage.segment_path(row), "rb") as source:
                while chunk := source.read(CHUNK_BYTES):
                    yield chunk
        except FileNotFoundError:
            raise VmsdError(
                ErrorKind.NOT_FOUND, f"recorded segment {row.path} of recorder {recorder_id} is gone (erased?)"
            ) from None


def recorder_dir(recorder_id: str) -> str:
    """The folder of a recorder's originals in a site bundle: its id, made a valid bundle path
    component (a recorder id may begin with '.')."""
    return recorder_id if not recorder_id.startswith(".") else f"_{recorder_id}"


@dataclass
class CollectedPart:
    """A peer's part as received into the bundle being built."""

    header: PartHeader
    segments: list[mf.Segment] = field(default_factory=list)
    files: list[mf.File] = field(default_factory=list)
    sources: list[tuple[SegmentRow, Path]] = field(default_factory=list)  # what the remux reads
    scratch: list[Path] = field(default_factory=list)  # copies for the remux only (no originals)

    def search_result(self, start_ns: int, end_ns: int) -> SearchResult:
        """Its footage (clipped to the range) and gaps as a search answer, to merge the site's gaps."""
        rows = [row for row, _ in self.sources]
        spans = contiguous_spans(rows, start_ns, end_ns)
        return SearchResult([dataclasses.replace(s, recorder=self.header.recorder_id) for s in spans], self.header.gaps)


@dataclass
class _Receiving:
    """The segment whose bytes are arriving."""

    segment: PartSegment
    target: Path
    handle: BinaryIO
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


def collect_part(
    items: Iterator[PartItem], recorder_id: str, camera_id: str, staging: Path, *, include_originals: bool
) -> Iterator[tuple[CollectedPart, int]]:
    """Receive `recorder_id`'s part into `staging` (under segments/<recorder>/ with originals,
    scratch files without), yielding (the part so far, bytes received) after each segment.
    DATA_LOSS when a segment's bytes are not its catalogue row's SHA-256 and size, or the
    stream is not what the protocol says."""
    where = f"recorder {recorder_id}"
    first = next(items, None)
    if not isinstance(first, PartHeader) or first.recorder_id != recorder_id:
        raise VmsdError(ErrorKind.DATA_LOSS, f"{where} did not answer with its part of the export")
    part = CollectedPart(first)
    received = 0
    current: _Receiving | None = None

    def finish(receiving: _Receiving) -> None:
        segment, target = receiving.segment, receiving.target
        receiving.handle.flush()
        os.fsync(receiving.handle.fileno())
        receiving.handle.close()
        digest, size = receiving.digest.hexdigest(), target.stat().st_size
        if digest != segment.sha256 or size != segment.bytes:
            raise VmsdError(
                ErrorKind.DATA_LOSS,
                f"{where}: recorded segment {segment.recorded_path} does not match its catalogue hash "
                f"(received sha256 {digest[:16]}…, {size} bytes; "
                f"recorded {segment.sha256[:16]}…, {segment.bytes} bytes)",
            )
        name = target.relative_to(staging).as_posix() if include_originals else None
        part.segments.append(
            mf.Segment(
                start_ns=segment.start_ns,
                end_ns=segment.end_ns,
                bytes=size,
                sha256=digest,
                prev_sha256=segment.prev_sha256,
                recorded_path=segment.recorded_path,
                file=name,
                recorder=recorder_id,
                epoch=segment.epoch,
                unfenced=segment.unfenced,
            )
        )
        if name is not None:
            part.files.append(mf.File(name=name, role=mf.ROLE_ORIGINAL, bytes=size, sha256=digest))
        row = SegmentRow(
            id=-1, camera_id=camera_id, run_id=None, state=SegmentState.COMPLETE, path=segment.recorded_path,
            start_ns=segment.start_ns, end_ns=segment.end_ns, bytes=size, sha256=digest,
            prev_sha256=segment.prev_sha256, video_codec=segment.video_codec, width=segment.width,
            height=segment.height, has_audio=segment.has_audio, frames=None,
        )  # fmt: skip
        part.sources.append((row, target))

    try:
        for item in items:
            if isinstance(item, PartSegment):
                if current is not None:
                    receiving, current = current, None
                    finish(receiving)
                    yield part, received
                if include_originals:
                    # segments/<recorder>/<day>T<time>.mp4; the name comes from the peer: one plain
                    # file name, or the part is refused.
                    name = original_name(item.recorded_path).removeprefix("segments/")
                    if not _FILE_NAME.fullmatch(name):
                        raise VmsdError(
                            ErrorKind.DATA_LOSS, f"{where} sent a segment path that is not a recording's: {name[:80]!r}"
                        )
                    target = staging / "segments" / recorder_dir(recorder_id) / name
                else:
                    target = staging / f"peer-{recorder_dir(recorder_id)}-{len(part.sources)}.mp4"
                    part.scratch.append(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                current = _Receiving(item, target, open(target, "xb"))  # noqa: SIM115 - closed by finish()
            elif isinstance(item, bytes) and current is not None:
                current.handle.write(item)
                current.digest.update(item)
                received += len(item)
            else:
                raise VmsdError(ErrorKind.DATA_LOSS, f"{where} sent its part out of order")
        if current is not None:
            receiving, current = current, None
            finish(receiving)
    finally:
        if current is not None:
            current.handle.close()
    if len(part.segments) != part.header.segments:
        raise VmsdError(
            ErrorKind.DATA_LOSS,
            f"{where} sent {len(part.segments)} of the {part.header.segments} segments it listed",
        )
    yield part, received


def recorder_parts(
    segments: list[mf.Segment],
    breaks: list[mf.ChainBreak],
    masters: list[mf.Master],
    fingerprints: dict[str, str],
    local_id: str,
) -> list[mf.RecorderPart]:
    """The manifest's `recorders` of a bundle of several recorders: each recorder's segments,
    epochs, chain state and masters, in order of their first footage (pure)."""
    broken = {segments[b.index].recorder for b in breaks}
    parts: list[mf.RecorderPart] = []
    for recorder in dict.fromkeys(s.recorder for s in segments):
        own = [s for s in segments if s.recorder == recorder]
        parts.append(
            mf.RecorderPart(
                id=recorder,
                key_fingerprint_sha256=fingerprints.get(recorder) or None,
                source="local" if recorder == local_id else "peer",
                segments=len(own),
                bytes=sum(s.bytes for s in own),
                start_ns=own[0].start_ns,
                end_ns=max(s.end_ns for s in own),
                epochs=sorted({s.epoch for s in own if s.epoch is not None}),
                unfenced=any(s.unfenced for s in own),
                chain="broken" if recorder in broken else "linked",
                masters=[m.file for m in masters if m.recorder == recorder],
            )
        )
    return parts
