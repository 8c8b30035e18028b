"""/api/v1/cameras/{id}/privacy-masks and …/still.jpg against the real daemon."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from tests.support.rpc import MID, RunningDaemon, S, make_config, record_footage
from tests.support.web import Console, bearer
from vmsd.clock import FakeClock
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.cameras import CameraSpec

SQUARE = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[Console]:
    """The web tests' daemon, with the config-file camera in-cam masked over its left half."""
    root = tmp_path_factory.mktemp("web-masks") / "root"
    record_footage(root, h264_ts)
    config = make_config(root, web={"listen": "127.0.0.1:0"})
    cameras = [c.model_copy(update={"privacy_masks": [LEFT_HALF]}) if c.id == "in-cam" else c for c in config.cameras]
    clock = FakeClock()
    running = RunningDaemon(config.model_copy(update={"cameras": cameras}), clock=clock)
    try:
        yield Console(running, clock)
    finally:
        running.stop()


def _luma(jpeg: bytes) -> np.ndarray:
    with av.open(io.BytesIO(jpeg)) as container:
        return next(container.decode(video=0)).to_ndarray(format="gray")


async def test_an_admin_edits_the_masks_of_an_api_camera(console: Console, client: aiohttp.ClientSession) -> None:
    services = console.running.daemon.services
    spec = CameraSpec(id="in-api", name="api", url="rtsp://127.0.0.1:9/api", enabled=False)
    console.running.run(services.cameras.add(Principal("admin-1", "admin", ("*",)), Activity(), spec, "test"))
    csrf = (await console.login(client, "admin"))["csrf"]
    url = f"{console.url}/api/v1/cameras/in-api/privacy-masks"
    body = {"masks": [SQUARE], "reason": "flats opposite"}
    async with client.put(url, json=body) as response:
        assert response.status == 403  # no CSRF token
    async with client.put(url, json=body, headers={"X-CSRF-Token": csrf}) as response:
        assert response.status == 200, await response.text()
        assert await response.json() == {"camera_id": "in-api", "masks": [SQUARE], "editable": True}
    record = console.audit("PUT /api/v1/cameras/{camera_id}/privacy-masks")[-1]
    assert (record.principal, record.camera_id, record.reason, record.outcome) == (
        "admin-1",
        "in-api",
        "flats opposite",
        "OK",
    )
    assert json.loads(record.detail_json)["changes"] == {"privacy_masks": {"old": [], "new": [SQUARE]}}
    async with aiohttp.ClientSession(headers=bearer("viewer")) as viewer:
        async with viewer.get(url) as response:
            assert (await response.json())["masks"] == [SQUARE]
        async with viewer.get(f"{console.url}/api/v1/cameras/in-api") as response:
            assert (await response.json())["privacy_masks"] == [SQUARE]  # the console draws them
        async with viewer.put(url, json=body) as response:
            assert response.status == 403
            assert (await response.json())["error"][
                "message"
            ] == "role 'viewer' does not have permission 'cameras.manage'"
    bad = [
        ({"reason": "r"}, "field 'masks' is required"),
        ({"masks": [SQUARE[:2]], "reason": "r"}, "masks[0] must have from 3 to 64 points, not 2"),
        ({"masks": [[[0, 0], [2, 0], [0, 1]]], "reason": "r"}, "masks[0][1] [2.0, 0.0] is outside 0..1"),
        ({"masks": []}, "reason is required"),
    ]
    for payload, message in bad:
        async with client.put(url, json=payload, headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 400, payload
            assert (await response.json())["error"]["message"].startswith(message)
    async with client.put(
        f"{console.url}/api/v1/cameras/in-cam/privacy-masks", json=body, headers={"X-CSRF-Token": csrf}
    ) as response:
        assert response.status == 409  # defined in the config file
        assert (await response.json())["error"] == {
            "kind": "FAILED_PRECONDITION",
            "message": "camera_id 'in-cam' is defined in the config file; change it there",
        }


async def test_the_still_is_a_jpeg_with_the_masks_painted_in_for_masked_roles(console: Console) -> None:
    url = f"{console.url}/api/v1/cameras/in-cam/still.jpg"
    async with aiohttp.ClientSession(headers=bearer("supervisor")) as client, client.get(url) as response:
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        assert response.headers["X-Picture-Time-Ns"] == str(MID + 19_960 * S // 1000)
        assert response.headers["X-Privacy-Masked"] == "false"
        assert response.headers["Cache-Control"] == "no-store"
        unmasked = _luma(await response.read())
    assert unmasked.shape == (240, 320)
    assert float(unmasked[:, :150].mean()) > 40  # testsrc2: colourful everywhere
    record = console.audit("GET /api/v1/cameras/{camera_id}/still.jpg")[-1]
    assert (record.principal, record.camera_id, record.outcome) == ("supervisor-1", "in-cam", "OK")
    assert json.loads(record.detail_json)["masked"] is False
    # viewer is one of the default [web] masked_roles: the masked half never leaves the recorder.
    async with aiohttp.ClientSession(headers=bearer("viewer")) as client, client.get(url) as response:
        assert response.headers["X-Privacy-Masked"] == "true"
        masked = _luma(await response.read())
    assert float(masked[:, :158].max()) <= 8 and float(masked[:, 162:].mean()) > 40
    async with aiohttp.ClientSession(headers=bearer("integrator")) as client, client.get(url) as response:
        assert response.status == 403
        assert (await response.json())["error"]["message"] == "role 'integrator' does not have permission 'live.relay'"
    async with (
        aiohttp.ClientSession(headers=bearer("viewer")) as client,
        client.get(f"{console.url}/api/v1/cameras/out-cam/still.jpg") as response,
    ):
        assert response.status == 403
