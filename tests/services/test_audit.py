"""AuditService: readers need AUDIT_READ; a scoped reader sees its cameras' records only."""

from __future__ import annotations

import asyncio

import pytest

from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon
from vmsd.audit import AuditEntry
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity


def test_a_scoped_reader_sees_only_records_of_its_cameras(running: RunningDaemon) -> None:
    services = running.daemon.services
    for camera_id in ("in-cam", "out-cam"):
        entry = AuditEntry(
            action="test.consult", principal="admin-1", role="admin", camera_id=camera_id, reason=f"see {camera_id}"
        )
        running.run(asyncio.to_thread(services.audit_log.append, entry))
    everything = running.run(services.audit.query(principal("admin"), Activity(), principal_filter="admin-1"))
    scoped = running.run(services.audit.query(principal("supervisor"), Activity(), principal_filter="admin-1"))
    assert [r.camera_id for r in everything.records if r.action == "test.consult"] == ["in-cam", "out-cam"]
    assert [r.camera_id for r in scoped.records if r.action == "test.consult"] == ["in-cam"]
    assert running.run(services.audit.verify(principal("supervisor"))).ok


def test_audit_reading_needs_the_permission(running: RunningDaemon) -> None:
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.audit.verify(principal("operator")))
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED


def test_the_trail_is_filtered_by_action_exactly_or_by_prefix_and_by_outcome(running: RunningDaemon) -> None:
    services = running.daemon.services
    entries = [
        AuditEntry(action="filter.one", principal="filter-1"),
        AuditEntry(action="filter.two", principal="filter-1", outcome="PERMISSION_DENIED"),
        AuditEntry(action="filtered.other", principal="filter-1"),
    ]
    for entry in entries:
        running.run(asyncio.to_thread(services.audit_log.append, entry))

    def actions(**filters: str) -> list[str]:
        page = running.run(services.audit.query(principal("admin"), Activity(), principal_filter="filter-1", **filters))
        return [r.action for r in page.records]

    assert actions(action="filter.one") == ["filter.one"]
    assert actions(action="filter.*") == ["filter.one", "filter.two"]
    assert actions(action="filter*") == ["filter.one", "filter.two", "filtered.other"]
    assert actions(outcome="PERMISSION_DENIED") == ["filter.two"]
    assert actions(action="filter.*", outcome="OK") == ["filter.one"]
    with pytest.raises(VmsdError) as caught:
        actions(outcome="denied; DROP TABLE")
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert caught.value.message.startswith("outcome 'denied; DROP TABLE' is not a status name")
