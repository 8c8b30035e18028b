"""ExportService: authorisation before anything is built; unknown ids are NOT_FOUND."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import MID, RunningDaemon, S
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity
from vmsd.services.exports import ExportOrder


def test_an_export_outside_the_scope_is_denied_and_audited_before_any_work(running: RunningDaemon) -> None:
    activity = Activity()
    order = ExportOrder(camera_id="out-cam", start_ns=MID - 5 * S, end_ns=MID, case_ref="C", reason="r")

    async def create() -> None:
        async for _ in running.daemon.services.exports.create(principal("operator"), activity, order):
            pass

    with pytest.raises(VmsdError) as caught:
        running.run(create())
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert activity.audited and activity.camera_id == "out-cam"
    assert running.run(running.daemon.services.exports.list(principal("admin"), Activity())).items == []


def test_an_export_id_that_is_not_one_is_invalid(running: RunningDaemon) -> None:
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.exports.get(principal("operator"), Activity(), "no-such-export"))
    assert (caught.value.kind, caught.value.message) == (
        ErrorKind.INVALID_ARGUMENT,
        "export_id 'no-such-export' is not an export id",
    )
