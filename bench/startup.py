"""Benchmark scenario 7 — start-up under load: how soon vmsd serves, tells systemd it is ready, and
records every camera, when it starts with many cameras on a box that is already busy.

Method: for each N of a ladder (e.g. 64, 128, 192), a fresh simulator with N mounts and a busy
loop using one full core (``busy_cores``; the simulator's own CPU comes on top) are started
first; then vmsd, recording all N, is started the way systemd starts it: with ``NOTIFY_SOCKET``
(a datagram socket this scenario reads in its own thread, timestamping each message as it
arrives) and ``WATCHDOG_USEC`` (``watchdog_s``, 30 s in the shipped unit). From the moment vmsd is
spawned it measures

* port open: the first TCP connect to the gRPC port that succeeds (polled every 20 ms);
* gRPC serving: the first ``grpc.health.v1.Health/Check`` answering SERVING;
* READY=1: the arrival of systemd's READY=1;
* first / all cameras recording: when the first / the last camera has its first segment in the
  catalogue (read-only SQLite, polled every 100 ms: that is the figures' resolution);
* cameras started: vmsd's own ``cameras_started`` log event (all recorders started);
* the watchdog until ``settle_s`` after all cameras record: pings, the longest gap between two
  (from READY=1 on; systemd restarts the service past ``watchdog_s``), and how many times vmsd
  withheld the ping (a STATUS=unhealthy message);

then SIGTERM.  CPU (vmsd, simulator, busy loop) is averaged from spawn to all cameras recording.
A step that does not reach READY=1 or every camera recording within ``timeout_s`` reports what
it reached (``None`` for the rest); the ladder always runs every step.

    .venv/bin/python bench/startup.py --steps 64 128 192
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    SYSTEM_PYTHON,
    Stream,
    cpu_seconds,
    free_port,
    start_vmsd,
    stop_vmsd,
    write_vmsd_config,
)
from tests.support.simulator import CameraSimulator, MountSpec

SEGMENT_S = 60
PORT_POLL_S = 0.02
CATALOGUE_POLL_S = 0.1


class NotifyListener:
    """systemd's side of sd_notify: every datagram on NOTIFY_SOCKET with its arrival time."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify")  # AF_UNIX paths are limited to 108 bytes
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, list[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-listener", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode(errors="replace").split("\n")))

    def first(self, assignment: str) -> float | None:
        return next((at for at, lines in list(self.messages) if assignment in lines), None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _grpc_serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _cameras_recording(catalogue: Path) -> int:
    """Cameras with at least one segment row (their first segment is being written)."""
    if not catalogue.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{catalogue}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(DISTINCT camera_id) FROM segments").fetchone()[0])
    except sqlite3.Error:  # not created yet, or its schema not yet written
        return 0


def _log_event(log: Path, event: str) -> dict[str, Any] | None:
    for line in log.read_text(errors="replace").splitlines():
        if f'"{event}"' in line:
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return None


def _watchdog(listener: NotifyListener, ready_at: float | None, until: float) -> dict[str, Any]:
    messages = [(at, lines) for at, lines in list(listener.messages) if at <= until]
    pings = [at for at, lines in messages if "WATCHDOG=1" in lines]
    unhealthy = [
        line.removeprefix("STATUS=") for _at, lines in messages for line in lines if line.startswith("STATUS=unhealthy")
    ]
    marks = ([ready_at] if ready_at is not None else []) + [at for at in pings if ready_at is None or at >= ready_at]
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    if marks:
        gaps.append(until - marks[-1])  # the time since the last ping counts too
    return {
        "pings": len(pings),
        "max_gap_s": round(max(gaps), 2) if gaps else None,
        "withheld": len(unhealthy),
        "first_unhealthy_status": unhealthy[0][:300] if unhealthy else None,
    }


def _since(t0: float, at: float | None) -> float | None:
    return None if at is None else round(at - t0, 2)


def start_busy_loops(cores: int) -> list[subprocess.Popen[bytes]]:
    """``cores`` processes spinning a full core each: the box is already busy."""
    return [subprocess.Popen([SYSTEM_PYTHON, "-c", "while True: pass"]) for _ in range(cores)]


def stop_busy_loops(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def measure_step(
    sim: CameraSimulator, names: list[str], work: Path, busy: list[subprocess.Popen[bytes]], params: dict[str, Any]
) -> dict[str, Any]:
    """One vmsd start-up with ``names`` cameras (see the module docstring for every figure)."""
    n = len(names)
    cfg, root, log = work / "vmsd.toml", work / "root", work / "vmsd.log"
    port = free_port()
    write_vmsd_config(cfg, root, {name: sim.url(name) for name in names}, segment_s=SEGMENT_S, grpc_port=port)
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-sd-", dir="/tmp") as sd_dir:
        listener = NotifyListener(Path(sd_dir))
        env = {"NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": str(int(params["watchdog_s"] * 1_000_000))}
        pids = [p.pid for p in busy] + [sim.pid or 0]
        cpu0 = {pid: cpu_seconds(pid) for pid in pids}
        t0 = time.monotonic()
        proc = start_vmsd(cfg, log, env=env)
        port_at = serving_at = first_at = all_at = None
        recording = 0
        next_catalogue = t0
        try:
            deadline = t0 + params["timeout_s"]
            while time.monotonic() < deadline and proc.poll() is None:
                now = time.monotonic()
                if port_at is None and _port_open(port):
                    port_at = time.monotonic()
                if port_at is not None and serving_at is None and _grpc_serving(port):
                    serving_at = time.monotonic()
                if all_at is None and now >= next_catalogue:
                    next_catalogue = now + CATALOGUE_POLL_S
                    recording = _cameras_recording(root / "catalogue.db")
                    if recording and first_at is None:
                        first_at = time.monotonic()
                    if recording >= n:
                        all_at = time.monotonic()
                if all_at is not None and serving_at is not None and listener.first("READY=1") is not None:
                    break
                time.sleep(PORT_POLL_S)
            cpu_until = time.monotonic()
            cpu = {pid: cpu_seconds(pid) - cpu0[pid] for pid in pids}
            vmsd_cpu = cpu_seconds(proc.pid) if proc.poll() is None else None
            # Keep listening a while: the watchdog's first checks come after the cameras start.
            settle_until = time.monotonic() + (params["settle_s"] if all_at is not None else 0)
            while time.monotonic() < settle_until and proc.poll() is None:
                time.sleep(0.2)
            observed_until = time.monotonic()
        finally:
            stop_s = stop_vmsd(proc, timeout=30 + n)
            listener.close()
    ready_at = listener.first("READY=1")
    started = _log_event(log, "cameras_started")
    daemon_started = _log_event(log, "daemon_started")
    window_s = cpu_until - t0
    return {
        "cameras": n,
        "port_open_s": _since(t0, port_at),
        "grpc_serving_s": _since(t0, serving_at),
        "ready_s": _since(t0, ready_at),
        "cameras_started_ms": started.get("elapsed_ms") if started else None,
        "first_camera_recording_s": _since(t0, first_at),
        "all_cameras_recording_s": _since(t0, all_at),
        "cameras_recording": recording,
        "daemon_started_logged": daemon_started is not None,
        "watchdog_s": params["watchdog_s"],
        "watchdog": _watchdog(listener, ready_at, observed_until),
        "vmsd_cpu_cores": round(vmsd_cpu / window_s, 3) if vmsd_cpu is not None else None,
        "busy_loop_cpu_cores": round(sum(cpu[p.pid] for p in busy) / window_s, 3),
        "simulator_cpu_cores": round(cpu[sim.pid or 0] / window_s, 3),
        "sigterm_to_exit_s": round(stop_s, 2),
        "exit_code": proc.returncode,
    }


def run(steps: list[int], work: Path, stream: Stream | None = None, **params: Any) -> dict[str, Any]:
    """Every step of the ladder; ``params``: busy_cores, timeout_s, settle_s, watchdog_s."""
    stream = stream or Stream()
    clip = stream.clip()
    result: dict[str, Any] = {"scenario": "startup", "steps": steps, **params, "stream": stream.describe(), "runs": []}
    for n in steps:
        print(f"startup: {n} cameras on a box with {params['busy_cores']} busy core(s) ...", file=sys.stderr)
        step_dir = work / f"n{n}"
        step_dir.mkdir(parents=True, exist_ok=True)
        busy = start_busy_loops(params["busy_cores"])
        try:
            with CameraSimulator([MountSpec(f"cam{i + 1}", clip) for i in range(n)], ready_timeout=60) as sim:
                names = [f"cam{i + 1}" for i in range(n)]
                result["runs"].append(measure_step(sim, names, step_dir, busy, params))
        finally:
            stop_busy_loops(busy)
            shutil.rmtree(step_dir, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[64, 128, 192])
    ap.add_argument("--busy-cores", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--watchdog", type=float, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-startup-") as tmp:
        result = run(
            args.steps,
            Path(tmp),
            busy_cores=args.busy_cores,
            timeout_s=args.timeout,
            settle_s=args.settle,
            watchdog_s=args.watchdog,
        )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
