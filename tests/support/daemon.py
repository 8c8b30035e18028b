"""Running the real `vmsd` as a subprocess, the way an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

VMSD = [sys.executable, "-m", "vmsd.cli.vmsd"]
REPO = Path(__file__).resolve().parents[2]


def write_config(
    path: Path,
    root: Path,
    cameras: dict[str, str],
    *,
    segment_duration: str = "6s",
    extra: str = "",
    grpc: str = "",
    source: str = "",
) -> Path:
    """A config file; `grpc` adds lines to [grpc] (limits, timeouts), `extra` adds tables,
    `source` ("ffmpeg" / "native") is every camera's RTSP source (the default when empty)."""
    lines = [
        'recorder_id = "test-recorder"',
        "[grpc]",
        'listen = "127.0.0.1:0"',
        grpc,
        "[storage]",
        f'root = "{root}"',
        f'segment_duration = "{segment_duration}"',
        'min_free = "1MiB"',
        "[ingest]",
        'stall_timeout = "4s"',
        'max_backoff = "1s"',
        extra,
    ]
    for camera_id, url in cameras.items():
        lines += ["[[cameras]]", f'id = "{camera_id}"', f'url = "{url}"']
        if source:
            lines.append(f'source = "{source}"')
    path.write_text("\n".join(lines) + "\n")
    return path


class DaemonProcess:
    """`vmsd run --config FILE` with its log captured to a file.

    `command` replaces `python -m vmsd.cli.vmsd` (e.g. with a test-only launcher under tests/support)."""

    def __init__(self, config: Path, log_path: Path, command: list[str] | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.command = VMSD if command is None else command
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_ns = 0

    def start(self) -> DaemonProcess:
        self.started_ns = time.time_ns()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [*self.command, "run", "--config", str(self.config), "--log-json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=REPO,  # so that a launcher under tests/ can be run with -m
        )
        log.close()
        return self

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM; returns seconds until exit (raises if it did not exit)."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - began

    def kill9(self) -> int:
        assert self.proc is not None
        killed_ns = time.time_ns()
        self.proc.kill()
        self.proc.wait()
        return killed_ns

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 60) -> None:
        """Block until `text` has appeared `count` times in the daemon's log (or fail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if not self.alive():
                raise AssertionError(f"vmsd exited while waiting for {text!r}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {count} x {text!r} in the vmsd log:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_vmsd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VMSD, *args], capture_output=True, text=True, timeout=120)


def ffprobe(path: Path) -> dict[str, object]:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]
