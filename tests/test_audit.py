"""The audit log: append/query, durability across reopen, and tamper evidence (edits, holes,
insertions, truncation caught by the anchor table and by the external anchor file)."""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmsd.audit import ACTION_TAMPER_DETECTED, GENESIS, AuditEntry, AuditLog, AuditRecord, record_hash
from vmsd.clock import FakeClock

SECOND_NS = 1_000_000_000
PLAY = "/vmsd.v1.RecordingService/Play"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "audit").mkdir()
    (tmp_path / "catalogue").mkdir()
    return tmp_path / "audit" / "audit.db", tmp_path / "catalogue" / "audit.anchor"


@pytest.fixture
def log(paths: tuple[Path, Path], clock: FakeClock) -> Iterator[AuditLog]:
    audit = AuditLog(paths[0], clock, anchor_path=paths[1])
    audit.open()
    yield audit
    audit.close()


def fill(log: AuditLog, clock: FakeClock, n: int) -> list[AuditRecord]:
    """n records, one second apart, alternating cameras cam-a/cam-b, every third with no camera."""
    records = []
    for i in range(n):
        camera = "" if i % 3 == 2 else ("cam-a" if i % 2 == 0 else "cam-b")
        records.append(
            log.append(
                AuditEntry(
                    PLAY if camera else "camera.add",
                    f"user-{i % 2}",
                    role="operator",
                    peer="ipv4:127.0.0.1:5000",
                    camera_id=camera,
                    start_ns=i * SECOND_NS,
                    end_ns=(i + 1) * SECOND_NS,
                    reason=f"incident {i}",
                    detail={"bytes": i * 100},
                )
            )
        )
        clock.advance(SECOND_NS)
    return records


def sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    """Tamper with the database directly, as someone with file access would."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement, params)
    conn.close()


def test_append_returns_chained_records_with_clock_time(log: AuditLog, clock: FakeClock) -> None:
    start_ns = clock.wall_ns()
    records = fill(log, clock, 3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert [r.time_ns for r in records] == [start_ns, start_ns + SECOND_NS, start_ns + 2 * SECOND_NS]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash and records[2].prev_hash == records[1].hash
    assert all(record_hash(r) == r.hash for r in records)
    assert records[0].detail_json == '{"bytes":0}'
    assert log.head() == (3, records[2].hash)


def test_head_of_empty_log_is_genesis(log: AuditLog) -> None:
    assert log.head() == (0, GENESIS)
    result = log.verify()
    assert result.ok and result.records_checked == 0 and result.head_hash == GENESIS


def test_query_filters(log: AuditLog, clock: FakeClock) -> None:
    t0 = clock.wall_ns()
    fill(log, clock, 9)  # cameras: a b '' b a '' a b ''
    everything, truncated = log.query()
    assert [r.seq for r in everything] == list(range(1, 10)) and not truncated

    def seqs(**kwargs: object) -> list[int]:
        records, _ = log.query(**kwargs)  # type: ignore[arg-type]
        return [r.seq for r in records]

    assert seqs(since_ns=t0 + 3 * SECOND_NS) == [4, 5, 6, 7, 8, 9]
    assert seqs(since_ns=t0 + 3 * SECOND_NS, until_ns=t0 + 5 * SECOND_NS) == [4, 5]  # until is exclusive
    assert seqs(camera_ids=["cam-a"]) == [1, 3, 5, 6, 7, 9]  # uncameraed included by default
    assert seqs(camera_ids=["cam-a"], include_uncameraed=False) == [1, 5, 7]
    assert seqs(camera_ids=["cam-a", "cam-b"], include_uncameraed=False) == [1, 2, 4, 5, 7, 8]
    assert seqs(camera_ids=[]) == [3, 6, 9]
    assert seqs(camera_ids=[], include_uncameraed=False) == []
    assert seqs(principal="user-1") == [2, 4, 6, 8]
    assert seqs(actions=["camera.add"]) == [3, 6, 9]
    assert seqs(actions=[]) == []
    assert seqs(principal="user-0", actions=[PLAY], camera_ids=["cam-a"]) == [1, 5, 7]
    assert seqs(action_prefix="/") == [1, 2, 4, 5, 7, 8]  # the RPCs, not the daemon's own records
    assert seqs(action_prefix="camera.") == [3, 6, 9]
    assert seqs(action_prefix="%") == []  # a prefix, not a pattern


def test_query_limit_returns_the_newest_records_oldest_first(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 10)
    records, truncated = log.query(limit=4)
    assert [r.seq for r in records] == [7, 8, 9, 10] and truncated
    records, truncated = log.query(limit=10)
    assert len(records) == 10 and not truncated
    with pytest.raises(ValueError):
        log.query(limit=0)


def test_records_survive_close_and_reopen(paths: tuple[Path, Path], clock: FakeClock) -> None:
    first = AuditLog(paths[0], clock, anchor_path=paths[1])
    first.open()
    written = fill(first, clock, 5)
    first.close()
    second = AuditLog(paths[0], clock, anchor_path=paths[1])
    second.open()
    try:
        assert second.query()[0] == written
        assert second.head() == (5, written[-1].hash)
        appended = second.append(AuditEntry("camera.remove", "admin"))
        assert (appended.seq, appended.prev_hash) == (6, written[-1].hash)
        assert second.verify().ok
    finally:
        second.close()
    assert paths[1].read_text() == f"6 {appended.hash}\n"


def test_external_anchor_file_tracks_the_head(log: AuditLog, clock: FakeClock, paths: tuple[Path, Path]) -> None:
    assert paths[1].read_text() == f"0 {GENESIS}\n"
    records = fill(log, clock, 2)
    assert paths[1].read_text() == f"2 {records[-1].hash}\n"


def test_verify_ok_on_a_clean_log(log: AuditLog, clock: FakeClock) -> None:
    records = fill(log, clock, 20)
    result = log.verify()
    assert result.ok, result.first_problem
    assert (result.records_checked, result.head_hash, result.first_problem) == (20, records[-1].hash, "")


def test_verify_without_external_anchor(paths: tuple[Path, Path], clock: FakeClock) -> None:
    audit = AuditLog(paths[0], clock)
    audit.open()
    try:
        fill(audit, clock, 3)
        assert audit.verify().ok
        assert not paths[1].exists()
    finally:
        audit.close()


def test_edited_field_is_a_hash_mismatch_naming_the_seq(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 6)
    sql(log.path, "UPDATE audit SET reason='x' WHERE seq=3")
    result = log.verify()
    assert not result.ok and result.records_checked == 6
    assert result.first_problem == "seq 3: hash mismatch (record altered)"


def test_edited_detail_is_detected(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 4)
    sql(log.path, """UPDATE audit SET detail_json='{"bytes":0}' WHERE seq=4""")
    assert log.verify().first_problem == "seq 4: hash mismatch (record altered)"


def test_deleted_middle_record_is_a_hole(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 6)
    sql(log.path, "DELETE FROM audit WHERE seq=4")
    result = log.verify()
    assert not result.ok and result.first_problem == "seq 4 missing (record deleted)"
    sql(log.path, "DELETE FROM audit WHERE seq=3")
    assert log.verify().first_problem == "seq 3..4 missing (record deleted)"


def test_deleted_last_record_is_caught_by_the_anchor_table(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 6)
    sql(log.path, "DELETE FROM audit WHERE seq=6")
    result = log.verify()
    assert not result.ok
    assert result.first_problem == "truncated: anchor table records seq 6 but the chain ends at seq 5"


def test_deleted_last_record_and_fixed_anchor_table_is_caught_by_the_anchor_file(
    log: AuditLog, clock: FakeClock, paths: tuple[Path, Path]
) -> None:
    records = fill(log, clock, 6)
    sql(log.path, "DELETE FROM audit WHERE seq=6")
    sql(log.path, "UPDATE anchor SET seq=5, hash=?", (records[4].hash,))
    result = log.verify()
    assert not result.ok
    assert result.first_problem == f"truncated: external anchor {paths[1]} records seq 6 but the chain ends at seq 5"


def test_forged_record_appended_with_a_valid_hash_is_caught_by_the_anchors(log: AuditLog, clock: FakeClock) -> None:
    records = fill(log, clock, 3)
    forged = dataclasses.replace(records[-1], seq=4, action="camera.add", prev_hash=records[-1].hash, hash="")
    forged = dataclasses.replace(forged, hash=record_hash(forged))
    sql(log.path, f"INSERT INTO audit VALUES ({', '.join('?' * 15)})", dataclasses.astuple(forged))
    result = log.verify()
    assert not result.ok and result.first_problem.startswith("anchor table (seq 3, hash")


def test_record_inserted_in_the_middle_is_a_broken_link(log: AuditLog, clock: FakeClock) -> None:
    records = fill(log, clock, 6)
    # Make room at seq 4 (two steps: SQLite checks the primary key row by row), then forge a
    # record there that links correctly to seq 3.
    sql(log.path, "UPDATE audit SET seq = -seq WHERE seq >= 4")
    sql(log.path, "UPDATE audit SET seq = 1 - seq WHERE seq < 0")
    forged = dataclasses.replace(records[3], reason="forged", hash="")
    forged = dataclasses.replace(forged, hash=record_hash(forged))
    sql(log.path, f"INSERT INTO audit VALUES ({', '.join('?' * 15)})", dataclasses.astuple(forged))
    result = log.verify()
    assert not result.ok and result.records_checked == 7
    assert result.first_problem == "seq 5: broken link to seq 4 (record inserted or reordered)"


def test_swapped_records_are_detected(log: AuditLog, clock: FakeClock) -> None:
    fill(log, clock, 5)
    sql(log.path, "UPDATE audit SET seq = -seq WHERE seq IN (2, 3)")
    sql(log.path, "UPDATE audit SET seq = 5 + seq WHERE seq < 0")  # -2 -> 3, -3 -> 2
    assert log.verify().first_problem == "seq 2: broken link to seq 1 (record inserted or reordered)"


def test_truncation_while_stopped_is_recorded_at_open_and_never_forgotten(
    paths: tuple[Path, Path], clock: FakeClock
) -> None:
    audit = AuditLog(paths[0], clock, anchor_path=paths[1])
    audit.open()
    records = fill(audit, clock, 4)
    audit.close()
    # Delete the last record and make the anchor table agree; the anchor file still says seq 4.
    sql(paths[0], "DELETE FROM audit WHERE seq=4")
    sql(paths[0], "UPDATE anchor SET seq=3, hash=?", (records[2].hash,))
    audit.open()
    try:
        seq, _ = audit.head()
        tamper = audit.query(actions=[ACTION_TAMPER_DETECTED])[0]
        assert seq == 4 and [r.seq for r in tamper] == [4] and tamper[0].outcome == "DATA_LOSS"
        assert "records seq 4 but the chain ends at seq 3" in tamper[0].detail_json
        audit.append(AuditEntry(PLAY, "user"))  # anchors move on, the finding stays
        result = audit.verify()
        assert not result.ok and result.first_problem.startswith("seq 4: tampering detected at startup")
    finally:
        audit.close()


def test_anchor_file_one_append_behind_after_a_crash_is_repaired_at_open(
    paths: tuple[Path, Path], clock: FakeClock
) -> None:
    audit = AuditLog(paths[0], clock, anchor_path=paths[1])
    audit.open()
    records = fill(audit, clock, 3)
    audit.close()
    paths[1].write_text(f"2 {records[1].hash}\n")  # as if killed between commit and rename
    audit.open()
    try:
        assert audit.query(actions=[ACTION_TAMPER_DETECTED])[0] == []
        assert paths[1].read_text() == f"3 {records[2].hash}\n"
        assert audit.verify().ok
    finally:
        audit.close()


def test_the_anchor_file_stays_in_the_directory_opened(
    log: AuditLog, clock: FakeClock, paths: tuple[Path, Path]
) -> None:
    """The storage root replaced under the daemon (unmounted: the bare mount point is a directory
    on the system disk): appends go on into the database, an open file on the real filesystem, and
    its anchor must follow it there, not land under the mount point."""
    anchor_dir = paths[1].parent
    anchor_dir.rename(anchor_dir.with_name("real"))
    anchor_dir.mkdir()
    records = fill(log, clock, 2)
    assert list(anchor_dir.iterdir()) == []
    assert (anchor_dir.with_name("real") / paths[1].name).read_text() == f"2 {records[-1].hash}\n"
    assert log.verify().first_problem == ""


def test_deleted_anchor_file_is_reported(log: AuditLog, clock: FakeClock, paths: tuple[Path, Path]) -> None:
    fill(log, clock, 2)
    paths[1].unlink()
    assert log.verify().first_problem == f"external anchor {paths[1]} is missing (chain head is seq 2)"


def test_non_json_detail_is_rejected(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="JSON"):
        log.append(AuditEntry(PLAY, "user", detail={"when": object()}))
    with pytest.raises(ValueError, match="JSON"):
        log.append(AuditEntry(PLAY, "user", detail={"ratio": float("nan")}))
    with pytest.raises(ValueError, match="start_ns"):
        log.append(AuditEntry(PLAY, "user", start_ns=1.5))  # type: ignore[arg-type]
    assert log.head() == (0, GENESIS)  # nothing half-written


def test_use_before_open_is_an_error(paths: tuple[Path, Path], clock: FakeClock) -> None:
    audit = AuditLog(paths[0], clock)
    with pytest.raises(RuntimeError, match="not open"):
        audit.append(AuditEntry(PLAY, "user"))
    with pytest.raises(RuntimeError, match="not open"):
        audit.verify()
    assert not paths[0].exists()  # the constructor and failed calls do no I/O


def test_concurrent_appends_form_one_valid_chain(log: AuditLog) -> None:
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(50):
            log.append(AuditEntry(PLAY, f"thread-{n}", camera_id=f"cam-{n}", detail={"i": i}))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records, truncated = log.query(limit=1000)
    assert len(records) == 400 and not truncated
    assert [r.seq for r in records] == list(range(1, 401))
    result = log.verify()
    assert result.ok and result.records_checked == 400, result.first_problem


_text = st.text(max_size=40)  # any Unicode (incl. NUL, astral planes, combining marks)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_entries = st.builds(
    AuditEntry,
    action=_text,
    principal=_text,
    role=_text,
    peer=_text,
    camera_id=_text,
    start_ns=st.integers(min_value=0, max_value=2**63 - 1),
    end_ns=st.integers(min_value=0, max_value=2**63 - 1),
    reason=_text,
    case_ref=_text,
    outcome=_text,
    detail=st.dictionaries(_text, _json, max_size=4),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(_entries, max_size=12))
def test_any_sequence_of_entries_verifies(entries: list[AuditEntry]) -> None:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditLog(Path(tmp) / "audit.db", clock, anchor_path=Path(tmp) / "anchor")
        audit.open()
        try:
            appended = []
            for entry in entries:
                appended.append(audit.append(entry))
                clock.advance(1)
            assert audit.query()[0] == appended  # what comes back from SQLite is what was hashed
            result = audit.verify()
            assert result.ok and result.records_checked == len(entries), result.first_problem
        finally:
            audit.close()
