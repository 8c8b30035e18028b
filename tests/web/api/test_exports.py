"""/api/v1/exports against the real daemon: request, progress, verify, download a real bundle."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import aiohttp

from tests.support.rpc import MID, S
from tests.support.web import Console, bearer
from vmsd.export.verify import verify_bundle

FROM, TO = "2026-01-01T23:59:55Z", "2026-01-02T00:00:01Z"  # MID-5s .. MID+1s
ORDER = {"camera_id": "in-cam", "from": FROM, "to": TO, "case_ref": "CASE-9", "reason": "theft", "no_hold": True}

DOWNLOAD = "GET /api/v1/exports/{export_id}/bundle.tar"  # streamed: audited just after the client has the last byte


def _wait(console: Console, export_id: str) -> None:
    """Until the export has ended (the jobs' own hook; no polling)."""
    daemon = console.running.daemon
    console.running.run(daemon.services.export_jobs.wait(export_id), timeout=120)


async def _create(console: Console, client: aiohttp.ClientSession, body: dict) -> dict:
    async with client.post(f"{console.url}/api/v1/exports", json=body) as response:
        assert response.status == 202, await response.text()
        created: dict = await response.json()
    _wait(console, created["export_id"])
    return created


async def test_an_export_is_requested_followed_verified_and_downloaded_as_a_bundle(
    console: Console, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    csrf = (await console.login(client, "operator"))["csrf"]
    client.headers["X-CSRF-Token"] = csrf
    created = await _create(console, client, {**ORDER, "recipient": "Kent Police"})
    assert created["state"] in ("running", "done") and created["camera_id"] == "in-cam"
    assert (created["start_ns"], created["end_ns"]) == (str(MID - 5 * S), str(MID + S))
    export_id = created["export_id"]
    request = console.audit("POST /api/v1/exports")[-1]
    assert json.loads(request.detail_json)["export_id"] == export_id
    assert (request.principal, request.case_ref, request.reason, request.outcome) == (
        "operator-1",
        "CASE-9",
        "theft",
        "OK",
    )
    url = f"{console.url}/api/v1/exports/{export_id}"
    async with client.get(url) as response:
        assert response.status == 200
        done = await response.json()
    assert (done["state"], done["fraction"], done["error"], done["recipient"]) == ("done", 1.0, None, "Kent Police")
    assert done["verification"] is None and done["download_url"] == f"/api/v1/exports/{export_id}/bundle.tar"
    assert {f["role"] for f in done["files"]} >= {"master", "manifest", "signature"}
    async with client.post(f"{url}/verify") as response:
        assert response.status == 200
        verification = await response.json()
    assert (verification["verdict"], verification["problems"]) == ("verified", [])
    assert isinstance(verification["checked_ns"], str)
    async with client.get(url) as response:
        assert (await response.json())["verification"] == verification

    downloads = len(console.audit(DOWNLOAD))
    async with client.get(f"{console.url}{done['download_url']}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-tar"
        assert response.headers["Content-Disposition"] == f'attachment; filename="{export_id}.tar"'
        assert response.headers["Cache-Control"] == "no-store"
        data = await response.read()
        assert len(data) == int(response.headers["Content-Length"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    report = verify_bundle(tmp_path / export_id, expected_fingerprint=done["key_fingerprint_sha256"])
    assert report.verdict == "verified", report.problems
    record = console.audit_count(DOWNLOAD, downloads + 1)[-1]
    assert (record.principal, record.camera_id, record.case_ref, record.outcome) == (
        "operator-1",
        "in-cam",
        "CASE-9",
        "OK",
    )
    assert f'"bytes":{len(data)}' in record.detail_json and export_id in record.detail_json

    async with client.get(f"{console.url}/api/v1/exports", params={"camera_id": "in-cam"}) as response:
        listed = await response.json()
    assert export_id in [e["export_id"] for e in listed["exports"]]


async def test_an_export_that_fails_under_way_says_why(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        # No footage of in-cam in [MID+8 s, MID+12 s): accepted, then NOT_FOUND.
        body = {**ORDER, "from": str(MID + 8 * S), "to": str(MID + 12 * S)}
        created = await _create(console, client, body)
        async with client.get(f"{console.url}/api/v1/exports/{created['export_id']}") as response:
            failed = await response.json()
        assert (failed["state"], failed["error"]) == (
            "failed",
            {"kind": "NOT_FOUND", "message": "no footage of camera_id 'in-cam' in the requested range"},
        )
        async with client.get(f"{console.url}/api/v1/exports") as response:
            listed = await response.json()
        assert created["export_id"] in [j["export_id"] for j in listed["jobs"]]


async def test_a_viewer_may_not_export_and_bad_input_names_the_field(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("viewer")) as client:
        async with client.post(f"{console.url}/api/v1/exports", json=ORDER) as response:
            assert response.status == 403
            assert await response.json() == {
                "error": {
                    "kind": "PERMISSION_DENIED",
                    "message": "role 'viewer' does not have permission 'export.create'",
                }
            }
        async with client.get(f"{console.url}/api/v1/exports") as response:
            assert response.status == 403
    cases = [
        ({k: v for k, v in ORDER.items() if k != "camera_id"}, "field 'camera_id' is required"),
        ({**ORDER, "redact": "yes"}, "field 'redact' must be true or false"),
        ({**ORDER, "from": "soon"}, "invalid field 'from' 'soon'"),
        ({**ORDER, "reason": ""}, "reason is required"),
        ({**ORDER, "to": str(MID + 8 * 86_400 * S)}, "range is longer than the maximum"),
    ]
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        for body, message in cases:
            async with client.post(f"{console.url}/api/v1/exports", json=body) as response:
                assert response.status == 400, (body, await response.text())
                assert (await response.json())["error"]["message"].startswith(message)
        async with client.get(f"{console.url}/api/v1/exports/not-an-export") as response:
            assert response.status == 400
            assert (await response.json())["error"]["message"] == "export_id 'not-an-export' is not an export id"


async def test_an_export_outside_the_scope_is_not_found(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("admin")) as admin:
        created = await _create(console, admin, {**ORDER, "camera_id": "out-cam"})
    export_id = created["export_id"]
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        for path in ("", "/bundle.tar"):
            async with client.get(f"{console.url}/api/v1/exports/{export_id}{path}") as response:
                assert response.status == 404, path
                assert (await response.json())["error"] == {
                    "kind": "NOT_FOUND",
                    "message": f"export_id {export_id!r} does not exist",
                }
        async with client.get(f"{console.url}/api/v1/exports") as response:
            assert export_id not in [e["export_id"] for e in (await response.json())["exports"]]


async def test_a_broken_download_resumes_with_a_range(console: Console) -> None:
    async with aiohttp.ClientSession(headers=bearer("operator")) as client:
        created = await _create(console, client, {**ORDER, "case_ref": "RESUME-1"})
        url = f"{console.url}/api/v1/exports/{created['export_id']}/bundle.tar"
        downloads = len(console.audit(DOWNLOAD))
        async with client.get(url) as response:
            assert response.headers["Accept-Ranges"] == "bytes"
            etag = response.headers["ETag"]
            whole = await response.read()
        # The whole download is audited just after its last byte: wait for it, so the next
        # record is the ranged one.
        downloads = len(console.audit_count(DOWNLOAD, downloads + 1))
        async with client.get(url, headers={"Range": "bytes=1000-", "If-Range": etag}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
            assert await response.read() == whole[1000:]
        record = console.audit_count(DOWNLOAD, downloads + 1)[-1]
        detail = json.loads(record.detail_json)
        assert (detail["offset"], detail["bytes"], record.case_ref) == (1000, len(whole) - 1000, "RESUME-1")
        async with client.get(url, headers={"Range": "bytes=10-19"}) as response:
            assert response.status == 206 and response.headers["Content-Range"] == f"bytes 10-19/{len(whole)}"
            assert await response.read() == whole[10:20]
        async with client.get(url, headers={"Range": "bytes=1000-", "If-Range": '"changed"'}) as response:
            assert response.status == 200  # not the archive the first part came from: all of it
            assert await response.read() == whole
        async with client.get(url, headers={"Range": f"bytes={len(whole)}-"}) as response:
            assert response.status == 416
            assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
            assert (await response.json())["error"]["message"].startswith(f"the range starts at byte {len(whole)}")
