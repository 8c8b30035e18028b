"""The web console in a real browser: Debian's chromium (driven by playwright) against the real
daemon recording the real camera simulator.

One daemon and one simulator for the module: four H.264 cameras (on one shared mount) and one
H.265 camera. The tests sign in as a person would (paste a token), watch the live grid, review
footage from the timeline, and check what a scoped viewer can and cannot reach. Every page's
console errors and uncaught exceptions fail the test that produced them. The run leaves
screenshots of the live grid and the camera timeline in docs/.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from tests.support.browser import Problems, datetime_input, web_port
from tests.support.clips import make_clip
from tests.support.daemon import REPO, DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.config import CameraConfig
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc

pytestmark = pytest.mark.slow

playwright_sync = pytest.importorskip("playwright.sync_api")
CLIPS = "/tmp/vmsd-test-clips"
H264_CAMERAS = ["north", "south", "east", "west"]
HEVC_CAMERA = "gate"
ADMIN = "console-admin-token"
VIEWER = "console-viewer-token"
MASK = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.5], [0.1, 0.5]]
FALLBACK = "This browser cannot play this camera's codec live"


def _tokens() -> str:
    def entry(name: str, token: str, role: str, cameras: list[str]) -> str:
        return (
            f'[[auth.tokens]]\nname = "{name}"\nsha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
            f'role = "{role}"\ncameras = {json.dumps(cameras)}\n'
        )

    return entry("console-admin", ADMIN, "admin", ["*"]) + entry("desk-1", VIEWER, "viewer", ["north"])


@dataclass
class Console:
    url: str
    process: DaemonProcess
    root: Path
    sim: CameraSimulator  # its "h264" mount feeds the four H.264 cameras, "h265" the gate


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    work = tmp_path_factory.mktemp("console")
    h264 = make_clip(CLIPS, codec="h264", seconds=10)
    h265 = make_clip(CLIPS, codec="h265", seconds=10)
    with CameraSimulator([MountSpec("h264", h264), MountSpec("h265", h265)]) as sim:
        cameras = {name: sim.url("h264") for name in H264_CAMERAS}
        cameras[HEVC_CAMERA] = sim.url("h265")
        extra = '[web]\nlisten = "127.0.0.1:0"\nmasked_roles = ["viewer"]\n' + _tokens()
        config = write_config(work / "vmsd.toml", work / "root", cameras, extra=extra)
        # The scoped viewer's camera has a privacy mask (drawn over its video for the viewer role).
        text = config.read_text().replace(
            f'id = "north"\nurl = "{sim.url("h264")}"',
            f'id = "north"\nurl = "{sim.url("h264")}"\nprivacy_masks = {json.dumps([MASK])}',
        )
        config.write_text(text)
        process = DaemonProcess(config, work / "vmsd.log").start()
        try:
            process.wait_for_log('"state": "recording"', count=len(cameras))
            port = web_port(process)
            yield Console(f"http://127.0.0.1:{port}", process, work / "root", sim)
        finally:
            if process.alive():
                process.terminate()


def _sign_in(browser: Any, console: Console, problems: Problems, token: str) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems.watch(page)
    page.goto(console.url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector("#who .principal")
    return page


TILE_STATS = """
() => [...document.querySelectorAll('vmsd-live-tile')].map(t => {
  const v = t.querySelector('video');
  const b = v.buffered;
  return {
    id: t.getAttribute('camera-id'),
    live: t.dataset.live || '',
    text: t.innerText,
    time: v.currentTime,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
    edge: b.length ? b.end(b.length - 1) : 0,
    behind: Date.now() / 1000 - v.currentTime,
    paused: v.paused,
  };
})
"""


def _tiles(page: Any) -> dict[str, dict[str, Any]]:
    return {tile["id"]: tile for tile in page.evaluate(TILE_STATS)}


def test_live_grid_plays_four_cameras_near_the_live_edge_and_says_when_it_cannot(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, ADMIN)
    page.wait_for_selector("vmsd-live-tile")
    assert sorted(_tiles(page)) == sorted([*H264_CAMERAS, HEVC_CAMERA])
    page.wait_for_function(
        "ids => ids.every(id => { const v = document.querySelector(`vmsd-live-tile[camera-id='${id}'] video`);"
        " return v && v.currentTime > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && !v.paused; })",
        arg=H264_CAMERAS,
        timeout=30_000,
    )
    first = _tiles(page)
    first_wall = time.monotonic()
    samples = []
    for _ in range(6):
        page.wait_for_timeout(1000)
        samples.append(_tiles(page))
    last = samples[-1]
    wall = time.monotonic() - first_wall
    for cam in H264_CAMERAS:
        # Plays: the picture moves and frames are decoded, on all four tiles at once.
        assert last[cam]["time"] > first[cam]["time"] + 2, (cam, first[cam], last[cam])
        assert last[cam]["frames"] > first[cam]["frames"] + 25, (cam, first[cam], last[cam])
        # Near the live edge: never more than 2 s behind the newest frame received …
        lags = [s[cam]["edge"] - s[cam]["time"] for s in samples]
        assert max(lags) <= 2.0, (cam, lags)
        # … nor behind the camera: fragments carry the frames' wall time (90 kHz since the
        # epoch), so currentTime is the time of the picture on screen (same machine, same clock).
        behind = [s[cam]["behind"] for s in samples]
        assert all(0 <= b <= 2.0 for b in behind), (cam, behind)
        # … and the newest frame keeps arriving at the camera's pace (no backlog building up).
        arrived = last[cam]["edge"] - first[cam]["edge"]
        assert abs(arrived - wall) < 1.5, (cam, arrived, wall)
    # A browser too busy to take the fragments (its main thread blocked for 3 s) stalls; it must
    # then jump to the live edge rather than play on 3 s late.
    page.evaluate("() => { const until = Date.now() + 3000; while (Date.now() < until) {} }")
    page.wait_for_timeout(1500)
    late = _tiles(page)
    assert all(0 <= late[cam]["behind"] <= 2.0 for cam in H264_CAMERAS), late
    # H.265: this chromium has no decoder; the tile says so in words instead of staying black.
    gate = last[HEVC_CAMERA]
    assert gate["live"] == "unsupported" and FALLBACK in gate["text"], gate
    assert page.evaluate("MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L93.B0\"')") is False
    page.screenshot(path=str(REPO / "docs" / "console-live.png"))

    # A hidden tab streams nothing; shown again, it resumes. (Headless chromium never hides a
    # page, so the test tells the page it is hidden the way the browser would.)
    page.evaluate(SET_HIDDEN, True)
    page.wait_for_function("() => [...document.querySelectorAll('vmsd-live-tile')].every(t => !t.stream.ws)")
    assert {t["live"] for t in _tiles(page).values()} == {"hidden", "unsupported"}
    hidden_at = page.evaluate("Date.now() / 1000")
    page.wait_for_timeout(1000)
    page.evaluate(SET_HIDDEN, False)
    # Playing again, and pictures from after the pause (currentTime is the pictures' wall time).
    page.wait_for_function(
        "([ids, after]) => ids.every(id => { const t = document.querySelector(`vmsd-live-tile[camera-id='${id}']`);"
        " return t.dataset.live === 'playing' && t.querySelector('video').currentTime > after; })",
        arg=[H264_CAMERAS, hidden_at + 1],
        timeout=30_000,
    )
    page.context.close()


SET_HIDDEN = """
hidden => {
  Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
  Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}
"""


def _now_input(page: Any, offset_s: float) -> str:
    """A datetime-local value (the browser's local time) `offset_s` from now."""
    return datetime_input(page, int(page.evaluate("Date.now()") + offset_s * 1000))


def _wait_for_footage(page: Any, camera: str, *, older_than_s: int) -> None:
    """Until the camera has footage older than `older_than_s` (segments are 6 s long)."""
    deadline = time.monotonic() + 90
    while not page.evaluate(
        "async ([cam, s]) => (await (await fetch(`/api/v1/cameras/${cam}/search?from=-2m&to=-${s}s`)).json())"
        ".spans.length",
        [camera, older_than_s],
    ):
        assert time.monotonic() < deadline, f"no footage of {camera} older than {older_than_s} s"
        page.wait_for_timeout(1000)


def test_review_from_the_timeline_needs_a_reason_plays_and_is_audited(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, ADMIN)
    camera = "east"
    page.goto(f"{console.url}/#/camera/{camera}")
    _wait_for_footage(page, camera, older_than_s=20)
    page.reload()
    page.wait_for_selector("svg.timeline rect.recorded")
    page.click("svg.timeline")
    page.wait_for_selector("dialog.review-dialog[open]")
    # Segments are 6 s long: footage older than 20 s is in finished segments.
    page.fill("dialog input[name=from]", _now_input(page, -20))
    page.fill("dialog input[name=to]", _now_input(page, -8))
    problems.expected.add((f"/api/v1/cameras/{camera}/reviews", 400))
    page.click("dialog button[type=submit]")
    refused = page.wait_for_selector("dialog .error")
    assert "reason" in refused.inner_text().lower()
    reason = f"incident {time.time_ns()}: report of a fight"
    page.fill("dialog input[name=reason]", reason)
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog.review-dialog", state="detached")
    page.wait_for_function(
        "() => { const v = document.querySelector('video.review-video'); return v && v.currentTime > 1 && "
        "v.getVideoPlaybackQuality().totalVideoFrames > 10; }",
        timeout=20_000,
    )
    # The wall time of the picture on screen is shown (HH:MM:SS), updated as it plays: waited for,
    # as the player writes it on the video's next timeupdate (one full CI run read it just before).
    page.wait_for_function(
        "() => (document.querySelector('.wall-time')?.innerText || '').split(':').length === 3", timeout=10_000
    )
    page.select_option("select[aria-label='how much of the day']", "600000")  # the last 10 minutes
    page.wait_for_function("() => document.querySelector('.timeline-box .hours').children.length === 5")
    page.screenshot(path=str(REPO / "docs" / "console-timeline.png"), full_page=True)
    # The review is in the audit log, with its reason, in the oversight page.
    page.goto(console.url + "/#/oversight")
    page.wait_for_selector(f"table.grid td:has-text('{reason}')", timeout=10_000)
    page.context.close()


def test_an_h265_review_this_browser_cannot_play_says_so_and_offers_the_segments(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, ADMIN)
    _wait_for_footage(page, HEVC_CAMERA, older_than_s=10)
    page.goto(f"{console.url}/#/camera/{HEVC_CAMERA}")
    page.wait_for_selector("svg.timeline rect.recorded")  # the search answer is drawn
    page.click("svg.timeline")
    page.fill("dialog input[name=from]", _now_input(page, -10))
    page.fill("dialog input[name=to]", _now_input(page, -5))
    page.fill("dialog input[name=reason]", "checking the gate camera's footage")
    page.click("dialog button[type=submit]")
    message = page.wait_for_selector(".review .messages .error")
    assert "cannot play this footage" in message.inner_text()
    links = page.locator("ol.segments a", has_text="download")
    assert links.count() >= 1
    href = links.first.get_attribute("href")
    assert href is not None
    head = page.evaluate(
        "async url => { const r = await fetch(url, {headers: {Range: 'bytes=0-7'}});"
        " return [r.status, [...new Uint8Array(await r.arrayBuffer())]]; }",
        href,
    )
    assert head[0] == 206 and bytes(head[1][4:8]) == b"ftyp", head
    page.context.close()


def test_a_scoped_viewer_sees_one_masked_camera_and_no_audit(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, VIEWER)
    page.wait_for_selector("vmsd-live-tile")
    assert list(_tiles(page)) == ["north"]
    assert "Oversight" not in page.inner_text("#nav")
    # The privacy mask is drawn over the picture (a display mask for the viewer role).
    page.wait_for_selector("vmsd-live-tile svg.mask-overlay polygon")
    page.wait_for_function(
        "() => document.querySelector('vmsd-live-tile video').getVideoPlaybackQuality().totalVideoFrames > 0",
        timeout=30_000,
    )
    box = page.evaluate(
        "() => { const r = document.querySelector('vmsd-live-tile svg.mask-overlay').getBoundingClientRect();"
        " return [r.width, r.height]; }"
    )
    assert box[0] > 100 and abs(box[0] / box[1] - 16 / 9) < 0.02, box
    problems.expected.add(("/api/v1/audit", 403))
    status = page.evaluate("async () => (await fetch('/api/v1/audit')).status")
    assert status == 403
    assert page.inner_text("#nav") == "Live"  # no evidence or oversight pages for a viewer
    # Signing out ends the session on the server, and the tile's stream with the page.
    page.click("#who button")
    page.wait_for_selector("#token")
    assert page.locator("vmsd-live-tile").count() == 0
    assert page.evaluate("async () => (await (await fetch('/api/v1/session')).json()).principal") is None
    page.context.close()


async def _cross_site_checks(url: str) -> tuple[int, int, int]:
    # unsafe=True: keep cookies from an IP address (127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{url}/api/v1/session", json={"token": ADMIN}) as answer:
            assert answer.status == 200
            csrf = (await answer.json())["csrf"]
        live = url.replace("http://", "ws://") + f"/api/v1/cameras/{H264_CAMERAS[0]}/live"
        try:
            async with http.ws_connect(live, origin="http://evil.example"):
                ws_status = 101
        except aiohttp.WSServerHandshakeError as refused:
            ws_status = refused.status
        # The same session from the console's own origin is let in (so the refusal was the Origin).
        async with http.ws_connect(live, origin=url) as ws:
            config = json.loads(await ws.receive_str(timeout=10))
            assert config["type"] == "config" and config["codec"].startswith("avc1."), config
        hold = {"camera_ids": ["north"], "from": "-1m", "to": "now", "case_ref": "X", "reason": "csrf check"}
        async with http.post(f"{url}/api/v1/holds", json=hold) as answer:
            without_csrf = answer.status
        async with http.post(f"{url}/api/v1/holds", json=hold, headers={"X-CSRF-Token": csrf + "x"}) as answer:
            wrong_csrf = answer.status
        # … and with the session's token the same request is accepted (so the refusals were CSRF).
        async with http.post(f"{url}/api/v1/holds", json=hold, headers={"X-CSRF-Token": csrf}) as answer:
            assert answer.status == 201, await answer.text()
    return ws_status, without_csrf, wrong_csrf


def test_a_cross_origin_websocket_and_a_post_without_csrf_are_refused(console: Console) -> None:
    # Playwright's sync API keeps an event loop running on this thread: the client gets its own.
    with ThreadPoolExecutor(1) as pool:
        ws_status, without_csrf, wrong_csrf = pool.submit(asyncio.run, _cross_site_checks(console.url)).result()
    assert ws_status == 403
    assert without_csrf == 403
    assert wrong_csrf == 403


def test_evidence_hold_and_export_and_oversight_pages_work_in_the_browser(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, ADMIN)
    _wait_for_footage(page, "south", older_than_s=30)
    page.goto(f"{console.url}/#/evidence?camera=south")
    # A hold placed from the form appears in the list, and is released with a reason.
    hold_form = page.locator("form", has=page.locator("button", has_text="Place hold"))
    hold_form.locator("select").select_option("south")
    hold_form.locator("input[name=case_ref]").fill("CR-HOLD-1")
    hold_form.locator("input[name=reason]").fill("kept for the browser test")
    hold_form.locator("button[type=submit]").click()
    row = page.locator("table.grid tr", has_text="CR-HOLD-1")
    row.wait_for()
    assert "active" in row.inner_text()
    row.locator("input").fill("no longer needed")
    row.locator("button", has_text="Release").click()
    page.locator("text=released.").wait_for()
    # An export of finished footage: progress, then a download link and its verification.
    form = page.locator("form.export-form")
    form.locator("select").select_option("south")
    form.locator("input[type=datetime-local]").nth(0).fill(_now_input(page, -30))
    form.locator("input[type=datetime-local]").nth(1).fill(_now_input(page, -15))
    form.locator("input[name=case_ref]").fill("CR-EXPORT-1")
    form.locator("input[name=reason]").fill("released to the police")
    form.locator("input[name=recipient]").fill("PC 4471")
    form.locator("button[type=submit]").click()
    page.locator(".export-progress .ok, section.panel .messages .error").first.wait_for(timeout=60_000)
    assert form.locator(".export-progress .ok").count() == 1, page.locator("section.panel .messages").all_inner_texts()
    link = form.locator(".export-progress a", has_text="Download")
    href = link.get_attribute("href")
    assert href and href.endswith("/bundle.tar")
    size = page.evaluate("async url => (await (await fetch(url)).arrayBuffer()).byteLength", href)
    assert size > 10_000
    exported = page.locator("table.grid tr", has_text="CR-EXPORT-1")
    exported.locator("button", has_text="Verify").click()
    page.locator("table.grid tr", has_text="CR-EXPORT-1").locator("text=verified against").wait_for()
    # Oversight: recorder status, chain verification, a function check run now.
    page.goto(f"{console.url}/#/oversight")
    page.locator("dl.facts dd", has_text="vmsd").first.wait_for()
    page.locator("button", has_text="Verify chain").click()
    page.locator(".verdict .ok", has_text="Chain intact").wait_for()
    page.locator("button", has_text="Run checks now").click()
    checks = page.locator("section.panel", has=page.locator("h2", has_text="Function checks"))
    checks.locator("td", has_text="west").wait_for(timeout=60_000)
    page.context.close()


def test_signing_out_in_another_tab_ends_this_tabs_live_view(
    browser: Any, console: Console, problems: Problems
) -> None:
    page = _sign_in(browser, console, problems, VIEWER)
    page.wait_for_function("() => document.querySelector('vmsd-live-tile')?.dataset.live === 'playing'", timeout=30_000)
    other = page.context.new_page()  # the same browser profile: the same session cookie
    problems.watch(other)
    other.goto(console.url + "/")
    other.click("#who button")  # sign out there
    other.wait_for_selector("#token")
    # The server ends this tab's live stream with the session; the console asks for a sign-in.
    page.wait_for_selector("#token", timeout=10_000)
    assert "session has ended" in page.inner_text("main")
    assert page.locator("vmsd-live-tile").count() == 0
    page.context.close()


def _add_api_camera(console: Console, camera_id: str) -> None:
    """A camera added over gRPC (masks of cameras from the config file are edited in the file)."""
    port = next(json.loads(line)["port"] for line in console.process.log().splitlines() if "grpc_listening" in line)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        cameras_pb2_grpc.CameraServiceStub(channel).AddCamera(
            cameras_pb2.AddCameraRequest(
                camera=cameras_pb2.CameraSpec(id=camera_id, url=console.sim.url("h264"), enabled=True),
                reason="a camera whose masks the console edits",
            ),
            metadata=[("authorization", f"Bearer {ADMIN}")],
            timeout=10,
        )


def test_an_admin_draws_and_saves_a_privacy_mask_on_the_cameras_still(
    browser: Any, console: Console, problems: Problems
) -> None:
    _add_api_camera(console, "plaza")
    page = _sign_in(browser, console, problems, ADMIN)
    _wait_for_footage(page, "plaza", older_than_s=10)  # a finished segment has the still
    page.goto(f"{console.url}/#/camera/plaza")
    page.locator("details.mask-editor summary").click()
    page.wait_for_function("() => document.querySelector('img.still')?.naturalWidth === 640")
    layer = page.locator("svg.mask-editor-layer")
    layer.scroll_into_view_if_needed()
    box = layer.bounding_box()
    assert box is not None
    for fx, fy in [(0.25, 0.25), (0.75, 0.25), (0.5, 0.75)]:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.locator("button", has_text="Close polygon").click()
    page.locator("details.mask-editor input[type=text]").fill("cover the flats' windows")
    page.locator("button", has_text="Save masks").click()
    page.locator("details.mask-editor .ok", has_text="Saved 1 mask polygon").wait_for()
    saved = page.evaluate("async () => (await (await fetch('/api/v1/cameras/plaza/privacy-masks')).json()).masks")
    assert len(saved) == 1 and len(saved[0]) == 3
    for (x, y), (fx, fy) in zip(saved[0], [(0.25, 0.25), (0.75, 0.25), (0.5, 0.75)], strict=True):
        assert abs(x - fx) < 0.01 and abs(y - fy) < 0.01, saved
    page.context.close()


def test_a_config_file_cameras_masks_are_drawn_and_given_as_its_config_line(
    browser: Any, console: Console, problems: Problems
) -> None:
    """vmsd never rewrites the operator's config file: for a camera defined there the editor
    draws, and hands over the exact `privacy_masks` line for its [[cameras]] entry."""
    page = _sign_in(browser, console, problems, ADMIN)
    _wait_for_footage(page, "north", older_than_s=10)
    page.goto(f"{console.url}/#/camera/north")
    page.locator("details.mask-editor summary").click()
    page.wait_for_function("() => document.querySelector('img.still')?.naturalWidth === 640")
    page.locator("details.mask-editor .note", has_text="defined in the configuration file").wait_for()
    assert page.locator("button", has_text="Save masks").is_disabled()
    layer = page.locator("svg.mask-editor-layer")
    layer.scroll_into_view_if_needed()
    box = layer.bounding_box()
    assert box is not None
    for fx, fy in [(0.6, 0.6), (0.9, 0.6), (0.75, 0.9)]:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.locator("button", has_text="Close polygon").click()
    line = page.locator("pre.toml").inner_text()
    # The line is valid TOML for the camera's entry: the configured mask plus the new one.
    camera = CameraConfig.model_validate({"id": "north", "url": "rtsp://127.0.0.1/x", **tomllib.loads(line)})
    assert [list(point) for point in camera.privacy_masks[0]] == MASK
    assert len(camera.privacy_masks) == 2 and len(camera.privacy_masks[1]) == 3
    page.context.close()


def test_live_tiles_play_again_after_the_cameras_drop_out(browser: Any, console: Console, problems: Problems) -> None:
    """Last in the module: all four H.264 cameras share one simulator mount, which this drops."""
    page = _sign_in(browser, console, problems, ADMIN)
    page.wait_for_function(
        "ids => ids.every(id =>"
        " document.querySelector(`vmsd-live-tile[camera-id='${id}']`)?.dataset.live === 'playing')",
        arg=H264_CAMERAS,
        timeout=30_000,
    )
    console.sim.drop("h264", 3)
    back_at = page.evaluate("Date.now() / 1000") + 3
    # Meanwhile no tile pretends to be live.
    page.wait_for_function(
        "ids => ids.every(id =>"
        " document.querySelector(`vmsd-live-tile[camera-id='${id}']`).dataset.live !== 'playing')",
        arg=H264_CAMERAS,
        timeout=3_000,
    )
    # The recorder reconnects; the tiles follow (a new stream configuration, or a new socket)
    # and play pictures from after the outage, near live again.
    page.wait_for_function(
        "([ids, after]) => ids.every(id => { const t = document.querySelector(`vmsd-live-tile[camera-id='${id}']`);"
        " const v = t.querySelector('video'); return t.dataset.live === 'playing' && v.currentTime > after"
        " && Date.now() / 1000 - v.currentTime < 2; })",
        arg=[H264_CAMERAS, back_at],
        timeout=45_000,
    )
    page.context.close()
