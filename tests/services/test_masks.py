"""MaskService: privacy masks of API cameras, validated, saved with the camera, audited old → new."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon, make_config
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity
from vmsd.services.cameras import CameraSpec
from vmsd.services.masks import MAX_POINTS, MAX_POLYGONS

SQUARE = [[0.1, 0.1], [0.3, 0.1], [0.3, 0.4], [0.1, 0.4]]
TRIANGLE = [[0.5, 0.5], [1, 0.5], [0.75, 1]]


def _with_api_cameras(root: Path) -> RunningDaemon:
    """A daemon with two API cameras, "in-api" and "out-api" (disabled)."""
    daemon = RunningDaemon(make_config(root))
    for camera_id in ("in-api", "out-api"):
        spec = CameraSpec(id=camera_id, name=camera_id, url="rtsp://127.0.0.1:9/x", enabled=False)
        daemon.run(daemon.daemon.services.cameras.add(principal("admin"), Activity(), spec, "test camera"))
    return daemon


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningDaemon]:
    daemon = _with_api_cameras(tmp_path / "root")
    try:
        yield daemon
    finally:
        daemon.stop()


def _set(running: RunningDaemon, role: str, camera_id: str, masks: object, reason: str = "bedroom windows") -> Activity:
    activity = Activity()
    running.run(running.daemon.services.masks.set(principal(role), activity, camera_id, masks, reason))
    return activity


def _error(call: object) -> VmsdError:
    with pytest.raises(VmsdError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_masks_are_saved_with_the_camera_audited_and_kept_across_an_update_and_a_restart(
    tmp_path: Path,
) -> None:
    running = _with_api_cameras(tmp_path / "root")
    try:
        _set_update_and_check(running)
    finally:
        running.stop()
    restarted = RunningDaemon(running.config)
    try:
        again = restarted.run(restarted.daemon.services.masks.get(principal("admin"), Activity(), "in-api"))
        assert [[list(p) for p in polygon] for polygon in again.masks] == [SQUARE, TRIANGLE]
        cleared = _set(restarted, "admin", "in-api", [], "windows boarded up")
        assert cleared.detail["changes"] == {"privacy_masks": {"old": [SQUARE, TRIANGLE], "new": []}}
    finally:
        restarted.stop()


def _set_update_and_check(running: RunningDaemon) -> None:
    services = running.daemon.services
    activity = _set(running, "supervisor", "in-api", [SQUARE, TRIANGLE])
    assert activity.audited and (activity.camera_id, activity.reason) == ("in-api", "bedroom windows")
    assert activity.detail["changes"] == {"privacy_masks": {"old": [], "new": [SQUARE, TRIANGLE]}}
    json.dumps(activity.detail)  # the audit record's detail must be JSON
    got = running.run(services.masks.get(principal("viewer"), Activity(), "in-api"))
    assert (got.masks, got.editable) == ([[tuple(p) for p in SQUARE], [tuple(p) for p in TRIANGLE]], True)
    # What a redacted export paints: the camera's masks as the exporter is told them.
    info = running.daemon._camera_info("in-api")
    assert info is not None and [list(map(list, polygon)) for polygon in info.privacy_masks] == [SQUARE, TRIANGLE]
    # An update of the camera (its name) does not carry masks, and keeps them.
    spec = CameraSpec(id="in-api", name="renamed", url="rtsp://127.0.0.1:9/x", enabled=False)
    update = Activity()
    running.run(services.cameras.update(principal("supervisor"), update, spec, "renamed"))
    assert "privacy_masks" not in update.detail["changes"]
    assert len(running.run(services.masks.get(principal("admin"), Activity(), "in-api")).masks) == 2


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ({"x": 1}, "masks must be a list of polygons, each a list of [x, y] points"),
        ([SQUARE, "square"], "masks[1] must be a list of [x, y] points"),
        ([SQUARE[:2]], "masks[0] must have from 3 to 64 points, not 2"),
        ([[[0.1, 0.1]] * (MAX_POINTS + 1)], f"masks[0] must have from 3 to 64 points, not {MAX_POINTS + 1}"),
        ([SQUARE] * (MAX_POLYGONS + 1), f"masks has more than {MAX_POLYGONS} polygons"),
        ([[[0.1, 0.1], [0.2, 0.2], [1.5, 0.2]]], "masks[0][2] [1.5, 0.2] is outside 0..1"),
        ([[[0.1, 0.1], [0.2, 0.2], [float("nan"), 0.2]]], "masks[0][2] [nan, 0.2] is outside 0..1"),
        ([[[0.1, 0.1], [0.2, 0.2], [True, 0.2]]], "masks[0][2] must be [x, y]: two numbers from 0 to 1"),
        ([[[0.1, 0.1], [0.2, 0.2], ["0.3", 0.2]]], "masks[0][2] must be [x, y]: two numbers from 0 to 1"),
        ([[[0.1, 0.1], [0.2, 0.2], [0.3]]], "masks[0][2] must be [x, y]: two numbers from 0 to 1"),
    ],
)
def test_bad_masks_are_refused_naming_the_polygon_and_point(
    running: RunningDaemon, masks: object, message: str
) -> None:
    error = _error(lambda: _set(running, "admin", "in-api", masks))
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.message.startswith(message)
    assert running.run(running.daemon.services.masks.get(principal("admin"), Activity(), "in-api")).masks == []


def test_changing_masks_needs_cameras_manage_in_scope_and_a_reason(running: RunningDaemon) -> None:
    operator = _error(lambda: _set(running, "operator", "in-api", [SQUARE]))
    assert operator.kind is ErrorKind.PERMISSION_DENIED and "cameras.manage" in operator.message
    activity = Activity()
    outside = _error(
        lambda: running.run(running.daemon.services.masks.set(principal("supervisor"), activity, "out-api", [], "x"))
    )
    assert outside.kind is ErrorKind.PERMISSION_DENIED
    assert activity.audited and activity.camera_id == "out-api"  # the denial's record names the camera
    no_reason = _error(lambda: _set(running, "supervisor", "in-api", [SQUARE], reason="  "))
    assert (no_reason.kind, no_reason.message) == (ErrorKind.INVALID_ARGUMENT, "reason is required")
    absent = _error(lambda: _set(running, "supervisor", "in-nothing", [SQUARE]))
    assert absent.kind is ErrorKind.NOT_FOUND


def test_a_config_file_camera_shows_its_masks_and_is_changed_in_the_file(tmp_path: Path) -> None:
    config = make_config(tmp_path / "root")
    cameras = [c.model_copy(update={"privacy_masks": [[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]]}) for c in config.cameras]
    running = RunningDaemon(config.model_copy(update={"cameras": cameras}))
    try:
        got = running.run(running.daemon.services.masks.get(principal("admin"), Activity(), "in-cam"))
        assert (got.masks, got.editable) == ([[(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]], False)
        error = _error(lambda: _set(running, "admin", "in-cam", [SQUARE]))
        assert (error.kind, error.message) == (
            ErrorKind.FAILED_PRECONDITION,
            "camera_id 'in-cam' is defined in the config file; change it there",
        )
    finally:
        running.stop()
