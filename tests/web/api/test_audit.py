"""/api/v1/audit and /api/v1/audit/verify against the real daemon: filters, paging, scope, roles."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.web import Console, bearer
from vmsd.audit import AuditEntry


def _append(console: Console, *entries: AuditEntry) -> list[int]:
    log = console.running.daemon.services.audit_log

    async def append() -> list[int]:
        return [(await asyncio.to_thread(log.append, e)).seq for e in entries]

    return console.running.run(append())


async def test_a_viewer_gets_403_on_the_audit_api(console: Console, client: aiohttp.ClientSession) -> None:
    await console.login(client, "viewer")
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        async with client.get(f"{console.url}{path}") as response:
            assert response.status == 403
            assert response.headers["Cache-Control"] == "no-store"
            assert await response.json() == {
                "error": {"kind": "PERMISSION_DENIED", "message": "role 'viewer' does not have permission 'audit.read'"}
            }
    denial = console.audit("GET /api/v1/audit")[-1]
    assert (denial.principal, denial.outcome) == ("viewer-1", "PERMISSION_DENIED")


async def test_the_trail_is_filtered_and_paged_back_in_time(console: Console, client: aiohttp.ClientSession) -> None:
    seqs = _append(
        console,
        AuditEntry(action="web.test.one", principal="tester", camera_id="in-cam", reason="first"),
        AuditEntry(action="web.test.two", principal="tester", outcome="PERMISSION_DENIED"),
        AuditEntry(action="web.test.three", principal="tester", camera_id="in-cam", detail={"n": 3}),
    )
    await console.login(client, "supervisor")
    url = f"{console.url}/api/v1/audit"
    async with client.get(url, params={"principal": "tester", "action": "web.test.*"}) as response:
        assert response.status == 200
        page = await response.json()
    assert [r["seq"] for r in page["records"]] == seqs and page["next_page_token"] == ""
    first, _, third = page["records"]
    assert (first["action"], first["camera_id"], first["reason"], first["outcome"]) == (
        "web.test.one",
        "in-cam",
        "first",
        "OK",
    )
    assert third["detail"] == {"n": 3} and isinstance(third["time_ns"], str) and third["redacted"] is False
    async with client.get(url, params={"principal": "tester", "outcome": "PERMISSION_DENIED"}) as response:
        assert [r["action"] for r in (await response.json())["records"]] == ["web.test.two"]
    async with client.get(
        url, params={"principal": "tester", "camera_id": "in-cam", "action": "web.test.three"}
    ) as response:
        assert [r["seq"] for r in (await response.json())["records"]] == [seqs[2]]
    since = first["time_ns"]
    async with client.get(url, params={"principal": "tester", "from": since, "to": "2100-01-01T00:00:00Z"}) as response:
        assert len((await response.json())["records"]) == 3
    # One record a page, newest first: the token goes back in time.
    seen: list[int] = []
    params = {"principal": "tester", "page_size": "1"}
    while True:
        async with client.get(url, params=params) as response:
            page = await response.json()
        seen += [r["seq"] for r in page["records"]]
        if not page["next_page_token"]:
            break
        params["page_token"] = page["next_page_token"]
    assert seen == list(reversed(seqs))


async def test_a_scoped_reader_has_the_text_naming_other_cameras_withheld(console: Console) -> None:
    [seq] = _append(console, AuditEntry(action="web.test.mention", principal="mentions", detail={"about": "out-cam"}))
    async with (
        aiohttp.ClientSession(headers=bearer("supervisor")) as client,
        client.get(f"{console.url}/api/v1/audit", params={"principal": "mentions"}) as response,
    ):
        [record] = (await response.json())["records"]
    assert (record["seq"], record["redacted"], record["detail"]) == (seq, True, {})
    async with (
        aiohttp.ClientSession(headers=bearer("admin")) as client,
        client.get(f"{console.url}/api/v1/audit", params={"principal": "mentions"}) as response,
    ):
        [record] = (await response.json())["records"]
    assert (record["redacted"], record["detail"]) == (False, {"about": "out-cam"})


async def test_the_chain_verifies(console: Console) -> None:
    async with (
        aiohttp.ClientSession(headers=bearer("supervisor")) as client,
        client.get(f"{console.url}/api/v1/audit/verify") as response,
    ):
        assert response.status == 200
        result = await response.json()
    assert result["ok"] is True and result["first_problem"] == ""
    assert result["records_checked"] > 0 and len(result["head_hash"]) == 64


async def test_bad_filters_are_refused_naming_the_parameter(console: Console) -> None:
    cases = [
        ({"outcome": "nope"}, "outcome 'nope' is not a status name"),
        ({"from": "last week"}, "invalid query parameter 'from' 'last week'"),
        ({"page_token": "x"}, "page_token is not one this server issued"),
        ({"page_size": "ten"}, "query parameter 'page_size' must be a non-negative integer"),
        ({"camera_id": "a/b"}, "camera_id 'a/b' is not a valid camera id"),
    ]
    async with aiohttp.ClientSession(headers=bearer("admin")) as client:
        for params, message in cases:
            async with client.get(f"{console.url}/api/v1/audit", params=params) as response:
                assert response.status == 400, params
                error = (await response.json())["error"]
                assert error["kind"] == "INVALID_ARGUMENT" and error["message"].startswith(message), error
