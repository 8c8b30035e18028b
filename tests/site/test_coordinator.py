"""Ownership against a real etcd: one owner per camera, failover after a crash, fencing, moves, failback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.site.harness import Member, site_config, wait_until
from tests.support.etcd import EtcdCluster
from vmsd.errors import VmsdError
from vmsd.site.keys import MemberInfo
from vmsd.site.placement import preferred
from vmsd.storage.catalogue import GapReason

CAMERAS = [f"cam-{i}" for i in range(6)]


def _owners(members: list[Member]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for member in members:
        for camera in member.recording():
            seen.setdefault(camera, []).append(member.config.recorder_id)
    return seen


def _each_recorded_once(members: list[Member], cameras: list[str] = CAMERAS) -> bool:
    """Every camera recorded by exactly one member, and every member has joined (sees all the others)."""
    owners = _owners(members)
    ids = {m.config.recorder_id for m in members}
    joined = all(set(m.site.view.members) == ids for m in members)
    return joined and sorted(owners) == sorted(cameras) and all(len(v) == 1 for v in owners.values())


async def _pair(tmp_path: Path, etcd: EtcdCluster, **site: str) -> tuple[Member, Member]:
    """rec-a and rec-b, once both have joined and every camera is recorded once (rec-a, first up, records some)."""
    a = await Member.start(site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS, **site))
    b = await Member.start(site_config(tmp_path, "rec-b", etcd.endpoints, CAMERAS, **site))
    await wait_until(lambda: _each_recorded_once([a, b]) and bool(a.recording()), what="split")
    return a, b


async def test_the_cameras_are_split_and_each_is_recorded_by_one_member(tmp_path: Path, etcd: EtcdCluster) -> None:
    members = [
        await Member.start(site_config(tmp_path, r, etcd.endpoints, CAMERAS)) for r in ("rec-a", "rec-b", "rec-c")
    ]
    try:
        await wait_until(lambda: _each_recorded_once(members), what="every camera recorded once")
        status = await members[0].site.status()
        assert [m.recorder_id for m in status.members if m.alive] == ["rec-a", "rec-b", "rec-c"]
        owners = {o.camera_id: (o.owner, o.epoch) for o in status.owners}
        for member in members:
            for camera in member.recording():
                assert owners[camera][0] == member.config.recorder_id
                # The epoch is the owner key's create revision, stored with the run once recording.
                assert member.site._fencing[camera].epoch == owners[camera][1] > 0
        assert sum(m.owned for m in status.members) == len(CAMERAS)
    finally:
        for member in members:
            await member.stop()


async def test_a_crashed_members_cameras_are_taken_over_with_a_newer_epoch_and_a_failover_gap(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    a, b = await _pair(tmp_path, etcd)
    try:
        lost = sorted(a.recording())
        epochs = {c: a.site._fencing[c].epoch for c in lost}
        await a.crash()
        took = await wait_until(lambda: b.recording() == set(CAMERAS), what="rec-b records everything")
        assert took < 10  # lease_ttl 2 s; generous bound under a loaded machine, not a speed goal
        for camera in lost:
            assert b.site._fencing[camera].epoch > epochs[camera]
            [gap] = [g for g in b.storage.catalogue.gaps(camera) if g.reason == GapReason.FAILOVER]
            assert "rec-a lost" in gap.detail and gap.end_ns is None  # closed by the first segment
        sample = b.site.sample()  # what /metrics shows (vmsd_site_*)
        assert (sample.failovers, sample.owned, sample.fenced) == (len(lost), len(CAMERAS), True)
    finally:
        await b.stop()


async def test_a_clean_stop_hands_the_cameras_over_without_waiting_for_the_lease(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    a, b = await _pair(tmp_path, etcd, lease_ttl="30s")
    try:
        await a.stop()  # revokes the lease: a 30 s TTL would otherwise hold the cameras
        await wait_until(lambda: b.recording() == set(CAMERAS), timeout=15, what="rec-b records everything")
    finally:
        await b.stop()


async def test_a_recorder_id_already_live_in_the_site_is_refused(tmp_path: Path, etcd: EtcdCluster) -> None:
    a = await Member.start(site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS))
    twin = await Member.start(site_config(tmp_path / "twin", "rec-a", etcd.endpoints, CAMERAS))
    try:
        await wait_until(lambda: "site_duplicate_recorder_id" in twin.site.alarms, what="duplicate refused")
        assert "must be unique in the site" in twin.site.alarms["site_duplicate_recorder_id"]
        assert twin.recording() == set()
        await wait_until(lambda: a.recording() == set(CAMERAS), what="rec-a records everything")
    finally:
        await twin.stop()
        await a.stop()


async def test_an_operator_move_is_make_before_break_and_manual_failback_keeps_cameras_put(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    a, b = await _pair(tmp_path, etcd)
    try:
        camera = sorted(a.recording())[0]
        old_epoch = a.site._fencing[camera].epoch
        with pytest.raises(VmsdError, match="is not a live member"):
            await b.site.move(camera, "rec-z", principal="admin-1", reason="test")
        with pytest.raises(VmsdError, match="already recorded by 'rec-a'"):
            await b.site.move(camera, "rec-a", principal="admin-1", reason="test")
        await b.site.move(camera, "rec-b", principal="admin-1", reason="maintenance of rec-a")
        await wait_until(lambda: camera in b.recording(), what="rec-b records the moved camera")
        assert b.site._fencing[camera].epoch > old_epoch
        # Nothing was open on rec-a (the camera never connected): it stops at once; with a
        # segment open it would record on to the segment's end.
        await wait_until(lambda: camera not in a.recording(), what="rec-a lets it go")
        status = await a.site.status()
        assert {o.camera_id: o.owner for o in status.owners}[camera] == "rec-b"
        # failback = manual: a restarted rec-a does not take anything back.
        moved_to_b = b.recording()
        await a.stop()
        await wait_until(lambda: b.recording() == set(CAMERAS), what="rec-b records everything")
        a = await Member.start(site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS))
        await wait_until(lambda: "rec-a" in a.site.view.members and a.site.view.owners.keys() >= set(CAMERAS))
        await asyncio.sleep(0)  # one more turn of the loop for any (wrong) claim to start
        assert a.recording() == set() and moved_to_b <= b.recording()
    finally:
        await a.stop()
        await b.stop()


async def test_failback_auto_returns_cameras_to_the_recorder_placement_prefers(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    config_a = site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS, failback="auto")
    a = await Member.start(config_a)
    b = await Member.start(site_config(tmp_path, "rec-b", etcd.endpoints, CAMERAS, failback="auto"))
    try:
        both = [MemberInfo(r, "", 64, 0, "", "auto") for r in ("rec-a", "rec-b")]
        home = {c for c in CAMERAS if preferred(c, both, []) == "rec-a"}
        assert home and home != set(CAMERAS)  # the test needs cameras on both sides

        def settled() -> bool:
            return a.recording() == home and _each_recorded_once([a, b])

        await wait_until(settled, what="the preferred split", state=lambda: (a.recording(), b.recording()))
        await a.crash()
        await wait_until(lambda: b.recording() == set(CAMERAS), what="rec-b records everything")
        a = await Member.start(config_a)
        await wait_until(settled, what="failback", state=lambda: (a.recording(), b.recording()))
    finally:
        await a.stop()
        await b.stop()


async def test_quorum_lost_keeps_recording_unfenced_and_raises_alarms(tmp_path: Path, etcd3: EtcdCluster) -> None:
    a = await Member.start(site_config(tmp_path, "rec-a", etcd3.endpoints, CAMERAS))
    try:
        await wait_until(lambda: a.recording() == set(CAMERAS), what="rec-a records everything")
        assert not any(f.unfenced for f in a.site._fencing.values())
        epochs = {c: f.epoch for c, f in a.site._fencing.items()}
        etcd3.kill(0)
        etcd3.kill(1)
        await wait_until(lambda: "site_unfenced" in a.site.alarms, what="unfenced alarm", state=lambda: a.site.alarms)
        await wait_until(lambda: "site_quorum_lost" in a.site.alarms, what="quorum alarm", state=lambda: a.site.alarms)
        assert a.recording() == set(CAMERAS)  # a coordination fault never stops recording
        assert all(f.unfenced for f in a.site._fencing.values())
        sample = a.site.sample()
        assert (sample.fenced, sample.unfenced_cameras, sample.alarms) == (False, len(CAMERAS), 2)
        etcd3.start_member(0)
        etcd3.start_member(1)
        await wait_until(lambda: not a.site.alarms, timeout=30, what="alarms cleared", state=lambda: a.site.alarms)
        assert a.recording() == set(CAMERAS)
        assert not any(f.unfenced for f in a.site._fencing.values())
        # The lease outlived the outage (a new etcd leader renews every lease) or was re-granted:
        # either way each camera has exactly one epoch, never older than before.
        assert all(a.site._fencing[c].epoch >= e for c, e in epochs.items())
    finally:
        await a.stop()


async def test_a_gap_left_open_by_an_earlier_crash_ends_where_the_failover_hole_begins(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    a, b = await _pair(tmp_path, etcd)
    try:
        await a.crash()
        await wait_until(lambda: b.recording() == set(CAMERAS), what="rec-b records everything")
        a = await Member.start(site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS))
        await wait_until(lambda: "rec-a" in b.site.view.members, what="rec-a joined again")
        # As start-up recovery leaves it after a crash in the middle of a segment.
        a.storage.catalogue.open_gap("cam-0", 1_000, GapReason.CRASH, "segment had no complete fragment")
        await b.crash()
        await wait_until(lambda: a.recording() == set(CAMERAS), what="rec-a records everything")
        crash, failover = a.storage.catalogue.gaps("cam-0")
        assert (crash.reason, failover.reason) == (GapReason.CRASH, GapReason.FAILOVER)
        assert crash.end_ns == failover.start_ns and failover.end_ns is None
        assert "rec-b lost" in failover.detail
    finally:
        await a.stop()
