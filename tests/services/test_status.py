"""StatusService: the recorder's identity, uptime, disk, clock and cameras — counted in scope."""

from __future__ import annotations

from pathlib import Path

import pytest

import vmsd
from tests.services.conftest import principal
from tests.support.rpc import RunningDaemon
from vmsd.clock import FakeClock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Principal
from vmsd.services.status import CLOCK_CACHE_NS, StatusService
from vmsd.system_facts import ClockStatus, disk_space


def test_the_status_names_the_recorder_its_disk_and_only_the_cameras_in_scope(running: RunningDaemon) -> None:
    status = running.daemon.services.status
    everything = running.run(status.status(principal("admin")))
    scoped = running.run(status.status(principal("police-link")))
    root = running.config.storage.root
    assert (everything.recorder_id, everything.version, everything.storage_root) == (
        "rpc-test",
        vmsd.__version__,
        str(root),
    )
    assert everything.disk is not None and everything.disk_error == ""
    assert everything.disk.total_bytes == disk_space(root).total_bytes
    assert 0 < everything.disk.free_bytes <= everything.disk.total_bytes
    assert everything.min_free_bytes == 1024 * 1024  # [storage] min_free = "1MiB"
    assert everything.uptime_ns > 0
    assert everything.clock.synchronized in ("yes", "no", "unknown")
    assert "clock_unconfirmed" in everything.alarms  # the footage is from 2026-01-02: a clock far ahead
    # The test cameras are configured but disabled: nothing records.
    assert (everything.cameras_configured, everything.cameras_enabled, everything.cameras_recording) == (2, 0, 0)
    assert (scoped.cameras_configured, scoped.cameras_enabled, scoped.cameras_recording) == (1, 0, 0)


def test_the_status_needs_cameras_view(running: RunningDaemon) -> None:
    no_role = Principal("nobody", "no-such-role", ("*",))
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.status.status(no_role))
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED


def test_the_clock_is_asked_at_most_once_per_cache_period_and_a_lost_root_is_stated(
    running: RunningDaemon, tmp_path: Path
) -> None:
    asked: list[int] = []
    clock = FakeClock()

    def clock_state() -> ClockStatus:
        asked.append(clock.mono_ns())
        return ClockStatus(source="test", synchronized="yes", detail={})

    service = StatusService(
        running.daemon.cameras,
        clock,
        recorder_id="r",
        storage_root=tmp_path / "gone",
        min_free=lambda total: total // 20,
        alarms=dict,
        clock_state=clock_state,
    )
    first = running.run(service.status(principal("admin")))
    clock.advance(CLOCK_CACHE_NS - 1)
    running.run(service.status(principal("admin")))
    clock.advance(1)
    last = running.run(service.status(principal("admin")))
    assert len(asked) == 2
    assert last.uptime_ns == CLOCK_CACHE_NS and first.uptime_ns == 0
    assert last.clock.source == "test"
    assert last.disk is None and last.min_free_bytes == 0
    assert last.disk_error == f"cannot measure storage root {tmp_path / 'gone'}: No such file or directory"
