"""`vmsd run` under a stand-in for systemd: READY=1, WATCHDOG=1 while healthy, none once wedged.

The test plays systemd's part: it binds the AF_UNIX datagram socket named by NOTIFY_SOCKET and
sets WATCHDOG_USEC, exactly as systemd does for `Type=notify` + `WatchdogSec=`. One camera is
wedged on purpose by the test-only launcher tests/support/wedged_vmsd.py (its recorder thread
blocks after its first segment, without heartbeat, until the daemon stops): the daemon must stop
pinging — which is what makes systemd kill and restart it — while it stays alive and says why.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.daemon import DaemonProcess, run_vmsd, write_config
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


STARTUP_CAMERAS = 48


def _grpc_port(log: str) -> int | None:
    for line in log.splitlines():
        if '"grpc_listening"' in line:
            return int(json.loads(line)["port"])
    return None


def _health_answers(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_ready_and_control_plane_come_before_camera_start_up(fake_systemd: FakeSystemd, tmp_path: Path) -> None:
    """Many cameras: READY=1 and a serving gRPC port come first, the cameras start behind them.

    Every camera points at one loopback port the test owns: it accepts connections and never
    answers, so each accepted connection is one recorder that has started and is connecting.
    Before the fix the cameras were registered and started one by one before the control plane,
    so the first cameras were connecting long before READY=1 (and with enough cameras on a busy
    box, systemd's start timeout ran out first).
    """
    with socket.create_server(("127.0.0.1", 0), backlog=4 * STARTUP_CAMERAS) as fake_camera:
        port = fake_camera.getsockname()[1]
        cameras = {f"cam-{i:02d}": f"rtsp://127.0.0.1:{port}/cam-{i:02d}" for i in range(STARTUP_CAMERAS)}
        config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", cameras, extra='open_timeout = "3s"')
        daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
        connections: list[socket.socket] = []
        started_cameras: set[str] = set()
        try:
            ready: Message | None = None
            grpc_answered = False
            connected_before_ready = 0
            deadline = time.monotonic() + 120
            while len(started_cameras) < STARTUP_CAMERAS and time.monotonic() < deadline:
                readable, _, _ = select.select([fake_systemd.sock, fake_camera], [], [], 0.5)
                # systemd's socket first: READY=1 was queued before any connection it precedes.
                while ready is None and fake_systemd._receive(0.001) is not None:
                    ready = next((m for m in fake_systemd.messages if m.has("READY=1")), None)
                if fake_camera in readable:
                    connections.append(fake_camera.accept()[0])
                    connected_before_ready += ready is None
                    connections[-1].settimeout(10)
                    request = connections[-1].recv(4096).decode(errors="replace").split(" ", 2)  # OPTIONS URL RTSP/1.0
                    started_cameras.add(request[1].rsplit("/", 1)[-1] if len(request) > 1 else "?")
                if ready is not None and not grpc_answered:
                    # READY=1 is here: the control plane listens and answers already.
                    grpc_port = _grpc_port(daemon.log())
                    assert grpc_port is not None, daemon.log()
                    grpc_answered = _health_answers(grpc_port)
                    assert grpc_answered
                assert daemon.alive(), daemon.log()
            assert ready is not None, f"no READY=1; got {fake_systemd.messages}:\n{daemon.log()}"
            assert grpc_answered
            assert connected_before_ready == 0, f"{connected_before_ready} camera(s) connected before READY=1"
            # Start-up still reaches every camera, in the background.
            assert started_cameras == set(cameras), started_cameras ^ set(cameras)
            daemon.wait_for_log('"cameras_started"', timeout=30)
            started = next(json.loads(line) for line in daemon.log().splitlines() if '"cameras_started"' in line)
            assert started["cameras"] == STARTUP_CAMERAS
            assert daemon.log().index('"daemon_started"') < daemon.log().index('"cameras_started"')

            daemon.terminate(timeout=30)
            assert daemon.proc is not None and daemon.proc.returncode == 0, daemon.log()
        finally:
            for connection in connections:
                connection.close()
            if daemon.alive():
                daemon.kill9()


def test_sigterm_during_camera_start_up_stops_cleanly(
    simulator: CameraSimulator, fake_systemd: FakeSystemd, tmp_path: Path
) -> None:
    """SIGTERM as soon as the first camera records, while the others are still starting: the
    daemon exits 0 and leaves no recorder behind — every run ended, every segment closed."""
    cameras = {f"cam-{i:02d}": simulator.url("h264") for i in range(16)}
    root = tmp_path / "root"
    config = write_config(tmp_path / "vmsd.toml", root, cameras, segment_duration="2s")
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        fake_systemd.wait_for("READY=1", timeout=60, daemon=daemon)
        daemon.wait_for_log('"state": "recording"', timeout=60)
        daemon.terminate(timeout=30)
        assert daemon.proc is not None and daemon.proc.returncode == 0, daemon.log()
        assert '"daemon_stopped"' in daemon.log()
        assert "Traceback" not in daemon.log(), daemon.log()
    finally:
        if daemon.alive():
            daemon.kill9()
    with sqlite3.connect(f"file:{root / 'catalogue.db'}?mode=ro", uri=True) as catalogue:
        writing = catalogue.execute("SELECT camera_id FROM segments WHERE state = 'writing'").fetchall()
        open_runs = catalogue.execute("SELECT camera_id FROM runs WHERE end_ns IS NULL").fetchall()
        complete = catalogue.execute("SELECT count(*) FROM segments WHERE state = 'complete'").fetchone()[0]
    assert writing == [], f"segments left open: {writing}"
    assert open_runs == [], f"runs left open: {open_runs}"
    assert complete >= 1
    fsck = run_vmsd("fsck", "--config", str(config))
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
