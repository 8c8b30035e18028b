"""The storage service: owns the layout, the catalogue and the durability protocol.

Protocol (docs/design/storage.md has the reasoning):
  open a segment   create the file (O_EXCL) → fsync its directory → insert a 'writing' row (the
                   intent record that lets recovery find and keep a torn file) → write fragments
  close a segment  finish the muxer → fsync the file → mark the row 'complete' with end, bytes, hash
  delete           mark the row 'garbage' → unlink → fsync the directory → drop the row, leaving a
                   tombstone with its hash so the chain stays verifiable
  startup          recovery.reconcile(): torn 'writing' files are truncated to their last complete
                   fragment and completed; 'garbage' rows finished; files without a row removed

Blocking methods are called from the ingest threads or via `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from vmsd.errors import ErrorKind, VmsdError
from vmsd.files import PRIVATE_FILE_MODE, fsync_dir, open_dir
from vmsd.log import get_logger
from vmsd.storage.catalogue import GENESIS_SHA256, SCHEMA_VERSION, Catalogue, GapReason, SegmentRow, SegmentState
from vmsd.storage.erase import erase_segment
from vmsd.storage.errors import StorageLost
from vmsd.storage.fragments import FragmentWriter
from vmsd.storage.layout import Layout, make_dirs
from vmsd.storage.recovery import recover_writing_segment
from vmsd.storage.writer import SegmentWriter, StreamTemplate, WrittenSegment

log = get_logger(component="storage")


@dataclass(frozen=True)
class SegmentInfo:
    video_codec: str
    width: int
    height: int
    has_audio: bool


class RootProblem(NamedTuple):
    """Why the storage root cannot be written. `replaced`: it is a different directory or
    filesystem than the one opened, so the open catalogue and audit files are not on it."""

    replaced: bool
    detail: str


class OpenSegment:
    """A segment being written: its catalogue row, path and writer."""

    def __init__(
        self,
        segment_id: int,
        camera_id: str,
        relpath: str,
        start_ns: int,
        writer: SegmentWriter | FragmentWriter,
        fd: int,
    ) -> None:
        self.segment_id = segment_id
        self.camera_id = camera_id
        self.relpath = relpath
        self.start_ns = start_ns
        self.writer = writer
        self.fd = fd


class Storage:
    """Segment files plus their catalogue under one root. `open()` does the I/O."""

    def __init__(self, root: Path, *, sync_interval_ns: int = 5_000_000_000) -> None:
        self.layout = Layout(root)
        self.catalogue = Catalogue(self.layout.catalogue_path)
        self.sync_interval_ns = sync_interval_ns
        self._lock_fd: int | None = None
        # (st_dev, st_ino) of the root when opened: the catalogue's open files live there, so a
        # root that is now something else (the filesystem unmounted, another one mounted) must not
        # get new segment files — their rows would go to a catalogue on another filesystem.
        self._root_identity: tuple[int, int] | None = None
        # The root directory as opened. The reserve and probe files are made relative to it, so a
        # root replaced under vmsd (unmounted, leaving the empty mount point on the system disk)
        # never gets them: a 16 MiB reserve there would fill the wrong disk, and a probe there would
        # report the wrong disk as writable.
        self._root_fd: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, *, exclusive: bool = True) -> None:
        """Create the root if needed, take the root's lock, open the catalogue.

        The lock makes a second daemon (or an fsck --repair) on the same root fail fast instead
        of corrupting it.
        """
        make_dirs(self.layout.recordings_dir)
        root_fd = open_dir(self.layout.root)
        root = os.fstat(root_fd)
        self._root_fd = root_fd
        self._root_identity = (root.st_dev, root.st_ino)
        if exclusive:
            self.lock()
        self.catalogue.open()
        if self.catalogue.backup_path is not None:
            log.warning("catalogue_migrated", version=SCHEMA_VERSION, backup=str(self.catalogue.backup_path))
        if exclusive:
            try:
                stats = os.statvfs(self.layout.root)
                self.ensure_reserve(stats.f_blocks * stats.f_frsize)
            except OSError:
                pass  # a full disk at start-up: retention makes room first, then the reserve returns

    def lock(self) -> None:
        fd = os.open(self.layout.lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        os.fchmod(fd, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"storage root {self.layout.root} is in use by another vmsd process (lock {self.layout.lock_path})",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def close(self) -> None:
        self.catalogue.close()
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- recording ---------------------------------------------------------------------------

    def chain_head(self, camera_id: str) -> str:
        """The hash the camera's next segment links to: its latest segment's, live or erased (under
        disk pressure the newest footage may already be erased when the next segment opens), or
        the genesis value."""
        last = self.catalogue.last_segment(camera_id)
        erased = self.catalogue.last_erased(camera_id)
        if last is not None and last.sha256 and (erased is None or last.start_ns > erased.start_ns):
            return last.sha256
        if erased is not None:
            return erased.sha256
        return GENESIS_SHA256

    def open_segment(
        self,
        camera_id: str,
        run_id: int | None,
        start_ns: int,
        templates: list[StreamTemplate],
        info: SegmentInfo,
        *,
        own_fragments: bool = False,
    ) -> OpenSegment:
        """Create a segment file and its 'writing' row, and close the camera's open gap at start_ns.
        ``own_fragments``: the packets carry their MP4 samples (the native RTSP source) and the
        fragments are written by vmsd (fragments.py) rather than PyAV's muxer (writer.py)."""
        self._recover_stranded(camera_id)
        fd, relpath = self._create_file(camera_id, start_ns)
        segment_id: int | None = None
        try:
            segment_id = self.catalogue.insert_writing_segment(
                camera_id=camera_id,
                run_id=run_id,
                path=relpath,
                start_ns=start_ns,
                prev_sha256=self.chain_head(camera_id),
                video_codec=info.video_codec,
                width=info.width,
                height=info.height,
                has_audio=info.has_audio,
            )
            self.catalogue.close_gap(camera_id, start_ns)
            writer: SegmentWriter | FragmentWriter
            if own_fragments:
                writer = FragmentWriter(fd, templates, self.sync_interval_ns)
            else:
                writer = SegmentWriter(fd, templates, self.sync_interval_ns)
            writer.open()
        except BaseException:
            os.close(fd)
            if segment_id is None:  # no row names the file (the catalogue refused it: disk full)
                with contextlib.suppress(OSError):
                    self.layout.abspath(relpath).unlink()
            raise
        return OpenSegment(segment_id, camera_id, relpath, start_ns, writer, fd)

    def _recover_stranded(self, camera_id: str) -> None:
        """A camera's newest row still 'writing' while no segment of it is open was left by a write
        error the catalogue could not record (disk full, read-only): recover it now, as startup
        would, so the next segment links to its hash and the outage is a `storage_error` gap."""
        last = self.catalogue.last_segment(camera_id)
        if last is not None and last.state == SegmentState.WRITING:
            log.warning("stranded_segment_recovered", camera_id=camera_id, path=last.path)
            recover_writing_segment(self, last, reason=GapReason.STORAGE_ERROR)

    def root_problem(self) -> RootProblem | None:
        """What is wrong with the storage root now, or None when it is the writable filesystem that
        was opened. Blocking (stat, statvfs); cheap enough to ask once a second and per segment."""
        root = self.layout.root
        try:
            found = os.stat(root)
            flags = os.statvfs(root).f_flag
        except OSError as error:
            return RootProblem(False, f"storage root {root} cannot be reached ({error.strerror or error})")
        if self._root_identity is not None and (found.st_dev, found.st_ino) != self._root_identity:
            detail = f"storage root {root} is no longer the filesystem vmsd opened (unmounted, another mounted?)"
            return RootProblem(True, detail)
        read_only = bool(flags & os.ST_RDONLY)
        if not read_only and self._lock_fd is not None:
            # ext4 turned read-only by an error (`emergency_ro`, kernel 6.10+) keeps the mount and
            # statvfs saying rw; only a write tells. Touching the lock file is one inode update.
            try:
                os.utime(self._lock_fd)
            except OSError as error:
                return RootProblem(False, f"storage root {root} cannot be written ({error.strerror or error})")
        if read_only:
            return RootProblem(False, f"storage root {root} is on a read-only filesystem")
        return None

    def _create_file(self, camera_id: str, start_ns: int) -> tuple[int, str]:
        # Without this, a root whose filesystem was unmounted would have its directories created
        # again on the filesystem underneath, and the file's row would go to the old catalogue.
        problem = self.root_problem()
        if problem is not None:
            raise StorageLost(problem.detail)
        for attempt in range(100):
            relpath = self.layout.segment_relpath(camera_id, start_ns, attempt)
            path = self.layout.abspath(relpath)
            if not path.parent.exists():
                make_dirs(path.parent)
                fsync_dir(path.parent.parent)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
            except FileExistsError:
                continue
            fsync_dir(path.parent)
            return fd, relpath
        raise VmsdError(ErrorKind.INTERNAL, f"cannot create a segment file for {camera_id} at {start_ns}")

    def close_segment(self, segment: OpenSegment, end_ns: int) -> WrittenSegment:
        """Finish, fsync and complete a segment whose footage ends at end_ns (wall ns)."""
        try:
            written = segment.writer.close(end_ns - segment.start_ns)
        finally:
            os.close(segment.fd)
        self.catalogue.complete_segment(
            segment.segment_id, end_ns=end_ns, nbytes=written.bytes, sha256=written.sha256, frames=written.video_frames
        )
        return written

    def abort_segment(self, segment: OpenSegment, reason: GapReason) -> SegmentRow | None:
        """After a write error: keep whatever complete fragments reached the file (as recovery would)."""
        segment.writer.abort()
        os.close(segment.fd)
        row = self.catalogue.segment(segment.segment_id)
        if row is None:
            return None
        return recover_writing_segment(self, row, reason=reason)

    def delete_segment(self, row: SegmentRow, *, erased_ns: int, reason: str) -> None:
        """Erase a segment by the protocol (storage/erase.py)."""
        erase_segment(self.catalogue, self.layout, row, erased_ns=erased_ns, reason=reason)

    # -- runs and gaps -----------------------------------------------------------------------

    def begin_run(self, camera_id: str, start_ns: int, *, epoch: int | None = None, unfenced: bool = False) -> int:
        return self.catalogue.begin_run(camera_id, start_ns, epoch=epoch, unfenced=unfenced)

    def end_run(self, camera_id: str, run_id: int, end_ns: int, reason: GapReason, detail: str = "") -> None:
        """End a run and open the gap that follows it (closed when the camera records again)."""
        self.catalogue.end_run(run_id, end_ns, reason)
        self.catalogue.open_gap(camera_id, end_ns, reason, detail)

    def segment_path(self, row: SegmentRow) -> Path:
        return self.layout.abspath(row.path)

    # -- the space reserve ----------------------------------------------------------------------
    # Erasing footage starts with catalogue writes, which SQLite refuses on a full disk ("database
    # or disk is full"). If something else fills the disk past min_free (a runaway log, a copied
    # file), retention could then never make room and recording would stay stopped. So a small
    # file is kept in the root and given up when that happens; it comes back when there is room.

    @staticmethod
    def reserve_bytes(total_bytes: int) -> int:
        """0.5 % of the filesystem, between 256 KiB and 16 MiB: a few SQLite transactions' worth."""
        return max(256 * 1024, min(16 * 1024 * 1024, total_bytes // 200))

    def ensure_reserve(self, total_bytes: int) -> bool:
        """Create the reserve file if it is missing (blocking). False when there is no room."""
        name = self.layout.space_reserve_path.name
        root_fd = self._opened_root_fd()
        size = self.reserve_bytes(total_bytes)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(name, dir_fd=root_fd).st_size >= size:
                return True
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
            try:
                os.posix_fallocate(fd, 0, size)  # real blocks, not a sparse promise
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=root_fd)
            return False
        return True

    def release_reserve(self) -> bool:
        """Delete the reserve file; True if there was one to give up."""
        try:
            os.unlink(self.layout.space_reserve_path.name, dir_fd=self._opened_root_fd())
        except FileNotFoundError:
            return False
        return True

    def probe_write(self, nbytes: int = 64 * 1024) -> int:
        """Write, fsync and remove a small file in the root; returns how long the write+fsync took
        (ns). Blocking; raises OSError when the storage cannot be written (disk full, read-only)."""
        name = self.layout.write_probe_path.name
        root_fd = self._opened_root_fd()
        data = os.urandom(nbytes)  # incompressible, so a compressing filesystem cannot cheat
        started_ns = time.monotonic_ns()
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
            with open(fd, "wb") as probe:
                probe.write(data)
                probe.flush()
                os.fsync(fd)
            return time.monotonic_ns() - started_ns
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=root_fd)

    def _opened_root_fd(self) -> int:
        if self._root_fd is None:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"storage root {self.layout.root} is not open")
        return self._root_fd
