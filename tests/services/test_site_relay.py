"""Live relay from the recorder that records the camera: two recorders of a site on a real etcd,
a simulated camera that only rec-b may record (`recorders = ["rec-b"]`); a relay asked of rec-a
is rec-b's relay, passed through, and audited on both."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.clips import make_clip
from tests.support.etcd import EtcdCluster
from tests.support.rpc import RunningDaemon, metadata
from tests.support.simulator import CameraSimulator, MountSpec
from tests.support.site_ops import SITE_TOKEN, site_daemon
from vmsd.v1 import live_pb2, live_pb2_grpc

S = 1_000_000_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, RunningDaemon]]:
    base = tmp_path_factory.mktemp("relay-site")
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", seconds=10)
    with CameraSimulator([MountSpec("in-cam", clip)]) as simulator:
        etcd = EtcdCluster(base / "etcd", members_count=1).start()
        token_file = base / "site.token"
        token_file.write_text(SITE_TOKEN)
        cameras = {"in-cam": simulator.url("in-cam")}
        fields = {"enabled": True, "recorders": ["rec-b"]}
        started: list[RunningDaemon] = []
        try:
            for recorder_id in ("rec-a", "rec-b"):
                started.append(
                    site_daemon(
                        base / recorder_id, recorder_id, etcd, token_file, cameras=cameras, camera_fields=fields
                    )
                )
            rec_a, rec_b = started
            _wait_recording(rec_b)
            yield rec_a, rec_b
        finally:
            for running in reversed(started):
                running.stop()
            etcd.stop()


def _wait_recording(running: RunningDaemon, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running.daemon.services.cameras.recording().get("in-cam"):
            return
        time.sleep(0.1)
    raise AssertionError("rec-b is not recording in-cam")


def _relay(running: RunningDaemon, duration_s: int) -> list[live_pb2.RelayMessage]:
    stub = live_pb2_grpc.LiveServiceStub(running.channel)  # type: ignore[no-untyped-call]
    request = live_pb2.RelayRequest(camera_id="in-cam", duration_ns=duration_s * S)
    return list(stub.Relay(request, metadata=metadata("viewer"), timeout=30))


def test_a_relay_asked_of_a_recorder_that_does_not_record_the_camera_comes_from_its_owner(
    site: tuple[RunningDaemon, RunningDaemon],
) -> None:
    rec_a, rec_b = site
    assert "in-cam" not in rec_a.daemon.cameras.recorders()
    # Nobody watched in-cam before, so the owner's hub is cold and the first frame waits for the
    # next keyframe (GOP 2 s): 5 s always holds one.
    messages = _relay(rec_a, duration_s=5)
    kinds = [m.WhichOneof("kind") for m in messages]
    assert kinds[0] == "config" and messages[0].config.video_codec == "h264"
    packets = [m.packet for m in messages if m.WhichOneof("kind") == "packet"]
    assert packets and packets[0].keyframe  # a viewer's first frame is a keyframe
    frames = sum(p.kind == live_pb2.MediaPacket.KIND_VIDEO for p in packets)
    mine, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.LiveService/Relay")
    theirs, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.LiveService/Relay")
    assert json.loads(mine[-1].detail_json)["relayed_from"] == "rec-b"
    assert json.loads(theirs[-1].detail_json)["via"] == "rec-a"
    # Every frame rec-a counted reached the viewer; rec-b counts what it handed to its transport,
    # and both end at the same duration, so a frame or two rec-b sent may still have been in
    # flight when rec-a's deadline closed the call.
    relayed, owner_sent = (json.loads(m[-1].detail_json)["video_frames"] for m in (mine, theirs))
    assert relayed == frames
    assert 0 <= owner_sent - relayed <= 2, (owner_sent, relayed)
    assert frames > 0
