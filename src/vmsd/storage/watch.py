"""Watching the storage root: a short outage is waited out, a lost storage ends the process.

Once a second the root is checked (stat + statvfs, storage/store.py `root_problem`):

- gone or read-only (a lazy unmount, a USB disk unplugged, ext4 remounting itself read-only
  after an I/O error): the recorders already fail each segment with a `storage_error` and keep
  retrying, and no file is created while the root is not the one opened. If the root is back
  within LOST_AFTER_NS (the same filesystem mounted again), recording resumes in place: the next
  segment recovers the stranded row and closes the `storage_error` gap.
- still unusable after LOST_AFTER_NS, or a *different* filesystem at the root: the storage is
  lost. The catalogue and the audit log hold files open on the old filesystem, which keeps it
  from being unmounted and repaired (EBUSY), and a read-only ext4 (`emergency_ro`) never becomes
  writable again in place. So `vmsd run` stops and exits with STORAGE_LOST_EXIT; systemd restarts
  it (Restart=on-failure), a start on storage that is still unusable fails with the same status,
  and the first start on repaired storage records again.

Why the process stopped is noted in the runtime directory (systemd's `RuntimeDirectory=`, kept
across restarts by `RuntimeDirectoryPreserve=restart`), so that start-up recovery records the
outage as a `storage_error` gap rather than a `crash` one. Without a runtime directory (a run by
hand) the gap says `crash`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from vmsd.clock import Clock
from vmsd.log import get_logger
from vmsd.storage.store import RootProblem, Storage
from vmsd.units import NS_PER_S
from vmsd.waits import wait_event

# sysexits EX_TEMPFAIL: "a temporary failure; try again later". Distinct from 1 (any other
# error), so that the journal and monitoring can tell a lost disk from a bug.
STORAGE_LOST_EXIT = 75
LOST_AFTER_NS = 15 * NS_PER_S  # long enough for a remount or a USB reset, short enough to get repaired
CHECK_INTERVAL_NS = NS_PER_S
NOTE_NAME = "storage-lost"

log = get_logger(component="storage")


class StorageWatch:
    """Checks the root every CHECK_INTERVAL_NS until `aclose()`; calls `on_lost(detail)` once.
    The constructor does no I/O."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        on_lost: Callable[[str], None],
        *,
        lost_after_ns: int = LOST_AFTER_NS,
        interval_ns: int = CHECK_INTERVAL_NS,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._on_lost = on_lost
        self._lost_after_ns = lost_after_ns
        self._interval_ns = interval_ns
        self._stop = asyncio.Event()
        self._since_mono_ns: int | None = None  # when the current problem was first seen

    async def run(self) -> None:
        while not self._stop.is_set():
            problem = await asyncio.to_thread(self._storage.root_problem)
            if self.observe(problem, self._clock.mono_ns()):
                return
            await wait_event(self._stop, self._interval_ns / NS_PER_S)

    def observe(self, problem: RootProblem | None, now_mono_ns: int) -> bool:
        """Take one check's outcome; True (after calling on_lost) when the storage is lost."""
        if problem is None:
            if self._since_mono_ns is not None:
                log.warning("storage_available", unavailable_s=(now_mono_ns - self._since_mono_ns) / NS_PER_S)
                self._since_mono_ns = None
            return False
        if self._since_mono_ns is None:
            self._since_mono_ns = now_mono_ns
            log.error("storage_unavailable", detail=problem.detail, lost_after_s=self._lost_after_ns / NS_PER_S)
        if problem.replaced or now_mono_ns - self._since_mono_ns >= self._lost_after_ns:
            log.error(
                "storage_lost",
                detail=problem.detail,
                exit_status=STORAGE_LOST_EXIT,
                hint="vmsd stops so that the filesystem can be repaired and mounted again; "
                "systemd restarts it, and recording resumes once the storage is back",
            )
            self._on_lost(problem.detail)
            return True
        return False

    async def aclose(self) -> None:
        self._stop.set()


def runtime_dir() -> Path | None:
    """systemd's RuntimeDirectory= (the first one, if several), or None outside systemd."""
    value = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(value) if value else None


def write_note(directory: Path | None, detail: str, now_ns: int) -> None:
    """Note that the storage was lost (best effort: a note lost only makes the gap say `crash`)."""
    if directory is None:
        return
    try:
        (directory / NOTE_NAME).write_text(json.dumps({"detail": detail, "time_ns": now_ns}) + "\n")
    except OSError as error:
        log.warning("storage_lost_note_failed", path=str(directory / NOTE_NAME), error=str(error))


def read_note(directory: Path | None) -> bool:
    """Whether the previous process stopped because its storage was lost."""
    return directory is not None and (directory / NOTE_NAME).exists()


def clear_note(directory: Path | None) -> None:
    if directory is not None:
        with contextlib.suppress(OSError):
            (directory / NOTE_NAME).unlink(missing_ok=True)
