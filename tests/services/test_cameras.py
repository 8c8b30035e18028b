"""CameraService: scope decides what is listed; a denied get names the camera without auditing."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity
from vmsd.services.cameras import CameraSpec


def test_a_scoped_principal_lists_only_its_cameras(running: RunningDaemon) -> None:
    cameras = running.daemon.services.cameras
    assert [v.camera.config.id for v in running.run(cameras.list(principal("viewer")))] == ["in-cam"]
    assert [v.camera.config.id for v in running.run(cameras.list(principal("admin")))] == ["in-cam", "out-cam"]


def test_a_get_outside_the_scope_is_denied_and_names_the_camera_for_the_denial_record(
    running: RunningDaemon,
) -> None:
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.cameras.get(principal("viewer"), activity, "out-cam"))
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert activity.camera_id == "out-cam"
    assert not activity.audited  # a read: only its denial is recorded (by the transport)


def test_adding_a_camera_needs_a_reason_and_is_audited_with_what_was_attempted(running: RunningDaemon) -> None:
    activity = Activity()
    spec = CameraSpec(id="in-new", name="New", url="rtsp://127.0.0.1:9/new")
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.cameras.add(principal("supervisor"), activity, spec, " "))
    assert (caught.value.kind, caught.value.message) == (ErrorKind.INVALID_ARGUMENT, "reason is required")
    assert activity.audited and activity.camera_id == "in-new"
