"""Shared fixtures: small media files made with ffmpeg (never committed), storage roots."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

MEDIA_CACHE = Path("/tmp/vmsd-test-media")


def _make(name: str, args: list[str]) -> Path:
    """Encode a clip once per machine (cached by name; written atomically)."""
    MEDIA_CACHE.mkdir(parents=True, exist_ok=True)
    target = MEDIA_CACHE / name
    if not target.exists():
        partial = target.with_name(f".{name}.partial{target.suffix}")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args, str(partial)], check=True)
        partial.rename(target)
    return target


X264 = [
    "-c:v",
    "libx264",
    "-bf",
    "0",
    "-preset",
    "ultrafast",
    "-x264-params",
    "aud=1:keyint=50:min-keyint=50:scenecut=0",
]


@pytest.fixture(scope="session")
def h264_ts() -> Path:
    """20 s of 320x240 25 fps H.264, GOP 2 s, Annex B in MPEG-TS (as RTSP delivers it)."""
    return _make("h264-20s.ts", ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "20", *X264])


@pytest.fixture(scope="session")
def h264_ts_small() -> Path:
    """A different SPS: 160x120 (for parameter-set change tests)."""
    return _make("h264-160-6s.ts", ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-t", "6", *X264])


@pytest.fixture(scope="session")
def h265_ts() -> Path:
    return _make(
        "h265-10s.ts",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "10",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:scenecut=0:bframes=0:repeat-headers=1:log-level=error",
        ],
    )


@pytest.fixture(scope="session")
def h264_aac_mkv() -> Path:
    return _make(
        "h264-aac-20s.mkv",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000",
            "-t",
            "20",
            *X264,
            "-c:a",
            "aac",
            "-b:a",
            "32k",
        ],
    )


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    store = Storage(tmp_path / "root")
    store.open()
    reconcile(store)
    yield store  # type: ignore[misc]
    store.close()
