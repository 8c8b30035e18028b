"""End-to-end fixtures: the real camera simulator (GStreamer RTSP server) on loopback, and
Debian's chromium (playwright) with a check that no page logged an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, Problems
from tests.support.clips import make_clip
from tests.support.simulator import CameraSimulator, MountSpec

CLIPS = "/tmp/vmsd-test-clips"


@pytest.fixture(scope="session")
def simulator() -> Iterator[CameraSimulator]:
    """Mounts: h264 (640x360), h265, h264+aac, h264 spare (for fault injection)."""
    h264 = make_clip(CLIPS, codec="h264", seconds=10)
    h265 = make_clip(CLIPS, codec="h265", seconds=10)
    with_audio = make_clip(CLIPS, codec="h264", seconds=10, audio=True)
    mounts = [
        MountSpec("h264", h264),
        MountSpec("h265", h265),
        MountSpec("audio", with_audio),
        MountSpec("faulty", h264),
        MountSpec("crashy", h264),
        MountSpec("stally", h264),
    ]
    with CameraSimulator(mounts) as sim:
        yield sim


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def problems() -> Iterator[Problems]:
    found = Problems()
    yield found
    assert found.seen == [], "the console logged errors:\n" + "\n".join(found.seen)
