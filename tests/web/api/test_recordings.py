"""Search, reviews and reviewed segment files over HTTP, against the real daemon and the footage
of tests/support/rpc.py (in-cam: three complete segments around MID; out-cam: outside viewers' scope)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.rpc import MID, S, token
from tests.support.web import Console, bearer
from vmsd.reports.build import Report
from vmsd.services.access import Principal
from vmsd.services.activity import Activity

REVIEWS = "POST /api/v1/cameras/{camera_id}/reviews"  # the audit action


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / S, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _review(
    console: Console, client: aiohttp.ClientSession, csrf: str, body: dict[str, Any], camera_id: str = "in-cam"
) -> tuple[int, dict[str, Any]]:
    url = f"{console.url}/api/v1/cameras/{camera_id}/reviews"
    async with client.post(url, json=body, headers={"X-CSRF-Token": csrf}) as response:
        return response.status, await response.json()


async def test_search_is_the_document_vmsctl_prints(console: Console, client: aiohttp.ClientSession) -> None:
    start, end = _iso(MID - 10 * S), _iso(MID + 30 * S)
    await console.login(client, "viewer")
    async with client.get(f"{console.url}/api/v1/cameras/in-cam/search", params={"from": start, "to": end}) as response:
        assert response.status == 200
        document = await response.json()
    grpc_port = console.running.port
    command = [
        sys.executable,
        "-m",
        "vmsd.cli.vmsctl",
        "--server",
        f"127.0.0.1:{grpc_port}",
        "--token",
        token("viewer"),
    ]
    printed = subprocess.run(
        [*command, "--json", "search", "in-cam", "--from", start, "--to", end],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), check=True,
    )  # fmt: skip
    assert document == json.loads(printed.stdout)
    assert len(document["spans"]) == 2 and document["spans"][0]["range"]["start_ns"] == str(MID - 5 * S)
    assert {g["reason"] for g in document["gaps"]} >= {"camera_offline"}
    # Every time form vmsctl takes: here nanoseconds.
    params = {"from": str(MID - 10 * S), "to": str(MID + 30 * S)}
    async with client.get(f"{console.url}/api/v1/cameras/in-cam/search", params=params) as response:
        assert await response.json() == document
    async with client.get(f"{console.url}/api/v1/cameras/in-cam/search", params={"from": "yesterday"}) as response:
        assert response.status == 400
        assert "query parameter 'from'" in (await response.json())["error"]["message"]
    async with client.get(f"{console.url}/api/v1/cameras/out-cam/search", params=params) as response:
        assert response.status == 403


async def test_a_review_without_a_reason_is_400_and_audited(console: Console, client: aiohttp.ClientSession) -> None:
    csrf = (await console.login(client, "viewer"))["csrf"]
    before = len(console.audit(REVIEWS))
    status, body = await _review(console, client, csrf, {"from": _iso(MID - 5 * S), "to": _iso(MID + 5 * S)})
    assert status == 400
    assert body["error"] == {"kind": "INVALID_ARGUMENT", "message": "reason is required"}
    [record] = console.audit(REVIEWS)[before:]
    assert (record.principal, record.camera_id, record.outcome) == ("viewer-1", "in-cam", "INVALID_ARGUMENT")
    status, body = await _review(console, client, csrf, {"to": _iso(MID), "reason": "x"})
    assert status == 400 and "'from'" in body["error"]["message"]
    status, body = await _review(
        console, client, csrf, {"from": "-1h", "to": "now", "reason": "incident 1"}, camera_id="out-cam"
    )
    assert status == 403 and body["error"]["kind"] == "PERMISSION_DENIED"


async def test_a_review_serves_the_stored_segments_with_byte_ranges(
    console: Console, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    csrf = (await console.login(client, "viewer"))["csrf"]
    before = len(console.audit(REVIEWS))
    body = {"from": _iso(MID - 5 * S), "to": str(MID + 20 * S), "reason": "incident 4471, PC 123"}
    status, review = await _review(console, client, csrf, body)
    assert status == 201, review
    assert len(review["segments"]) == 3
    assert [s["start_ns"] for s in review["segments"]] == sorted(s["start_ns"] for s in review["segments"])
    assert review["segments"][0]["start_ns"] == str(MID - 5 * S)
    [record] = console.audit(REVIEWS)[before:]
    assert (record.principal, record.camera_id, record.outcome) == ("viewer-1", "in-cam", "OK")
    assert (record.start_ns, record.end_ns, record.reason) == (MID - 5 * S, MID + 20 * S, "incident 4471, PC 123")
    assert json.loads(record.detail_json)["review_id"] == review["review_id"]

    url = console.url + review["segments"][0]["url"]
    async with client.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "video/mp4"
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["Cache-Control"] == "no-store"
        whole = await response.read()
    daemon = console.running.daemon
    rows = daemon.storage.catalogue.segments_in_range("in-cam", MID - 5 * S, MID + 20 * S)
    assert whole == daemon.storage.segment_path(rows[0]).read_bytes()  # the stored file, not a remux
    async with client.get(url, headers={"Range": "bytes=100-1099"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
        assert await response.read() == whole[100:1100]
    downloaded = tmp_path / "segment.mp4"
    downloaded.write_bytes(whole)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=format_name", "-of", "json",
         str(downloaded)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    probed = json.loads(probe.stdout)
    assert probed["streams"][0]["codec_name"] == "h264" and "mp4" in probed["format"]["format_name"]

    # Only the principal who made the review gets its files; nobody gets a segment it did not list.
    async with aiohttp.ClientSession() as other:
        async with other.get(url, headers=bearer("operator")) as response:
            assert response.status == 403
            assert (await response.json())["error"]["kind"] == "PERMISSION_DENIED"
        async with other.get(url) as response:
            assert response.status == 401
    async with client.get(console.url + f"/api/v1/reviews/{review['review_id']}/segments/3") as response:
        assert response.status == 404
    async with client.get(console.url + "/api/v1/reviews/made-up/segments/0") as response:
        assert response.status == 404


async def test_a_web_review_is_in_the_management_report(console: Console, client: aiohttp.ClientSession) -> None:
    csrf = (await console.login(client, "viewer"))["csrf"]
    reason = "report check, incident 5512"
    status, _ = await _review(console, client, csrf, {"from": str(MID - 5 * S), "to": str(MID), "reason": reason})
    assert status == 201
    daemon = console.running.daemon
    now_ns = console.clock.wall_ns()

    async def report() -> Report:
        return await daemon.services.reports.build(
            Principal("admin-1", "admin", ("*",)), Activity(), now_ns - 3600 * S, now_ns + 3600 * S, []
        )

    built = console.running.run(report())
    reviews = [r for r in built.reviews if r.reason == reason]
    assert [(r.principal, r.camera_id, r.start_ns, r.end_ns) for r in reviews] == [
        ("viewer-1", "in-cam", MID - 5 * S, MID)
    ]
    access = {(a.principal, a.role): a for a in built.access}
    assert access[("viewer-1", "viewer")].requests >= 1
