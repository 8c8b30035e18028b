"""QueryAudit: what a scoped reader may see, and paging under the message size cap."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import RunningDaemon, make_config, metadata, token
from vmsd.audit import AuditEntry
from vmsd.rpc.server import MAX_MESSAGE_BYTES
from vmsd.v1 import audit_pb2


def _all_records(running: RunningDaemon, role: str, **fields: object) -> list[audit_pb2.AuditRecord]:
    records: list[audit_pb2.AuditRecord] = []
    request = audit_pb2.QueryAuditRequest(**fields)  # type: ignore[arg-type]
    while True:
        reply = running.stubs.audit.QueryAudit(request, metadata=metadata(role))
        records[:0] = reply.records  # pages go from the newest back
        if not reply.next_page_token:
            return records
        request.page_token = reply.next_page_token


def test_a_scoped_reader_sees_no_record_naming_cameras_outside_its_scope(server: RunningDaemon) -> None:
    """Function-check records name no camera of their own but list the failing ones."""
    audit = server.daemon.audit
    mixed = audit.append(
        AuditEntry("function_check", "vmsd", detail={"check_id": 7, "failing_cameras": ["in-cam", "out-cam"]})
    )
    own = audit.append(AuditEntry("function_check", "vmsd", detail={"check_id": 8, "failing_cameras": ["in-cam"]}))
    in_reason = audit.append(AuditEntry("config.reload", "vmsd", reason="out-cam moved to another recorder"))
    records = {r.seq: r for r in _all_records(server, "supervisor")}
    for record in records.values():
        assert "out-cam" not in f"{record.camera_id} {record.detail_json} {record.reason} {record.case_ref}"
    # Records naming only cameras in scope are shown whole; the others are there, but withheld.
    assert json.loads(records[own.seq].detail_json)["failing_cameras"] == ["in-cam"]
    assert not records[own.seq].redacted
    assert records[mixed.seq].redacted and records[in_reason.seq].redacted
    assert records[mixed.seq].action == "function_check" and records[mixed.seq].hash == mixed.hash
    # An unscoped reader sees everything.
    admin = {r.seq: r for r in _all_records(server, "admin")}
    assert "out-cam" in admin[mixed.seq].detail_json and not admin[mixed.seq].redacted


@pytest.fixture(scope="module")
def big_trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon whose audit trail is about twice the size of the largest gRPC message."""
    root = tmp_path_factory.mktemp("audit") / "root"
    running = RunningDaemon(make_config(root))
    try:
        filler = "x" * 3000
        for index in range(2 * MAX_MESSAGE_BYTES // 3000):
            running.daemon.audit.append(AuditEntry("test.filler", "vmsd", detail={"n": index, "filler": filler}))
        yield running
    finally:
        running.stop()


def test_a_trail_larger_than_a_message_comes_back_whole_across_pages(big_trail: RunningDaemon) -> None:
    head = big_trail.daemon.audit.head()[0]
    request = audit_pb2.QueryAuditRequest(page_size=10_000)
    seqs: list[int] = []
    pages = 0
    while True:
        reply = big_trail.stubs.audit.QueryAudit(request, metadata=metadata("admin"))
        assert reply.ByteSize() <= MAX_MESSAGE_BYTES
        assert [r.seq for r in reply.records] == sorted(r.seq for r in reply.records)
        seqs[:0] = [r.seq for r in reply.records]
        pages += 1
        if not reply.next_page_token:
            break
        assert reply.truncated
        request.page_token = reply.next_page_token
    assert pages >= 2
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= head


def test_an_old_client_gets_the_newest_records_that_fit(big_trail: RunningDaemon) -> None:
    """A client that knows only `limit` (at most 10 000) gets a reply under the cap, newest last."""
    reply = big_trail.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(limit=10_000), metadata=metadata("admin"))
    assert reply.ByteSize() <= MAX_MESSAGE_BYTES
    assert reply.truncated and reply.records[-1].seq >= big_trail.daemon.audit.head()[0] - 1
    few = big_trail.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(limit=5), metadata=metadata("admin"))
    assert len(few.records) == 5 and few.truncated


def test_a_bad_page_token_is_invalid(big_trail: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        big_trail.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(page_token="abc"), metadata=metadata("admin"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (caught.value.details() or "")


def test_vmsctl_audit_follows_the_pages(big_trail: RunningDaemon, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{big_trail.port}", "--json"]
    result = subprocess.run(
        [*argv, "--token", token("admin"), "audit", "--limit", "0"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seqs = [int(r["seq"]) for r in json.loads(result.stdout)["records"]]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2 * MAX_MESSAGE_BYTES // 3000


def test_query_audit_and_vmsctl_filter_by_action_and_outcome(server: RunningDaemon) -> None:
    audit = server.daemon.audit
    kept = audit.append(AuditEntry("grpc.filter.one", "filterer", outcome="PERMISSION_DENIED"))
    audit.append(AuditEntry("grpc.filter.two", "filterer"))
    found = _all_records(server, "admin", action="grpc.filter.*", outcome="PERMISSION_DENIED")
    assert [r.seq for r in found] == [kept.seq]
    with pytest.raises(grpc.RpcError) as caught:
        _all_records(server, "admin", outcome="no such")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    argv = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{server.port}", "--json"]
    filters = ["--action", "grpc.filter.*", "--outcome", "PERMISSION_DENIED"]
    result = subprocess.run(
        [*argv, "--token", token("admin"), "audit", *filters], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert [int(r["seq"]) for r in json.loads(result.stdout)["records"]] == [kept.seq]
