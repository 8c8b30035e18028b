"""Schema versioning: a step that fails leaves the file at the version it had, with its backup copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vmsd.storage import schema
from vmsd.storage.catalogue import SCHEMA as CATALOGUE
from vmsd.storage.errors import StorageError

DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\nCREATE TABLE t (a INTEGER);\n"


def _add_b(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE t ADD COLUMN b INTEGER")


def _fail_half_way(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half (x INTEGER)")
    conn.execute("INSERT INTO no_such_table VALUES (1)")


def _spec(*steps: schema.Migration) -> schema.SchemaSpec:
    return schema.SchemaSpec("test", steps[-1].to_version if steps else 1, DDL, steps)


def test_a_failed_step_rolls_back_to_the_last_version_reached(tmp_path: Path) -> None:
    path = tmp_path / "test.db"
    conn = schema.connect(path)
    assert schema.upgrade(conn, path, _spec()) is None  # a new file: version 1, no copy
    conn.execute("INSERT INTO t(a) VALUES (7)")
    spec = _spec(schema.Migration(2, "add b", _add_b), schema.Migration(3, "fails", _fail_half_way))
    with pytest.raises(StorageError, match="no such table: no_such_table"):
        schema.upgrade(conn, path, spec)
    assert schema.read_version(conn) == 2
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone() is None
    assert [c[1] for c in conn.execute("PRAGMA table_info(t)")] == ["a", "b"]
    (copy,) = (tmp_path / "backups").iterdir()
    assert copy.name.startswith("test-v1-")
    assert sqlite3.connect(copy).execute("SELECT a FROM t").fetchall() == [(7,)]
    conn.close()


def test_statements_splits_the_catalogue_ddl_whole() -> None:
    parts = schema.statements(CATALOGUE.ddl)
    assert len(parts) == CATALOGUE.ddl.count("CREATE ")
    assert all(p.startswith("CREATE") and p.endswith(";") for p in parts)
    with pytest.raises(ValueError, match="incomplete SQL statement"):
        schema.statements("CREATE TABLE x (a")
