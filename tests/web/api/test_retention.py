"""/api/v1/retention and /api/v1/retention/erasures against the real daemon."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.rpc import MID, S
from tests.support.web import Console, bearer


async def test_the_status_shows_the_alarms_and_the_disk(console: Console) -> None:
    async with (
        aiohttp.ClientSession(headers=bearer("police-link")) as client,
        client.get(f"{console.url}/api/v1/retention") as response,
    ):
        assert response.status == 200
        status = await response.json()
    task = console.running.daemon.retention.status
    assert (status["paused"], status["alarms"]) == (task.paused, task.alarms)
    assert status["max_age_ns"] == str(console.running.config.retention.max_age_ns)
    assert isinstance(status["last_run_ns"], str)
    assert {"free_bytes", "total_bytes", "min_free_bytes", "last_erased_segments"} <= status.keys()


async def test_the_erasure_log_says_what_was_erased_when_and_why_in_scope(console: Console) -> None:
    storage = console.running.daemon.storage

    async def erase_first_out_cam_segment() -> int:
        row = (await asyncio.to_thread(storage.catalogue.segments, "out-cam"))[0]
        await asyncio.to_thread(storage.delete_segment, row, erased_ns=MID + 3600 * S, reason="age")
        return row.start_ns

    start_ns = console.running.run(erase_first_out_cam_segment())
    params = {"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"}
    async with (
        aiohttp.ClientSession(headers=bearer("admin")) as client,
        client.get(f"{console.url}/api/v1/retention/erasures", params=params) as response,
    ):
        assert response.status == 200
        log = await response.json()
    [day] = log["days"]
    assert (day["day"], day["camera_id"], day["reason"], day["segments"]) == ("2026-01-02", "out-cam", "age", 1)
    assert day["first_ns"] == str(start_ns) and day["bytes"] > 0 and log["next_page_token"] == ""
    async with aiohttp.ClientSession(headers=bearer("supervisor")) as client:  # scoped to in-*
        async with client.get(f"{console.url}/api/v1/retention/erasures", params=params) as response:
            assert (await response.json())["days"] == []
        async with client.get(f"{console.url}/api/v1/retention/erasures", params={"from": "then"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"].startswith("invalid query parameter 'from' 'then'")
    async with (
        aiohttp.ClientSession(headers=bearer("viewer")) as client,
        client.get(f"{console.url}/api/v1/retention/erasures", params=params) as response,
    ):
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "role 'viewer' does not have permission 'holds.view'"


async def test_a_supervisor_confirms_the_clock_with_a_reason(console: Console) -> None:
    url = f"{console.url}/api/v1/retention/confirm-clock"
    async with (
        aiohttp.ClientSession(headers=bearer("operator")) as client,
        client.post(url, json={"reason": "checked"}) as response,
    ):
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "role 'operator' does not have permission 'holds.release'"
    async with aiohttp.ClientSession(headers=bearer("supervisor")) as client:
        async with client.post(url, json={}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "reason is required"
        async with client.post(url, json={"reason": "clock checked against the NTP server"}) as response:
            assert response.status == 200
            status = await response.json()
    assert status["paused"] is False
    assert not {"clock_step", "clock_unconfirmed"} & status["alarms"].keys()
    record = console.audit("POST /api/v1/retention/confirm-clock")[-1]
    assert (record.principal, record.reason, record.outcome) == (
        "supervisor-1",
        "clock checked against the NTP server",
        "OK",
    )
