"""The audit trail's database file (audit.db): its schema, owned by storage like the catalogue's.

The hash chain, the anchors and their checks are the audit log's business (vmsd/audit.py); which
tables hold them, and opening the file safely, are storage's. The log lives in its own SQLite file
(WAL, synchronous=FULL), so that an append is durable on its own and a catalogue problem never
touches it.

Tables:
  meta    schema_version (storage/schema.py)
  audit   one row per record: seq (from 1, never skipping), the entry's fields, prev_hash, hash
  anchor  the chain's head (seq, hash), updated in the same transaction as each append
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vmsd.storage import schema

# Unchanged since the first release; versioned like the catalogue (storage/schema.py), so that a
# future change has its migration, its backup copy and the refusal of a newer file ready.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, action TEXT NOT NULL, principal TEXT NOT NULL,
    role TEXT NOT NULL, peer TEXT NOT NULL, camera_id TEXT NOT NULL, start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL, reason TEXT NOT NULL, case_ref TEXT NOT NULL, outcome TEXT NOT NULL,
    detail_json TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ns);
CREATE INDEX IF NOT EXISTS audit_camera_time ON audit(camera_id, time_ns);
CREATE TABLE IF NOT EXISTS anchor (seq INTEGER NOT NULL, hash TEXT NOT NULL);
"""

SCHEMA = schema.SchemaSpec("audit", SCHEMA_VERSION, _SCHEMA, ())


def open_audit_db(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) the audit database, with its schema, for appending.

    VmsdError (FAILED_PRECONDITION) when the file was upgraded by a newer vmsd."""
    conn = schema.connect(path)
    try:
        schema.upgrade(conn, path, SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn
