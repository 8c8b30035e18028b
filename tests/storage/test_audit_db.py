"""The audit database is versioned like the catalogue: its released schema is frozen, a newer file is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vmsd.errors import VmsdError
from vmsd.storage.audit_db import SCHEMA_VERSION, open_audit_db

SCHEMAS = Path(__file__).parent / "schemas"


def _schema(conn: sqlite3.Connection) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")}


def _released(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.executescript((SCHEMAS / "audit-v1.sql").read_text())
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(version),))
    conn.commit()
    conn.close()


def test_a_new_audit_database_has_the_released_schema(tmp_path: Path) -> None:
    _released(tmp_path / "released.db", 1)
    released = sqlite3.connect(tmp_path / "released.db")
    fresh = open_audit_db(tmp_path / "audit.db")
    try:
        assert _schema(fresh) == _schema(released), "the schema changed: freeze a new version and add its migration"
        assert fresh.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    finally:
        fresh.close()
        released.close()


def test_an_audit_database_newer_than_this_vmsd_is_refused(tmp_path: Path) -> None:
    _released(tmp_path / "audit.db", SCHEMA_VERSION + 1)
    with pytest.raises(VmsdError, match=r"the audit database has schema version 2, newer than version 1 that"):
        open_audit_db(tmp_path / "audit.db")
    assert not (tmp_path / "backups").exists()
