"""Fixtures for the web console tests: the real daemon (FakeClock, so session timeouts are exact
without sleeping) serving [web] on a free loopback port, over the footage of tests/support/rpc.py,
and aiohttp clients that keep cookies for an IP host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.rpc import RunningDaemon, make_config, record_footage
from tests.support.web import Console
from vmsd.clock import FakeClock


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("web") / "root"
    record_footage(root, h264_ts)
    clock = FakeClock()
    running = RunningDaemon(make_config(root, web={"listen": "127.0.0.1:0"}), clock=clock)
    try:
        yield Console(running, clock)
    finally:
        running.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser-like client: keeps the session cookie (aiohttp's jar refuses IP hosts unless unsafe)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session
