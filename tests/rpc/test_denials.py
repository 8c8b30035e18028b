"""A flood of denied requests against the real server: its denials are audited in bursts — the
first of each exact, the repeats counted into one summary record — so the audit store grows by a
few records, not one per request, the counts add up to every denial, and the chain verifies."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import UNKNOWN_TOKEN, RunningDaemon, make_config, metadata
from vmsd.audit import AuditEntry, AuditLog, AuditRecord
from vmsd.clock import FakeClock, SystemClock
from vmsd.services.denials import DenialAggregator, client_address
from vmsd.v1 import cameras_pb2

S = 1_000_000_000
LIST = "/vmsd.v1.CameraService/ListCameras"
GET = "/vmsd.v1.CameraService/GetCamera"


def _deny(running: RunningDaemon, count: int) -> None:
    for _ in range(count):
        with pytest.raises(grpc.RpcError) as caught:
            running.stubs.cameras.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=UNKNOWN_TOKEN, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _records(root: Path, action: str, outcome: str) -> tuple[list[AuditRecord], AuditLog]:
    audit = AuditLog(root / "audit.db", SystemClock(), anchor_path=root / "audit.anchor")
    audit.open()
    records, _ = audit.query(actions=[action], limit=100_000)
    return [r for r in records if r.outcome == outcome], audit


def _denials_counted(records: list[AuditRecord]) -> int:
    """Exact records count 1 each; a summary counts the repeats it stands for."""
    return sum(int(json.loads(r.detail_json).get("repeated", 1)) for r in records)


def test_a_flood_of_bad_tokens_writes_a_few_records_whose_counts_add_up(fresh_root: Path) -> None:
    flood = 300
    running = RunningDaemon(make_config(fresh_root))
    try:
        _deny(running, flood)
        # Another kind of denial is its own burst (and a principal's denial names it).
        for camera_id in ("out-cam", "out-cam", "out-cam"):
            with pytest.raises(grpc.RpcError):
                running.stubs.cameras.GetCamera(
                    cameras_pb2.GetCameraRequest(camera_id=camera_id), metadata=metadata("viewer")
                )
    finally:
        running.stop()  # the open bursts' summaries are written at shutdown
    records, audit = _records(fresh_root, LIST, "UNAUTHENTICATED")
    try:
        assert 1 <= len(records) <= 4, [r.detail_json for r in records]
        assert _denials_counted(records) == flood
        first = json.loads(records[0].detail_json)
        assert "repeated" not in first and first["message"] == "unknown or revoked token"
        assert records[0].peer.count(":") == 2  # the first is exact: ip and port
        summary = json.loads(records[-1].detail_json)
        assert summary["repeated"] == flood - 1
        assert records[-1].time_ns >= summary["last_ns"] >= summary["first_ns"] >= records[0].time_ns
        denied, _ = audit.query(actions=[GET], limit=100)
        assert [r.principal for r in denied] == ["viewer-1", "viewer-1"]
        assert _denials_counted([r for r in denied if r.outcome == "PERMISSION_DENIED"]) == 3
        result = audit.verify()
        assert result.ok, result.first_problem
    finally:
        audit.close()


def test_a_summary_is_written_when_the_interval_ends_and_a_new_burst_begins_exact(fresh_root: Path) -> None:
    running = RunningDaemon(make_config(fresh_root, grpc={"denial_summary_interval": "1s"}))
    try:
        _deny(running, 50)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the summary comes without a shutdown
            records, _ = running.daemon.audit.query(actions=[LIST], limit=1000)
            if any("repeated" in r.detail_json for r in records):
                break
            time.sleep(0.2)
        _deny(running, 20)
    finally:
        running.stop()
    records, audit = _records(fresh_root, LIST, "UNAUTHENTICATED")
    try:
        kinds = ["summary" if "repeated" in r.detail_json else "exact" for r in records]
        assert kinds[:2] == ["exact", "summary"], kinds
        assert kinds.count("exact") >= 2 and len(records) <= 6, kinds
        assert _denials_counted(records) == 70
        assert audit.verify().ok
    finally:
        audit.close()


def _denial(peer: str, principal: str = "", message: str = "unknown or revoked token") -> AuditEntry:
    return AuditEntry(
        LIST, principal, peer=peer, outcome="UNAUTHENTICATED", detail={"message": message, "duration_ns": 7}
    )


def test_bursts_are_per_client_address_and_reason_and_end_with_their_interval() -> None:
    clock = FakeClock()
    denials = DenialAggregator(clock, interval_ns=60 * S)
    assert denials.admit(_denial("ipv4:10.0.0.7:5001"))  # the first of a burst: written now
    clock.advance(S)
    assert not denials.admit(_denial("ipv4:10.0.0.7:5002"))  # another connection, same client
    first_repeat_ns = clock.wall_ns()
    clock.advance(S)
    assert not denials.admit(_denial("ipv4:10.0.0.7:5003"))
    assert denials.admit(_denial("ipv4:10.0.0.8:5001"))  # another client
    assert denials.admit(_denial("ipv4:10.0.0.7:5004", message="authorization metadata must be 'Bearer <token>'"))
    assert denials.due() == []  # the interval is still open
    clock.advance(58 * S)
    [summary] = denials.due()  # the bursts without repeats end without a record
    assert summary.peer == "ipv4:10.0.0.7"
    assert dict(summary.detail) == {
        "message": "unknown or revoked token",
        "repeated": 2,
        "first_ns": first_repeat_ns,
        "last_ns": first_repeat_ns + S,
        "interval_ns": 60 * S,
    }
    assert denials.admit(_denial("ipv4:10.0.0.7:5005"))  # a new burst begins exact
    assert not denials.admit(_denial("ipv4:10.0.0.7:5006"))
    assert [s.detail["repeated"] for s in denials.due(everything=True)] == [1]  # shutdown


def test_client_address_leaves_out_the_port_only() -> None:
    assert client_address("ipv4:10.0.0.7:51234") == "ipv4:10.0.0.7"
    assert client_address("ipv6:[::1]:5") == "ipv6:[::1]"
    assert client_address("unix:/run/vmsd.sock") == "unix:/run/vmsd.sock"
    assert client_address("") == ""
