"""`make demo` (scripts/demo.py) survives a crash of its vmsd: the simulator keeps serving and a
new vmsd records again. Run as a newcomer runs it: its own process group, Ctrl-C to the group."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.daemon import write_config
from tests.support.simulator import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(log: Path, pattern: str, *, count: int = 1, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text(errors="replace"))
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {count} x {pattern!r}:\n{log.read_text(errors='replace')[-4000:]}")


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _start_demo(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The demo script on one simulated camera, as a newcomer runs it (its own process group);
    its output goes to the returned log."""
    port = free_port()
    config = write_config(tmp_path / "demo.toml", tmp_path / "root", {"demo-h264": f"rtsp://127.0.0.1:{port}/cam1"})
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "demo.py"),
                "--config",
                str(config),
                "--rtsp-port",
                str(port),
                "--clips",
                "/tmp/vmsd-test-clips",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's process group: Ctrl-C goes to all of it
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return demo, log


def test_a_crashed_demo_daemon_is_restarted_and_records_while_the_simulator_keeps_serving(tmp_path: Path) -> None:
    demo, log = _start_demo(tmp_path)
    try:
        simulator_pid = int(_wait_for(log, r"camera simulator \(pid (\d+)\)")[0])
        first_pid = int(_wait_for(log, r"vmsd running \(pid (\d+)\)")[0])
        _wait_for(log, r'"state": "recording"')
        assert "the web console is off" in log.read_text()  # this config has no [web] listen
        os.kill(first_pid, signal.SIGKILL)  # the crash
        pids = _wait_for(log, r"vmsd running \(pid (\d+)\)", count=2)
        assert int(pids[1]) != first_pid
        assert _alive(simulator_pid) and demo.poll() is None
        _wait_for(log, r'"state": "recording"', count=2)  # the new daemon records
        assert "killed by SIGKILL" in log.read_text()
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=60) == 0, log.read_text()[-4000:]
        assert not _alive(simulator_pid)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def test_sigterm_to_the_demo_stops_its_daemon_cleanly_and_the_simulator(tmp_path: Path) -> None:
    demo, log = _start_demo(tmp_path)
    try:
        simulator_pid = int(_wait_for(log, r"camera simulator \(pid (\d+)\)")[0])
        daemon_pid = int(_wait_for(log, r"vmsd running \(pid (\d+)\)")[0])
        _wait_for(log, r'"state": "recording"')
        demo.send_signal(signal.SIGTERM)  # to the script alone, as `kill` or a service manager does
        assert demo.wait(timeout=60) == 0, log.read_text()[-4000:]
        assert not _alive(daemon_pid) and not _alive(simulator_pid)
        assert "daemon_stopped" in log.read_text()  # a clean stop: every segment closed
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def test_the_demo_prints_where_its_web_console_is() -> None:
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    line = demo.console_line(str(ROOT / "config" / "demo.toml"))
    assert line.startswith("  web console: http://127.0.0.1:8080/  (log in with demo-admin-token")
