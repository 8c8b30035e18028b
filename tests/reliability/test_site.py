"""A site of three recorders on three etcd members (issue #15): failover, partitions, quorum loss.

Real parts throughout: Debian's etcd (tests/support/etcd.py), three `vmsd run` processes, the
camera simulator. Reduced form (`make test`): 6 cameras, 1 kill; VMSD_SOAK=1: 12 cameras, 3 kills.

- kill -9 of a recorder (the first time together with the etcd leader): its cameras record on
  peers; the time from the kill to each camera's first new segment on a peer is measured
  (lease_ttl 3 s + RTSP reconnect + first keyframe), and the peer's catalogue has exactly one
  `failover` gap for the hole, naming the lost recorder.
- the dead recorder returns with failback = "manual": it joins and records none of its old cameras.
- SIGSTOP of a recorder (a partition as its peers see it): its cameras are taken over; after
  SIGCONT it stops each after the current segment. Never two FENCED runs of one camera at once
  across the catalogues; the stopped recorder's late footage is kept, in runs marked unfenced
  under the old epoch (the overlap is recorded by both, never merged).
- quorum lost (2 of 3 etcd members down): every recorder keeps recording its cameras.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import CLIPS, Results, S, count, percentile, rows
from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess
from tests.support.etcd import EtcdCluster, running_etcd
from tests.support.simulator import CameraSimulator, MountSpec

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
RECORDERS = ["rec-a", "rec-b", "rec-c"]
SITE = "rel"
LEASE_TTL_S = 3
SEGMENT_S = 4


def _cameras() -> list[str]:
    return [f"site{i:02d}" for i in range(count(6, 12))]


@pytest.fixture
def site_sim() -> Iterator[CameraSimulator]:
    clip = make_clip(CLIPS, codec="h264", seconds=10)
    with CameraSimulator([MountSpec(c, clip) for c in _cameras()]) as sim:
        yield sim


@pytest.fixture
def etcd3(tmp_path: Path) -> Iterator[EtcdCluster]:
    with running_etcd(tmp_path / "etcd", 3) as cluster:
        yield cluster


def _config(tmp_path: Path, recorder: str, etcd: EtcdCluster, sim: CameraSimulator) -> Path:
    lines = [
        f'recorder_id = "{recorder}"',
        "[grpc]",
        'listen = "127.0.0.1:0"',
        "[storage]",
        f'root = "{tmp_path / recorder}"',
        f'segment_duration = "{SEGMENT_S}s"',
        'min_free = "1MiB"',
        "[ingest]",
        'stall_timeout = "4s"',
        'max_backoff = "1s"',
        "[site]",
        f'name = "{SITE}"',
        f"etcd = {json.dumps(etcd.endpoints)}",
        f'lease_ttl = "{LEASE_TTL_S}s"',
        'failback = "manual"',
    ]
    for camera in _cameras():
        lines += ["[[cameras]]", f'id = "{camera}"', f'url = "{sim.url(camera)}"']
    path = tmp_path / f"{recorder}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _owners(etcd: EtcdCluster) -> dict[str, tuple[str, int]]:
    return etcd.site_owners(SITE)


def _members(etcd: EtcdCluster) -> set[str]:
    return etcd.site_members(SITE)


def _segments_since(root: Path, camera: str, since_ns: int) -> list[int]:
    if not (root / "catalogue.db").exists():
        return []
    found = rows(
        root, "SELECT start_ns FROM segments WHERE camera_id=? AND start_ns>=? ORDER BY start_ns", camera, since_ns
    )
    return [r["start_ns"] for r in found]


def _wait(predicate: Callable[[], bool], timeout: float, what: str, state: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {state()}")
        time.sleep(0.1)


def _site_runs(root: Path, camera: str) -> list[dict[str, object]]:
    found = rows(
        root,
        "SELECT r.id, r.start_ns, r.end_ns, r.end_reason, s.epoch, s.unfenced FROM runs r "
        "JOIN site_runs s ON s.run_id = r.id WHERE r.camera_id=? ORDER BY r.start_ns",
        camera,
    )
    return [dict(r) for r in found]


def _fenced_overlaps(tmp_path: Path, camera: str, now_ns: int) -> list[str]:
    """Pairs of fenced runs of `camera` on different recorders that overlap in time."""
    runs = [(rec, r) for rec in RECORDERS for r in _site_runs(tmp_path / rec, camera) if not r["unfenced"]]
    problems = []
    for i, (rec1, r1) in enumerate(runs):
        for rec2, r2 in runs[i + 1 :]:
            if rec1 == rec2:
                continue
            end1 = r1["end_ns"] or now_ns
            end2 = r2["end_ns"] or now_ns
            if r1["start_ns"] < end2 and r2["start_ns"] < end1:  # type: ignore[operator]
                problems.append(
                    f"{camera}: fenced runs on {rec1} (epoch {r1['epoch']}) and {rec2} (epoch {r2['epoch']})"
                )
    return problems


def test_site_failover_partition_and_quorum_loss(
    tmp_path: Path, etcd3: EtcdCluster, site_sim: CameraSimulator, results: Results
) -> None:
    cameras = _cameras()
    kills = count(1, 3)
    results["cameras"] = len(cameras)
    results["recorders"] = len(RECORDERS)
    results["lease_ttl_s"] = LEASE_TTL_S
    daemons = {
        r: DaemonProcess(_config(tmp_path, r, etcd3, site_sim), tmp_path / f"{r}-0.log").start() for r in RECORDERS
    }
    failover_s: list[float] = []
    try:
        # -- every camera owned once and recording on its owner ------------------------------------
        start_ns = time.time_ns()

        def all_recording(since_ns: int) -> bool:
            owners = _owners(etcd3)
            return sorted(owners) == cameras and all(
                _segments_since(tmp_path / owners[c][0], c, since_ns) for c in cameras
            )

        _wait(lambda: all_recording(start_ns), 60, "every camera recording on its owner", lambda: _owners(etcd3))

        # -- kill -9 of the recorder owning most cameras: its cameras move to peers ----------------
        for kill in range(kills):
            owners = _owners(etcd3)
            by_owner = {r: [c for c, (o, _) in owners.items() if o == r] for r in RECORDERS if daemons[r].alive()}
            victim = max(by_owner, key=lambda r: len(by_owner[r]))
            lost = by_owner[victim]
            killed_ns = daemons[victim].kill9()
            # The first time, the etcd leader dies with it: the survivors elect another while the
            # recorders' keepalives and claims fail over to the remaining members.
            leader = etcd3.leader() if kill == 0 else None
            if leader is not None:
                etcd3.kill(leader)

            def taken_over(victim: str = victim, lost: list[str] = lost, killed_ns: int = killed_ns) -> bool:
                now = _owners(etcd3)
                return all(
                    c in now and now[c][0] != victim and _segments_since(tmp_path / now[c][0], c, killed_ns)
                    for c in lost
                )

            _wait(taken_over, 60, f"{victim}'s cameras recording on peers", lambda: _owners(etcd3))
            now = _owners(etcd3)
            for camera in lost:
                peer = now[camera][0]
                first_ns = _segments_since(tmp_path / peer, camera, killed_ns)[0]
                failover_s.append((first_ns - killed_ns) / S)
                failover_gaps = [
                    g
                    for g in rows(tmp_path / peer, "SELECT * FROM gaps WHERE camera_id=?", camera)
                    if g["reason"] == "failover" and g["start_ns"] >= killed_ns - 2 * LEASE_TTL_S * S
                ]
                assert len(failover_gaps) == 1, (camera, peer, [dict(g) for g in failover_gaps])
                assert victim in failover_gaps[0]["detail"], failover_gaps[0]["detail"]
                assert failover_gaps[0]["end_ns"] == first_ns  # closed by the peer's first segment
                assert now[camera][1] > owners[camera][1]  # a newer epoch
            if leader is not None:
                results["failover_with_etcd_leader_killed_max_s"] = max(failover_s)
                etcd3.start_member(leader)
            # -- the dead recorder returns; failback = manual: it takes nothing back ---------------
            daemons[victim] = DaemonProcess(daemons[victim].config, tmp_path / f"{victim}-{kill + 1}.log").start()
            daemons[victim].wait_for_log('"site_joined"', timeout=60)
            _wait(lambda v=victim: v in _members(etcd3), 30, f"{victim} a member again")
            assert victim not in {o for o, _ in _owners(etcd3).values()}
        results["kills"] = kills
        results["failover_first_segment_p50_s"] = percentile(failover_s, 0.5)
        results["failover_first_segment_max_s"] = max(failover_s)
        results["failover_samples"] = len(failover_s)

        # -- SIGSTOP of a recorder that owns cameras (its peers see it partitioned away) -----------
        owners = _owners(etcd3)
        by_owner = {r: [c for c, (o, _) in owners.items() if o == r] for r in RECORDERS}
        frozen = max(by_owner, key=lambda r: len(by_owner[r]))
        frozen_cameras = by_owner[frozen]
        proc = daemons[frozen].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        stopped_ns = time.time_ns()
        try:
            _wait(
                lambda: all(_owners(etcd3).get(c, (frozen, 0))[0] != frozen for c in frozen_cameras),
                60,
                f"{frozen}'s cameras taken over while it is stopped",
            )
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        # After SIGCONT it sees the newer epochs and stops each camera after its current segment.
        daemons[frozen].wait_for_log('"site_camera_released"', count=len(frozen_cameras), timeout=60)
        results["sigstop_to_all_released_s"] = (time.time_ns() - stopped_ns) / S
        _wait(
            lambda: all(
                not [r for r in _site_runs(tmp_path / frozen, c) if r["end_ns"] is None] for c in frozen_cameras
            ),
            SEGMENT_S * 3 + 30,
            f"{frozen} ends its runs of the cameras it lost",
        )
        now_ns = time.time_ns()
        overlaps = [p for c in cameras for p in _fenced_overlaps(tmp_path, c, now_ns)]
        assert not overlaps, overlaps
        late = []
        for camera in frozen_cameras:
            runs = _site_runs(tmp_path / frozen, camera)
            last = runs[-1]
            # It stopped at a boundary once it saw the newer epoch; or, when the camera's session
            # broke while the process was stopped, the run ended there and was not restarted.
            assert last["end_reason"] in ("failover", "stall", "camera_offline"), last
            for run in runs:
                if run["end_ns"] > stopped_ns:  # type: ignore[operator]
                    # Footage recorded while it no longer knew it was fenced: kept, and marked.
                    assert run["unfenced"] == 1, (camera, run)
                    late.append(camera)
        results["sigstop_cameras"] = len(frozen_cameras)
        results["sigstop_cameras_with_unfenced_overlap"] = len(set(late))

        # -- quorum lost: 2 of 3 etcd members down, recording continues everywhere -----------------
        owners = _owners(etcd3)
        etcd3.kill(0)
        etcd3.kill(1)
        lost_ns = time.time_ns()
        # New segments started well after the lease could have been renewed: nothing stopped.
        later_ns = lost_ns + (LEASE_TTL_S + 1) * S
        try:
            _wait(
                lambda: all(_segments_since(tmp_path / owners[c][0], c, later_ns) for c in cameras),
                LEASE_TTL_S + SEGMENT_S * 3 + 30,
                "every camera recording on its owner without quorum",
            )
        finally:
            etcd3.start_member(0, wait=False)
            etcd3.start_member(1, wait=False)
        etcd3.wait_healthy()
        results["quorum_lost_recording_continued"] = True
        for daemon in daemons.values():
            assert daemon.alive()
    finally:
        for daemon in daemons.values():
            if daemon.alive():
                daemon.terminate(timeout=30)
