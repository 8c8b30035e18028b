"""EventService.WatchEvents against a real daemon recording simulated cameras (issue #17).

A consumer sees a camera drop and return within 2 s; a resumed consumer misses and repeats
nothing; a scoped consumer sees only its cameras; a consumer that stops reading is cut off while
recording goes on; a resume from before the kept window is an explicit error.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.rpc.test_authz_matrix import long_retention
from tests.support.clips import make_clip
from tests.support.rpc import MID, RunningDaemon, S, make_config, metadata, record_footage
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.config import TokenConfig
from vmsd.events.kinds import EventKind
from vmsd.ingest.recorder import CameraState
from vmsd.v1 import (
    audit_pb2,
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    export_pb2,
    export_pb2_grpc,
    holds_pb2,
    holds_pb2_grpc,
    recordings_pb2,
)

CAMERAS = ("in-a", "in-b")


def _config(root: Path, simulator: CameraSimulator) -> Any:
    config = make_config(root, cameras={c: simulator.url(c) for c in CAMERAS})
    cameras = [c.model_copy(update={"enabled": True}) for c in config.cameras]
    only_b = TokenConfig.model_validate(
        {"name": "only-b", "sha256": _digest("only-b"), "role": "operator", "cameras": ["in-b"]}
    )
    auth = config.auth.model_copy(update={"tokens": [*config.auth.tokens, only_b]})
    ingest = config.ingest.model_copy(update={"stall_timeout_ns": 4_000_000_000, "max_backoff_ns": 1_000_000_000})
    return config.model_copy(update={"cameras": cameras, "auth": auth, "ingest": ingest})


def _digest(name: str) -> str:
    return hashlib.sha256(f"token-{name}".encode()).hexdigest()


def _only_b() -> list[tuple[str, str]]:
    return [("authorization", "Bearer token-only-b")]


@pytest.fixture(scope="module")
def simulator() -> Iterator[CameraSimulator]:
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", seconds=10)
    with CameraSimulator([MountSpec(c, clip) for c in CAMERAS]) as sim:
        yield sim


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, simulator: CameraSimulator) -> Iterator[RunningDaemon]:
    running = RunningDaemon(_config(tmp_path_factory.mktemp("events") / "root", simulator))
    try:
        _wait_recording(running)
        yield running
    finally:
        running.stop()


def _wait_recording(running: RunningDaemon, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recorders = running.daemon.cameras.recorders()
        if len(recorders) == len(CAMERAS) and all(r.status.state is CameraState.RECORDING for r in recorders.values()):
            return
        time.sleep(0.1)
    raise AssertionError("the cameras did not start recording")


def _stub(running: RunningDaemon) -> events_pb2_grpc.EventServiceStub:
    return events_pb2_grpc.EventServiceStub(running.channel)  # type: ignore[no-untyped-call]


class Consumer:
    """A following stream read on a thread: events land in a queue with the time they arrived."""

    def __init__(
        self, running: RunningDaemon, md: list[tuple[str, str]], channel: grpc.Channel | None = None, **request: Any
    ) -> None:
        stub = _stub(running) if channel is None else events_pb2_grpc.EventServiceStub(channel)  # type: ignore[no-untyped-call]
        self.call = stub.WatchEvents(events_pb2.WatchEventsRequest(follow=True, **request), metadata=md, timeout=120)
        self.items: queue.Queue[tuple[float, events_pb2.Event]] = queue.Queue()
        self.received: list[events_pb2.Event] = []  # everything, in order (wait_for takes from `items`)
        self.error: grpc.RpcError | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.received.append(event)
                self.items.put((time.monotonic(), event))
        except grpc.RpcError as error:
            self.error = error

    def wait_for(self, kind: str, camera_id: str, timeout: float = 30) -> tuple[float, events_pb2.Event]:
        deadline = time.monotonic() + timeout
        while True:
            arrived, event = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if event.kind == kind and event.camera_id == camera_id:
                return arrived, event

    def all(self) -> list[events_pb2.Event]:
        return list(self.received)

    def cancel(self) -> None:
        self.call.cancel()
        self._thread.join(10)


def _stored(running: RunningDaemon, after_seq: int = 0, md: list[tuple[str, str]] | None = None) -> list[Any]:
    request = events_pb2.WatchEventsRequest(after_seq=after_seq)
    return list(_stub(running).WatchEvents(request, metadata=md or metadata("admin"), timeout=30))


def test_a_consumer_sees_a_camera_drop_within_2s_and_its_return(
    server: RunningDaemon, simulator: CameraSimulator
) -> None:
    consumer = Consumer(server, metadata("admin"), from_now=True)
    try:
        time.sleep(0.5)  # the stream is open
        dropped = time.monotonic()
        simulator.drop("in-a", 2)
        arrived, gone = consumer.wait_for("camera_disconnected", "in-a")
        assert arrived - dropped <= 2.0, f"camera_disconnected after {arrived - dropped:.2f}s"
        assert gone.recorder_id == "rpc-test" and gone.fields["reason"] == "camera_offline"
        _, back = consumer.wait_for("camera_connected", "in-a")
        assert back.seq > gone.seq
        _, gap = consumer.wait_for("gap_closed", "in-a")
        assert gap.fields["reason"] == "camera_offline"
    finally:
        consumer.cancel()


def test_a_resumed_consumer_misses_nothing_and_repeats_nothing(
    server: RunningDaemon, simulator: CameraSimulator
) -> None:
    first = Consumer(server, metadata("admin"), from_now=True)
    time.sleep(0.5)
    simulator.drop("in-b", 1)
    first.wait_for("camera_disconnected", "in-b")
    first.cancel()
    seen = first.all()
    last_seq = max([e.seq for e in seen])
    # Away: things happen that it does not see.
    simulator.drop("in-b", 1)
    _wait_recording(server)
    second = Consumer(server, metadata("admin"), after_seq=last_seq)
    try:
        second.wait_for("camera_connected", "in-b")
        time.sleep(0.5)
    finally:
        second.cancel()
    resumed = second.all()
    got = [e.seq for e in resumed]
    assert len(got) == len(set(got)) and min(got) == last_seq + 1
    everything = [e.seq for e in _stored(server, after_seq=last_seq)]
    assert got[: len(everything)] == everything  # the stored ones, in order, none missed


def test_a_consumer_scoped_to_one_camera_sees_only_its_events(
    server: RunningDaemon, simulator: CameraSimulator
) -> None:
    scoped = Consumer(server, _only_b(), from_now=True)
    time.sleep(0.5)
    try:
        simulator.drop("in-a", 1)
        simulator.drop("in-b", 1)
        scoped.wait_for("camera_connected", "in-b")
        time.sleep(2)  # in-a's events have long been published by now
    finally:
        scoped.cancel()
    events = scoped.all()
    assert events and {e.camera_id for e in events} == {"in-b"}
    admin_saw = {e.camera_id for e in _stored(server) if e.kind == "camera_disconnected"}
    assert "in-a" in admin_saw
    # A camera id outside the scope, named in the filter, is refused like everywhere.
    with pytest.raises(grpc.RpcError) as refused:
        list(_stub(server).WatchEvents(events_pb2.WatchEventsRequest(cameras=["in-a"]), metadata=_only_b(), timeout=10))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_consumer_that_stops_reading_is_cut_off_while_recording_goes_on(
    server: RunningDaemon,
) -> None:
    """The stream is read by nobody while 3000 large events are published: it ends with
    RESOURCE_EXHAUSTED saying why, the publisher never waited, and the cameras kept recording."""
    bus = server.daemon.events
    # No BDP probing: the client's receive window stays small, so what it does not read soon
    # holds up the server's sends (as a client that has stopped reading does).
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", options=[("grpc.http2.bdp_probe", 0)])
    stalled = events_pb2_grpc.EventServiceStub(channel).WatchEvents(  # type: ignore[no-untyped-call]
        events_pb2.WatchEventsRequest(follow=True, from_now=True), metadata=metadata("admin"), timeout=120
    )
    time.sleep(0.5)
    before = {c: r.status.video_packets for c, r in server.daemon.cameras.recorders().items()}
    gaps_before = {c: len(server.daemon.storage.catalogue.gaps(c)) for c in CAMERAS}
    blob = "x" * 4000
    for start in range(0, 3000, 500):
        for i in range(start, start + 500):
            bus.publish(EventKind.DISK_LOW, free_bytes=i, note=blob)
        time.sleep(0.2)  # within the publish queue's bound: none dropped
    assert bus.dropped == 0
    with pytest.raises(grpc.RpcError) as ended:
        for _ in stalled:
            pass
    channel.close()
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fell more than 1000 events behind" in ended.value.details(), ended.value.details()
    after = {c: r.status.video_packets for c, r in server.daemon.cameras.recorders().items()}
    assert all(after[c] > before[c] for c in CAMERAS)
    assert {c: len(server.daemon.storage.catalogue.gaps(c)) for c in CAMERAS} == gaps_before


def test_a_resume_from_before_the_kept_window_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path / "root", cameras={})
    config = config.model_copy(update={"events": config.events.model_copy(update={"keep_ns": 1_000_000_000})})
    running = RunningDaemon(config)
    try:
        for i in range(3):
            running.daemon.events.publish(EventKind.DISK_LOW, free_bytes=i)
        deadline = time.monotonic() + 10
        while len(_stored(running)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.stop()
    time.sleep(1.2)  # older than [events] keep: pruned at the next start
    running = RunningDaemon(config)
    try:
        running.daemon.events.publish(EventKind.DISK_LOW, free_bytes=9)
        with pytest.raises(grpc.RpcError) as refused:
            _stored(running, after_seq=1)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "the oldest kept is seq 4" in refused.value.details()
        assert [e.seq for e in _stored(running, after_seq=3)] in ([], [4])  # from the window: fine
    finally:
        running.stop()


# -- events published by the use cases, and who sees them -----------------------------------------


@pytest.fixture(scope="module")
def footage_server(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """The control-plane tests' daemon (tests/support/rpc.py): footage of in-cam and out-cam, no recorders."""
    root = tmp_path_factory.mktemp("events-footage") / "root"
    record_footage(root, h264_ts)
    # The footage (2026-01-02) must not become due for erasure by age while the test runs.
    running = RunningDaemon(long_retention(make_config(root)))
    try:
        yield running
    finally:
        running.stop()


def _wait_stored(running: RunningDaemon, kind: str, count: int = 1, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in _stored(running) if e.kind == kind]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_holds_exports_reviews_and_denials_are_events_seen_within_scope(footage_server: RunningDaemon) -> None:
    running = footage_server
    holds = holds_pb2_grpc.HoldServiceStub(running.channel)  # type: ignore[no-untyped-call]
    hold_range = common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 5 * S)
    hold = holds.AddHold(
        holds_pb2.AddHoldRequest(camera_ids=["in-cam", "out-cam"], range=hold_range, case_ref="EV-1", reason="r"),
        metadata=metadata("admin"),
    )
    holds.ReleaseHold(holds_pb2.ReleaseHoldRequest(hold_id=hold.id, reason="done"), metadata=metadata("admin"))
    play = recordings_pb2.PlayRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S), reason="incident 7"
    )
    list(running.stubs.recordings.Play(play, metadata=metadata("viewer")))
    export = export_pb2.CreateExportRequest(
        camera_id="in-cam",
        range=common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S),
        case_ref="EV-2",
        reason="court",
    )
    exports = export_pb2_grpc.ExportServiceStub(running.channel)  # type: ignore[no-untyped-call]
    done = list(exports.CreateExport(export, metadata=metadata("admin")))[-1].done
    with pytest.raises(grpc.RpcError):
        running.stubs.audit.VerifyAudit(audit_pb2.VerifyAuditRequest(), metadata=metadata("viewer"))

    added = _wait_stored(running, "hold_added", 2)
    mine = [e for e in added if e.fields["hold_id"] == str(hold.id)]
    assert sorted(e.camera_id for e in mine) == ["in-cam", "out-cam"]
    assert "case_ref" not in mine[0].fields and mine[0].fields["created_by"] == "admin-1"
    assert {e.camera_id for e in _wait_stored(running, "hold_released", 2)} == {"in-cam", "out-cam"}
    (review,) = _wait_stored(running, "review_started")
    assert (review.camera_id, review.fields["principal"]) == ("in-cam", "viewer-1")
    assert review.fields["reason"] == "incident 7"
    completed = _wait_stored(running, "export_completed")
    assert [e.fields["export_id"] for e in completed] == [done.export_id]
    assert [e.fields["export_id"] for e in _wait_stored(running, "export_created")] == [done.export_id]
    denied = _wait_stored(running, "request_denied")
    assert any(e.fields["method"].endswith("/VerifyAudit") and e.fields["principal"] == "viewer-1" for e in denied)

    # Scope: an operator ("in-*") sees the hold on in-cam, not on out-cam, and no access events;
    # a supervisor ("in-*") sees in-cam's review.
    operator = _stored(running, md=metadata("operator"))
    assert {e.camera_id for e in operator if e.kind == "hold_added"} == {"in-cam"}
    assert not [e for e in operator if e.kind in ("review_started", "request_denied", "relay_started")]
    supervisor = _stored(running, md=metadata("supervisor"))
    assert [e.camera_id for e in supervisor if e.kind == "review_started"] == ["in-cam"]
    assert all(e.camera_id in ("", "in-cam") for e in supervisor)
    # Roles without events.watch are refused.
    for role in ("viewer", "police-link"):
        with pytest.raises(grpc.RpcError) as refused:
            _stored(running, md=metadata(role))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_following_stream_is_told_to_resume_when_the_recorder_stops(tmp_path: Path) -> None:
    running = RunningDaemon(make_config(tmp_path / "root", cameras={}))
    stopped = False
    try:
        running.daemon.events.publish(EventKind.DISK_LOW, alarm="disk_pressure")
        # Its own channel: the test daemon's is closed first when it stops.
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        consumer = Consumer(running, metadata("admin"), channel=channel)
        consumer.wait_for("disk_low", "")
        running.stop()
        stopped = True
        consumer.cancel()
        channel.close()
    finally:
        if not stopped:
            running.stop()
    assert consumer.error is not None and consumer.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "the recorder is stopping: resume with after_seq 1 once it is back" in consumer.error.details()


def test_a_camera_that_never_connects_is_announced_once_without_its_password(tmp_path: Path) -> None:
    url = f"rtsp://user:s3cret-pw@127.0.0.1:{free_port()}/nothing-listens-here"
    config = make_config(tmp_path / "root", cameras={"in-dead": url})
    config = config.model_copy(
        update={
            "cameras": [c.model_copy(update={"enabled": True}) for c in config.cameras],
            "ingest": config.ingest.model_copy(update={"max_backoff_ns": 500_000_000}),
        }
    )
    running = RunningDaemon(config)
    try:
        deadline = time.monotonic() + 30
        while True:
            recorder = running.daemon.cameras.recorders().get("in-dead")
            if recorder is not None and recorder.status.reconnects >= 3:  # several failed attempts
                break
            assert time.monotonic() < deadline, "the camera was not retried"
            time.sleep(0.1)
        time.sleep(0.5)  # the writer stores what was published
        events = [e for e in running.daemon.events.stored_after(0, 100) if e.camera_id == "in-dead"]
    finally:
        running.stop()
    assert [str(e.kind) for e in events] == ["camera_unreachable"]
    assert events[0].fields["detail"] and "s3cret-pw" not in events[0].fields["detail"]
