"""`vmsd run` under a stand-in for systemd: READY=1, WATCHDOG=1 while healthy, none once wedged.

The test plays systemd's part: it binds the AF_UNIX datagram socket named by NOTIFY_SOCKET and
sets WATCHDOG_USEC, exactly as systemd does for `Type=notify` + `WatchdogSec=`. One camera is
wedged on purpose by the test-only launcher tests/support/wedged_vmsd.py (its recorder thread
blocks after its first segment, without heartbeat, until the daemon stops): the daemon must stop
pinging — which is what makes systemd kill and restart it — while it stays alive and says why.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator

pytestmark = pytest.mark.slow

WATCHDOG_S = 2.0  # WatchdogSec=2: vmsd checks every second


@dataclass
class Message:
    at: float  # time.monotonic() when received
    assignments: list[str]

    def has(self, prefix: str) -> bool:
        return any(a.startswith(prefix) for a in self.assignments)

    def status(self) -> str:
        return next((a.removeprefix("STATUS=") for a in self.assignments if a.startswith("STATUS=")), "")


class FakeSystemd:
    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[Message] = []

    def wait_for(self, predicate_prefix: str, *, timeout: float, daemon: DaemonProcess) -> Message:
        """Receive until a message has an assignment starting with `predicate_prefix`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(min(0.5, max(0.01, deadline - time.monotonic())))
            if message is not None and message.has(predicate_prefix):
                return message
            if message is None and not daemon.alive():
                raise AssertionError(f"vmsd exited while waiting for {predicate_prefix!r}:\n{daemon.log()}")
        raise AssertionError(f"no {predicate_prefix!r} within {timeout}s; got {self.messages}:\n{daemon.log()}")

    def listen(self, seconds: float) -> list[Message]:
        """Everything received during the next `seconds`."""
        first = len(self.messages)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._receive(left)
        return self.messages[first:]

    def _receive(self, timeout: float) -> Message | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = Message(time.monotonic(), data.decode().split("\n"))
        self.messages.append(message)
        return message


@pytest.fixture
def fake_systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    # AF_UNIX paths are limited to 108 bytes, so not under pytest's (long) tmp_path.
    with tempfile.TemporaryDirectory(prefix="vmsd-sd-", dir="/tmp") as directory:
        systemd = FakeSystemd(os.path.join(directory, "notify"))
        # DaemonProcess passes os.environ on to vmsd.
        monkeypatch.setenv("NOTIFY_SOCKET", systemd.path)
        monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1_000_000)))
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield systemd
        systemd.sock.close()


def test_ready_then_watchdog_pings_that_stop_when_a_recorder_wedges(
    simulator: CameraSimulator, fake_systemd: FakeSystemd, tmp_path: Path
) -> None:
    cameras = {"cam-ok": simulator.url("h264"), "cam-wedged": simulator.url("h264")}
    # A short open_timeout keeps the wedge detection bound (max_silence_ns: 2 × (4 s + 1 s)) short.
    config = write_config(
        tmp_path / "vmsd.toml", tmp_path / "root", cameras, segment_duration="2s", extra='open_timeout = "3s"'
    )
    wedged = [sys.executable, "-m", "tests.support.wedged_vmsd", "cam-wedged"]
    daemon = DaemonProcess(config, tmp_path / "vmsd.log", wedged).start()
    try:
        ready = fake_systemd.wait_for("READY=1", timeout=60, daemon=daemon)
        # Healthy until the wedged recorder has been silent for max_silence (10 s here).
        unhealthy = fake_systemd.wait_for("STATUS=unhealthy", timeout=60, daemon=daemon)
        healthy = [m for m in fake_systemd.messages if ready.at <= m.at < unhealthy.at]
        pings = [m.at for m in healthy if m.has("WATCHDOG=1")]
        assert len(pings) >= 5, fake_systemd.messages
        # systemd's contract: never more than WatchdogSec between pings while healthy.
        gaps = [b - a for a, b in zip([ready.at, *pings], pings, strict=False)]
        assert max(gaps) < WATCHDOG_S, gaps
        assert any(m.status() == "recording 2/2 cameras" for m in healthy), healthy
        assert "camera cam-wedged: recorder made no progress" in unhealthy.status()
        assert "cam-ok" not in unhealthy.status()

        # Wedged: no more pings (systemd would now kill and restart vmsd), but the daemon is
        # alive, its event loop responsive, and the status keeps saying why.
        after = fake_systemd.listen(3 * WATCHDOG_S)
        assert not any(m.has("WATCHDOG=1") for m in after), after
        assert len(after) >= 4
        assert all(m.status().startswith("unhealthy: camera cam-wedged") for m in after), after
        assert daemon.alive()

        daemon.terminate(timeout=20)
        assert daemon.proc is not None and daemon.proc.returncode == 0, daemon.log()
        fake_systemd.wait_for("STOPPING=1", timeout=1, daemon=daemon)
    finally:
        if daemon.alive():
            daemon.kill9()
