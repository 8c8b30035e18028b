"""Runtime camera management: persisted across restarts, config-file cameras read-only, and
URL credentials never leave the daemon (not in responses, errors or audit records)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import CONFIG_SECRET, RunningDaemon, make_config, metadata
from vmsd.v1 import cameras_pb2

SECRET = "Sup3r-Secret-pw"
API_URL = f"rtsp://alice:{SECRET}@127.0.0.1:9/stream1"  # nothing listens on port 9


def _spec(
    camera_id: str, *, name: str = "Market Square", url: str = API_URL, enabled: bool = True, retention_ns: int = 0
) -> cameras_pb2.CameraSpec:
    return cameras_pb2.CameraSpec(
        id=camera_id,
        name=name,
        location="Dover",
        url=url,
        transport="udp",
        enabled=enabled,
        retention_max_age_ns=retention_ns,
        rtsp_source="native",
    )


def _no_secrets(*messages: object) -> None:
    for message in messages:
        raw = message.SerializeToString() if hasattr(message, "SerializeToString") else str(message).encode()
        for secret in (SECRET, CONFIG_SECRET, "alice:"):
            assert secret.encode() not in raw, f"{secret!r} leaked in {message}"


def _list(running: RunningDaemon, role: str = "admin") -> dict[str, cameras_pb2.Camera]:
    reply = running.stubs.cameras.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=metadata(role))
    _no_secrets(reply)
    return {c.id: c for c in reply.cameras}


def _error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    return error.value


def test_added_camera_is_persisted_updated_and_removed_across_restarts(fresh_root: Path) -> None:
    config = make_config(fresh_root)
    running = RunningDaemon(config)
    try:
        added = running.stubs.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(camera=_spec("in-api-1"), reason="new camera on the quay"),
            metadata=metadata("integrator"),
        )
        assert (added.id, added.source, added.url_redacted) == ("in-api-1", "api", "rtsp://***@127.0.0.1:9/stream1")
        assert (added.transport, added.retention_max_age_ns, added.location) == ("udp", 0, "Dover")
        assert added.rtsp_source == "native"
        _no_secrets(added)
        duplicate = _error(
            lambda: running.stubs.cameras.AddCamera(
                cameras_pb2.AddCameraRequest(camera=_spec("in-api-1"), reason="again"), metadata=metadata("admin")
            )
        )
        assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
        _no_secrets(duplicate.details())
        records = [r for r in running.daemon.audit.query(limit=100)[0] if r.action.endswith("/AddCamera")]
        assert [(r.outcome, r.camera_id, r.principal) for r in records] == [
            ("OK", "in-api-1", "integrator-1"),
            ("ALREADY_EXISTS", "in-api-1", "admin-1"),
        ]
        assert records[0].reason == "new camera on the quay"
        _no_secrets(*(repr(r) for r in records))
    finally:
        running.stop()

    running = RunningDaemon(config)  # restart: the camera is back, from the catalogue
    try:
        restored = _list(running)["in-api-1"]
        assert (restored.name, restored.source, restored.transport, restored.enabled) == (
            "Market Square",
            "api",
            "udp",
            True,
        )
        assert restored.rtsp_source == "native"  # kept in the catalogue
        assert "in-api-1" in running.daemon.cameras.recorders()  # recording (trying to) again
        got = running.stubs.cameras.GetCamera(
            cameras_pb2.GetCameraRequest(camera_id="in-api-1"), metadata=metadata("viewer")
        )
        _no_secrets(got)
        updated = running.stubs.cameras.UpdateCamera(
            cameras_pb2.UpdateCameraRequest(camera=_spec("in-api-1", name="Quay", enabled=False), reason="renamed"),
            metadata=metadata("integrator"),
        )
        assert (updated.name, updated.enabled) == ("Quay", False)
        _no_secrets(updated)
    finally:
        running.stop()

    running = RunningDaemon(config)
    try:
        assert _list(running)["in-api-1"].name == "Quay"
        running.stubs.cameras.RemoveCamera(
            cameras_pb2.RemoveCameraRequest(camera_id="in-api-1", reason="decommissioned"), metadata=metadata("admin")
        )
        assert "in-api-1" not in _list(running)
    finally:
        running.stop()

    running = RunningDaemon(config)
    try:
        assert set(_list(running)) == {"in-cam", "out-cam"}
    finally:
        running.stop()


def test_a_camera_with_its_own_retention_survives_a_restart(fresh_root: Path) -> None:
    config = make_config(fresh_root)
    running = RunningDaemon(config)
    try:
        added = running.stubs.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(
                camera=_spec("in-api-2", retention_ns=31 * 86_400 * 10**9, enabled=False), reason="x"
            ),
            metadata=metadata("admin"),
        )
        assert added.retention_max_age_ns == 31 * 86_400 * 10**9
    finally:
        running.stop()
    running = RunningDaemon(config)
    try:
        assert _list(running)["in-api-2"].retention_max_age_ns == 31 * 86_400 * 10**9
    finally:
        running.stop()


def test_config_file_cameras_are_read_only(server: RunningDaemon) -> None:
    cameras = server.stubs.cameras
    update = _error(
        lambda: cameras.UpdateCamera(
            cameras_pb2.UpdateCameraRequest(camera=_spec("in-cam"), reason="try"), metadata=metadata("admin")
        )
    )
    remove = _error(
        lambda: cameras.RemoveCamera(
            cameras_pb2.RemoveCameraRequest(camera_id="in-cam", reason="try"), metadata=metadata("admin")
        )
    )
    for error in (update, remove):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "config" in (error.details() or "")
        _no_secrets(error.details())
    camera = _list(server)["in-cam"]
    assert (camera.source, camera.url_redacted) == ("config", "rtsp://***@127.0.0.1:9/in")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"http://bob:{SECRET}@10.0.0.5/stream", "camera.url"),
        (f"bob:{SECRET}@10.0.0.5", "camera.url"),
        ("", "camera.url"),
        (f"rtsp://bob:{SECRET}@ host/x", "camera.url"),
    ],
)
def test_a_bad_url_is_refused_without_echoing_it(server: RunningDaemon, url: str, field: str) -> None:
    error = _error(
        lambda: server.stubs.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(camera=_spec("in-bad-url", url=url), reason="x"), metadata=metadata("admin")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.details() or "")
    _no_secrets(error.details())


def test_a_bad_transport_names_the_field(server: RunningDaemon) -> None:
    spec = _spec("in-bad-transport")
    spec.transport = "sctp"
    error = _error(
        lambda: server.stubs.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(camera=spec, reason="x"), metadata=metadata("admin")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "camera.transport" in (error.details() or "")


def test_a_bad_rtsp_source_names_the_field(server: RunningDaemon) -> None:
    spec = _spec("in-bad-source")
    spec.rtsp_source = "gstreamer"
    error = _error(
        lambda: server.stubs.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(camera=spec, reason="x"), metadata=metadata("admin")
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "camera.rtsp_source" in (error.details() or ""), error.details()


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_a_credentialed_url_with_a_bad_port_is_refused_or_redacted(fresh_root: Path, port: str) -> None:
    running = RunningDaemon(make_config(fresh_root))
    try:
        request = cameras_pb2.AddCameraRequest(
            camera=_spec("in-bad-port", url=f"rtsp://alice:{SECRET}@127.0.0.1:{port}/x", enabled=False), reason="x"
        )
        try:
            reply = running.stubs.cameras.AddCamera(request, metadata=metadata("admin"))
            _no_secrets(reply)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
            assert "camera.url" in (error.details() or "")
        _list(running)  # still listable
    finally:
        running.stop()


# -- who may change what decides which footage exists (issue 19, item 6) ---------------------------

DAY_NS = 86_400 * 10**9


def _update(running: RunningDaemon, role: str, spec: cameras_pb2.CameraSpec) -> cameras_pb2.Camera:
    request = cameras_pb2.UpdateCameraRequest(camera=spec, reason="change of plan")
    camera: cameras_pb2.Camera = running.stubs.cameras.UpdateCamera(request, metadata=metadata(role))
    return camera


def _add(running: RunningDaemon, role: str, spec: cameras_pb2.CameraSpec) -> cameras_pb2.Camera:
    request = cameras_pb2.AddCameraRequest(camera=spec, reason="new camera")
    camera: cameras_pb2.Camera = running.stubs.cameras.AddCamera(request, metadata=metadata(role))
    return camera


@pytest.fixture
def with_api_camera(fresh_root: Path) -> Iterator[RunningDaemon]:
    """A daemon with one API camera, "in-api-r", added by an admin with 31 days' retention."""
    running = RunningDaemon(make_config(fresh_root))
    try:
        _add(running, "admin", _spec("in-api-r", enabled=False, retention_ns=31 * DAY_NS))
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    "change",
    [
        {"retention_ns": 1},  # 1 ns: every unheld minute of footage erased at the next pass
        {"retention_ns": 0},  # back to the recorder default (possibly shorter)
        {"retention_ns": 400 * DAY_NS},
        {"url": f"rtsp://alice:{SECRET}@127.0.0.1:9/other-camera"},
    ],
    ids=["retention-1ns", "retention-default", "retention-longer", "url"],
)
def test_an_integrator_may_not_change_retention_or_source(with_api_camera: RunningDaemon, change: dict) -> None:
    running = with_api_camera
    kwargs = {"enabled": False, "retention_ns": 31 * DAY_NS, **change}
    error = _error(lambda: _update(running, "integrator", _spec("in-api-r", **kwargs)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert "cameras.source_retention" in (error.details() or "")
    _no_secrets(error.details())
    camera = _list(running)["in-api-r"]
    assert (camera.retention_max_age_ns, camera.url_redacted) == (31 * DAY_NS, "rtsp://***@127.0.0.1:9/stream1")
    denial = running.daemon.audit.query(limit=100)[0][-1]
    assert (denial.action, denial.outcome, denial.principal) == (
        "/vmsd.v1.CameraService/UpdateCamera",
        "PERMISSION_DENIED",
        "integrator-1",
    )
    assert json.loads(denial.detail_json)["changes"]  # what was attempted, old and new


def test_an_integrator_may_not_change_the_transport(with_api_camera: RunningDaemon) -> None:
    spec = _spec("in-api-r", enabled=False, retention_ns=31 * DAY_NS)
    spec.transport = "tcp"
    error = _error(lambda: _update(with_api_camera, "integrator", spec))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_integrator_still_manages_the_rest(with_api_camera: RunningDaemon) -> None:
    """Name, location and enabled stay the integrator's; a new camera with the default retention too."""
    updated = _update(with_api_camera, "integrator", _spec("in-api-r", name="Quay", retention_ns=31 * DAY_NS))
    assert (updated.name, updated.enabled) == ("Quay", True)
    assert _add(with_api_camera, "integrator", _spec("in-api-new", enabled=False)).id == "in-api-new"
    error = _error(lambda: _add(with_api_camera, "integrator", _spec("in-api-new2", retention_ns=31 * DAY_NS)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_integrator_may_not_repoint_a_camera_by_removing_and_adding_it(with_api_camera: RunningDaemon) -> None:
    """The footage of a removed camera stays under its id: giving the id a source again is a source change."""
    cameras = with_api_camera.stubs.cameras
    removal = cameras_pb2.RemoveCameraRequest(camera_id="in-api-r", reason="swap")
    error = _error(lambda: cameras.RemoveCamera(removal, metadata=metadata("integrator")))
    # Removing it would also drop its own 31-day retention for the recorder default.
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    cameras.RemoveCamera(removal, metadata=metadata("admin"))
    error = _error(lambda: _add(with_api_camera, "integrator", _spec("in-api-r", url="rtsp://127.0.0.1:9/other")))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "in-api-r" not in _list(with_api_camera)


def test_a_supervisor_may_change_retention_but_not_below_the_floor(with_api_camera: RunningDaemon) -> None:
    running = with_api_camera
    below = _error(lambda: _update(running, "supervisor", _spec("in-api-r", enabled=False, retention_ns=1)))
    assert below.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = below.details() or ""
    assert "camera.retention_max_age_ns" in details and "min_age" in details and "7d" in details, details
    assert _list(running)["in-api-r"].retention_max_age_ns == 31 * DAY_NS
    added = _error(lambda: _add(running, "admin", _spec("in-api-short", enabled=False, retention_ns=6 * DAY_NS)))
    assert added.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "camera.retention_max_age_ns" in (added.details() or "")
    changed = _update(running, "supervisor", _spec("in-api-r", enabled=False, retention_ns=7 * DAY_NS))
    assert changed.retention_max_age_ns == 7 * DAY_NS


def test_source_and_retention_changes_are_audited_with_old_and_new_values(with_api_camera: RunningDaemon) -> None:
    running = with_api_camera
    new_url = f"rtsp://bob:{SECRET}-2@127.0.0.1:9/stream2"
    spec = _spec("in-api-r", url=new_url, enabled=False, retention_ns=90 * DAY_NS)
    spec.transport = "tcp"
    _update(running, "supervisor", spec)
    record = running.daemon.audit.query(limit=100)[0][-1]
    assert (record.action, record.outcome, record.principal) == (
        "/vmsd.v1.CameraService/UpdateCamera",
        "OK",
        "supervisor-1",
    )
    changes = json.loads(record.detail_json)["changes"]
    assert changes == {
        "url": {"old": "rtsp://***@127.0.0.1:9/stream1", "new": "rtsp://***@127.0.0.1:9/stream2"},
        "transport": {"old": "udp", "new": "tcp"},
        "retention_max_age_ns": {"old": 31 * DAY_NS, "new": 90 * DAY_NS},
    }
    _no_secrets(repr(record))
    assert "bob" not in record.detail_json
