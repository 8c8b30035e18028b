"""sd_notify and the watchdog: a real AF_UNIX datagram socket stands in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.support.simulator import free_port
from vmsd.clock import FakeClock, SystemClock
from vmsd.config import CameraConfig, IngestConfig
from vmsd.ingest.recorder import CameraRecorder
from vmsd.ops.sdnotify import Notifier
from vmsd.ops.watchdog import Watchdog, max_silence_ns, recorder_probe, recorder_summary
from vmsd.storage.store import Storage

S = 1_000_000_000


class Systemd:
    """The receiving end of NOTIFY_SOCKET: collects datagrams as lists of assignments."""

    def __init__(self, address: str | bytes, env_value: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env_value = env_value

    def env(self, **extra: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.env_value, **extra}

    def receive(self, timeout: float = 2.0) -> list[str]:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode().split("\n")

    def pending(self) -> list[list[str]]:
        """Everything received so far, without waiting."""
        self.sock.setblocking(False)
        messages = []
        try:
            while True:
                messages.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            return messages


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="vmsd-notify-", dir="/tmp") as directory:
        path = os.path.join(directory, "notify.sock")
        receiver = Systemd(path, path)
        yield receiver
        receiver.sock.close()


@pytest.fixture
def abstract_systemd() -> Iterator[Systemd]:
    name = f"vmsd-test-{uuid.uuid4().hex}"
    receiver = Systemd(b"\0" + name.encode(), "@" + name)
    yield receiver
    receiver.sock.close()


# -- Notifier ------------------------------------------------------------------------------------


def test_messages_reach_a_path_socket(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env())
    assert notifier.enabled
    assert notifier.ready("recording 2/2 cameras")
    assert systemd.receive() == ["READY=1", "STATUS=recording 2/2 cameras"]
    assert notifier.status("line one\nline two")
    assert systemd.receive() == ["STATUS=line one line two"]  # a newline would start a new assignment
    assert notifier.watchdog()
    assert systemd.receive() == ["WATCHDOG=1"]
    assert notifier.stopping()
    assert systemd.receive() == ["STOPPING=1"]
    notifier.close()


def test_messages_reach_an_abstract_socket(abstract_systemd: Systemd) -> None:
    notifier = Notifier(abstract_systemd.env())
    assert notifier.ready()
    assert abstract_systemd.receive() == ["READY=1"]
    notifier.close()


def test_reads_the_process_environment_by_default(systemd: Systemd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = Notifier()
    assert notifier.watchdog_timeout_ns == 30 * S
    assert notifier.watchdog()
    assert systemd.receive() == ["WATCHDOG=1"]


def test_without_systemd_every_call_is_a_quiet_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_timeout_ns is None
    with capture_logs() as logs:
        assert not notifier.ready("x")
        assert not notifier.status("x")
        assert not notifier.watchdog()
        assert not notifier.stopping()
    assert logs == []


def test_constructor_does_no_io(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-here.sock")
    Notifier({"NOTIFY_SOCKET": missing, "WATCHDOG_USEC": "1000000"})  # no error, nothing created
    assert not os.path.exists(missing)


def test_a_dead_socket_never_raises_and_is_logged_once(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with capture_logs() as logs:
        for _ in range(5):
            assert not notifier.watchdog()
    failures = [e for e in logs if e["event"] == "sd_notify_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "warning"


def test_delivery_resumes_when_the_socket_comes_back(systemd: Systemd) -> None:
    path = systemd.env_value
    systemd.sock.close()
    os.unlink(path)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    with capture_logs() as logs:
        assert not notifier.status("lost")
        systemd.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        systemd.sock.bind(path)
        assert notifier.status("back")
    assert systemd.receive() == ["STATUS=back"]
    assert [e["event"] for e in logs if e["event"].startswith("sd_notify")] == [
        "sd_notify_failed",
        "sd_notify_recovered",
    ]


def test_unsupported_socket_address_is_disabled_and_logged_once() -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234", "WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_timeout_ns is None
    with capture_logs() as logs:
        assert not notifier.ready()
        assert not notifier.ready()
    assert [e["event"] for e in logs] == ["sd_notify_failed"]


@pytest.mark.parametrize(
    ("environ", "expected_ns"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30 * S),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30 * S),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_timeout_from_the_environment(environ: dict[str, str], expected_ns: int | None) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": "/run/systemd/notify", **environ})
    assert notifier.watchdog_timeout_ns == expected_ns


def test_watchdog_needs_a_notify_socket() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_timeout_ns is None


# -- Watchdog ------------------------------------------------------------------------------------


def test_a_healthy_beat_pings_with_a_status(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env(WATCHDOG_USEC="2000000"))
    watchdog = Watchdog(notifier, lambda: [], FakeClock(), summary=lambda: "recording 3/3 cameras")
    assert watchdog.interval_ns == 1 * S
    assert watchdog.beat()
    assert systemd.receive() == ["WATCHDOG=1", "STATUS=recording 3/3 cameras"]
    assert watchdog.healthy and watchdog.pings == 1


def test_a_problem_withholds_the_ping_and_says_why(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env(WATCHDOG_USEC="2000000"))
    problems = ["camera a: recorder made no progress for 40s"]
    watchdog = Watchdog(notifier, lambda: problems, FakeClock())
    with capture_logs() as logs:
        assert not watchdog.beat()
        assert not watchdog.beat()
    assert systemd.pending() == [["STATUS=unhealthy: camera a: recorder made no progress for 40s"]] * 2
    assert [e["event"] for e in logs] == ["watchdog_withheld"]  # once per episode, not per beat
    problems.clear()
    with capture_logs() as logs:
        assert watchdog.beat()
    assert systemd.receive() == ["WATCHDOG=1", "STATUS=healthy"]
    assert [e["event"] for e in logs] == ["watchdog_resumed"]


def test_event_loop_lag_beyond_one_interval_is_a_problem(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env(WATCHDOG_USEC="2000000"))
    watchdog = Watchdog(notifier, lambda: [], FakeClock())
    assert watchdog.beat(lag_ns=S)  # late by exactly one interval: still within WatchdogSec
    assert not watchdog.beat(lag_ns=S + 1)
    assert systemd.pending()[-1] == ["STATUS=unhealthy: event loop stalled for 1.0s"]


def test_a_failing_probe_is_a_problem_not_a_crash(systemd: Systemd) -> None:
    def probe() -> list[str]:
        raise RuntimeError("boom")

    watchdog = Watchdog(Notifier(systemd.env(WATCHDOG_USEC="2000000")), probe, FakeClock())
    with capture_logs() as logs:
        assert not watchdog.beat()
    assert systemd.receive() == ["STATUS=unhealthy: health probe failed (see the log)"]
    assert logs[0]["event"] == "watchdog_probe_failed" and logs[0]["exc_info"]


def test_without_a_systemd_watchdog_only_the_status_is_sent(systemd: Systemd) -> None:
    watchdog = Watchdog(Notifier(systemd.env()), lambda: [], FakeClock())
    assert watchdog.interval_ns == 10 * S
    assert not watchdog.beat()
    assert systemd.receive() == ["STATUS=healthy"]


async def test_run_pings_every_half_timeout_until_closed(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env(WATCHDOG_USEC="100000"))  # pings every 50 ms
    healthy = True
    watchdog = Watchdog(notifier, lambda: [] if healthy else ["wedged"], SystemClock())
    task = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0.3)
    healthy = False
    await asyncio.sleep(0.2)
    await watchdog.aclose()
    await asyncio.wait_for(task, 1)
    messages = systemd.pending()
    pings = [m for m in messages if m[0] == "WATCHDOG=1"]
    assert 3 <= len(pings) <= 8
    first_unhealthy = messages.index(["STATUS=unhealthy: wedged"])
    assert all(m[0] != "WATCHDOG=1" for m in messages[first_unhealthy:])
    assert len(messages) - first_unhealthy >= 2  # the status keeps being refreshed


async def test_run_outside_systemd_just_waits_for_aclose() -> None:
    watchdog = Watchdog(Notifier({}), lambda: [], SystemClock())
    task = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0.01)
    assert not task.done()
    await watchdog.aclose()
    await asyncio.wait_for(task, 1)


async def test_a_blocked_event_loop_gets_no_ping(systemd: Systemd) -> None:
    notifier = Notifier(systemd.env(WATCHDOG_USEC="40000"))
    watchdog = Watchdog(notifier, lambda: [], SystemClock())
    task = asyncio.create_task(watchdog.run())
    await asyncio.sleep(0.05)
    time.sleep(0.1)  # the loop is blocked for 5 intervals
    await asyncio.sleep(0.005)
    await watchdog.aclose()
    await asyncio.wait_for(task, 1)
    statuses = [m[-1] for m in systemd.pending()]
    assert any(s.startswith("STATUS=unhealthy: event loop stalled for 0.") for s in statuses)


# -- the recorder probe --------------------------------------------------------------------------


@dataclass
class FakeRecorder:
    heartbeat_mono_ns: int = 0


def test_probe_reports_recorders_without_progress() -> None:
    clock = FakeClock()
    recorders = {"a": FakeRecorder(), "b": FakeRecorder()}
    probe = recorder_probe(lambda: recorders, clock, 20 * S)
    assert probe() == []  # just started: given max_silence to get going
    clock.advance(15 * S)
    recorders["a"].heartbeat_mono_ns = clock.mono_ns()
    assert probe() == []
    clock.advance(6 * S)  # b silent for 21 s since it was first seen, a for 6 s
    assert probe() == ["camera b: recorder made no progress for 21s"]
    recorders["a"].heartbeat_mono_ns = recorders["b"].heartbeat_mono_ns = clock.mono_ns()
    assert probe() == []
    clock.advance(20 * S)
    assert probe() == []  # exactly max_silence is still fine
    clock.advance(1)
    assert probe() == ["camera a: recorder made no progress for 20s", "camera b: recorder made no progress for 20s"]


def test_probe_gives_a_replaced_recorder_a_fresh_start() -> None:
    clock = FakeClock()
    recorders = {"a": FakeRecorder()}
    probe = recorder_probe(lambda: recorders, clock, 20 * S)
    probe()
    clock.advance(30 * S)
    assert probe() != []
    recorders["a"] = FakeRecorder()  # camera updated over the API: a new recorder
    assert probe() == []
    del recorders["a"]  # camera removed
    assert probe() == []


def test_max_silence_covers_a_connection_attempt_and_a_backoff() -> None:
    defaults = IngestConfig()
    # open_timeout 10 s + max_backoff 2 s, twice over.
    assert max_silence_ns(defaults) == 24 * S
    quick = IngestConfig.model_validate({"open_timeout": "1s", "stall_timeout": "1s", "max_backoff": "1s"})
    assert max_silence_ns(quick) == 10 * S  # never below 10 s


async def test_an_offline_camera_is_not_a_wedge(storage: Storage) -> None:
    """The real recorder keeps bumping its heartbeat while it retries a camera that is not there."""
    clock = SystemClock()
    ingest = IngestConfig.model_validate({"open_timeout": "1s", "stall_timeout": "1s", "max_backoff": "200ms"})
    camera = CameraConfig(id="nowhere", url=f"rtsp://127.0.0.1:{free_port()}/stream")
    recorder = CameraRecorder(camera, ingest, storage, clock, segment_duration_ns=6 * S)
    recorders = {"nowhere": recorder}
    # A bound far tighter than max_silence_ns(ingest), to show the heartbeat really moves.
    probe = recorder_probe(lambda: recorders, clock, 700_000_000)
    task = asyncio.create_task(recorder.run())
    try:
        beats = set()
        for _ in range(15):
            await asyncio.sleep(0.1)
            assert probe() == []
            beats.add(recorder.heartbeat_mono_ns)
        assert len(beats) >= 3
        assert recorder.status.reconnects >= 3
        assert recorder_summary(lambda: recorders)() in (
            "recording 0/1 cameras (reconnecting: nowhere)",
            "recording 0/1 cameras (connecting: nowhere)",
        )
    finally:
        await recorder.aclose()
        await task
