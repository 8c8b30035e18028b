"""Fixtures for export tests: recorded footage (tests/support/rpc.py layout) and an open Exporter.

Footage of "in-cam" (MID = 2026-01-02T00:00:00Z, GOP 2 s, 25 fps, 320x240):
  [MID-5s, MID+1s) [MID+1s, MID+7s)   gap camera_offline [MID+7s, MID+13.96s)   [MID+13.96s, MID+21.96s)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.rpc import MID, S, record_footage
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.export.exporter import Exporter
from vmsd.export.model import CameraInfo, ExportRequest, ExportResult
from vmsd.retention.holds import Holds
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus

# Two masks: a rectangle top-left and a triangle bottom-right (normalised coordinates).
MASKS = [
    [(0.05, 0.05), (0.45, 0.05), (0.45, 0.40), (0.05, 0.40)],
    [(0.60, 0.95), (0.95, 0.55), (0.95, 0.95)],
]
START_NS = MID - 2_500_000_000  # mid-GOP: the master starts at the keyframe at MID-3s
END_NS = MID + 20 * S


@dataclass
class Env:
    root: Path
    storage: Storage
    audit: AuditLog
    clock: FakeClock
    holds: Holds
    exporter: Exporter

    def request(self, **changes: object) -> ExportRequest:
        values: dict[str, object] = {
            "camera_id": "in-cam",
            "start_ns": START_NS,
            "end_ns": END_NS,
            "case_ref": "CR-2026-0042",
            "reason": "assault outside the market",
            "principal": "operator-1",
            "role": "operator",
            "recipient": "DC Smith, Kent Police",
        }
        values.update(changes)
        return ExportRequest(**values)  # type: ignore[arg-type]


def camera_info(camera_id: str) -> CameraInfo | None:
    if camera_id == "in-cam":
        return CameraInfo("in-cam", "Market Square", "Market Square, Dover", MASKS)
    return None


def open_env(root: Path) -> Env:
    storage = Storage(root)
    storage.open()
    clock = FakeClock(wall_ns=MID + 3600 * S)
    audit = AuditLog(root / "audit.db", clock)
    audit.open()
    holds = Holds(storage.catalogue, clock)
    exporter = Exporter(
        storage,
        audit,
        clock,
        recorder_id="dover-test-01",
        camera_info=camera_info,
        holds=holds,
        time_sync=lambda: ClockStatus(source="test", synchronized="yes", detail={"NTPSynchronized": "yes"}),
    )
    exporter.open()
    return Env(root, storage, audit, clock, holds, exporter)


def close_env(env: Env) -> None:
    env.audit.close()
    env.storage.close()


@pytest.fixture(scope="module")
def footage_root(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Path:
    """Recorded once per module; tests that change state copy it (see `env`)."""
    root = tmp_path_factory.mktemp("export") / "root"
    record_footage(root, h264_ts)
    return root


@pytest.fixture
def env(tmp_path: Path, footage_root: Path) -> Iterator[Env]:
    root = tmp_path / "root"
    shutil.copytree(footage_root, root)
    opened = open_env(root)
    yield opened
    close_env(opened)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, footage_root: Path) -> Iterator[tuple[Env, ExportResult]]:
    """One export (originals + redacted copy) shared by the read-only tests of a module."""
    root = tmp_path_factory.mktemp("exported") / "root"
    shutil.copytree(footage_root, root)
    opened = open_env(root)
    result = opened.exporter.export(opened.request(redact=True))
    yield opened, result
    close_env(opened)


@pytest.fixture
def bundle_copy(tmp_path: Path, exported: tuple[Env, ExportResult]) -> Path:
    """A private copy of the shared bundle, to tamper with."""
    target = tmp_path / "bundle"
    shutil.copytree(exported[1].path, target)
    return target
