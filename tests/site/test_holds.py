"""Site-wide holds on a real etcd with two real recorders: a hold made on one is applied by the
other, including one that was down when it was made (at its next start-up, before retention),
and protects that recorder's footage from retention; a release travels the same way.

  rec-a  in-cam MID-5s .. MID+7s       rec-b  in-cam MID+10s .. MID+22s (segments of 10 s)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.etcd import EtcdCluster
from tests.support.rpc import MID, RunningDaemon, S, metadata
from tests.support.site_ops import SITE_TOKEN, record_in_cam, site_daemon, wait_for_keys
from vmsd.storage.catalogue import GapReason, HoldRow
from vmsd.v1 import common_pb2, holds_pb2, holds_pb2_grpc


class Site:
    def __init__(self, base: Path, etcd: EtcdCluster, token_file: Path) -> None:
        self.base, self.etcd, self.token_file = base, etcd, token_file
        self.recorders: dict[str, RunningDaemon] = {}
        self.ports: dict[str, int] = {}

    def start(self, recorder_id: str) -> RunningDaemon:
        running = site_daemon(self.base / recorder_id, recorder_id, self.etcd, self.token_file)
        self.recorders[recorder_id] = running
        return running

    def stop(self, recorder_id: str) -> None:
        self.recorders.pop(recorder_id).stop()


@pytest.fixture
def site(tmp_path: Path, h264_ts: Path) -> Iterator[Site]:
    etcd = EtcdCluster(tmp_path / "etcd", members_count=1).start()
    token_file = tmp_path / "site.token"
    token_file.write_text(SITE_TOKEN)
    record_in_cam(tmp_path / "rec-a", h264_ts, start_ns=MID - 5 * S, seconds=12, end_reason=GapReason.CRASH)
    record_in_cam(
        tmp_path / "rec-b",
        h264_ts,
        start_ns=MID + 10 * S,
        seconds=12,
        end_reason="camera_offline",
        failover_from_ns=MID + 7 * S,
    )
    site = Site(tmp_path, etcd, token_file)
    try:
        yield site
    finally:
        for recorder_id in list(site.recorders):
            site.stop(recorder_id)
        etcd.stop()


def _add_hold(running: RunningDaemon, start_ns: int, end_ns: int, case_ref: str) -> holds_pb2.Hold:
    stub = holds_pb2_grpc.HoldServiceStub(running.channel)  # type: ignore[no-untyped-call]
    request = holds_pb2.AddHoldRequest(
        camera_ids=["in-cam"],
        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
        case_ref=case_ref,
        reason="assault on market square",
    )
    return stub.AddHold(request, metadata=metadata("supervisor"), timeout=10)  # type: ignore[no-any-return]


def _release(running: RunningDaemon, hold_id: int) -> None:
    stub = holds_pb2_grpc.HoldServiceStub(running.channel)  # type: ignore[no-untyped-call]
    stub.ReleaseHold(
        holds_pb2.ReleaseHoldRequest(hold_id=hold_id, reason="case closed"), metadata=metadata("supervisor"), timeout=10
    )


def _holds(running: RunningDaemon) -> dict[str, HoldRow]:
    return {row.case_ref: row for row in running.daemon.storage.catalogue.holds()}


def _wait_for(running: RunningDaemon, case_ref: str, *, released: bool, timeout_s: float = 20) -> HoldRow:
    """Until `running` has a copy of the hold (released or not): its sync follows etcd's watch."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = _holds(running).get(case_ref)
        if row is not None and (row.released_ns is not None) == released:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{case_ref} (released={released}) not applied: {_holds(running)}")


def test_a_hold_made_on_one_recorder_is_applied_by_the_other_and_so_is_its_release(site: Site) -> None:
    rec_a, rec_b = site.start("rec-a"), site.start("rec-b")
    made = _add_hold(rec_a, MID, MID + 15 * S, "CASE-1")
    copy = _wait_for(rec_b, "CASE-1", released=False)
    assert (copy.camera_ids, copy.start_ns, copy.end_ns, copy.created_by) == (
        ("in-cam",),
        MID,
        MID + 15 * S,
        "supervisor-1",
    )
    assert wait_for_keys(site.etcd, "holds/", {f"rec-a.{made.id}"})
    # Released on rec-b (where it is a copy): released on rec-a too, and on the site.
    _release(rec_b, copy.id)
    released = _wait_for(rec_a, "CASE-1", released=True)
    assert (released.released_by, released.release_reason) == ("supervisor-1", "case closed")
    # rec-b's trail says the daemon applied the site's hold (who made it, which site hold).
    applied, _ = rec_b.daemon.audit.query(actions=["site.hold_applied"])
    assert [(r.principal, r.case_ref, json.loads(r.detail_json)) for r in applied] == [
        ("vmsd", "CASE-1", {"site_hold": f"rec-a.{made.id}", "hold_id": copy.id, "created_by": "supervisor-1"})
    ]
    # rec-a's: the release made on rec-b, applied to its own hold.
    released_here, _ = rec_a.daemon.audit.query(actions=["site.hold_released"])
    assert [(r.reason, json.loads(r.detail_json)["released_by"]) for r in released_here] == [
        ("case closed", "supervisor-1")
    ]


def test_a_recorder_down_when_a_hold_was_made_applies_it_at_start_up_and_its_footage_is_kept(site: Site) -> None:
    rec_a = site.start("rec-a")
    site.start("rec-b")
    first = _add_hold(rec_a, MID - 5 * S, MID + 30 * S, "CASE-OLD")
    _wait_for(site.recorders["rec-b"], "CASE-OLD", released=False)
    site.stop("rec-b")
    # While rec-b is down: a new hold over its first segment only, and the old one released.
    _add_hold(rec_a, MID + 10 * S, MID + 12 * S, "CASE-NEW")
    _release(rec_a, first.id)
    rec_b = site.start("rec-b")
    # Before retention runs, the start-up sync applied both changes.
    rec_b.run(asyncio.wait_for(rec_b.daemon.site_ops.holds.synced.wait(), 20))  # type: ignore[union-attr]
    holds = _holds(rec_b)
    assert holds["CASE-NEW"].released_ns is None
    assert holds["CASE-OLD"].released_ns is not None
    # Retention's first pass (after the sync) pauses age-based erasure: the footage is months
    # old. Once an operator confirms the clock, it keeps what CASE-NEW holds.
    retention = rec_b.daemon.retention
    deadline = time.monotonic() + 20
    while "clock_unconfirmed" not in retention.status.alarms:
        assert time.monotonic() < deadline, "retention's first pass did not run after the start-up sync"
        time.sleep(0.05)
    catalogue = rec_b.daemon.storage.catalogue
    before = [(s.start_ns, s.end_ns) for s in catalogue.segments("in-cam")]
    assert len(before) == 2
    retention.confirm_clock()
    retention.run_once()
    after = [(s.start_ns, s.end_ns) for s in catalogue.segments("in-cam")]
    assert after == before[:1]  # the segment under CASE-NEW; the other is past max_age and unheld
