"""An export across a live camera move: a simulated camera recorded by rec-a, then moved to rec-b
(`site move`, make-before-break) while both run on a real etcd. An export asked of either
recorder, up to now, covers both recorders' footage: each part with the ownership epoch it was
recorded under (rec-b's newer), the segment rec-b is still writing included as far as its
complete fragments go, masters ffprobe plays, and a bundle that verifies."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.clips import make_clip
from tests.support.etcd import EtcdCluster
from tests.support.rpc import RunningDaemon, metadata
from tests.support.simulator import CameraSimulator, MountSpec
from tests.support.site_ops import SITE_TOKEN, site_daemon, wait_for_keys
from vmsd.export import manifest as mf
from vmsd.export.verify import verify_bundle
from vmsd.storage.catalogue import SegmentState
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc, site_pb2, site_pb2_grpc


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting until {what}")


def _finished(running: RunningDaemon) -> list[int]:
    """Start times of the in-cam segments this recorder has finished."""
    rows = running.daemon.storage.catalogue.segments_in_range("in-cam", 0, 2**62)
    return [r.start_ns for r in rows if r.state is SegmentState.COMPLETE]


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, RunningDaemon, int]]:
    """rec-a records in-cam until it is moved to rec-b; yields both and the start of rec-a's footage."""
    base = tmp_path_factory.mktemp("site-export-live")
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", width=320, height=240, seconds=10)
    with CameraSimulator([MountSpec("in-cam", clip)]) as simulator:
        etcd = EtcdCluster(base / "etcd", members_count=1).start()
        token_file = base / "site.token"
        token_file.write_text(SITE_TOKEN)
        cameras = {"in-cam": simulator.url("in-cam")}
        fields = {"enabled": True}
        started: list[RunningDaemon] = []
        try:
            # rec-a alone first, so that it owns the camera.
            started.append(site_daemon(base / "a", "rec-a", etcd, token_file, cameras=cameras, camera_fields=fields))
            rec_a = started[0]
            _wait(lambda: len(_finished(rec_a)) >= 1, "rec-a has finished a segment of in-cam")
            started.append(site_daemon(base / "b", "rec-b", etcd, token_file, cameras=cameras, camera_fields=fields))
            rec_b = started[1]
            wait_for_keys(etcd, "members/", {"rec-a", "rec-b"})  # a move goes only to a live member
            stub = site_pb2_grpc.SiteServiceStub(rec_b.channel)  # type: ignore[no-untyped-call]
            stub.MoveCamera(
                site_pb2.MoveCameraRequest(camera_id="in-cam", to="rec-b", reason="maintenance of rec-a"),
                metadata=metadata("admin"),
                timeout=30,
            )
            _wait(lambda: "in-cam" not in rec_a.daemon.cameras.recorders(), "rec-a has stopped recording in-cam")
            _wait(lambda: len(_finished(rec_b)) >= 1, "rec-b has finished a segment of in-cam")
            yield rec_a, rec_b, _finished(rec_a)[0]
        finally:
            for running in reversed(started):
                running.stop()
            etcd.stop()


def _frames(path: str) -> int:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "json", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(json.loads(probe.stdout)["streams"][0]["nb_read_frames"])


@pytest.mark.parametrize("asked", ["rec-a", "rec-b"])
def test_an_export_up_to_now_covers_the_recorder_before_and_after_the_move(
    moved: tuple[RunningDaemon, RunningDaemon, int], asked: str
) -> None:
    rec_a, rec_b, start_ns = moved
    running = rec_a if asked == "rec-a" else rec_b
    now_ns = time.time_ns()
    stub = export_pb2_grpc.ExportServiceStub(running.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.CreateExportRequest(
        camera_id="in-cam",
        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=now_ns),
        case_ref="CASE-MOVE",
        reason="footage across a move",
    )
    done = list(stub.CreateExport(request, metadata=metadata("operator"), timeout=120))[-1].done
    path = running.daemon.exporter.bundle_path(done.export_id)
    manifest = mf.Manifest.model_validate_json((path / mf.MANIFEST_NAME).read_bytes())
    assert manifest.format == "vmsd-export/2"
    parts = {p.id: p for p in manifest.recorders}
    assert list(parts) == ["rec-a", "rec-b"]
    # Each part was recorded as a site member, under its ownership epoch: rec-b's is newer.
    assert len(parts["rec-a"].epochs) == len(parts["rec-b"].epochs) == 1
    assert parts["rec-a"].epochs[0] < parts["rec-b"].epochs[0]
    assert all(p.chain == "linked" for p in parts.values())
    assert all(s.epoch is not None for s in manifest.segments)
    # rec-b is still recording: the end of the range is its segment being written — in the bundle
    # as far as its complete fragments go (open_at_export, when asked of rec-b), the rest a
    # `recording_in_progress` gap (never the old owner's `failover` gap, still open on rec-a).
    last_b = [s for s in manifest.segments if s.recorder == "rec-b"][-1]
    assert last_b.open_at_export or manifest.gaps[-1].reason == mf.GAP_RECORDING_IN_PROGRESS
    assert not last_b.open_at_export or asked == "rec-b"  # a peer sends finished segments only
    assert "failover" not in {g.reason for g in manifest.gaps if g.start_ns >= last_b.start_ns}
    for master in manifest.masters:
        assert _frames(str(path / master.file)) == master.video_frames > 0
    assert {m.recorder for m in manifest.masters} == {"rec-a", "rec-b"}
    report = verify_bundle(path, expected_fingerprint=running.daemon.exporter.key.fingerprint)
    assert report.verdict == "verified", report.problems
    assert sum(c.startswith("part of recorder") for c in report.checks) == 2
    # Every instant of the range is in the footage or in a gap with a reason (no hole).
    cursor = start_ns
    for piece_start, piece_end in sorted(
        [(c.start_ns, c.end_ns) for c in manifest.covered] + [(g.start_ns, g.end_ns) for g in manifest.gaps]
    ):
        assert piece_start <= cursor, f"nothing says what happened {cursor}..{piece_start}"
        cursor = max(cursor, piece_end)
    assert cursor >= now_ns
