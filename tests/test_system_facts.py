from __future__ import annotations

import os
from pathlib import Path

from vmsd.system_facts import clock_status, disk_space


def test_disk_space_is_what_statvfs_reports_for_an_unprivileged_writer(tmp_path: Path) -> None:
    space = disk_space(tmp_path)
    stats = os.statvfs(tmp_path)
    assert space.total_bytes == stats.f_blocks * stats.f_frsize
    assert 0 <= space.free_bytes <= space.total_bytes


def test_clock_status_answers_without_raising() -> None:
    status = clock_status(timeout_s=5.0)
    assert status.synchronized in ("yes", "no", "unknown")
    assert status.source in ("timedatectl", "unavailable")
