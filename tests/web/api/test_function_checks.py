"""/api/v1/function-checks against the real daemon: run now, the dashboard, one check; scope."""

from __future__ import annotations

import aiohttp

from tests.support.web import Console, bearer


async def test_a_check_run_now_shows_on_the_dashboard_for_the_callers_cameras(
    console: Console, client: aiohttp.ClientSession
) -> None:
    csrf = (await console.login(client, "viewer"))["csrf"]
    async with client.post(
        f"{console.url}/api/v1/function-checks/run", json={}, headers={"X-CSRF-Token": csrf}
    ) as response:
        assert response.status == 200, await response.text()
        report = await response.json()
    assert (report["trigger"], report["requested_by"]) == ("request", "viewer-1")
    assert [c["camera_id"] for c in report["cameras"]] == ["in-cam"]  # scoped to in-*
    assert report["verdict"] in ("ok", "warning", "fail") and isinstance(report["started_ns"], str)
    assert {"free_bytes", "total_bytes", "min_free_bytes", "verdict"} <= report["disk"].keys()
    assert isinstance(report["cameras"][0]["last_packet_ns"], str)
    async with client.get(f"{console.url}/api/v1/function-checks") as response:
        assert response.status == 200
        dashboard = await response.json()
    assert dashboard["newest"]["id"] == report["id"]
    [camera] = dashboard["cameras"]
    assert (camera["camera_id"], camera["check_id"], camera["started_ns"]) == (
        "in-cam",
        report["id"],
        report["started_ns"],
    )
    async with client.get(f"{console.url}/api/v1/function-checks/{report['id']}") as response:
        assert (await response.json()) == report


async def test_checking_named_cameras_needs_them_in_scope(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("viewer")) as client:
        url = f"{console.url}/api/v1/function-checks/run"
        async with client.post(url, json={"camera_ids": ["out-cam"]}) as response:
            assert response.status == 403
            assert await response.json() == {
                "error": {
                    "kind": "PERMISSION_DENIED",
                    "message": "camera_id 'out-cam' is outside this principal's scope",
                }
            }
        async with client.post(url, json={"camera_ids": "in-cam"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "field 'camera_ids' must be a list of strings"
        async with client.get(f"{console.url}/api/v1/function-checks/x1") as response:
            assert response.status == 400
            assert "check id 'x1'" in (await response.json())["error"]["message"]
        async with client.get(f"{console.url}/api/v1/function-checks/999999") as response:
            assert response.status == 404
