"""FunctionCheckService: scope before existence; a caller sees only its cameras."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity


@pytest.mark.parametrize(
    ("camera_id", "kind"),
    [("out-cam", ErrorKind.PERMISSION_DENIED), ("in-nothing", ErrorKind.NOT_FOUND)],
)
def test_checking_a_camera_needs_it_in_scope_then_configured(
    running: RunningDaemon, camera_id: str, kind: ErrorKind
) -> None:
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.function_checks.run(principal("viewer"), activity, [camera_id]))
    assert caught.value.kind is kind
    assert activity.camera_id == camera_id


def test_a_check_shows_a_scoped_caller_only_its_cameras(running: RunningDaemon) -> None:
    checks = running.daemon.services.function_checks
    view = running.run(checks.run(principal("admin"), Activity(), []), timeout=60)
    assert sorted(c.camera_id for c in view.cameras) == ["in-cam", "out-cam"]
    seen = running.run(checks.get(principal("viewer"), view.report.id))
    assert [c.camera_id for c in seen.cameras] == ["in-cam"]


def test_the_latest_check_of_each_camera_is_found_in_older_checks_too(running: RunningDaemon) -> None:
    checks = running.daemon.services.function_checks
    both = running.run(checks.run(principal("admin"), Activity(), []), timeout=60)
    only_in = running.run(checks.run(principal("admin"), Activity(), ["in-cam"]), timeout=60)
    latest = running.run(checks.latest(principal("admin")))
    assert latest.newest is not None and latest.newest.report.id == only_in.report.id
    assert [(c.camera.camera_id, c.check_id) for c in latest.cameras] == [
        ("in-cam", only_in.report.id),
        ("out-cam", both.report.id),
    ]
    assert latest.cameras[1].started_ns == both.report.started_ns
    scoped = running.run(checks.latest(principal("viewer")))
    assert [c.camera.camera_id for c in scoped.cameras] == ["in-cam"]
