"""Picture analysis and the picture rules: synthetic pictures and decoded keyframes of real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.function_checks.conftest import S, checks_of
from tests.support.clips import make_clip
from vmsd.function_checks.judging import judge_pictures
from vmsd.function_checks.pictures import picture_stats, sample_pictures

CLIPS = "/tmp/vmsd-test-clips"
RNG = np.random.default_rng(7)


def scene(seed: int = 0) -> np.ndarray:
    """A detailed 'street' picture: noise on a gradient, different per seed."""
    rng = np.random.default_rng(seed)
    base = np.tile(np.linspace(40, 200, 320), (180, 1))
    return np.clip(base + rng.normal(0, 25, (180, 320)), 0, 255).astype(np.uint8)


def series(pictures: list[np.ndarray]) -> list:
    out, previous = [], None
    for index, luma in enumerate(pictures):
        out.append(picture_stats(luma, index * 2 * S, previous))
        previous = luma
    return out


# -- pictures ------------------------------------------------------------------------------------


def test_a_live_scene_passes() -> None:
    assert checks_of(judge_pictures(series([scene(i) for i in range(5)]))) == {"picture": "ok"}


def test_black_fails_and_is_not_also_called_frozen() -> None:
    black = np.full((180, 320), 16, np.uint8)
    assert checks_of(judge_pictures(series([black] * 4))) == {"picture_black": "fail"}


def test_a_dark_night_scene_with_lights_is_not_black() -> None:
    night = np.full((180, 320), 12, np.uint8)
    night[80:100, 100:120] = 240  # a street light
    findings = checks_of(judge_pictures(series([night] * 3)))
    assert "picture_black" not in findings


def test_a_covered_lens_is_low_detail() -> None:
    grey = np.full((180, 320), 128, np.uint8)
    assert checks_of(judge_pictures(series([grey] * 3))) == {"picture_low_detail": "warning"}


def test_the_same_detailed_picture_again_and_again_is_frozen() -> None:
    still = scene(3)
    findings = judge_pictures(series([still] * 4))
    assert checks_of(findings) == {"picture_frozen": "fail"}
    assert "4 samples over 6s" in findings[0].message


def test_sensor_noise_alone_is_not_frozen() -> None:
    still = scene(3).astype(np.int16)
    noisy = [np.clip(still + RNG.normal(0, 2, still.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    assert checks_of(judge_pictures(series(noisy))) == {"picture": "ok"}


def test_no_pictures_is_a_warning() -> None:
    assert checks_of(judge_pictures([])) == {"picture": "warning"}


def test_one_picture_cannot_be_called_frozen() -> None:
    assert checks_of(judge_pictures(series([scene(1)]))) == {"picture": "ok"}


@pytest.mark.parametrize(
    ("picture", "expected"),
    [("moving", {"picture": "ok"}), ("black", {"picture_black": "fail"}), ("frozen", {"picture_frozen": "fail"})],
)
def test_decoded_keyframes_of_real_clips(picture: str, expected: dict[str, str]) -> None:
    clip = make_clip(CLIPS, codec="h264", seconds=10, picture=picture)
    pictures = sample_pictures([(clip.video, 0)])
    assert len(pictures) == 5  # 5 keyframes in 10 s at a 2 s GOP, all judged
    assert checks_of(judge_pictures(pictures)) == expected


def test_an_unreadable_file_gives_no_pictures(tmp_path: Path) -> None:
    bad = tmp_path / "torn.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    assert sample_pictures([(bad, 0), (tmp_path / "missing.mp4", 0)]) == []
