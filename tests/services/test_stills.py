"""StillService: the newest recorded keyframe as a JPEG, masked for the roles that must see masks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.services.conftest import principal
from tests.support.rpc import CONFIG_CAMERAS, MID, RunningDaemon, S, make_config, record_footage
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """The footage of tests/support/rpc.py; in-cam masked over its left half; in-empty has no footage."""
    root = tmp_path_factory.mktemp("stills") / "root"
    record_footage(root, h264_ts)
    config = make_config(root, cameras={**CONFIG_CAMERAS, "in-empty": "rtsp://127.0.0.1:9/empty"})
    cameras = [c.model_copy(update={"privacy_masks": [LEFT_HALF]}) if c.id == "in-cam" else c for c in config.cameras]
    daemon = RunningDaemon(config.model_copy(update={"cameras": cameras}))
    try:
        yield daemon
    finally:
        daemon.stop()


def _luma(jpeg: bytes) -> np.ndarray:
    with av.open(io.BytesIO(jpeg)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="gray")


def test_the_still_is_the_newest_keyframe_as_a_jpeg_and_is_audited(running: RunningDaemon) -> None:
    activity = Activity()
    picture = running.run(running.daemon.services.stills.still(principal("viewer"), activity, "in-cam", masked=False))
    assert picture.jpeg.startswith(b"\xff\xd8")  # a JPEG
    luma = _luma(picture.jpeg)
    assert luma.shape == (240, 320) == (picture.height, picture.width)
    # Session 2 starts at MID+13.96 s with 8 s of a clip with a keyframe every 2 s: the last at +6 s.
    assert picture.time_ns == MID + 19_960 * S // 1000
    assert activity.audited
    assert (activity.camera_id, activity.start_ns, activity.detail["masked"]) == ("in-cam", picture.time_ns, False)
    assert float(luma[:, :160].mean()) > 40  # testsrc2: colourful everywhere


def test_a_masked_still_has_the_masks_painted_in(running: RunningDaemon) -> None:
    picture = running.run(
        running.daemon.services.stills.still(principal("police-link"), Activity(), "in-cam", masked=True)
    )
    luma = _luma(picture.jpeg)
    assert float(luma[:, :158].max()) <= 8  # black (JPEG ringing stays near the edge)
    assert float(luma[:, 162:].mean()) > 40


@pytest.mark.parametrize(
    ("role", "camera_id", "kind", "message"),
    [
        (
            "integrator",
            "in-cam",
            ErrorKind.PERMISSION_DENIED,
            "role 'integrator' does not have permission 'live.relay'",
        ),
        ("viewer", "out-cam", ErrorKind.PERMISSION_DENIED, "camera_id 'out-cam' is outside this principal's scope"),
        ("viewer", "in-nothing", ErrorKind.NOT_FOUND, "camera_id 'in-nothing' does not exist"),
        ("viewer", "in-empty", ErrorKind.NOT_FOUND, "camera_id 'in-empty' has no recorded picture yet"),
        ("viewer", "../x", ErrorKind.INVALID_ARGUMENT, "camera_id '../x' is not a valid camera id"),
    ],
)
def test_a_still_needs_live_relay_in_scope_and_a_picture(
    running: RunningDaemon, role: str, camera_id: str, kind: ErrorKind, message: str
) -> None:
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.stills.still(principal(role), activity, camera_id, masked=False))
    assert caught.value.kind is kind
    assert caught.value.message.startswith(message)
    if kind is ErrorKind.PERMISSION_DENIED:
        assert activity.camera_id == camera_id  # the denial's record names the camera
