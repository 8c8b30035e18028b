"""Reading finished bundles: find them, list them, read their manifests, serve their files in chunks."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.log import get_logger

log = get_logger(component="export")

MAX_CHUNK_BYTES = 1024 * 1024
EXPORT_ID_RE = re.compile(r"\A\d{8}T\d{6}Z-[A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9a-f]{8}\Z")  # \Z: no trailing newline


@dataclass(frozen=True)
class BundleFile:
    name: str
    role: str  # a manifest file role, or "manifest" / "signature"
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Archive:
    """A whole bundle as one tar file: `size` bytes (known before the first is read) from `chunks`."""

    name: str
    size: int  # of the whole archive, whatever the offset
    chunks: Iterator[bytes]  # from the offset asked for to the end
    etag: str  # the same for the same archive bytes (its headers name every file's size and time)


def no_such_export(export_id: str) -> VmsdError:
    """The answer for an absent export id, and for one outside the caller's scope (indistinguishable)."""
    return VmsdError(ErrorKind.NOT_FOUND, f"export_id {export_id!r} does not exist")


class Bundles:
    """The finished bundles under an exports directory. The constructor does no I/O."""

    def __init__(self, root: Path) -> None:
        self.root = root

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
        target = self._member(path, export_id, name)
        with open(target, "rb") as f:
            if offset >= os.fstat(f.fileno()).st_size:
                return b""  # not seek(): an offset past what a file can hold is EINVAL there
            f.seek(offset)
            return f.read(min(size, MAX_CHUNK_BYTES))

    def _member(self, path: Path, export_id: str, name: str) -> Path:
        """The file `name` of the bundle at `path`: names with '..', absolute names or symlinks
        out of the bundle are refused."""
        if not re.fullmatch(r"[A-Za-z0-9._/-]{1,200}", name) or any(p in ("", ".", "..") for p in name.split("/")):
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"name {name[:80]!r} is not a bundle file name")
        target = (path / name).resolve()
        if path.resolve() not in target.parents or not target.is_file():
            raise VmsdError(ErrorKind.NOT_FOUND, f"export {export_id} has no file {name!r}")
        return target

    def archive(self, export_id: str, offset: int = 0, end: int | None = None) -> Archive:
        """The bundle's files (those `files()` lists) as one uncompressed POSIX tar, each under
        `<export_id>/`, streamed from the bundle itself (no copy is made) in ≤ 1 MiB chunks,
        from byte `offset` of the archive up to byte `end` (exclusive; None: its end).

        For a browser, which downloads one file: unpacked, it is the bundle directory, which
        `vmsctl verify` checks. The size is exact before the first chunk (Content-Length), and
        the archive's bytes are the same each time it is asked for (headers from the files' sizes
        and times), so a broken download resumes from the offset it reached. A file that shrinks
        while being read ends the stream with DATA_LOSS (a finished bundle never changes; if one
        does, the download must not look complete).
        """
        path = self.bundle_path(export_id)
        # The archive as pieces: bytes (headers, padding, the end) or a file's (name, path, size).
        pieces: list[bytes | tuple[str, Path, int]] = []
        for listed in self.files(export_id):
            target = self._member(path, export_id, listed.name)
            stat = target.stat()
            info = tarfile.TarInfo(f"{export_id}/{listed.name}")
            info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), 0o644
            pieces += [info.tobuf(format=tarfile.PAX_FORMAT), (listed.name, target, stat.st_size)]
            pieces.append(tarfile.NUL * (_blocks(stat.st_size) - stat.st_size))
        # Two zero blocks, and the whole padded to a record, as tarfile itself ends an archive.
        size = sum(len(p) if isinstance(p, bytes) else p[2] for p in pieces)
        pieces.append(tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-(size + 2 * tarfile.BLOCKSIZE) % tarfile.RECORDSIZE)))
        size += len(pieces[-1])
        headers = b"".join(p for p in pieces if isinstance(p, bytes))
        etag = hashlib.sha256(headers).hexdigest()[:32]
        stop = size if end is None else end
        if not 0 <= offset <= stop <= size:
            raise VmsdError(
                ErrorKind.INVALID_ARGUMENT, f"bytes {offset}..{stop} are not a part of the archive (0..{size} bytes)"
            )

        def chunks() -> Iterator[bytes]:
            position = 0
            for piece in pieces:
                length = len(piece) if isinstance(piece, bytes) else piece[2]
                first, last = max(0, offset - position), min(length, stop - position)
                position += length
                if first >= last:
                    continue
                if isinstance(piece, bytes):
                    yield piece[first:last]
                else:
                    yield from _file_chunks(export_id, piece[0], piece[1], first, last)

        return Archive(f"{export_id}.tar", size, chunks(), etag)


def _file_chunks(export_id: str, name: str, target: Path, first: int, last: int) -> Iterator[bytes]:
    """Bytes `first`..`last` of a bundle file, in ≤ 1 MiB chunks; DATA_LOSS if it has shrunk."""
    with open(target, "rb") as f:
        f.seek(first)
        left = last - first
        while left:
            data = f.read(min(MAX_CHUNK_BYTES, left))
            if not data:
                raise VmsdError(ErrorKind.DATA_LOSS, f"export {export_id}: {name} became shorter while being sent")
            left -= len(data)
            yield data


def _blocks(size: int) -> int:
    """`size` rounded up to whole tar blocks."""
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
