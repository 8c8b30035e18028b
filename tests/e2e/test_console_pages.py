"""The console's live grid pages its tiles, 16 at a time, in a real browser (Debian's chromium):
more cameras than a page holds must not open more live streams than the recorder allows one
person ([live] max_relays_per_principal, 16 by default). The cameras here are never reachable:
what is tested is the grid, not the video (test_console.py plays video)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import web_port
from tests.support.daemon import DaemonProcess, write_config

pytestmark = pytest.mark.slow
TOKEN = "pages-admin-token"
CAMERAS = [f"cam-{n:02d}" for n in range(1, 19)]  # 18: a full page and two more


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work: Path = tmp_path_factory.mktemp("pages")
    token = (
        f'[[auth.tokens]]\nname = "pages-admin"\nsha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n'
        'role = "admin"\ncameras = ["*"]\n'
    )
    extra = '[web]\nlisten = "127.0.0.1:0"\n' + token
    config = write_config(
        work / "vmsd.toml", work / "root", dict.fromkeys(CAMERAS, "rtsp://127.0.0.1:9/never"), extra=extra
    )
    process = DaemonProcess(config, work / "vmsd.log").start()
    try:
        yield f"http://127.0.0.1:{web_port(process)}"
    finally:
        if process.alive():
            process.terminate()


def _tiles(page: Any) -> list[str]:
    return list(
        page.evaluate("() => [...document.querySelectorAll('vmsd-live-tile')].map(t => t.getAttribute('camera-id'))")
    )


def test_the_live_grid_shows_sixteen_tiles_a_page_and_pages_through_the_rest(console: str, browser: Any) -> None:
    # Not the `problems` check: each tile's camera is unreachable, and its refusal is a console error.
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(console + "/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("vmsd-live-tile")
        assert _tiles(page) == CAMERAS[:16]
        assert page.inner_text("nav.pager .page") == "Cameras 1–16 of 18 (page 1 of 2)"
        assert page.locator("nav.pager a[rel=prev]").count() == 0
        page.click("nav.pager a[rel=next]")
        page.wait_for_function("() => document.querySelectorAll('vmsd-live-tile').length === 2")
        assert _tiles(page) == CAMERAS[16:]
        assert page.evaluate("() => location.hash") == "#/?page=2"
        assert page.inner_text("nav.pager .page") == "Cameras 17–18 of 18 (page 2 of 2)"
        page.click("nav.pager a[rel=prev]")
        page.wait_for_function("() => document.querySelectorAll('vmsd-live-tile').length === 16")
        page.goto(console + "/#/?page=99")  # past the end: the last page
        page.wait_for_function("() => document.querySelectorAll('vmsd-live-tile').length === 2")
        assert _tiles(page) == CAMERAS[16:]
    finally:
        page.close()
