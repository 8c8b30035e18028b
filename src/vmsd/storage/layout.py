"""Where things live under the storage root. The only module that builds paths.

    <root>/catalogue.db                      SQLite catalogue (WAL)
    <root>/vmsd.lock                         held (flock) by the running daemon and by fsck
    <root>/audit.db, <root>/audit.anchor     the hash-chained audit trail and its head
    <root>/exports/<export id>/              signed evidence bundles
    <root>/keys/                             the recorder's signing key
    <root>/backups/                          copies of the databases made before each migration
    <root>/recordings/<camera>/<YYYY-MM-DD>/<HHMMSS>.<nanoseconds>Z.mp4

One folder per camera per UTC day keeps directories small and makes day-on-day erasure a matter
of emptying the oldest folder. The file name carries the segment's exact start time, so the
catalogue can be rebuilt from the files alone (`vmsd fsck --rebuild-index`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

from vmsd.errors import ErrorKind, VmsdError
from vmsd.ids import ID_RE
from vmsd.units import NS_PER_S

_NAME_RE = re.compile(r"(\d{2})(\d{2})(\d{2})\.(\d{9})Z(?:-(\d+))?\.mp4")
_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class Layout:
    """Path arithmetic for one storage root (no I/O except the directory walks that say so)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalogue_path = root / "catalogue.db"
        self.lock_path = root / "vmsd.lock"
        self.recordings_dir = root / "recordings"
        self.audit_path = root / "audit.db"
        # The audit chain's head is also written here, outside the audit database, so that
        # deleting the newest audit records is detectable (see vmsd.audit).
        self.audit_anchor_path = root / "audit.anchor"
        # Evidence bundles live outside recordings/: retention and fsck's orphan sweep never look there.
        self.exports_dir = root / "exports"
        # Copies of catalogue.db and audit.db made before migrating them (0700 directory, 0600 files).
        self.backups_dir = root / "backups"
        # The recorder's Ed25519 signing key (0700 directory, 0600 key).
        self.keys_dir = root / "keys"
        # Copies of site peers' segments under review here (a cache: services/peer_segments.py).
        self.peer_segments_dir = root / "peer-segments"
        # Written and fsync'd by function checks to measure write latency; removed straight after.
        self.write_probe_path = root / ".write-probe"
        # Space held back so that erasure can still commit to SQLite when the disk is full.
        self.space_reserve_path = root / ".space-reserve"

    def segment_relpath(self, camera_id: str, start_ns: int, attempt: int = 0) -> str:
        """Relative path of a segment; `attempt` > 0 disambiguates an (unlikely) equal start time."""
        check_id(camera_id)
        seconds, nanos = divmod(start_ns, NS_PER_S)
        when = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        suffix = f"-{attempt}" if attempt else ""
        return f"recordings/{camera_id}/{when:%Y-%m-%d}/{when:%H%M%S}.{nanos:09d}Z{suffix}.mp4"

    def abspath(self, relpath: str) -> Path:
        """Absolute path of a catalogue path; refuses anything that would leave the root."""
        path = (self.root / relpath).resolve()
        root = self.root.resolve()
        if root not in path.parents:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"path {relpath!r} escapes the storage root")
        return path

    def camera_dir(self, camera_id: str) -> Path:
        check_id(camera_id)
        return self.recordings_dir / camera_id

    def iter_segment_files(self) -> Iterator[str]:
        """Yield the relative path of every file under recordings/ (walks the disk)."""
        if not self.recordings_dir.exists():
            return
        for dirpath, _dirnames, filenames in os.walk(self.recordings_dir):
            for name in filenames:
                yield os.path.relpath(os.path.join(dirpath, name), self.root)


def check_id(value: str) -> str:
    if not ID_RE.fullmatch(value):
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"invalid id {value!r}: not a safe camera id")
    return value


def parse_segment_relpath(relpath: str) -> tuple[str, int] | None:
    """(camera_id, start_ns) from a segment path, or None when the path is not one of ours."""
    parts = relpath.split("/")
    if len(parts) != 4 or parts[0] != "recordings" or not ID_RE.fullmatch(parts[1]):
        return None
    day, name = _DAY_RE.fullmatch(parts[2]), _NAME_RE.fullmatch(parts[3])
    if not day or not name:
        return None
    try:
        when = dt.datetime(
            int(day.group(1)),
            int(day.group(2)),
            int(day.group(3)),
            int(name.group(1)),
            int(name.group(2)),
            int(name.group(3)),
            tzinfo=dt.UTC,
        )
    except ValueError:
        return None
    return parts[1], int(when.timestamp()) * NS_PER_S + int(name.group(4))


# Directory mode (docs/design/storage.md, "File modes"; private files: vmsd.files). Set here, not
# left to the umask of whoever starts vmsd.
DIR_MODE = 0o750  # the group (e.g. backup) may read footage; other users see nothing


def make_dirs(path: Path, mode: int = DIR_MODE) -> None:
    """Create `path` and its missing parents with exactly `mode` (Path.mkdir gives parents the
    umask's default); existing directories are left as the operator made them."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)
