"""Disk space for exports: the free space recording keeps, and the quota of bundles kept on the recorder."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.serve import EXPORT_ID_RE


class ExportSpace:
    """Reserves the estimated size of each running export against the free space and the quota.

    An export is refused with RESOURCE_EXHAUSTED when it would leave less free space than
    `min_free(total bytes)` — the space recording keeps; eating into it would make retention erase
    other cameras' footage — or when the bundles kept plus the running exports' estimates would
    exceed `max_total(total bytes)` (`[export] max_total`; None: no quota). Thread-safe; the
    constructor does no I/O.
    """

    def __init__(self, root: Path, min_free: Callable[[int], int], max_total: Callable[[int], int] | None) -> None:
        self.root = root
        self._min_free = min_free
        self._max_total = max_total
        self._space_lock = threading.Lock()
        self._reserved_bytes = 0  # estimates of the exports running now

    def reserve(self, needed: int) -> None:
        """Check an export's estimated size against the free space and the quota (see the class
        docstring) and count it as reserved until `release(needed)`. Blocking."""
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

    def release(self, reserved: int) -> None:
        with self._space_lock:
            self._reserved_bytes -= reserved

    def bundles_bytes(self) -> int:
        """Bytes of the finished bundles kept under the exports directory. Blocking."""
        total = 0
        for entry in self.root.iterdir():
            if EXPORT_ID_RE.match(entry.name):
                total += sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and not p.is_symlink())
        return total


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"
