"""/api/v1/status against the real daemon."""

from __future__ import annotations

import aiohttp

import vmsd
from tests.support.web import Console, bearer


async def test_the_status_names_the_recorder_its_disk_clock_and_cameras_in_scope(console: Console) -> None:
    async with (
        aiohttp.ClientSession(headers=bearer("viewer")) as client,
        client.get(f"{console.url}/api/v1/status") as response,
    ):
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        status = await response.json()
    assert (status["recorder_id"], status["version"]) == ("rpc-test", vmsd.__version__)
    assert isinstance(status["uptime_ns"], str) and isinstance(status["started_ns"], str)
    storage = status["storage"]
    assert storage["root"] == str(console.running.config.storage.root) and storage["error"] == ""
    assert storage["used_bytes"] == storage["total_bytes"] - storage["free_bytes"] > 0
    assert storage["min_free_bytes"] == 1024 * 1024
    assert status["clock"]["synchronized"] in ("yes", "no", "unknown")
    assert status["cameras"] == {"configured": 1, "enabled": 0, "recording": 0}  # in-cam only
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{console.url}/api/v1/status") as response,
    ):
        assert response.status == 401
