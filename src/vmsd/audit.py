"""The audit log: who touched which footage, when, why, and with what outcome — tamper-evident.

In the spirit of the UK DPA 2018 s.62 logging duty, every access to recorded or live footage,
every hold, export and erasure, every configuration change and every denial is one record. The
log lives in its own SQLite file (WAL, synchronous=FULL): `append()` returns only after the
record's commit is fsynced.

Tamper evidence. Each record stores `prev_hash` (the previous record's hash; 64 zeros for the
first) and `hash` = sha256 of a canonical JSON encoding of all its other fields, so `verify()`
detects, naming the seq:
  - an edited field (hash mismatch),
  - a deleted record in the middle (a hole in seq, which starts at 1 and never skips),
  - an inserted, renumbered or reordered record (a broken prev_hash link or a hash mismatch),
  - deleted trailing records: the chain alone cannot see these, so the head (seq, hash) is also
    kept in the `anchor` table (same transaction) and, when `anchor_path` is given, in a small
    file elsewhere (rewritten atomically after every append). A head behind either is truncation.
`open()` compares the head with both anchors before anything new is appended (appending would
move the anchors and erase the evidence); a mismatch becomes an `audit.tamper_detected` record in
the chain itself, and `verify()` reports every such record, so the finding cannot be lost by a
restart.

Not detectable: someone able to rewrite the whole database *and* both anchors consistently can
forge any history (the chain is unkeyed; there is no secret here to protect). That is why each
record's seq and hash also go to the journal (structured log, component=audit): shipped off the
box, it is an independent witness to compare with `head()`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmsd.clock import Clock
from vmsd.files import PRIVATE_FILE_MODE, open_dir
from vmsd.log import get_logger
from vmsd.storage.audit_db import open_audit_db
from vmsd.storage.errors import sqlite_errors

GENESIS = "0" * 64
ACTION_TAMPER_DETECTED = "audit.tamper_detected"

_log = get_logger(component="audit")


@dataclass(frozen=True)
class AuditEntry:
    """What a caller records. `detail` must be JSON-serialisable (ValueError otherwise)."""

    action: str  # e.g. "/vmsd.v1.RecordingService/Play", "retention.erase", "camera.add"
    principal: str  # token name, or "vmsd" for the daemon itself
    role: str = ""
    peer: str = ""
    camera_id: str = ""
    start_ns: int = 0  # time range touched (0/0 when none)
    end_ns: int = 0
    reason: str = ""
    case_ref: str = ""
    outcome: str = "OK"  # gRPC status name
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One stored record; field order is the column order."""

    seq: int
    time_ns: int
    action: str
    principal: str
    role: str
    peer: str
    camera_id: str
    start_ns: int
    end_ns: int
    reason: str
    case_ref: str
    outcome: str
    detail_json: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilters:
    """What an audit query asks for, as a client states it (QueryAudit's filters): passed on
    unchanged to the other recorders of a site, each of which applies them to its own trail."""

    since_ns: int = 0
    until_ns: int = 0
    camera_id: str = ""
    principal: str = ""
    action: str = ""  # exact, or a prefix when it ends in "*"
    outcome: str = ""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records_checked: int
    head_hash: str
    first_problem: str  # "" when ok


_COLUMNS = ", ".join(f.name for f in dataclasses.fields(AuditRecord))
_PLACEHOLDERS = ", ".join("?" for _ in dataclasses.fields(AuditRecord))


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(record: AuditRecord) -> str:
    """sha256 (hex) of the canonical encoding of every field except `hash` (prev_hash included)."""
    fields = {k: v for k, v in dataclasses.asdict(record).items() if k != "hash"}
    return hashlib.sha256(_canonical_json(fields).encode("utf-8")).hexdigest()


def _check_entry(entry: AuditEntry) -> str:
    """Validate field types (the hash must be recomputable from what SQLite gives back); return detail_json."""
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        want: type = int if f.name.endswith("_ns") else Mapping if f.name == "detail" else str
        if not isinstance(value, want) or isinstance(value, bool):
            raise ValueError(f"audit entry field {f.name!r} must be {want.__name__}, not {type(value).__name__}")
    try:
        return _canonical_json(dict(entry.detail))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit entry detail is not JSON-serialisable: {exc}") from exc


class CameraMentions:
    """Finds records whose free text (detail, reason, case reference) names one of some cameras.

    A record about no camera may still list cameras (a function check's failing cameras, a
    message quoting an id); a reader scoped to other cameras must not learn of them. Camera ids
    use only [A-Za-z0-9._-], so a mention is the id with none of those characters either side.
    """

    def __init__(self, camera_ids: Collection[str]) -> None:
        ids = sorted(set(camera_ids), key=len, reverse=True)
        alternatives = "|".join(re.escape(i) for i in ids)
        self._pattern = re.compile(rf"(?<![A-Za-z0-9._-])(?:{alternatives})(?![A-Za-z0-9._-])") if ids else None

    def in_record(self, record: AuditRecord) -> bool:
        if self._pattern is None:
            return False
        return any(self._pattern.search(text) for text in (record.detail_json, record.reason, record.case_ref))


class AuditLog:
    """The hash-chained audit log. The constructor does no I/O; `open()` creates the schema.

    Thread-safe: one connection behind a lock for writes; `verify()` reads through its own
    connection from a consistent snapshot, so a long verification never holds up `append()`.
    """

    def __init__(self, path: Path, clock: Clock, anchor_path: Path | None = None) -> None:
        self.path = path
        self.anchor_path = anchor_path
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._head: tuple[int, str] = (0, GENESIS)
        # The anchor file's directory as opened: the file is written relative to it, so a storage
        # root replaced under the daemon (unmounted; the bare mount point on the system disk) never
        # gets an anchor there while the database, an open file, stays on the real one.
        self._anchor_dir_fd: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Create the schema, then check the head against both anchors (see the module docstring)."""
        conn = open_audit_db(self.path)
        if self.anchor_path is not None and self._anchor_dir_fd is None:
            self._anchor_dir_fd = open_dir(self.anchor_path.parent)
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        head = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        if head[0] == 0 and conn.execute("SELECT count(*) FROM anchor").fetchone()[0] == 0:
            conn.execute("INSERT INTO anchor(seq, hash) VALUES (0, ?)", (GENESIS,))  # a brand-new log
        file = self._read_anchor_file() if self.anchor_path is not None else None
        problem = self._anchor_problem(
            head,
            conn.execute("SELECT seq, hash FROM anchor").fetchall(),
            head if file is None and head[0] == 0 else file,  # a new log: the file is created below
            known=lambda a: conn.execute("SELECT hash FROM audit WHERE seq=?", (a[0],)).fetchone() == (a[1],),
        )
        with self._lock:
            self._conn, self._head = conn, head
        if problem:
            _log.error("audit log tampering detected", problem=problem)
            self.append(AuditEntry(ACTION_TAMPER_DETECTED, "vmsd", outcome="DATA_LOSS", detail={"problem": problem}))
        elif self.anchor_path is not None and file != head:
            self._write_anchor_file(head)  # missing on a new log, or one append behind after a crash

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._anchor_dir_fd is not None:
                os.close(self._anchor_dir_fd)
                self._anchor_dir_fd = None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("audit log is not open")
        return self._conn

    # -- writing -----------------------------------------------------------------------------

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Chain, store and fsync one record; return it. Raises ValueError for a bad entry.

        The next seq/prev_hash come from the in-memory head, not the table, so trailing records
        deleted behind the daemon's back show up as a hole rather than being silently re-used.
        """
        detail_json = _check_entry(entry)
        with self._lock:
            conn = self._require()
            seq, prev_hash = self._head[0] + 1, self._head[1]
            values = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry) if f.name != "detail"}
            unhashed = AuditRecord(
                seq=seq, time_ns=self._clock.wall_ns(), detail_json=detail_json, prev_hash=prev_hash, hash="", **values
            )
            record = dataclasses.replace(unhashed, hash=record_hash(unhashed))
            with sqlite_errors():  # e.g. StorageFull, which retention answers by freeing its reserve
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(f"INSERT INTO audit({_COLUMNS}) VALUES ({_PLACEHOLDERS})", dataclasses.astuple(record))
                    # Delete + insert rather than update, so an anchor row removed by hand is restored.
                    conn.execute("DELETE FROM anchor")
                    conn.execute("INSERT INTO anchor(seq, hash) VALUES (?, ?)", (seq, record.hash))
                except BaseException:
                    if conn.in_transaction:  # SQLite has already rolled back after e.g. SQLITE_FULL
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            self._head = (seq, record.hash)
            if self.anchor_path is not None:
                try:
                    self._write_anchor_file(self._head)
                except OSError:
                    # The record is durable; a stale anchor file shows in verify() until the next append.
                    _log.exception("could not write the external audit anchor", path=str(self.anchor_path))
        _log.info(
            "audit",
            seq=seq,
            hash=record.hash,
            action=entry.action,
            outcome=entry.outcome,
            principal=entry.principal,
            camera_id=entry.camera_id,
        )
        return record

    def _write_anchor_file(self, head: tuple[int, str]) -> None:
        assert self.anchor_path is not None and self._anchor_dir_fd is not None  # written only once open
        name, dir_fd = self.anchor_path.name, self._anchor_dir_fd
        tmp = name + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE, dir_fd=dir_fd)
        with open(fd, "w", encoding="ascii") as f:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            f.write(f"{head[0]} {head[1]}\n")
            f.flush()
            os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)

    def _read_anchor_file(self) -> tuple[int, str] | str | None:
        """(seq, hash); None when the file is missing; a description when it is unreadable."""
        assert self.anchor_path is not None and self._anchor_dir_fd is not None  # read only once open
        try:
            fd = os.open(self.anchor_path.name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._anchor_dir_fd)
            with open(fd, encoding="ascii") as f:
                seq, hash_ = f.read().split()
            return int(seq), hash_
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return f"external anchor {self.anchor_path} is unreadable: {exc}"

    # -- reading -----------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(last seq, last hash); (0, GENESIS) when empty."""
        with self._lock:
            self._require()
            return self._head

    def query(
        self,
        *,
        since_ns: int = 0,
        until_ns: int = 0,
        camera_ids: Collection[str] | None = None,
        include_uncameraed: bool = True,
        principal: str = "",
        actions: Collection[str] | None = None,
        action_prefix: str = "",
        outcome: str = "",
        limit: int = 1000,
        before_seq: int = 0,
    ) -> tuple[list[AuditRecord], bool]:
        """Records with since_ns <= time_ns < until_ns (0 = unbounded), oldest first.

        camera_ids=None: every camera; otherwise exactly those cameras, plus records about no
        camera (config changes, denials before a camera was named) when include_uncameraed.
        actions=None: every action; action_prefix: only actions that start with it (e.g. "/": the
        RPCs, not the daemon's own records such as one per erased segment). outcome: only records
        with that outcome ("OK", "PERMISSION_DENIED", …; "" = any). before_seq: only
        records with a smaller seq (0 = all), the cursor for reading the trail back page by page.
        When more than `limit` match, the NEWEST `limit` are returned and the flag is True.
        """
        if limit <= 0:
            raise ValueError("limit must be positive")
        where: list[str] = ["time_ns >= ?"]
        params: list[int | str] = [since_ns]
        if before_seq:
            where.append("seq < ?")
            params.append(before_seq)
        if until_ns:
            where.append("time_ns < ?")
            params.append(until_ns)
        if camera_ids is not None:
            cams = sorted(set(camera_ids))
            alternatives = [f"camera_id IN ({', '.join('?' * len(cams))})"] if cams else []
            alternatives += ["camera_id = ''"] if include_uncameraed else []
            if not alternatives:
                return [], False
            where.append(f"({' OR '.join(alternatives)})")
            params.extend(cams)
        if principal:
            where.append("principal = ?")
            params.append(principal)
        if actions is not None:
            if not actions:
                return [], False
            where.append(f"action IN ({', '.join('?' * len(actions))})")
            params.extend(actions)
        if action_prefix:
            where.append("substr(action, 1, ?) = ?")
            params.extend([len(action_prefix), action_prefix])
        if outcome:
            where.append("outcome = ?")
            params.append(outcome)
        sql = f"SELECT {_COLUMNS} FROM audit WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._require().execute(sql, (*params, limit + 1)).fetchall()
        records = [AuditRecord(*row) for row in rows[:limit]]
        records.reverse()
        return records, len(rows) > limit

    def verify(self) -> VerifyResult:
        """Recompute the whole chain and compare its head with both anchors; report the first problem."""
        with self._lock:
            self._require()
        reader = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            with self._lock:  # appends are serialised by this lock, so snapshot and file agree
                self._require()
                reader.execute("BEGIN")
                anchor_rows = reader.execute("SELECT seq, hash FROM anchor").fetchall()  # starts the snapshot
                anchor_file = self._read_anchor_file() if self.anchor_path is not None else None
            problem, tamper_found, checked, prev = "", "", 0, (0, GENESIS)
            for row in reader.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):
                record, checked = AuditRecord(*row), checked + 1
                if problem:
                    prev = (record.seq, record.hash)
                    continue
                if record.seq != prev[0] + 1:
                    missing = f"{prev[0] + 1}" + (f"..{record.seq - 1}" if record.seq > prev[0] + 2 else "")
                    problem = f"seq {missing} missing (record deleted)"
                elif record.prev_hash != prev[1]:
                    problem = f"seq {record.seq}: broken link to seq {prev[0]} (record inserted or reordered)"
                elif record_hash(record) != record.hash:
                    problem = f"seq {record.seq}: hash mismatch (record altered)"
                elif record.action == ACTION_TAMPER_DETECTED and not tamper_found:
                    tamper_found = f"seq {record.seq}: tampering detected at startup: {record.detail_json}"
                prev = (record.seq, record.hash)
            reader.execute("COMMIT")
        finally:
            reader.close()
        problem = problem or self._anchor_problem(prev, anchor_rows, anchor_file)
        problem = problem or tamper_found
        return VerifyResult(ok=not problem, records_checked=checked, head_hash=prev[1], first_problem=problem)

    def _anchor_problem(
        self,
        head: tuple[int, str],
        rows: list[Any],
        file: tuple[int, str] | str | None,
        known: Callable[[tuple[int, str]], bool] | None = None,
    ) -> str:
        """Compare a chain head with the anchor table rows and the anchor file; "" when they agree.

        An anchor *ahead* of the head means records were deleted. At open, `known` accepts a file
        *behind* the head that names a record of the chain: a crash between commit and rename
        leaves it so, and open() then brings it up to date.
        """
        if len(rows) != 1:
            return f"anchor table has {len(rows)} rows, expected 1"
        anchors: list[tuple[str, tuple[int, str] | str | None]] = [("anchor table", (rows[0][0], rows[0][1]))]
        if self.anchor_path is not None:
            anchors.append((f"external anchor {self.anchor_path}", file))
        for name, anchor in anchors:
            if anchor == head:
                continue
            if isinstance(anchor, str):
                return anchor
            if anchor is None:
                return f"{name} is missing (chain head is seq {head[0]})"
            if anchor[0] > head[0]:
                return f"truncated: {name} records seq {anchor[0]} but the chain ends at seq {head[0]}"
            if known is not None and name != "anchor table" and known(anchor):
                continue
            return f"{name} (seq {anchor[0]}, hash {anchor[1][:12]}…) does not match the chain head (seq {head[0]})"
        return ""
