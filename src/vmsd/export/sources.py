"""The recorded segments read into a bundle: copied (originals) or only hashed, each checked against the catalogue."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.files import copy_hashing, original_name
from vmsd.export.site_parts import recorder_dir
from vmsd.files import sha256_file
from vmsd.storage.catalogue import SegmentRow
from vmsd.storage.fmp4 import complete_length, summarize
from vmsd.storage.store import Storage


class SourceReader:
    """Reads `rows` (oldest first) into the bundle being built in `staging`: with originals, each
    recorded file is copied there while hashed; without, only hashed (and the remux reads it in
    place). A segment still being written contributes its complete fragments. Every file read must
    match its catalogue hash (DATA_LOSS otherwise), so a bundle never signs footage that changed.
    Blocking. The results fill the attributes as `run()` goes.
    """

    def __init__(
        self,
        storage: Storage,
        rows: list[SegmentRow],
        staging: Path,
        *,
        include_originals: bool,
        recorder: str = "",
        epochs: dict[int, tuple[int, bool]] | None = None,
    ) -> None:
        self._storage = storage
        self._rows = rows
        self._staging = staging
        self._include_originals = include_originals
        # In a bundle of several recorders (vmsd-export/2): this recorder's id, its originals go
        # under segments/<its folder>/, and its segments name it and their runs' epochs.
        self._recorder = recorder
        self._folder = recorder_dir(recorder) if recorder else ""
        self._epochs = epochs or {}
        self.files: list[mf.File] = []
        self.segments: list[mf.Segment] = []
        self.sources: list[tuple[SegmentRow, Path]] = []  # what the remux reads
        self.scratch: list[Path] = []  # copies made for the remux only (an open segment without originals)
        # Where the footage still being written begins to be missing from the bundle.
        self.in_progress_from_ns: int | None = None

    def run(self) -> Iterator[int]:
        """Read every row, yielding the source bytes done after each."""
        done_bytes = 0
        for row in self._rows:
            source = self._storage.segment_path(row)
            name: str | None = None
            open_at_export = False
            if row.state == "writing":
                name = self._original_name(row.path) if self._include_originals else None
                copy = self._staging / (name or f"open-segment-{row.id}.mp4")
                included = self._copy_open_segment(row, copy)
                if included is None:
                    self.in_progress_from_ns = row.start_ns
                    continue
                row, digest, size = included
                open_at_export = row.state == "writing"
                if open_at_export:
                    assert row.end_ns is not None
                    self.in_progress_from_ns = row.end_ns
                self.sources.append((row, copy))
                if name is None:
                    self.scratch.append(copy)
            elif self._include_originals:
                name = self._original_name(row.path)
                target = self._staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest, size = copy_hashing(source, target)
                self.sources.append((row, target))
            else:
                digest, size = sha256_file(source)
                self.sources.append((row, source))
            if digest != row.sha256 or size != row.bytes:
                raise VmsdError(
                    ErrorKind.DATA_LOSS,
                    f"recorded segment {row.path} no longer matches its catalogue hash "
                    f"(sha256 {digest[:16]}…, {size} bytes; recorded {str(row.sha256)[:16]}…, {row.bytes} bytes)",
                )
            assert row.end_ns is not None and row.sha256 is not None
            epoch, unfenced = self._epochs.get(row.run_id, (None, False)) if row.run_id is not None else (None, False)
            self.segments.append(
                mf.Segment(
                    start_ns=row.start_ns,
                    end_ns=row.end_ns,
                    bytes=size,
                    sha256=digest,
                    prev_sha256=row.prev_sha256,
                    recorded_path=row.path,
                    file=name,
                    open_at_export=open_at_export,
                    recorder=self._recorder,
                    epoch=epoch if self._recorder else None,
                    unfenced=unfenced and bool(self._recorder),
                )
            )
            if name is not None:
                self.files.append(mf.File(name=name, role=mf.ROLE_ORIGINAL, bytes=size, sha256=digest))
            done_bytes += size
            yield done_bytes

    def _original_name(self, relpath: str) -> str:
        name = original_name(relpath)
        return name if not self._folder else f"segments/{self._folder}/{name.removeprefix('segments/')}"

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
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = copy_hashing(source, target, limit=length)
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
