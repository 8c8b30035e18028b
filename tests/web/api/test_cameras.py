"""GET /api/v1/cameras and /api/v1/cameras/{id} against the real daemon: scope, errors, audit."""

from __future__ import annotations

import aiohttp

from tests.support.rpc import CONFIG_SECRET
from tests.support.web import Console, bearer


async def test_the_list_holds_only_the_principals_cameras(console: Console, client: aiohttp.ClientSession) -> None:
    await console.login(client, "viewer")  # scoped to in-*
    async with client.get(f"{console.url}/api/v1/cameras") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        text = await response.text()
        body = await response.json()
    assert [c["id"] for c in body["cameras"]] == ["in-cam"]
    [camera] = body["cameras"]
    assert camera["name"] == "in-cam" and camera["state"] == "stopped" and camera["privacy_masks"] == []
    assert {"location", "codec", "width", "height", "state_since_ns"} <= camera.keys()
    assert isinstance(camera["state_since_ns"], str)
    assert CONFIG_SECRET not in text and "rtsp://" not in text
    async with client.get(f"{console.url}/api/v1/cameras", headers=bearer("admin")) as response:
        assert [c["id"] for c in (await response.json())["cameras"]] == ["in-cam", "out-cam"]


async def test_one_camera_and_the_errors_of_the_others(console: Console, client: aiohttp.ClientSession) -> None:
    await console.login(client, "viewer")
    async with client.get(f"{console.url}/api/v1/cameras/in-cam") as response:
        assert response.status == 200
        assert (await response.json())["id"] == "in-cam"
    async with client.get(f"{console.url}/api/v1/cameras/out-cam") as response:
        assert response.status == 403
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {
            "error": {"kind": "PERMISSION_DENIED", "message": "camera_id 'out-cam' is outside this principal's scope"}
        }
    denial = console.audit("GET /api/v1/cameras/{camera_id}")[-1]
    assert (denial.principal, denial.camera_id, denial.outcome) == ("viewer-1", "out-cam", "PERMISSION_DENIED")
    async with client.get(f"{console.url}/api/v1/cameras/in-nowhere") as response:
        assert response.status == 404
        assert (await response.json())["error"]["kind"] == "NOT_FOUND"


async def test_without_credentials_the_api_answers_401(console: Console) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{console.url}/api/v1/cameras") as response:
        assert response.status == 401
        assert (await response.json())["error"]["kind"] == "UNAUTHENTICATED"
