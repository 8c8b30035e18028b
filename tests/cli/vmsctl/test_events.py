"""`vmsctl events` against a real `vmsd run` recording a simulated camera (issue #17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.cli.vmsctl.test_main import ADMIN, running_daemon, vmsctl
from tests.support.clips import make_clip
from tests.support.simulator import CameraSimulator, MountSpec


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, CameraSimulator]]:
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", seconds=10)
    with (
        CameraSimulator([MountSpec("cam", clip)]) as simulator,
        running_daemon(tmp_path_factory.mktemp("vmsctl-events"), {"cam": simulator.url("cam")}, "recording") as port,
    ):
        yield port, simulator


def _lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_is_one_object_per_line_and_filters_apply(recording: tuple[int, CameraSimulator]) -> None:
    port, _ = recording
    everything = _lines(vmsctl(port, "events", "--json"))
    assert {"camera_connected", "recording_started"} <= {e["kind"] for e in everything}
    assert all(e["recorder_id"] == "test-recorder" for e in everything)
    started = _lines(vmsctl(port, "events", "--kind", "recording_started", "--camera", "c*", "--json"))
    assert [e["kind"] for e in started] == ["recording_started"] and started[0]["camera_id"] == "cam"
    first = int(everything[0]["seq"])
    after = _lines(vmsctl(port, "events", "--after", str(first), "--json"))
    assert [e["seq"] for e in after] == [e["seq"] for e in everything[1:]]


def test_text_lines_name_seq_kind_and_camera(recording: tuple[int, CameraSimulator]) -> None:
    port, _ = recording
    result = vmsctl(port, "events", "--kind", "camera_connected")
    assert result.returncode == 0, result.stderr
    assert "camera_connected  cam  video_codec=h264" in result.stdout


def test_an_unknown_kind_is_a_usage_error_naming_it(recording: tuple[int, CameraSimulator]) -> None:
    port, _ = recording
    result = vmsctl(port, "events", "--kind", "camera_exploded")
    assert result.returncode != 0 and "camera_exploded" in result.stderr and "camera_connected" in result.stderr


def test_follow_prints_a_disconnect_as_it_happens(recording: tuple[int, CameraSimulator]) -> None:
    port, simulator = recording
    # From the newest event seen: whenever the follower gets connected, it misses nothing after it.
    newest = _lines(vmsctl(port, "events", "--json"))[-1]["seq"]
    command = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{port}", "--token", ADMIN]
    follower = subprocess.Popen(
        [*command, "events", "--follow", "--json", "--camera", "cam", "--after", str(newest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        simulator.drop("cam", 2)
        assert follower.stdout is not None
        deadline = time.monotonic() + 30
        kinds = []
        while time.monotonic() < deadline and "camera_connected" not in kinds:
            line = follower.stdout.readline()
            if not line:
                break
            kinds.append(json.loads(line)["kind"])
        assert kinds[:1] == ["camera_disconnected"] and "camera_connected" in kinds, kinds
    finally:
        follower.terminate()
        follower.wait(10)
