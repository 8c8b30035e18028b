"""Storage's own failures, so that callers need not know that the catalogue is SQLite.

The catalogue and the audit database raise these instead of `sqlite3.Error`; the message is
SQLite's own (e.g. "database or disk is full"), which is what the gap and the log then say.
Segment files fail with the usual `OSError` (ENOSPC when full): file I/O speaks that already.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


class StorageError(Exception):
    """The catalogue or the audit database could not be written or read (full or read-only
    filesystem, I/O error, a damaged file)."""


class StorageFull(StorageError):
    """No space left for the catalogue or the audit database (SQLite: "database or disk is full")."""


class StorageLost(StorageError):
    """The storage root is gone, read-only, or no longer the filesystem vmsd opened (unmounted and
    something else mounted there): nothing may be written to it until it is back."""


@contextmanager
def sqlite_errors() -> Iterator[None]:
    """Raise any SQLite failure inside the block as StorageFull or StorageError (chained)."""
    try:
        yield
    except sqlite3.Error as error:
        full = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)
        raise (StorageFull if full else StorageError)(str(error)) from error


def is_full(error: BaseException) -> bool:
    """Whether `error` says the disk is full: StorageFull, or a file write's ENOSPC."""
    return isinstance(error, StorageFull) or (isinstance(error, OSError) and error.errno == errno.ENOSPC)
