"""The SQLite catalogue: the truth about what is recorded, what is missing, and why.

Tables:
  cameras   every camera ever recorded (kept after a camera is removed from the config)
  runs      a continuous recording session of one camera (connect → disconnect/stall/step/stop)
  segments  one row per segment file; state 'writing' (intent: the file exists and is being
            appended), 'complete' (closed, hashed, fsynced) or 'garbage' (being deleted)
  gaps      every interval without footage, with its reason; at most one open (end_ns NULL) per
            camera, closed when recording resumes
  holds, hold_cameras  evidence holds: cameras + range + case; footage they cover is never erased
  api_cameras  camera definitions added over the control plane (config-file cameras live in the
            config file)
  erased_segments  tombstones of deleted segments (range, hash, chain link, reason), so the
            per-camera hash chain stays verifiable across erasures

Times are integer nanoseconds since the epoch (UTC). All methods are thread-safe (one connection
behind a lock: writes are rare — a few per segment — and reads are indexed). Every write commits
with synchronous=FULL, because a catalogue row must never claim footage that is not on disk.

Longer than our ~450-line guide on purpose: this is the one place that holds SQL for catalogue.db
(schema, row types and every query), so a schema change is reviewed in one file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from vmsd.storage import catalogue_migrations, schema
from vmsd.storage.errors import sqlite_errors
from vmsd.units import NS_PER_S

# Version 2: segment ids are never reused (catalogue_migrations.py has every step from version 1).
SCHEMA_VERSION = 5
GENESIS_SHA256 = "0" * 64
# Segments rotate at most every hour (config: segment_duration ≤ 1h), at the next keyframe; no
# camera's GOP is anywhere near 5 h, so no segment is longer than this.
MAX_SEGMENT_NS = 6 * 3600 * NS_PER_S

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cameras (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    first_seen_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    end_reason TEXT
);
CREATE INDEX IF NOT EXISTS runs_camera_start ON runs(camera_id, start_ns);
CREATE TABLE IF NOT EXISTS segments (
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
CREATE INDEX IF NOT EXISTS segments_camera_start ON segments(camera_id, start_ns);
CREATE INDEX IF NOT EXISTS segments_state ON segments(state) WHERE state != 'complete';
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS gaps_camera_start ON gaps(camera_id, start_ns);
CREATE TABLE IF NOT EXISTS erased_segments (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    erased_ns INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS erased_camera_start ON erased_segments(camera_id, start_ns);
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
CREATE TABLE IF NOT EXISTS api_cameras (
    id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
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
CREATE TABLE IF NOT EXISTS events (
    -- Sequence numbers are handed out by the event bus (vmsd.events.bus), never reused.
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    camera_id TEXT NOT NULL DEFAULT '',
    fields_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
CREATE TABLE IF NOT EXISTS site_runs (
    -- Runs recorded as a member of a site ([site]): the ownership epoch (the etcd create revision
    -- of the camera's owner key) the run was recorded under, and whether any of it was recorded
    -- past this recorder's fencing deadline (unfenced: a peer may have recorded the same time).
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    unfenced INTEGER NOT NULL DEFAULT 0
);
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

SCHEMA = schema.SchemaSpec("catalogue", SCHEMA_VERSION, _SCHEMA, catalogue_migrations.MIGRATIONS)


class SegmentState(StrEnum):
    """A segment row's state (segments.state; see the module docstring)."""

    WRITING = "writing"
    COMPLETE = "complete"
    GARBAGE = "garbage"


class GapReason(StrEnum):
    """Why a gap exists. Stored as text (gaps.reason, runs.end_reason) so that reports read
    naturally, and sent as that text on the wire: the values never change."""

    CAMERA_OFFLINE = "camera_offline"  # could not connect / connection lost
    STALL = "stall"  # connected but no video for stall_timeout
    RESTART = "restart"  # the recorder was stopped cleanly and started again
    CRASH = "crash"  # the recorder died; footage after the last complete fragment is lost
    CLOCK_STEP = "clock_step"  # the wall clock stepped; time before/after is not continuous
    STREAM_ERROR = "stream_error"  # undecodable stream / muxing failure
    STORAGE_ERROR = "storage_error"  # could not write (disk full, I/O error)
    FAILOVER = "failover"  # a site peer took over (or handed back) the camera; footage is on the other recorder
    DISABLED = "camera_disabled"
    UNKNOWN = "unknown"  # found by --rebuild-index, original reason lost


@dataclass(frozen=True)
class SiteRunRow:
    """A run recorded as a member of a site: its ownership epoch and whether it was fenced throughout."""

    id: int
    camera_id: str
    start_ns: int
    end_ns: int | None
    end_reason: str | None
    epoch: int
    unfenced: bool


@dataclass(frozen=True)
class SegmentRow:
    id: int
    camera_id: str
    run_id: int | None
    state: SegmentState
    path: str
    start_ns: int
    end_ns: int | None
    bytes: int | None
    sha256: str | None
    prev_sha256: str
    video_codec: str
    width: int
    height: int
    has_audio: bool
    frames: int | None


@dataclass(frozen=True)
class HoldRow:
    id: int
    camera_ids: tuple[str, ...]
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    created_by: str
    created_ns: int
    until_ns: int | None
    released_ns: int | None
    released_by: str | None
    release_reason: str | None

    def active(self, now_ns: int) -> bool:
        """Protecting footage now: not released and not past its expiry date."""
        return self.released_ns is None and (self.until_ns is None or now_ns < self.until_ns)

    def covers(self, camera_id: str, start_ns: int, end_ns: int) -> bool:
        return camera_id in self.camera_ids and self.start_ns < end_ns and start_ns < self.end_ns


@dataclass(frozen=True)
class GapRow:
    id: int
    camera_id: str
    start_ns: int
    end_ns: int | None
    reason: str
    detail: str


@dataclass(frozen=True)
class ErasedRow:
    id: int
    camera_id: str
    start_ns: int
    end_ns: int
    bytes: int
    sha256: str
    prev_sha256: str
    erased_ns: int
    reason: str


_SEGMENT_COLUMNS = (
    "id, camera_id, run_id, state, path, start_ns, end_ns, bytes, sha256, prev_sha256, "
    "video_codec, width, height, has_audio, frames"
)


# Small rows as named tuples: typed fields, and callers that unpack them keep working.
class ApiCameraRow(NamedTuple):
    camera_id: str
    spec_json: str


class OpenRun(NamedTuple):
    run_id: int
    camera_id: str
    start_ns: int


class SegmentStats(NamedTuple):
    """One complete segment's size, length and frame count (the function checks' baseline)."""

    bytes: int
    duration_ns: int
    frames: int


class StoredEvent(NamedTuple):
    """One event of the event stream as stored: `fields_json` is a JSON object of its fields."""

    seq: int
    time_ns: int
    kind: str
    camera_id: str
    fields_json: str


class CameraClockRow(NamedTuple):
    """A camera-clock reading as stored (camera_clock table)."""

    time_ns: int
    status: str
    offset_ns: int | None
    reason: str


class StoredCheck(NamedTuple):
    """A stored function-check report."""

    id: int
    report_json: str


def _segment(row: tuple[Any, ...]) -> SegmentRow:
    values = list(row)
    values[3] = SegmentState(values[3])
    values[13] = bool(values[13])
    return SegmentRow(*values)


# Statements more than one method runs (each within its own transaction or a shared one).
_LATEST_SEGMENT_WHERE = "WHERE camera_id=? AND state != 'garbage' ORDER BY start_ns DESC, id DESC LIMIT 1"
_CLOSE_OPEN_GAP = "UPDATE gaps SET end_ns=max(start_ns, ?) WHERE camera_id=? AND end_ns IS NULL"
_INSERT_OPEN_GAP = "INSERT INTO gaps(camera_id, start_ns, reason, detail) VALUES (?, ?, ?, ?)"


class Catalogue:
    """The SQLite catalogue. `open()` does the I/O; the constructor only remembers the path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        # The copy made before migrating at the last open (None when nothing was migrated).
        self.backup_path: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        # 0600: API-added cameras' URLs, credentials included, are stored here. A read-only or
        # failing filesystem is a StorageError here too, as it is for every write.
        with sqlite_errors():
            conn = schema.connect(self.path)
        try:
            with sqlite_errors():
                # Migrations run before foreign keys are enforced: a table rebuild needs them off.
                self.backup_path = schema.upgrade(conn, self.path, SCHEMA)
                conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One immediate transaction (taken under the lock so threads never interleave)."""
        with self._lock, sqlite_errors():
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL among them); a
                # second ROLLBACK would fail and hide the error that matters.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("catalogue is not open")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, sqlite_errors():
            return self._require().execute(sql, params).fetchall()

    # -- meta & cameras ----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE key=?", (key,))

    def upsert_camera(self, camera_id: str, name: str, location: str, now_ns: int) -> None:
        self.upsert_cameras([(camera_id, name, location)], now_ns)

    def upsert_cameras(self, cameras: list[tuple[str, str, str]], now_ns: int) -> None:
        """Register (id, name, location) of many cameras in one transaction: one fsync, not one
        per camera, which is what kept a start-up with a hundred cameras waiting on the disk."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO cameras(id, name, location, first_seen_ns) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, location=excluded.location",
                [(camera_id, name, location, now_ns) for camera_id, name, location in cameras],
            )

    def camera_ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM cameras ORDER BY id")]

    def put_api_camera(self, camera_id: str, spec_json: str, now_ns: int) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO api_cameras(id, spec_json, updated_ns) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET spec_json=excluded.spec_json, updated_ns=excluded.updated_ns",
                (camera_id, spec_json, now_ns),
            )

    def delete_api_camera(self, camera_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM api_cameras WHERE id=?", (camera_id,))

    def api_cameras(self) -> list[ApiCameraRow]:
        return [ApiCameraRow(r[0], r[1]) for r in self._query("SELECT id, spec_json FROM api_cameras ORDER BY id")]

    # -- runs --------------------------------------------------------------------------------

    def begin_run(self, camera_id: str, start_ns: int, *, epoch: int | None = None, unfenced: bool = False) -> int:
        """A new run; `epoch` (with [site]) is the ownership epoch it is recorded under."""
        with self._tx() as conn:
            cursor = conn.execute("INSERT INTO runs(camera_id, start_ns) VALUES (?, ?)", (camera_id, start_ns))
            run_id = int(cursor.lastrowid or 0)
            if epoch is not None:
                conn.execute(
                    "INSERT INTO site_runs(run_id, epoch, unfenced) VALUES (?, ?, ?)", (run_id, epoch, int(unfenced))
                )
            return run_id

    def mark_runs_unfenced(self, run_id: int | None = None) -> int:
        """Mark one site run, or (run_id None) every open site run, as recorded unfenced; returns how many changed."""
        query = "UPDATE site_runs SET unfenced=1 WHERE unfenced=0 AND "
        with self._tx() as conn:
            if run_id is not None:
                return conn.execute(query + "run_id=?", (run_id,)).rowcount
            return conn.execute(query + "run_id IN (SELECT id FROM runs WHERE end_ns IS NULL)").rowcount

    def site_runs(self, camera_id: str) -> list[SiteRunRow]:
        """The camera's runs recorded as a site member, oldest first."""
        rows = self._query(
            "SELECT r.id, r.camera_id, r.start_ns, r.end_ns, r.end_reason, s.epoch, s.unfenced FROM runs r "
            "JOIN site_runs s ON s.run_id = r.id WHERE r.camera_id=? ORDER BY r.start_ns, r.id",
            (camera_id,),
        )
        return [SiteRunRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]

    def unfenced_run_count(self) -> int:
        return int(self._query("SELECT count(*) FROM site_runs WHERE unfenced=1")[0][0])

    def end_run(self, run_id: int, end_ns: int, reason: GapReason) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE runs SET end_ns=?, end_reason=? WHERE id=?", (end_ns, reason, run_id))

    def open_runs(self) -> list[OpenRun]:
        return [
            OpenRun(r[0], r[1], r[2])
            for r in self._query("SELECT id, camera_id, start_ns FROM runs WHERE end_ns IS NULL")
        ]

    # -- segments ----------------------------------------------------------------------------

    def insert_writing_segment(
        self,
        *,
        camera_id: str,
        run_id: int | None,
        path: str,
        start_ns: int,
        prev_sha256: str,
        video_codec: str,
        width: int,
        height: int,
        has_audio: bool,
    ) -> int:
        """Record the intent to write `path` (the file already exists and its directory is synced)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO segments(camera_id, run_id, state, path, start_ns, prev_sha256, video_codec, "
                "width, height, has_audio) VALUES (?, ?, 'writing', ?, ?, ?, ?, ?, ?, ?)",
                (camera_id, run_id, path, start_ns, prev_sha256, video_codec, width, height, int(has_audio)),
            )
            return int(cursor.lastrowid or 0)

    def insert_complete_segment(
        self,
        *,
        camera_id: str,
        run_id: int | None,
        path: str,
        start_ns: int,
        end_ns: int,
        nbytes: int,
        sha256: str,
        prev_sha256: str,
        video_codec: str,
        width: int,
        height: int,
        has_audio: bool,
        frames: int,
    ) -> int:
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO segments(camera_id, run_id, state, path, start_ns, end_ns, bytes, sha256, prev_sha256, "
                "video_codec, width, height, has_audio, frames) "
                "VALUES (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    camera_id,
                    run_id,
                    path,
                    start_ns,
                    end_ns,
                    nbytes,
                    sha256,
                    prev_sha256,
                    video_codec,
                    width,
                    height,
                    int(has_audio),
                    frames,
                ),
            )
            return int(cursor.lastrowid or 0)

    def complete_segment(self, segment_id: int, *, end_ns: int, nbytes: int, sha256: str, frames: int) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE segments SET state='complete', end_ns=?, bytes=?, sha256=?, frames=? WHERE id=?",
                (end_ns, nbytes, sha256, frames, segment_id),
            )

    def segment(self, segment_id: int) -> SegmentRow | None:
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE id=?", (segment_id,))
        return _segment(rows[0]) if rows else None

    def segments_in_state(self, state: SegmentState) -> list[SegmentRow]:
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE state=? ORDER BY id", (state,))
        return [_segment(r) for r in rows]

    def last_segment(self, camera_id: str) -> SegmentRow | None:
        """The camera's latest segment (by start time), whatever its state."""
        rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments {_LATEST_SEGMENT_WHERE}", (camera_id,))
        return _segment(rows[0]) if rows else None

    def segments(self, camera_id: str | None = None) -> list[SegmentRow]:
        if camera_id is None:
            rows = self._query(f"SELECT {_SEGMENT_COLUMNS} FROM segments ORDER BY camera_id, start_ns, id")
        else:
            rows = self._query(
                f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE camera_id=? ORDER BY start_ns, id", (camera_id,)
            )
        return [_segment(r) for r in rows]

    def segments_in_range(self, camera_id: str, start_ns: int, end_ns: int) -> list[SegmentRow]:
        """Complete or writing segments overlapping [start_ns, end_ns), in time order.

        The lower bound on start_ns (no segment is longer than MAX_SEGMENT_NS) lets SQLite walk
        only the index range that can overlap, not the camera's whole history.
        """
        rows = self._query(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE camera_id=? AND start_ns > ? AND start_ns < ? "
            "AND state != 'garbage' AND (end_ns IS NULL OR end_ns > ?) ORDER BY start_ns, id",
            (camera_id, start_ns - MAX_SEGMENT_NS, end_ns, start_ns),
        )
        return [_segment(r) for r in rows]

    def recorded_islands(
        self, camera_id: str, start_ns: int, end_ns: int, now_ns: int
    ) -> list[tuple[int, int, int, int, str, int, int, int]]:
        """Runs of contiguous segments overlapping the range, merged by SQLite (a segment being
        written counts up to now_ns): (start_ns, end_ns, segments, bytes, video_codec, width,
        height, has_audio) of each run, in time order, unclipped. Search hot path: no per-segment
        Python objects.
        """
        return [
            tuple(r)
            for r in self._query(
                """
                WITH s AS (
                    SELECT start_ns, COALESCE(end_ns, max(start_ns, ?)) AS end_ns, COALESCE(bytes, 0) AS bytes,
                           video_codec, width, height, has_audio,
                           CASE WHEN start_ns = LAG(COALESCE(end_ns, max(start_ns, ?))) OVER (ORDER BY start_ns)
                                THEN 0 ELSE 1 END AS starts_run
                    FROM segments
                    WHERE camera_id = ? AND start_ns > ? AND start_ns < ? AND state != 'garbage'
                      AND (end_ns IS NULL OR end_ns > ?)
                ), r AS (
                    SELECT *, SUM(starts_run) OVER (ORDER BY start_ns ROWS UNBOUNDED PRECEDING) AS run FROM s
                )
                SELECT MIN(start_ns), MAX(end_ns), COUNT(*), SUM(bytes), video_codec, width, height, has_audio
                FROM r GROUP BY run ORDER BY MIN(start_ns)
                """,
                (now_ns, now_ns, camera_id, start_ns - MAX_SEGMENT_NS, end_ns, start_ns),
            )
        ]

    def insert_segments_bulk(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert many complete segments in one transaction (index rebuilds, benchmarks).

        Each row: (camera_id, run_id, path, start_ns, end_ns, bytes, sha256, prev_sha256,
        video_codec, width, height, has_audio, frames).
        """
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO segments(camera_id, run_id, state, path, start_ns, end_ns, bytes, sha256, prev_sha256, "
                "video_codec, width, height, has_audio, frames) "
                "VALUES (?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def mark_garbage(self, segment_id: int) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE segments SET state='garbage' WHERE id=?", (segment_id,))

    def delete_segment(self, segment_id: int, *, erased_ns: int, reason: str) -> None:
        """Drop a segment row, leaving a tombstone so the hash chain can still be verified."""
        with self._tx() as conn:
            row = conn.execute(f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE id=?", (segment_id,)).fetchone()
            if row is None:
                return
            seg = _segment(row)
            if seg.sha256 is not None and seg.end_ns is not None:
                conn.execute(
                    "INSERT INTO erased_segments(camera_id, start_ns, end_ns, bytes, sha256, prev_sha256, "
                    "erased_ns, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        seg.camera_id,
                        seg.start_ns,
                        seg.end_ns,
                        seg.bytes or 0,
                        seg.sha256,
                        seg.prev_sha256,
                        erased_ns,
                        reason,
                    ),
                )
            conn.execute("DELETE FROM segments WHERE id=?", (segment_id,))

    def erased_segments(self, camera_id: str) -> list[ErasedRow]:
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, bytes, sha256, prev_sha256, erased_ns, reason "
            "FROM erased_segments WHERE camera_id=? ORDER BY start_ns, id",
            (camera_id,),
        )
        return [ErasedRow(*r) for r in rows]

    def last_erased(self, camera_id: str) -> ErasedRow | None:
        """The camera's latest erased segment (by start time)."""
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, bytes, sha256, prev_sha256, erased_ns, reason "
            "FROM erased_segments WHERE camera_id=? ORDER BY start_ns DESC, id DESC LIMIT 1",
            (camera_id,),
        )
        return ErasedRow(*rows[0]) if rows else None

    def update_segment_chain(self, segment_id: int, prev_sha256: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE segments SET prev_sha256=? WHERE id=?", (prev_sha256, segment_id))

    # -- retention ----------------------------------------------------------------------------

    def expired_segments(self, camera_id: str, cutoff_ns: int, limit: int) -> list[SegmentRow]:
        """Complete segments of a camera that ended at or before cutoff_ns, oldest first."""
        rows = self._query(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE camera_id=? AND start_ns < ? AND state='complete' "
            "AND end_ns <= ? ORDER BY start_ns, id LIMIT ?",
            (camera_id, cutoff_ns, cutoff_ns, limit),
        )
        return [_segment(r) for r in rows]

    def oldest_segments(self, limit: int, after: tuple[int, int] = (-1, -1)) -> list[SegmentRow]:
        """Complete segments of all cameras in start order, after (start_ns, id) — for shedding."""
        rows = self._query(
            f"SELECT {_SEGMENT_COLUMNS} FROM segments WHERE state='complete' AND (start_ns, id) > (?, ?) "
            "ORDER BY start_ns, id LIMIT ?",
            (after[0], after[1], limit),
        )
        return [_segment(r) for r in rows]

    def newest_footage_end_ns(self) -> int | None:
        rows = self._query("SELECT max(end_ns) FROM segments WHERE state='complete'")
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def erased_in_range(self, since_ns: int, until_ns: int) -> list[ErasedRow]:
        """Erasure tombstones by when they were erased (the disposition log)."""
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, bytes, sha256, prev_sha256, erased_ns, reason "
            "FROM erased_segments WHERE erased_ns >= ? AND erased_ns < ? ORDER BY erased_ns, id",
            (since_ns, until_ns),
        )
        return [ErasedRow(*r) for r in rows]

    def erased_overlapping(self, camera_id: str, start_ns: int, end_ns: int) -> list[ErasedRow]:
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, bytes, sha256, prev_sha256, erased_ns, reason "
            "FROM erased_segments WHERE camera_id=? AND start_ns < ? AND end_ns > ? ORDER BY start_ns, id",
            (camera_id, end_ns, start_ns),
        )
        return [ErasedRow(*r) for r in rows]

    # -- holds --------------------------------------------------------------------------------

    def add_hold(
        self,
        *,
        camera_ids: list[str],
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        created_by: str,
        created_ns: int,
        until_ns: int | None,
    ) -> int:
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO holds(start_ns, end_ns, case_ref, reason, created_by, created_ns, until_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (start_ns, end_ns, case_ref, reason, created_by, created_ns, until_ns),
            )
            hold_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO hold_cameras(hold_id, camera_id) VALUES (?, ?)", [(hold_id, c) for c in camera_ids]
            )
            return hold_id

    def release_hold(self, hold_id: int, *, released_ns: int, released_by: str, reason: str) -> bool:
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE holds SET released_ns=?, released_by=?, release_reason=? WHERE id=? AND released_ns IS NULL",
                (released_ns, released_by, reason, hold_id),
            )
            return cursor.rowcount == 1

    def holds(self, *, include_released: bool = True) -> list[HoldRow]:
        where = "" if include_released else "WHERE h.released_ns IS NULL"
        rows = self._query(
            "SELECT h.id, group_concat(c.camera_id, char(31)), h.start_ns, h.end_ns, h.case_ref, h.reason, "
            "h.created_by, h.created_ns, h.until_ns, h.released_ns, h.released_by, h.release_reason "
            f"FROM holds h JOIN hold_cameras c ON c.hold_id = h.id {where} GROUP BY h.id ORDER BY h.id"
        )
        return [HoldRow(r[0], tuple(sorted(str(r[1]).split(chr(31)))), *r[2:]) for r in rows]

    def hold(self, hold_id: int) -> HoldRow | None:
        return next((h for h in self.holds() if h.id == hold_id), None)

    # -- gaps --------------------------------------------------------------------------------

    def open_gap(self, camera_id: str, start_ns: int, reason: GapReason, detail: str = "") -> None:
        """Start a gap unless one is already open for the camera (the first cause wins)."""
        with self._tx() as conn:
            exists = conn.execute("SELECT 1 FROM gaps WHERE camera_id=? AND end_ns IS NULL", (camera_id,)).fetchone()
            if not exists:
                conn.execute(_INSERT_OPEN_GAP, (camera_id, start_ns, reason, detail))

    def close_gap(self, camera_id: str, end_ns: int) -> None:
        """End the camera's open gap at `end_ns` (a no-op when none is open)."""
        with self._tx() as conn:
            conn.execute(_CLOSE_OPEN_GAP, (end_ns, camera_id))

    def open_failover_gaps(self, holes: list[tuple[str, int, str]]) -> None:
        """Open a `failover` gap for each (camera_id, start_ns, detail), in one transaction: the
        cameras a recorder takes over from a lost peer. A hole never starts inside footage this
        recorder holds (it starts at its last segment's end at the earliest), and a gap this
        recorder left open when it last recorded the camera (a crash, a move away) ends there:
        from there on the hole is the lost owner's."""
        with self._tx() as conn:
            for camera_id, hole_start_ns, detail in holes:
                last = conn.execute(f"SELECT end_ns FROM segments {_LATEST_SEGMENT_WHERE}", (camera_id,)).fetchone()
                start_ns = max(hole_start_ns, last[0]) if last is not None and last[0] is not None else hole_start_ns
                conn.execute(_CLOSE_OPEN_GAP, (start_ns, camera_id))
                conn.execute(_INSERT_OPEN_GAP, (camera_id, start_ns, GapReason.FAILOVER, detail))

    def insert_gap(
        self, camera_id: str, start_ns: int, end_ns: int | None, reason: GapReason, detail: str = ""
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO gaps(camera_id, start_ns, end_ns, reason, detail) VALUES (?, ?, ?, ?, ?)",
                (camera_id, start_ns, end_ns, reason, detail),
            )

    def open_gap_for(self, camera_id: str) -> GapRow | None:
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, reason, detail FROM gaps WHERE camera_id=? AND end_ns IS NULL",
            (camera_id,),
        )
        return GapRow(*rows[0]) if rows else None

    def gaps(self, camera_id: str) -> list[GapRow]:
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, reason, detail FROM gaps WHERE camera_id=? ORDER BY start_ns, id",
            (camera_id,),
        )
        return [GapRow(*r) for r in rows]

    def gaps_in_range(self, camera_id: str, start_ns: int, end_ns: int) -> list[GapRow]:
        rows = self._query(
            "SELECT id, camera_id, start_ns, end_ns, reason, detail FROM gaps WHERE camera_id=? "
            "AND start_ns < ? AND (end_ns IS NULL OR end_ns > ?) ORDER BY start_ns, id",
            (camera_id, end_ns, start_ns),
        )
        return [GapRow(*r) for r in rows]

    def segment_stats(self, camera_id: str, since_ns: int, limit: int) -> list[SegmentStats]:
        """Bytes, duration and frames of the camera's newest complete segments since `since_ns`."""
        rows = self._query(
            "SELECT bytes, end_ns - start_ns, COALESCE(frames, 0) FROM segments WHERE camera_id=? "
            "AND state='complete' AND start_ns >= ? AND end_ns > start_ns ORDER BY start_ns DESC LIMIT ?",
            (camera_id, since_ns, limit),
        )
        return [SegmentStats(int(r[0] or 0), int(r[1]), int(r[2])) for r in rows]

    # -- function checks ---------------------------------------------------------------------

    def add_function_check(
        self, *, started_ns: int, finished_ns: int, trigger: str, requested_by: str, verdict: str, report_json: str
    ) -> int:
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO function_checks(started_ns, finished_ns, trigger, requested_by, verdict, report_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (started_ns, finished_ns, trigger, requested_by, verdict, report_json),
            )
            return int(cursor.lastrowid or 0)

    def function_check(self, check_id: int | None = None) -> StoredCheck | None:
        """One stored check, or of the newest when `check_id` is None."""
        if check_id is None:
            rows = self._query("SELECT id, report_json FROM function_checks ORDER BY id DESC LIMIT 1")
        else:
            rows = self._query("SELECT id, report_json FROM function_checks WHERE id=?", (check_id,))
        return StoredCheck(int(rows[0][0]), str(rows[0][1])) if rows else None

    def function_checks(self, limit: int, before_id: int = 0) -> list[StoredCheck]:
        """Stored checks, newest first; only ids below `before_id` when it is not 0."""
        rows = self._query(
            "SELECT id, report_json FROM function_checks WHERE ? = 0 OR id < ? ORDER BY id DESC LIMIT ?",
            (before_id, before_id, limit),
        )
        return [StoredCheck(int(r[0]), str(r[1])) for r in rows]

    # -- events ------------------------------------------------------------------------------

    def insert_events(self, rows: list[tuple[int, int, str, str, str]]) -> None:
        """Store events (seq, time_ns, kind, camera_id, fields_json) in one transaction."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO events(seq, time_ns, kind, camera_id, fields_json) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    def events_after(self, after_seq: int, *, limit: int) -> list[StoredEvent]:
        """Stored events with a sequence number above `after_seq`, oldest first."""
        rows = self._query(
            "SELECT seq, time_ns, kind, camera_id, fields_json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [StoredEvent(*r) for r in rows]

    def event_seq_bounds(self) -> tuple[int, int]:
        """(lowest, highest) stored sequence number, (0, 0) when none is stored."""
        row = self._query("SELECT COALESCE(min(seq), 0), COALESCE(max(seq), 0) FROM events")[0]
        return int(row[0]), int(row[1])

    def prune_events(self, before_ns: int) -> int:
        """Delete events older than `before_ns`; return the highest sequence number ever pruned
        (remembered in meta, so that a resume from before it is refused even once the table is empty)."""
        with self._tx() as conn:
            (highest,) = conn.execute(
                "SELECT COALESCE(max(seq), 0) FROM events WHERE time_ns < ?", (before_ns,)
            ).fetchone()
            row = conn.execute("SELECT value FROM meta WHERE key='events_pruned_through'").fetchone()
            through = max(int(row[0]) if row else 0, int(highest))
            if highest:
                conn.execute("DELETE FROM events WHERE seq <= ?", (highest,))
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('events_pruned_through', ?)", (str(through),)
                )
            return through

    # -- camera clock -------------------------------------------------------------------------

    def add_camera_clock(self, camera_id: str, time_ns: int, status: str, offset_ns: int | None, reason: str) -> None:
        """One camera-clock reading (recorder wall time `time_ns`)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO camera_clock(camera_id, time_ns, status, offset_ns, reason) VALUES (?, ?, ?, ?, ?)",
                (camera_id, time_ns, status, offset_ns, reason),
            )

    def camera_clock_in_range(self, camera_id: str, start_ns: int, end_ns: int) -> list[CameraClockRow]:
        """The readings that applied during [start_ns, end_ns): the last one before it, then
        every one inside it, oldest first."""
        rows = self._query(
            "SELECT time_ns, status, offset_ns, reason FROM ("
            " SELECT * FROM (SELECT * FROM camera_clock WHERE camera_id=? AND time_ns < ?"
            "  ORDER BY time_ns DESC LIMIT 1)"
            " UNION ALL SELECT * FROM camera_clock WHERE camera_id=? AND time_ns >= ? AND time_ns < ?"
            ") ORDER BY time_ns",
            (camera_id, start_ns, camera_id, start_ns, end_ns),
        )
        return [CameraClockRow(int(r[0]), str(r[1]), None if r[2] is None else int(r[2]), str(r[3])) for r in rows]

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])
