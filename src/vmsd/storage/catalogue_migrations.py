"""The catalogue's migrations, oldest first. Frozen: a step says what its version was, whatever the
current schema (catalogue.py) says later; tests/storage/schemas/ holds every released schema.

Version 1 was stamped by every release up to 0.1.0, on several shapes: each release created the
tables it lacked (CREATE TABLE IF NOT EXISTS) but never changed an existing one, so a version-1
catalogue may lack api_cameras, holds, hold_cameras and function_checks, and, when it was created
before commit 74abdfd, its segments table lacks AUTOINCREMENT (a deleted newest segment's id was
handed to the next segment).
"""

from __future__ import annotations

import sqlite3

from vmsd.storage.schema import Migration, statements

# The tables and index that version-1 catalogues may lack, as version 2 has them.
_V2_MISSING = """
CREATE TABLE IF NOT EXISTS api_cameras (
    id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start_ns);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    case_ref TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    until_ns INTEGER,
    released_ns INTEGER,
    released_by TEXT,
    release_reason TEXT
);
CREATE TABLE IF NOT EXISTS hold_cameras (
    hold_id INTEGER NOT NULL REFERENCES holds(id),
    camera_id TEXT NOT NULL,
    PRIMARY KEY (hold_id, camera_id)
);
CREATE TABLE IF NOT EXISTS function_checks (
    id INTEGER PRIMARY KEY,
    started_ns INTEGER NOT NULL,
    finished_ns INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    verdict TEXT NOT NULL,
    report_json TEXT NOT NULL
);
"""

# Text identical to a catalogue created new, so that a migrated catalogue and a new one have the same schema.
_V2_SEGMENTS = """
CREATE TABLE segments (
    -- AUTOINCREMENT: recovery drops the row of a torn newest segment, and a plain rowid would hand
    -- its id to the next segment, so one id (in logs, fsck reports) would name two files.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    run_id INTEGER REFERENCES runs(id),
    state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'garbage')),
    path TEXT NOT NULL UNIQUE,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    bytes INTEGER,
    sha256 TEXT,
    prev_sha256 TEXT NOT NULL,
    video_codec TEXT NOT NULL DEFAULT '',
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    has_audio INTEGER NOT NULL DEFAULT 0,
    frames INTEGER
);
CREATE INDEX segments_camera_start ON segments(camera_id, start_ns);
CREATE INDEX segments_state ON segments(state) WHERE state != 'complete';
CREATE INDEX segments_start ON segments(start_ns);
"""

_V2_SEGMENT_COLUMNS = (
    "id, camera_id, run_id, state, path, start_ns, end_ns, bytes, sha256, prev_sha256, "
    "video_codec, width, height, has_audio, frames"
)


def _to_v2(conn: sqlite3.Connection) -> None:
    for statement in statements(_V2_MISSING):
        conn.execute(statement)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='segments'").fetchone()
    if "AUTOINCREMENT" in sql.upper():
        return  # created after 74abdfd: SQLite already keeps the highest id ever used
    # SQLite cannot add AUTOINCREMENT to a table: rebuild it, keeping every id. The old table is
    # renamed away first (no table references segments, so nothing else is rewritten) so that the
    # new one is created under its own name with exactly the DDL of a new catalogue.
    conn.execute("ALTER TABLE segments RENAME TO segments_v1")
    for index in ("segments_camera_start", "segments_state", "segments_start"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for statement in statements(_V2_SEGMENTS):
        conn.execute(statement)
    conn.execute(f"INSERT INTO segments({_V2_SEGMENT_COLUMNS}) SELECT {_V2_SEGMENT_COLUMNS} FROM segments_v1")
    # The highest segment id ever used is the highest one still in the table: nothing else in the
    # catalogue or the audit trail records segment ids (tombstones have their own ids, audit
    # records name paths). A newest row already deleted may have had a higher id, which the old
    # schema would have reused anyway; from here on, no id is handed out twice.
    (highest,) = conn.execute("SELECT COALESCE(max(id), 0) FROM segments_v1").fetchone()
    conn.execute("DELETE FROM sqlite_sequence WHERE name='segments'")
    conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('segments', ?)", (highest,))
    conn.execute("DROP TABLE segments_v1")


# Version 3: the event stream's window (EventService.WatchEvents resumes from it).
_V3_EVENTS = """
CREATE TABLE IF NOT EXISTS events (
    -- Sequence numbers are handed out by the event bus (vmsd.events.bus), never reused.
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    camera_id TEXT NOT NULL DEFAULT '',
    fields_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
"""


def _to_v3(conn: sqlite3.Connection) -> None:
    for statement in statements(_V3_EVENTS):
        conn.execute(statement)


# Version 4: runs recorded as a member of a site, with their ownership epoch (issue #15).
_V4_SITE_RUNS = """
CREATE TABLE IF NOT EXISTS site_runs (
    -- Runs recorded as a member of a site ([site]): the ownership epoch (the etcd create revision
    -- of the camera's owner key) the run was recorded under, and whether any of it was recorded
    -- past this recorder's fencing deadline (unfenced: a peer may have recorded the same time).
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    unfenced INTEGER NOT NULL DEFAULT 0
);
"""


# Version 5: the camera clock over time (native source: RTCP sender reports), for export manifests.
_V5_CAMERA_CLOCK = """
CREATE TABLE IF NOT EXISTS camera_clock (
    -- The camera's own clock against the recorder's, from its RTCP sender reports (native source):
    -- one row when the status changes and at most one a minute while it holds.
    camera_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'offset', 'stepped', 'unknown')),
    offset_ns INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS camera_clock_camera_time ON camera_clock(camera_id, time_ns);
"""


def _to_v4(conn: sqlite3.Connection) -> None:
    for statement in statements(_V4_SITE_RUNS):
        conn.execute(statement)


def _to_v5(conn: sqlite3.Connection) -> None:
    for statement in statements(_V5_CAMERA_CLOCK):
        conn.execute(statement)


MIGRATIONS = (
    Migration(
        2,
        "segment ids never reused: rebuild the segments table with AUTOINCREMENT (ids kept) where it "
        "lacks it; add the tables of holds, API cameras and function checks where missing",
        _to_v2,
    ),
    Migration(3, "add the events table (the event stream's resumable window, [events] keep)", _to_v3),
    Migration(4, "add the site_runs table (the ownership epoch of runs recorded as a member of a site)", _to_v4),
    Migration(5, "add the camera_clock table (each camera's clock offset over time, source = native)", _to_v5),
)
