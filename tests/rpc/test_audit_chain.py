"""The audit trail over gRPC: VerifyAudit detects a record edited or deleted in the SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import MID, RunningDaemon, S, make_config, metadata
from vmsd.v1 import audit_pb2, cameras_pb2, common_pb2, recordings_pb2


def _some_audited_calls(running: RunningDaemon) -> None:
    stubs = running.stubs
    for second in range(2):
        request = recordings_pb2.PlayRequest(
            camera_id="in-cam",
            range=common_pb2.TimeRange(start_ns=MID + second * S, end_ns=MID + (second + 1) * S),
            reason=f"review {second}",
        )
        assert list(stubs.recordings.Play(request, metadata=metadata("operator")))
    for camera_id in ("out-cam", "out-other"):
        with pytest.raises(grpc.RpcError):
            stubs.cameras.GetCamera(cameras_pb2.GetCameraRequest(camera_id=camera_id), metadata=metadata("viewer"))


def _verify(running: RunningDaemon) -> audit_pb2.VerifyAuditResponse:
    return running.stubs.audit.VerifyAudit(audit_pb2.VerifyAuditRequest(), metadata=metadata("admin"))  # type: ignore[no-any-return]


@pytest.fixture
def audited_root(fresh_root: Path) -> Iterator[Path]:
    """A root whose audit trail has a few records and verifies clean; the daemon is stopped."""
    running = RunningDaemon(make_config(fresh_root))
    try:
        _some_audited_calls(running)
        result = _verify(running)
        assert result.ok, result.first_problem
        assert result.records_checked == running.daemon.audit.head()[0] >= 4
        reply = running.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(), metadata=metadata("supervisor"))
        seqs = [r.seq for r in reply.records]
        assert seqs == list(range(1, len(seqs) + 1))
        assert all(b.prev_hash == a.hash for a, b in zip(reply.records, reply.records[1:], strict=False))
    finally:
        running.stop()
    yield fresh_root


def _tamper(root: Path, sql: str) -> None:
    with sqlite3.connect(root / "audit.db") as db:
        assert db.execute(sql).rowcount == 1
    db.close()


def _restart_and_verify(root: Path) -> audit_pb2.VerifyAuditResponse:
    running = RunningDaemon(make_config(root))
    try:
        return _verify(running)
    finally:
        running.stop()


def test_an_untouched_trail_still_verifies_after_a_restart(audited_root: Path) -> None:
    result = _restart_and_verify(audited_root)
    assert result.ok and result.first_problem == ""


def test_an_edited_record_is_detected(audited_root: Path) -> None:
    _tamper(audited_root, "UPDATE audit SET reason = 'nothing to see' WHERE seq = 2")
    result = _restart_and_verify(audited_root)
    assert not result.ok
    assert "seq 2" in result.first_problem and "altered" in result.first_problem


def test_a_deleted_record_is_detected(audited_root: Path) -> None:
    _tamper(audited_root, "DELETE FROM audit WHERE seq = 2")
    result = _restart_and_verify(audited_root)
    assert not result.ok
    assert "seq 2 missing" in result.first_problem


def test_a_deleted_last_record_is_detected(audited_root: Path) -> None:
    _tamper(audited_root, "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)")
    result = _restart_and_verify(audited_root)
    assert not result.ok
    assert "truncated" in result.first_problem or "tampering" in result.first_problem


def test_an_edit_behind_a_running_daemon_is_detected(fresh_root: Path) -> None:
    running = RunningDaemon(make_config(fresh_root))
    try:
        _some_audited_calls(running)
        assert _verify(running).ok
        _tamper(
            fresh_root,
            "UPDATE audit SET outcome = 'OK' WHERE outcome = 'PERMISSION_DENIED' AND seq = "
            "(SELECT min(seq) FROM audit WHERE outcome = 'PERMISSION_DENIED')",
        )
        result = _verify(running)
        assert not result.ok and "altered" in result.first_problem
    finally:
        running.stop()
