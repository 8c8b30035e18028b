"""ListHolds and ErasureSummary: everything comes back, page by page, and no reply exceeds the message size cap."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import MID, RunningDaemon, S, make_config, metadata, token
from vmsd.rpc.server import MAX_MESSAGE_BYTES
from vmsd.v1 import common_pb2, holds_pb2, holds_pb2_grpc

CAMERAS = [f"in-{i:03d}-" + "x" * 57 for i in range(256)]  # 64-character ids: the longest allowed
HOLDS = 300  # ~17 KiB each (256 camera ids and a 1000-character reason): about 5 MiB in all


@pytest.fixture(scope="module")
def many_holds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    running = RunningDaemon(make_config(tmp_path_factory.mktemp("holds") / "root"))
    catalogue = running.daemon.storage.catalogue
    try:
        for camera_id in CAMERAS:
            catalogue.upsert_camera(camera_id, camera_id, "", 0)
        for index in range(HOLDS):
            catalogue.add_hold(
                camera_ids=CAMERAS,
                start_ns=MID,
                end_ns=MID + S,
                case_ref=f"CASE-{index}",
                reason="r" * 1000,
                created_by="test",
                created_ns=MID,
                until_ns=None,
            )
        yield running
    finally:
        running.stop()


def _stub(running: RunningDaemon) -> holds_pb2_grpc.HoldServiceStub:
    return holds_pb2_grpc.HoldServiceStub(running.channel)  # type: ignore[no-untyped-call]


def test_more_holds_than_fit_in_a_message_come_back_across_pages(many_holds: RunningDaemon) -> None:
    request = holds_pb2.ListHoldsRequest(page_size=10_000)
    ids: list[int] = []
    pages = 0
    while True:
        reply = _stub(many_holds).ListHolds(request, metadata=metadata("admin"))
        assert reply.ByteSize() <= MAX_MESSAGE_BYTES
        ids += [h.id for h in reply.holds]
        pages += 1
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    assert pages >= 2
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == HOLDS


def test_page_size_and_an_old_client(many_holds: RunningDaemon) -> None:
    first = _stub(many_holds).ListHolds(holds_pb2.ListHoldsRequest(page_size=7), metadata=metadata("admin"))
    assert len(first.holds) == 7 and first.next_page_token
    second = _stub(many_holds).ListHolds(
        holds_pb2.ListHoldsRequest(page_size=7, page_token=first.next_page_token), metadata=metadata("admin")
    )
    assert second.holds[0].id == first.holds[-1].id + 1
    # A client without paging gets the first page, under the cap, instead of an error.
    old = _stub(many_holds).ListHolds(holds_pb2.ListHoldsRequest(), metadata=metadata("admin"))
    assert old.holds and old.ByteSize() <= MAX_MESSAGE_BYTES and old.next_page_token
    with pytest.raises(grpc.RpcError) as caught:
        _stub(many_holds).ListHolds(holds_pb2.ListHoldsRequest(page_token="x"), metadata=metadata("admin"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_vmsctl_hold_list_follows_the_pages(many_holds: RunningDaemon) -> None:
    argv = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{many_holds.port}", "--json"]
    result = subprocess.run(
        [*argv, "--token", token("admin"), "hold", "list"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"case_ref": "CASE-') == HOLDS


def test_the_erasure_summary_pages(fresh_root: Path) -> None:
    running = RunningDaemon(make_config(fresh_root))
    try:
        storage = running.daemon.storage
        segments = storage.catalogue.segments()
        for index, segment in enumerate(segments):  # one (day, camera, reason) group each
            storage.delete_segment(segment, erased_ns=MID + index * 86_400 * S, reason=f"test_{index}")
        retention = holds_pb2_grpc.RetentionServiceStub(running.channel)  # type: ignore[no-untyped-call]
        range_ = common_pb2.TimeRange(start_ns=MID - 86_400 * S, end_ns=MID + 30 * 86_400 * S)
        request = holds_pb2.ErasureSummaryRequest(range=range_, page_size=1)
        days: list[tuple[str, str, str]] = []
        while True:
            reply = retention.ErasureSummary(request, metadata=metadata("admin"))
            assert len(reply.days) <= 1
            days += [(d.day, d.camera_id, d.reason) for d in reply.days]
            if not reply.next_page_token:
                break
            request.page_token = reply.next_page_token
        whole = retention.ErasureSummary(holds_pb2.ErasureSummaryRequest(range=range_), metadata=metadata("admin"))
        assert days == [(d.day, d.camera_id, d.reason) for d in whole.days]
        assert len(days) == len(segments) >= 3
    finally:
        running.stop()
