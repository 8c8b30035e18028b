"""Schema versions of vmsd's SQLite files, and the migrations that upgrade them in place.

The version is the `schema_version` row of each file's `meta` table (docs/design/storage.md,
"Schema versions"), not `PRAGMA user_version`: every released vmsd already writes that row and
refuses to open a file whose version is not its own, so going back to an older vmsd after a
migration fails loudly instead of running old code on a new schema.

On open, a file with no version is new and gets the current schema. An older file is first copied
with SQLite's backup API (a consistent snapshot even of a WAL database) to
<root>/backups/<name>-v<version>-<UTC time>.db, owner-only, and then migrated: each step in its own
transaction, in order, stamping its version as it commits, so that a crash leaves the file at a
version it really has. A file newer than this vmsd is refused, naming both versions.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmsd import __version__
from vmsd.errors import ErrorKind, VmsdError
from vmsd.files import PRIVATE_FILE_MODE, fsync_dir, make_private
from vmsd.storage.errors import sqlite_errors
from vmsd.storage.layout import Layout, make_dirs

# Backups hold what the catalogue holds (camera URLs with credentials): owner-only.
BACKUP_DIR_MODE = 0o700


@dataclass(frozen=True)
class Migration:
    """One step: what it does, in the operator's words, and how (statements on an open
    transaction: never executescript, which would commit half-way)."""

    to_version: int
    summary: str
    apply: Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class SchemaSpec:
    """One database file's schema: its current DDL (for new files) and the steps from every older version."""

    name: str  # "catalogue", "audit": names the file in messages and in backup file names
    version: int
    ddl: str
    migrations: tuple[Migration, ...]


@dataclass(frozen=True)
class Plan:
    """What opening the file would do: `found` is None for a new (empty) file."""

    path: Path
    spec: SchemaSpec
    found: int | None
    pending: tuple[Migration, ...]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) a database the way vmsd always does: WAL, synchronous=FULL,
    autocommit (transactions are explicit), usable from any thread behind the caller's lock."""
    make_private(path)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate_file(path: Path, spec: SchemaSpec, *, dry_run: bool) -> tuple[Plan, Path | None]:
    """`vmsd migrate` for one existing file: its plan and, unless `dry_run`, the backup copy made
    before running it (None when nothing was pending)."""
    conn = connect(path)
    try:
        steps = plan(conn, path, spec)
        return steps, None if dry_run or steps.found is None else upgrade(conn, path, spec)
    finally:
        conn.close()


def statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (so that a migration can run them inside its transaction)."""
    done: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            done.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement: {current.strip()[:80]!r}")
    return done


def read_version(conn: sqlite3.Connection) -> int | None:
    """The file's schema version, or None when it has none yet (a new file)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def plan(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> Plan:
    """What open would do; VmsdError (FAILED_PRECONDITION) when the file is newer than this vmsd."""
    with sqlite_errors():
        found = read_version(conn)
    if found is not None and found > spec.version:
        raise VmsdError(
            ErrorKind.FAILED_PRECONDITION,
            f"{path}: the {spec.name} database has schema version {found}, newer than version "
            f"{spec.version} that this vmsd {__version__} knows: it was upgraded by a newer vmsd. Run that "
            "version again, or restore the backup copy made before the upgrade (docs/upgrading.md)",
        )
    pending = () if found is None else tuple(m for m in spec.migrations if m.to_version > found)
    return Plan(path, spec, found, pending)


def backup(conn: sqlite3.Connection, path: Path, name: str, version: int) -> Path:
    """Copy the open database with SQLite's backup API to the root's backups/ folder; return the copy's path."""
    folder = Layout(path.parent).backups_dir
    make_dirs(folder, BACKUP_DIR_MODE)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = folder / f"{name}-v{version}-{stamp}.db"
    attempt = 1
    while target.exists():  # two upgrades within a second (a retried one) keep both copies
        target = folder / f"{name}-v{version}-{stamp}-{attempt}.db"
        attempt += 1
    make_private(target)
    try:
        with sqlite_errors():
            copy = sqlite3.connect(target)
            try:
                conn.backup(copy)
            finally:
                copy.close()
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        target.unlink(missing_ok=True)  # a partial copy (disk full) must not pass for a backup
        raise
    fsync_dir(folder)
    return target


def upgrade(conn: sqlite3.Connection, path: Path, spec: SchemaSpec) -> Path | None:
    """Bring an open file (isolation_level=None, foreign keys off) to `spec.version`.

    A new file gets the current DDL; an older one is backed up, then migrated step by step.
    Returns the backup copy's path when migrations ran."""
    steps = plan(conn, path, spec)
    with sqlite_errors():
        if steps.found is None:
            # IF NOT EXISTS throughout and an OR IGNORE stamp: a crash half-way is finished by the next open.
            conn.executescript(spec.ddl)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(spec.version),))
            return None
        if not steps.pending:
            return None
        copy = backup(conn, path, spec.name, steps.found)
        for migration in steps.pending:
            _apply(conn, path, migration)
        return copy


def _apply(conn: sqlite3.Connection, path: Path, migration: Migration) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        migration.apply(conn)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise VmsdError(
                ErrorKind.INTERNAL,
                f"{path}: migration to schema version {migration.to_version} broke {len(broken)} "
                f"reference(s) (first: {broken[0]}); nothing was changed",
            )
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(migration.to_version),))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
