"""LiveService: scope, then existence, then a recorder to relay from."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity


@pytest.mark.parametrize(
    ("camera_id", "kind", "message"),
    [
        ("out-cam", ErrorKind.PERMISSION_DENIED, "camera_id 'out-cam' is outside this principal's scope"),
        ("in-nothing", ErrorKind.NOT_FOUND, "camera_id 'in-nothing' does not exist"),
        ("in-cam", ErrorKind.FAILED_PRECONDITION, "camera_id 'in-cam' is not being recorded"),  # disabled
    ],
)
def test_a_relay_is_refused_in_order_of_scope_existence_and_recording(
    running: RunningDaemon, camera_id: str, kind: ErrorKind, message: str
) -> None:
    activity = Activity()

    async def relay() -> None:
        items = await running.daemon.services.live.relay(
            principal("police-link"), activity, camera_id, transport="grpc"
        )
        async for _ in items:
            pass

    with pytest.raises(VmsdError) as caught:
        running.run(relay())
    assert (caught.value.kind, caught.value.message) == (kind, message)
    assert activity.audited and activity.camera_id == camera_id
    assert running.daemon.services.live.active_relays == 0
