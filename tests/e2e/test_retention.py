"""Retention and evidence holds, end to end: the real daemon recording from the RTSP simulator, holds
placed and released with the real `vmsctl`, and what is left on disk checked against the catalogue,
the audit trail and `vmsd fsck`.

Both scenarios run on seconds instead of days (max_age 30 s; a 64 MiB tmpfs that fills in ~20 s)
but go through exactly the code paths an installation does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from tests.e2e.conftest import CLIPS
from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, run_vmsd, write_config
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.system_facts import disk_space
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc, holds_pb2, holds_pb2_grpc

pytestmark = pytest.mark.slow
S = 1_000_000_000
MiB = 1024 * 1024
TOKEN = "retention-e2e-admin-token"
CASE = "CRIME-2026-0042"
T = TypeVar("T")


@pytest.fixture(scope="module")
def cams() -> Iterator[CameraSimulator]:
    """Mounts of our own: two small streams (~1 Mbit/s) and two big ones (720p, ~8 Mbit/s)."""
    small = make_clip(CLIPS, codec="h264", seconds=10)
    big = make_clip(CLIPS, codec="h264", width=1280, height=720, bitrate="8M", seconds=10)
    mounts = [MountSpec("ret-a", small), MountSpec("ret-b", small), MountSpec("big-a", big), MountSpec("big-b", big)]
    with CameraSimulator(mounts) as sim:
        yield sim


# -- helpers ------------------------------------------------------------------------------------


def _extra(*, max_age: str, check_interval: str) -> str:
    return "\n".join(
        [
            "[retention]",
            f'max_age = "{max_age}"',
            'min_age = "1s"',  # seconds instead of days (the default floor is 7d)
            f'check_interval = "{check_interval}"',
            "[[auth.tokens]]",
            'name = "e2e-admin"',
            f'sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"',
            'role = "admin"',
        ]
    )


def _poll(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _grpc_port(daemon: DaemonProcess) -> int:
    def port() -> int | None:
        assert daemon.alive(), daemon.log()
        for line in daemon.log().splitlines():
            if '"grpc_listening"' in line:
                return int(json.loads(line)["port"])
        return None

    found = _poll(port, 30, "the grpc_listening log line")
    assert found is not None
    return found


def _rows(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _segments(root: Path, camera: str) -> list[sqlite3.Row]:
    return _rows(root / "catalogue.db", "SELECT * FROM segments WHERE camera_id=? ORDER BY start_ns", camera)


def _complete(root: Path, camera: str) -> list[sqlite3.Row]:
    return [r for r in _segments(root, camera) if r["state"] == "complete"]


def _erased(root: Path, camera: str | None = None) -> list[sqlite3.Row]:
    if camera is None:
        return _rows(root / "catalogue.db", "SELECT * FROM erased_segments ORDER BY start_ns")
    return _rows(root / "catalogue.db", "SELECT * FROM erased_segments WHERE camera_id=? ORDER BY start_ns", camera)


def _iso(ns: int) -> str:
    return (
        dt.datetime.fromtimestamp(ns // S, tz=dt.UTC).replace(microsecond=(ns % S) // 1000).isoformat()
    )  # exact to the microsecond, floor


def _overlaps(row: sqlite3.Row, start_ns: int, end_ns: int) -> bool:
    return bool(row["start_ns"] < end_ns and start_ns < row["end_ns"])


@dataclass
class Vmsctl:
    port: int

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{self.port}", "--token", TOKEN]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60)

    def json(self, *args: str) -> Any:
        done = self.run("--json", *args)
        assert done.returncode == 0, f"vmsctl {' '.join(args)} exited {done.returncode}: {done.stderr}"
        return json.loads(done.stdout)


def _stop_and_fsck(daemon: DaemonProcess, config: Path) -> tuple[int, str]:
    assert daemon.alive(), daemon.log()
    daemon.terminate()
    fsck = run_vmsd("fsck", "--config", str(config))
    return fsck.returncode, fsck.stdout + fsck.stderr


# -- 1. a hold outlives max_age -------------------------------------------------------------------

MAX_AGE_NS = 30 * S
CHECK_NS = 5 * S


def test_a_hold_placed_with_vmsctl_outlives_max_age(cams: CameraSimulator, tmp_path: Path) -> None:
    """Two cameras, max_age 30 s. A hold on ~3 s of cam-held's footage keeps those segments while
    everything else of the same age on both cameras (and footage *newer* than the held span) is
    erased by age, each erasure audited; once released, the held footage goes at the next pass."""
    root = tmp_path / "root"
    cameras = {"cam-held": cams.url("ret-a"), "cam-free": cams.url("ret-b")}
    config = write_config(
        tmp_path / "vmsd.toml", root, cameras, segment_duration="2s", extra=_extra(max_age="30s", check_interval="5s")
    )
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        ctl = Vmsctl(_grpc_port(daemon))
        daemon.wait_for_log('"state": "recording"', count=2)
        first = _poll(lambda: _complete(root, "cam-held"), 20, "cam-held's first segment")[0]["start_ns"]
        _poll(lambda: _complete(root, "cam-held")[-1]["end_ns"] >= first + 10 * S, 30, "10 s of footage")

        # Hold ~3 s of footage that is already recorded (a few segments), on cam-held only.
        hold_start, hold_end = first + 3 * S, first + 6 * S
        held = [r for r in _complete(root, "cam-held") if _overlaps(r, hold_start, hold_end)]
        assert held and all(r["end_ns"] < first + 10 * S for r in held), [dict(r) for r in held]
        placed = ctl.json(
            "hold", "add", "cam-held", "--from", _iso(hold_start), "--to", _iso(hold_end),
            "--case", CASE, "--reason", "assault reported at the taxi rank",
        )  # fmt: skip
        hold_id = int(placed["id"])
        assert placed["active"] is True and placed["camera_ids"] == ["cam-held"] and placed["case_ref"] == CASE
        assert placed["created_by"] == "e2e-admin"
        # vmsctl takes microseconds; the hold starts within 1 µs of what was asked.
        assert 0 <= hold_start - int(placed["range"]["start_ns"]) < 1000

        # Wait until footage recorded *after* the held span on the same camera has aged out.
        held_ids = {r["id"] for r in held}
        newest_held_end = max(r["end_ns"] for r in held)
        later_erased = _poll(
            lambda: [e for e in _erased(root, "cam-held") if e["start_ns"] >= newest_held_end],
            (newest_held_end + MAX_AGE_NS + CHECK_NS - time.time_ns()) / S + 10,
            "cam-held footage newer than the hold to be erased by age",
        )
        status = ctl.json("retention")["status"]
        seen_ns = time.time_ns()
        assert daemon.alive(), daemon.log()

        # The held segments are all still indexed and on disk, past max_age.
        now_held = {r["id"]: r for r in _complete(root, "cam-held") if r["id"] in held_ids}
        assert set(now_held) == held_ids
        for row in now_held.values():
            assert (root / row["path"]).is_file()
            assert (root / row["path"]).stat().st_size == row["bytes"]
        kept_past_max_age_s = (seen_ns - newest_held_end - MAX_AGE_NS) / S
        oldest_kept_past_max_age_s = (seen_ns - min(r["end_ns"] for r in held) - MAX_AGE_NS) / S
        assert kept_past_max_age_s > 0
        print(f"\nheld footage kept {kept_past_max_age_s:.1f}-{oldest_kept_past_max_age_s:.1f} s past max_age")

        # Every unheld segment the last pass found past max_age is gone; nothing unheld older than
        # max_age + check_interval + 2 s slack remains, on either camera.
        last_run_ns = int(status["last_run_ns"])
        assert int(status["max_age_ns"]) == MAX_AGE_NS and status["paused"] is False
        assert 0 < seen_ns - last_run_ns < CHECK_NS + 3 * S
        for camera in cameras:
            unheld = [r for r in _complete(root, camera) if r["id"] not in held_ids]
            assert unheld, camera
            assert all(r["end_ns"] > last_run_ns - MAX_AGE_NS for r in unheld), camera
            assert all(r["end_ns"] > seen_ns - MAX_AGE_NS - CHECK_NS - 2 * S for r in unheld), camera
            # Each camera's footage older than the hold was erased by age.
            assert _erased(root, camera)[0]["start_ns"] < hold_start, camera
        # cam-free's footage of the held period was erased: a hold covers only its cameras.
        assert any(_overlaps(e, hold_start, hold_end) for e in _erased(root, "cam-free"))
        assert not any(_overlaps(e, hold_start, hold_end) for e in _erased(root, "cam-held"))
        assert all(e["reason"] == "age" for e in _erased(root))
        assert later_erased

        # Every erasure is one audit record (retention.erase by vmsd, reason age) naming the file,
        # and that file is gone.
        erased = _erased(root)
        records = ctl.json("audit", "--limit", "10000")["records"]
        erase_records = [r for r in records if r["action"] == "retention.erase"]
        audited = {
            (r["camera_id"], int(r["range"]["start_ns"]), int(r["range"]["end_ns"]), r["reason"]) for r in erase_records
        }
        assert {(e["camera_id"], e["start_ns"], e["end_ns"], e["reason"]) for e in erased} <= audited
        assert all(r["principal"] == "vmsd" for r in erase_records)
        for record in erase_records:
            assert not (root / json.loads(record["detail_json"])["segment"]).exists()
        adds = [r for r in records if r["action"] == "/vmsd.v1.HoldService/AddHold"]
        assert [(a["principal"], a["case_ref"], a["outcome"]) for a in adds] == [("e2e-admin", CASE, "OK")]

        # The hold is listed as active; the erasure log shows age erasures for both cameras.
        listed = ctl.json("hold", "list")["holds"]
        assert [(int(h["id"]), h["active"]) for h in listed] == [(hold_id, True)]
        summary = ctl.json("retention", "--since", "-1h")["erasures"]
        assert {(d["camera_id"], d["reason"]) for d in summary} == {("cam-held", "age"), ("cam-free", "age")}

        # Release it: the held footage, now long past max_age, goes at the next age pass.
        released = ctl.json("hold", "release", str(hold_id), "--reason", "case closed: no further action")
        released_ns = time.time_ns()
        assert released["active"] is False and released["release_reason"] == "case closed: no further action"
        _poll(
            lambda: not any(r["id"] in held_ids for r in _segments(root, "cam-held")),
            CHECK_NS / S + 5,
            "the released footage to be erased",
        )
        gone_after_s = (time.time_ns() - released_ns) / S
        print(f"released footage erased within {gone_after_s:.1f} s of the release")
        for row in held:
            assert not (root / row["path"]).exists()
        tombstones = [e for e in _erased(root, "cam-held") if _overlaps(e, hold_start, hold_end)]
        assert sorted((e["start_ns"], e["end_ns"]) for e in tombstones) == sorted(
            (r["start_ns"], r["end_ns"]) for r in held
        )
        assert all(e["reason"] == "age" and e["erased_ns"] >= released_ns - S for e in tombstones)
        assert ctl.json("hold", "list")["holds"] == []
        [after] = ctl.json("hold", "list", "--all")["holds"]
        assert int(after["id"]) == hold_id and after["active"] is False and after["released_by"] == "e2e-admin"

        code, report = _stop_and_fsck(daemon, config)
        assert code == 0, report
    finally:
        if daemon.alive():
            daemon.kill9()


# -- 2. disk pressure on a small filesystem -------------------------------------------------------

FS_SIZE = "64m"
MIN_FREE = 24 * MiB


@dataclass
class Sample:
    t_s: float
    free_bytes: int  # as the last retention pass saw it (after its erasures)
    statvfs_free_bytes: int  # as the filesystem says at the sample
    alarms: set[str]
    camera_alarms: set[str]


def _mount_tmpfs(target: Path) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount(8): cannot make a size-limited filesystem")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(target)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {FS_SIZE} tmpfs (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")


@pytest.mark.parametrize("source", ["ffmpeg", "native"])
def test_disk_pressure_on_a_small_filesystem(cams: CameraSimulator, tmp_path: Path, source: str) -> None:
    """Two ~1 MB/s cameras on a 64 MiB tmpfs with min_free 24 MiB: retention sheds the oldest unheld
    footage (both cameras, start order) while recording carries on, never the held footage, raises
    the disk_pressure alarm, and leaves a root fsck accepts."""
    mount = tmp_path / "small"
    mount.mkdir()
    _mount_tmpfs(mount)
    daemon: DaemonProcess | None = None
    try:
        root = mount / "root"
        cameras = {"cam-a": cams.url("big-a"), "cam-b": cams.url("big-b")}
        config = write_config(
            tmp_path / "vmsd.toml",
            root,
            cameras,
            segment_duration="2s",
            extra=_extra(max_age="1d", check_interval="5s"),
            source=source,
        )
        text = config.read_text()
        assert 'min_free = "1MiB"' in text
        config.write_text(text.replace('min_free = "1MiB"', 'min_free = "24MiB"'))
        daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
        port = _grpc_port(daemon)
        ctl = Vmsctl(port)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        md = [("authorization", f"Bearer {TOKEN}")]
        retention = holds_pb2_grpc.RetentionServiceStub(channel)  # type: ignore[no-untyped-call]
        camera_service = cameras_pb2_grpc.CameraServiceStub(channel)  # type: ignore[no-untyped-call]
        daemon.wait_for_log('"state": "recording"', count=2)

        # Hold the first ~3 s of both cameras as soon as they are recorded (long before pressure).
        def first_segments() -> list[sqlite3.Row] | None:
            rows = {c: _complete(root, c) for c in cameras}
            return [rows[c][0] for c in cameras] if all(len(r) >= 3 for r in rows.values()) else None

        firsts = _poll(first_segments, 30, "three segments per camera")
        assert firsts is not None
        hold_start = max(r["start_ns"] for r in firsts)
        hold_end = hold_start + 3 * S
        placed = ctl.json(
            "hold", "add", *cameras, "--from", _iso(hold_start), "--to", _iso(hold_end),
            "--case", CASE, "--reason", "vehicle of interest",
        )  # fmt: skip
        assert placed["active"] is True
        held = {r["id"]: r for c in cameras for r in _complete(root, c) if _overlaps(r, hold_start, hold_end)}
        assert {r["camera_id"] for r in held.values()} == set(cameras)

        # Sample free space and alarms until pressure has been answered for a while.
        began = time.monotonic()
        samples: list[Sample] = []
        pressure_first_ns = 0
        pressure_t_s = 0.0
        vmsctl_saw_alarm = False

        def sample() -> bool:
            nonlocal pressure_first_ns, pressure_t_s, vmsctl_saw_alarm
            assert daemon is not None and daemon.alive(), daemon and daemon.log()
            status = retention.GetRetentionStatus(holds_pb2.RetentionStatusRequest(), metadata=md, timeout=10)
            listed = camera_service.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=md, timeout=10)
            camera_alarms = {kind for c in listed.cameras for kind in c.status.alarms}
            fs_free = disk_space(mount).free_bytes
            samples.append(
                Sample(time.monotonic() - began, status.free_bytes, fs_free, set(status.alarms), camera_alarms)
            )
            if "disk_pressure" in status.alarms and not pressure_first_ns:
                pressure_first_ns = time.time_ns()
                pressure_t_s = samples[-1].t_s
            if pressure_first_ns and not vmsctl_saw_alarm:
                vmsctl_saw_alarm = "disk_pressure" in ctl.json("retention")["status"]["alarms"]
            pressed = [e for e in _erased(root) if e["reason"] == "disk_pressure"]
            passes = {e["erased_ns"] for e in pressed}
            return bool(vmsctl_saw_alarm and len(passes) >= 3 and time.time_ns() - pressure_first_ns > 10 * S)

        try:
            _poll(sample, 55, "three disk-pressure passes and 10 s of recording under pressure", interval=0.5)
        finally:
            channel.close()
        stopped_ns = time.time_ns()
        code, report = _stop_and_fsck(daemon, config)
        assert code == 0, report

        # The alarm was raised (retention status and every camera's status).
        assert any("disk_pressure" in s.alarms for s in samples)
        assert any("disk_pressure" in s.camera_alarms for s in samples)
        assert "evidence_only" not in set().union(*(s.alarms for s in samples))
        free = [s.statvfs_free_bytes for s in samples]
        after_pass = [s.free_bytes for s in samples if s.free_bytes]
        print(
            f"\nfree space (statvfs): start {free[0] / MiB:.1f} MiB, min {min(free) / MiB:.1f} MiB, "
            f"end {free[-1] / MiB:.1f} MiB; after each pass: min {min(after_pass) / MiB:.1f} MiB "
            f"(min_free {MIN_FREE / MiB:.0f} MiB); pressure alarm from t={pressure_t_s:.1f} s"
        )
        print(
            "trajectory (s: MiB free): "
            + ", ".join(f"{s.t_s:.0f}:{s.statvfs_free_bytes / MiB:.0f}" for s in samples[::2])
        )
        assert min(free) > 4 * MiB, "the filesystem nearly filled: pressure was not answered in time"
        # Each pass under pressure frees enough to get back to min_free (one segment's worth of slack).
        assert min(after_pass) >= MIN_FREE - 2 * MiB

        # Erasures: all for pressure, each audited, none of held footage, oldest first.
        erased = _erased(root)
        assert erased and all(e["reason"] == "disk_pressure" for e in erased)
        print(f"erased by pressure: {len(erased)} segments, {sum(e['bytes'] for e in erased) / MiB:.1f} MiB")
        audit = _rows(root / "audit.db", "SELECT * FROM audit WHERE action='retention.erase'")
        assert sorted((a["camera_id"], a["start_ns"], a["end_ns"], a["reason"]) for a in audit) == sorted(
            (e["camera_id"], e["start_ns"], e["end_ns"], e["reason"]) for e in erased
        )
        remaining_unheld: list[sqlite3.Row] = []
        for camera in cameras:
            rows = _complete(root, camera)
            assert all(r["id"] in held for r in rows if _overlaps(r, hold_start, hold_end))
            for row in (r for r in held.values() if r["camera_id"] == camera):
                assert (root / row["path"]).is_file(), "held footage was erased"
            assert not any(_overlaps(e, hold_start, hold_end) for e in _erased(root, camera))
            unheld = [r for r in rows if r["id"] not in held]
            camera_erased = _erased(root, camera)
            assert camera_erased, camera
            assert max(e["start_ns"] for e in camera_erased) < min(r["start_ns"] for r in unheld), camera
            remaining_unheld += unheld

            # Recording continued to the end: the unheld footage left is one contiguous stretch up to
            # the stop, and any storage_error gap was followed by more recording.
            for before, after in itertools.pairwise(unheld):
                assert after["start_ns"] == before["end_ns"], (camera, dict(before), dict(after))
            assert stopped_ns - unheld[-1]["end_ns"] < 3 * S, camera
            gaps = _rows(root / "catalogue.db", "SELECT * FROM gaps WHERE camera_id=? ORDER BY start_ns", camera)
            for gap in gaps:
                assert gap["reason"] in ("restart", "storage_error"), dict(gap)
                if gap["reason"] == "storage_error":
                    assert gap["end_ns"] is not None and unheld[-1]["start_ns"] >= gap["end_ns"], dict(gap)
            assert sum(1 for r in unheld if r["start_ns"] > pressure_first_ns) >= 3, camera
        # Oldest first across cameras too: everything erased started before anything unheld left.
        assert max(e["start_ns"] for e in erased) < min(r["start_ns"] for r in remaining_unheld)
    finally:
        if daemon is not None and daemon.alive():
            daemon.kill9()
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)
