"""Relay cost: CPU of vmsd per live viewer, and latency added, on the camera simulator.

Method: one simulated 1080p25 4 Mbit/s camera recorded by the real daemon; measure the daemon's
CPU (utime+stime from /proc) over a window with 0 viewers, then with N viewers (grpc.aio
clients in a separate process, reading every message); CPU per viewer = (with − without) / N.
Latency added = client receive time − the packet's wall time (which is its arrival time at the
recorder), p50/p99, excluding each viewer's first second (the GOP cache is older by design).

    .venv/bin/python bench/relay_cost.py [--viewers 10 50] [--seconds 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.v1 import live_pb2, live_pb2_grpc

S = 1_000_000_000
TOKEN = "bench-relay"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _viewers(port: int, count: int, seconds: float) -> list[int]:
    latencies: list[int] = []

    async def one(index: int) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = live_pb2_grpc.LiveServiceStub(channel)
            call = stub.Relay(
                live_pb2.RelayRequest(camera_id="cam", duration_ns=int(seconds * S)),
                metadata=[("authorization", f"Bearer {TOKEN}-{index}")],
            )
            began = time.time_ns()
            async for message in call:
                if message.WhichOneof("kind") == "packet":
                    now = time.time_ns()
                    if now - began > S:
                        latencies.append(now - message.packet.pts_ns)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


def _client(port: int, count: int, seconds: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(_viewers(port, count, seconds)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    clip = make_clip("/tmp/vmsd-bench-clips", width=1920, height=1080, bitrate="4M", seconds=30)
    report: dict[str, object] = {"viewers": {}}
    with (
        tempfile.TemporaryDirectory(prefix="vmsd-bench-relay-") as tmp,
        CameraSimulator([MountSpec("cam", clip)]) as sim,
    ):
        work = Path(tmp)
        # One principal per viewer, as distinct control-room clients would be (16 relays each at most).
        tokens = "".join(
            f'[[auth.tokens]]\nname = "viewer-{i}"\n'
            f'sha256 = "{hashlib.sha256(f"{TOKEN}-{i}".encode()).hexdigest()}"\nrole = "viewer"\n'
            for i in range(max(args.viewers))
        )
        config = write_config(work / "vmsd.toml", work / "root", {"cam": sim.url("cam")}, extra=tokens)
        daemon = DaemonProcess(config, work / "vmsd.log").start()
        try:
            daemon.wait_for_log('"state": "recording"')
            port = next(json.loads(line)["port"] for line in daemon.log().splitlines() if "grpc_listening" in line)
            pid = daemon.proc.pid  # type: ignore[union-attr]
            time.sleep(3)
            c0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.seconds)
            idle_cores = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            report["idle_cores"] = round(idle_cores, 4)
            for count in args.viewers:
                queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
                client = multiprocessing.Process(target=_client, args=(port, count, args.seconds + 4, queue))
                client.start()
                time.sleep(3)  # everyone connected and past the GOP cache
                c0, t0 = cpu_seconds(pid), time.monotonic()
                time.sleep(args.seconds)
                cores = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
                latencies = sorted(queue.get(timeout=120))
                client.join()
                per_viewer = (cores - idle_cores) / count
                report["viewers"][str(count)] = {  # type: ignore[index]
                    "cores": round(cores, 4),
                    "cores_per_viewer": round(per_viewer, 5),
                    "viewers_per_core": round(1 / per_viewer) if per_viewer > 0 else None,
                    "latency_p50_ms": round(latencies[len(latencies) // 2] / 1e6, 2),
                    "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] / 1e6, 2),
                }
        finally:
            daemon.terminate()
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
