"""Fixtures for the control-plane tests: a running daemon with recorded footage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rpc import RunningDaemon, make_config, record_footage


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """One daemon per test module, over the footage described in tests/support/rpc.py."""
    root = tmp_path_factory.mktemp("rpc") / "root"
    record_footage(root, h264_ts)
    running = RunningDaemon(make_config(root))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh_root(tmp_path: Path, h264_ts: Path) -> Path:
    """A storage root of its own (with the footage), for tests that change state or restart."""
    root = tmp_path / "root"
    record_footage(root, h264_ts)
    return root
