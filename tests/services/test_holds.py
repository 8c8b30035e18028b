"""HoldService and RetentionService: holds in scope, hidden ones answered as absent."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import MID, RunningDaemon, S
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity


def test_a_hold_outside_the_scope_is_answered_as_absent_and_audited_as_a_denial(running: RunningDaemon) -> None:
    holds = running.daemon.services.holds
    added = running.run(
        holds.add(
            principal("admin"),
            Activity(),
            camera_ids=["out-cam"],
            start_ns=MID - 5 * S,
            end_ns=MID,
            case_ref="CASE-1",
            reason="evidence",
        )
    )
    assert added.active and list(added.row.camera_ids) == ["out-cam"]
    assert [h.row.id for h in running.run(holds.list(principal("supervisor"), Activity())).items] == []
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(holds.release(principal("supervisor"), activity, added.row.id, "done"))
    assert (caught.value.kind, caught.value.message) == (ErrorKind.NOT_FOUND, f"hold_id {added.row.id} does not exist")
    assert activity.detail["denied"] == "a camera of the hold is outside this principal's scope"
    assert activity.camera_id == "out-cam" and activity.case_ref == "CASE-1"


def test_the_retention_status_needs_only_the_camera_view_permission(running: RunningDaemon) -> None:
    retention = running.daemon.services.retention
    view = running.run(retention.status(principal("police-link")))
    assert view.max_age_ns == running.daemon.config.retention.max_age_ns
    with pytest.raises(VmsdError) as caught:
        running.run(retention.confirm_clock(principal("operator"), Activity(), "checked"))
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
