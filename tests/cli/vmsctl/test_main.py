"""`vmsctl` as a newcomer meets it: the real CLI in a subprocess against a real `vmsd run`.

The daemon has one camera whose address refuses connections (with credentials in its URL), so
its reason for being offline is known and must reach the operator without the password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.cli.vmsctl.words import cli_words

ADMIN = "cli-test-admin-token"
CAMERA_PASSWORD = "Cam3ra-Secret"
TOKENS = f"""offline_after = "1s"
[[auth.tokens]]
name = "cli-admin"
sha256 = "{hashlib.sha256(ADMIN.encode()).hexdigest()}"
role = "admin"
"""


@contextlib.contextmanager
def running_daemon(
    work: Path, cameras: dict[str, str], wait_for_state: str, *, segment_duration: str = "6s", source: str = ""
) -> Iterator[int]:
    """`vmsd run` until the block ends, once a camera reached `wait_for_state`; gives the gRPC port."""
    config = write_config(
        work / "vmsd.toml", work / "root", cameras, segment_duration=segment_duration, extra=TOKENS, source=source
    )
    process = DaemonProcess(config, work / "vmsd.log").start()
    try:
        process.wait_for_log(f'"state": "{wait_for_state}"')
        yield next(json.loads(line)["port"] for line in process.log().splitlines() if "grpc_listening" in line)
    finally:
        process.terminate()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A running daemon with camera `gone` (nothing listens at its address); yields the gRPC port."""
    cameras = {"gone": f"rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:{free_port()}/stream"}
    with running_daemon(tmp_path_factory.mktemp("vmsctl"), cameras, "offline") as port:
        yield port


def vmsctl(port: int, *args: str, token: str | None = ADMIN) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{port}"]
    command += ["--token", token] if token else []
    # Wide enough that no table row wraps (piped output is COLUMNS wide).
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, env=env)


# -- the cameras table ---------------------------------------------------------------------------


def test_cameras_table_says_why_a_camera_is_offline_without_its_password(daemon: int) -> None:
    result = vmsctl(daemon, "cameras")
    assert result.returncode == 0, result.stderr
    assert "offline" in result.stdout
    assert "Connection refused" in result.stdout
    assert "rtsp://***@127.0.0.1" in result.stdout
    assert CAMERA_PASSWORD not in result.stdout


# -- failed calls leave no files behind -----------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["relay", "no-such-camera"],
        ["play", "no-such-camera", "--from", "-2m", "--to", "-1m", "--reason", "review"],
        ["play", "gone", "--from", "-2m", "--to", "-1m", "--reason", "review"],
    ],
    ids=["relay-unknown-camera", "play-unknown-camera", "play-no-footage"],
)
def test_a_failed_relay_or_play_leaves_no_output_file(daemon: int, tmp_path: Path, command: list[str]) -> None:
    output = tmp_path / "out.ts"
    result = vmsctl(daemon, *command, "-o", str(output))
    assert result.returncode == 3, result.stderr  # not found
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_denied_relay_leaves_no_output_file(daemon: int, tmp_path: Path) -> None:
    output = tmp_path / "out.ts"
    result = vmsctl(daemon, "relay", "gone", "-o", str(output), token="not-a-token")
    assert result.returncode == 4, result.stderr
    assert not output.exists()


# -- errors in the CLI's words ---------------------------------------------------------------------


def test_a_range_error_names_the_options_not_the_wire_fields(daemon: int) -> None:
    result = vmsctl(daemon, "search", "gone", "--from", "-1h", "--to", "-2h")
    assert result.returncode == 2
    assert "--to must be after --from" in result.stderr
    assert "range." not in result.stderr and "_ns" not in result.stderr


def test_a_time_before_2000_is_shown_as_a_time(daemon: int) -> None:
    result = vmsctl(daemon, "search", "gone", "--from", "1990-01-01T00:00:00Z", "--to", "now")
    assert result.returncode == 2
    assert "--from 1990-01-01T00:00:00.000Z" in result.stderr
    assert "_ns" not in result.stderr and "nanoseconds" not in result.stderr


def test_a_missing_token_is_explained_in_the_cli_words(daemon: int) -> None:
    result = vmsctl(daemon, "cameras", token=None)
    assert result.returncode == 4
    assert "--token" in result.stderr and "VMSD_TOKEN" in result.stderr
    assert "metadata" not in result.stderr


def test_a_missing_reason_names_the_option(daemon: int) -> None:
    result = vmsctl(daemon, "hold", "add", "gone", "--from", "-2h", "--to", "-1h", "--case", "CR/1", "--reason", " ")
    assert result.returncode == 2
    assert "--reason is required" in result.stderr


# -- holds -----------------------------------------------------------------------------------------


def test_hold_list_says_an_active_hold_lasts_until_released_and_who_released_it(daemon: int) -> None:
    added = vmsctl(
        daemon, "--json", "hold", "add", "gone", "--from", "-2h", "--to", "-1h", "--case", "CR/7", "--reason", "r"
    )
    assert added.returncode == 0, added.stderr
    hold_id = json.loads(added.stdout)["id"]
    listed = vmsctl(daemon, "hold", "list")
    row = next(line for line in listed.stdout.splitlines() if "CR/7" in line)
    assert "until released" in row
    assert "released by hand" not in listed.stdout
    released = vmsctl(daemon, "hold", "release", str(hold_id), "--reason", "case closed")
    assert released.returncode == 0, released.stderr
    row = next(line for line in vmsctl(daemon, "hold", "list", "--all").stdout.splitlines() if "CR/7" in line)
    assert "released 20" in row and "by cli-admin" in row
    assert "until released" not in row


# -- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["search"], ["play"], ["export"], ["hold", "add"], ["audit"], ["retention"]], ids=" ".join
)
def test_time_options_show_their_formats_in_help(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vmsd.cli.vmsctl", *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps help text
    for example in ("Z", "+01:00", "now", "-30s", "-10m", "-2h", "-1d"):
        assert example in text, (example, text)


# -- a viewer that closes the pipe -------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A daemon recording one simulated camera `cam`; yields the gRPC port."""
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", seconds=10)
    with (
        CameraSimulator([MountSpec("cam", clip)]) as simulator,
        running_daemon(tmp_path_factory.mktemp("vmsctl-live"), {"cam": simulator.url("cam")}, "recording") as port,
    ):
        yield port


def _wait_for_footage(port: int, scratch: Path, timeout: float = 60) -> None:
    """Until Play has footage to send (it sends complete segments, not the one being written)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        played = vmsctl(
            port, "--json", "play", "cam", "--from", "-10m", "--to", "now", "--reason", "t", "-o", str(scratch)
        )
        if played.returncode == 0 and json.loads(played.stdout)["bytes"] > 100_000:  # more than a pipe holds
            return
        time.sleep(0.5)
    raise AssertionError("no complete segment of cam")


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["relay", "cam"], ["play", "cam", "--from", "-10m", "--to", "now", "--reason", "review"]],
    ids=["relay", "play"],
)
def test_a_viewer_closing_the_pipe_ends_vmsctl_quietly(live_daemon: int, command: list[str], tmp_path: Path) -> None:
    """`vmsctl relay CAM -o - | ffplay -`: closing the player must not end in a traceback."""
    if command[0] == "play":
        _wait_for_footage(live_daemon, tmp_path / "scratch.ts")
    shell = " ".join(
        [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{live_daemon}", "--token", ADMIN, *command]
    )
    result = subprocess.run(
        ["bash", "-c", f'{shell} -o - | head -c 1000 >/dev/null; echo "status=${{PIPESTATUS[0]}}" >&2'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    assert "status=0" in result.stderr, result.stderr


@pytest.mark.slow
def test_a_play_that_receives_no_footage_leaves_no_file(tmp_path: Path) -> None:
    """Before a camera's first segment is complete, Play of its last second succeeds and sends no
    bytes: that must not leave an empty file that looks like a clip. (On the FFmpeg source: its
    open segment is unreadable until it closes; the native source writes each GOP as it ends, so
    Play finds footage in the open segment.)"""
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", seconds=10)
    with (
        CameraSimulator([MountSpec("cam", clip)]) as simulator,
        running_daemon(
            tmp_path, {"cam": simulator.url("cam")}, "recording", segment_duration="60s", source="ffmpeg"
        ) as port,
    ):
        output = tmp_path / "clip.ts"
        result = vmsctl(port, "play", "cam", "--from", "-1s", "--to", "now", "--reason", "r", "-o", str(output))
    assert result.returncode == 3, result.stderr
    assert "nothing was saved" in result.stderr and "Traceback" not in result.stderr
    assert not output.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize(
    ("daemon_says", "vmsctl_says"),
    [
        ("range is longer than the maximum of 86400 s", "--from … --to spans more than the maximum of 1 day(s)"),
        (
            "until_ns must be in the future (or 0: until released)",
            "--until must be in the future (or leave --until out: until released)",
        ),
        ("until_ns must be after since_ns", "--until must be after --since"),
        (
            "camera_ids[1] 'a b' is not a valid camera id (letters, digits, '.', '_', '-'; max 64)",
            "camera 'a b' is not a valid camera id (letters, digits, '.', '_', '-'; max 64)",
        ),
        ("camera_id 'x' is outside this principal's scope", "camera 'x' is outside this token's cameras"),
        ("case_ref is required", "--case is required"),
        (
            "duration_ns must be between 0 (no limit) and 604800 s",
            "--duration must be between 0 (no limit) and 604800 s",
        ),
        ("unknown or revoked token", "unknown or revoked token"),
    ],
)
def test_daemon_errors_are_put_in_the_cli_words(daemon_says: str, vmsctl_says: str) -> None:
    assert cli_words(daemon_says) == vmsctl_says
