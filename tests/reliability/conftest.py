"""Reliability suite fixtures: the iteration knob, the results file, a simulator of our own and
helpers that read what the real daemon left behind (catalogue rows, files, fsck).

One knob sets every iteration count: `VMSD_SOAK=1` (what `make soak` sets) runs the full counts of
issue #9 (50 crashes, 100 camera faults, 10,000 fuzzed requests); otherwise a reduced form that
keeps `make test` a few minutes longer at most. Every test reports what it measured through the
`results` fixture: printed, and written as JSON to `$VMSD_RELIABILITY_RESULTS/<test>.json` when
that variable is set (docs/reliability.md cites those files).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clips import make_clip
from tests.support.simulator import CameraSimulator, MountSpec

S = 1_000_000_000
CLIPS = "/tmp/vmsd-test-clips"
SOAK = os.environ.get("VMSD_SOAK", "") not in ("", "0")


def count(reduced: int, full: int) -> int:
    """The iteration count for this run: `full` under VMSD_SOAK=1, else `reduced`."""
    return full if SOAK else reduced


class Results:
    """Figures one test measured; `write()` prints them and stores them as JSON."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.figures: dict[str, Any] = {"soak": SOAK}

    def __setitem__(self, key: str, value: Any) -> None:
        self.figures[key] = value

    def write(self) -> None:
        print(f"\n[reliability] {self.name}: {json.dumps(self.figures, sort_keys=True)}")
        target = os.environ.get("VMSD_RELIABILITY_RESULTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            (Path(target) / f"{self.name}.json").write_text(json.dumps(self.figures, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def results(request: pytest.FixtureRequest) -> Iterator[Results]:
    """Record figures with `results["key"] = value`; written even when the test fails."""
    res = Results(request.node.name)
    try:
        yield res
    finally:
        res.write()


@pytest.fixture(scope="session")
def relsim() -> Iterator[CameraSimulator]:
    """The reliability suite's own simulator (so a fault here never disturbs the e2e mounts)."""
    h264 = make_clip(CLIPS, codec="h264", seconds=10)
    names = ["crash1", "crash2", "crash3", "crash4", "drop", "halfopen", "sps", "jumpf", "jumpb", "steady"]
    names += ["garbage", "truncate", "huge", "hostile-steady", "disk", "back", "sec", "ctl"]
    with CameraSimulator([MountSpec(name, h264) for name in names]) as sim:
        yield sim


# -- reading what the daemon left ----------------------------------------------------------------


def rows(root: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    conn = sqlite3.connect(root / "catalogue.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def segments(root: Path, camera: str) -> list[sqlite3.Row]:
    return rows(root, "SELECT * FROM segments WHERE camera_id=? AND state != 'garbage' ORDER BY start_ns", camera)


def gaps(root: Path, camera: str) -> list[sqlite3.Row]:
    return rows(root, "SELECT * FROM gaps WHERE camera_id=? ORDER BY start_ns", camera)


def timeline_problems(root: Path, camera: str) -> list[str]:
    """Invariants of one camera's catalogue: segments do not overlap each other, and no segment
    spans (overlaps) a closed gap. Returns human-readable violations (empty when sound)."""
    problems = []
    segs = segments(root, camera)
    for before, after in itertools.pairwise(segs):
        if before["end_ns"] is not None and after["start_ns"] < before["end_ns"]:
            problems.append(f"{camera}: segment {after['id']} starts before {before['id']} ends")
    for gap in gaps(root, camera):
        g_end = gap["end_ns"] if gap["end_ns"] is not None else 2**62
        for seg in segs:
            s_end = seg["end_ns"] if seg["end_ns"] is not None else seg["start_ns"]
            if seg["start_ns"] < g_end and gap["start_ns"] < s_end:
                problems.append(f"{camera}: segment {seg['id']} spans gap {gap['id']} ({gap['reason']})")
    return problems


def files_on_disk(root: Path) -> set[str]:
    """Every file under `<root>/recordings`, relative to the root (what a segment row's `path` names)."""
    base = root / "recordings"
    return {str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()} if base.exists() else set()


def iso_ns(text: str) -> int:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.timestamp()) * S + when.microsecond * 1000


def log_events(log: str, event: str, camera: str | None = None) -> list[dict[str, Any]]:
    """JSON log records whose event is `event` (and camera `camera`)."""
    found = []
    for line in log.splitlines():
        if f'"{event}"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") != event:
            continue
        if camera is not None and camera not in (record.get("camera"), record.get("camera_id")):
            continue
        found.append(record)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")
