"""Storage speaks its own language: a full catalogue or audit database is StorageFull, not sqlite3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import FakeClock
from vmsd.storage.errors import StorageError, StorageFull, is_full
from vmsd.storage.store import Storage


def _cap_size(conn: sqlite3.Connection) -> None:
    """Make the database file unable to grow: SQLite then fails exactly as on a full disk."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count={pages}")


def test_a_full_catalogue_raises_storage_full_with_sqlites_words(storage: Storage) -> None:
    _cap_size(storage.catalogue._require())
    with pytest.raises(StorageFull, match="database or disk is full") as caught:
        for i in range(10_000):
            storage.catalogue.upsert_camera(f"cam{i}", "x" * 200, "y" * 200, i)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert is_full(caught.value)


def test_a_full_audit_database_raises_storage_full(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", FakeClock())
    audit.open()
    try:
        _cap_size(audit._require())
        with pytest.raises(StorageFull):
            for _ in range(10_000):
                audit.append(AuditEntry(action="test.fill", principal="p", reason="r" * 500))
    finally:
        audit.close()


def test_other_failures_are_storage_errors_but_not_full(storage: Storage) -> None:
    storage.catalogue._require().execute("PRAGMA query_only=ON")  # as on a read-only database
    with pytest.raises(StorageError, match="readonly") as caught:
        storage.catalogue.upsert_camera("cam", "", "", 0)
    assert not isinstance(caught.value, StorageFull) and not is_full(caught.value)
