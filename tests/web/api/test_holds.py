"""/api/v1/holds against the real daemon: add, list, release; roles, CSRF, bad input, audit."""

from __future__ import annotations

import json

import aiohttp

from tests.support.rpc import MID, S
from tests.support.web import Console, bearer

FROM, TO = "2026-01-01T23:59:55Z", "2026-01-02T00:00:01Z"  # MID-5s .. MID+1s
HOLD = {"camera_id": "in-cam", "from": FROM, "to": TO, "case_ref": "CASE-1", "reason": "assault on the quay"}


async def _add(console: Console, client: aiohttp.ClientSession, role: str, body: dict) -> aiohttp.ClientResponse:
    csrf = (await console.login(client, role))["csrf"]
    return await client.post(f"{console.url}/api/v1/holds", json=body, headers={"X-CSRF-Token": csrf})


async def test_an_operator_adds_a_hold_that_is_listed_and_audited(
    console: Console, client: aiohttp.ClientSession
) -> None:
    async with await _add(console, client, "operator", {**HOLD, "until": str(MID + 400 * 86_400 * S)}) as response:
        assert response.status == 201, await response.text()
        hold = await response.json()
    assert (hold["camera_ids"], hold["case_ref"], hold["created_by"], hold["active"]) == (
        ["in-cam"],
        "CASE-1",
        "operator-1",
        True,
    )
    assert (hold["start_ns"], hold["end_ns"]) == (str(MID - 5 * S), str(MID + S))  # ns as strings
    assert hold["until_ns"] == str(MID + 400 * 86_400 * S) and hold["released_ns"] is None
    record = console.audit("POST /api/v1/holds")[-1]
    assert (record.principal, record.camera_id, record.case_ref, record.reason, record.outcome) == (
        "operator-1",
        "in-cam",
        "CASE-1",
        "assault on the quay",
        "OK",
    )
    assert json.loads(record.detail_json)["hold_id"] == hold["id"]
    async with client.get(f"{console.url}/api/v1/holds", params={"camera_id": "in-cam"}) as response:
        assert response.status == 200
        listed = await response.json()
    assert hold["id"] in [h["id"] for h in listed["holds"]] and listed["next_page_token"] == ""


async def test_paging_through_the_holds(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        for case in ("P-1", "P-2"):
            async with client.post(f"{console.url}/api/v1/holds", json={**HOLD, "case_ref": case}) as response:
                assert response.status == 201  # a bearer token needs no CSRF token
        seen: list[int] = []
        token = ""
        while True:
            params = {"page_size": "1", **({"page_token": token} if token else {})}
            async with client.get(f"{console.url}/api/v1/holds", params=params) as response:
                page = await response.json()
            seen += [h["id"] for h in page["holds"]]
            token = page["next_page_token"]
            if not token:
                break
    assert len(seen) >= 2 and seen == sorted(seen)


async def test_a_supervisor_releases_a_hold_with_a_reason(console: Console, client: aiohttp.ClientSession) -> None:
    async with aiohttp.ClientSession(headers=bearer("operator")) as operator:
        async with operator.post(f"{console.url}/api/v1/holds", json={**HOLD, "case_ref": "R-1"}) as response:
            hold_id = (await response.json())["id"]
        async with operator.post(f"{console.url}/api/v1/holds/{hold_id}/release", json={"reason": "x"}) as response:
            assert response.status == 403
            assert (await response.json())["error"] == {
                "kind": "PERMISSION_DENIED",
                "message": "role 'operator' does not have permission 'holds.release'",
            }
    csrf = (await console.login(client, "supervisor"))["csrf"]
    url = f"{console.url}/api/v1/holds/{hold_id}/release"
    async with client.post(url, json={"reason": " "}, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["message"] == "reason is required"
    async with client.post(url, json={"reason": "case closed"}) as response:
        assert response.status == 403  # a session without the CSRF token
        assert "CSRF" in (await response.json())["error"]["message"]
    async with client.post(url, json={"reason": "case closed"}, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 200
        released = await response.json()
    assert (released["active"], released["released_by"], released["release_reason"]) == (
        False,
        "supervisor-1",
        "case closed",
    )
    assert released["released_ns"] is not None
    record = console.audit("POST /api/v1/holds/{hold_id}/release")[-1]
    assert (record.principal, record.outcome, record.reason, record.case_ref) == (
        "supervisor-1",
        "OK",
        "case closed",
        "R-1",
    )
    async with client.get(f"{console.url}/api/v1/holds", params={"include_released": "true"}) as response:
        assert hold_id in [h["id"] for h in (await response.json())["holds"]]
    async with client.get(f"{console.url}/api/v1/holds") as response:
        assert hold_id not in [h["id"] for h in (await response.json())["holds"]]


async def test_a_viewer_may_not_see_holds(console: Console) -> None:
    async with (
        aiohttp.ClientSession(headers=bearer("viewer")) as client,
        client.get(f"{console.url}/api/v1/holds") as response,
    ):
        assert response.status == 403
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {
            "error": {"kind": "PERMISSION_DENIED", "message": "role 'viewer' does not have permission 'holds.view'"}
        }


async def test_bad_input_is_refused_naming_the_field(console: Console) -> None:
    cases = [
        ({k: v for k, v in HOLD.items() if k != "from"}, "field 'from' is required"),
        ({**HOLD, "to": "yesterday"}, "invalid field 'to' 'yesterday'"),
        ({**HOLD, "case_ref": ""}, "case_ref is required"),
        ({**HOLD, "camera_ids": ["in-cam"]}, "give either field 'camera_id' or 'camera_ids', not both"),
        ({**HOLD, "camera_id": 7}, "field 'camera_id' must be a string"),
        ({**HOLD, "from": TO, "to": FROM}, "range.end_ns must be after range.start_ns"),
    ]
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        for body, message in cases:
            async with client.post(f"{console.url}/api/v1/holds", json=body) as response:
                assert response.status == 400, (body, await response.text())
                error = (await response.json())["error"]
                assert error["kind"] == "INVALID_ARGUMENT" and error["message"].startswith(message), error
        async with client.post(f"{console.url}/api/v1/holds/abc/release", json={"reason": "r"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "hold id 'abc' is not a hold id (a positive integer)"
        async with client.get(f"{console.url}/api/v1/holds", params={"page_size": "-1"}) as response:
            assert response.status == 400
            assert "page_size" in (await response.json())["error"]["message"]
