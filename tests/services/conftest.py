"""Fixtures for the service-layer tests: a started daemon (real storage, catalogue, audit) whose
`services` the tests call directly, on the daemon's own event loop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rpc import SCOPES, RunningDaemon, make_config, record_footage
from vmsd.services.access import Principal


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """One daemon per test module, over the footage described in tests/support/rpc.py."""
    root = tmp_path_factory.mktemp("services") / "root"
    record_footage(root, h264_ts)
    daemon = RunningDaemon(make_config(root))
    try:
        yield daemon
    finally:
        daemon.stop()


def principal(role: str) -> Principal:
    """The configured principal of a role (every role but admin is scoped to "in-*")."""
    return Principal(f"{role}-1", role, tuple(SCOPES[role]))
