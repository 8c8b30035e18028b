#!/usr/bin/env python3
"""CPU of the native RTSP client (``vmsd.ingest.rtsp.client``) receiving N cameras, against N ×
``ffmpeg -c copy -f segment`` recording them, in the same run (issue #16).

    python bench/native_client_cost.py --cameras 16 --seconds 30 [--warmup 10] [--uvloop]

One simulator (``tests/support/simulator.py``) serves N mounts of the bench stream (1080p25 H.264
4 Mbit/s, GOP 2 s). The client side is one process (this file with ``--client``) running N
``RtspClient``s on one asyncio loop, RTP over TCP read on one ``Drain`` tick (``--tick-ms``; 0
reads on arrival instead), events to a callback that counts and discards them: receive,
depacketise, RTCP, keep-alives — everything but writing. ffmpeg is the whole
recording cost, as ``bench/recording_cost.py`` measures it. CPU from ``/proc`` over a window
after a warm-up, as in ``bench/spike_native_ingest.py``, whose figures (the spike client ticked
its sockets every 15 ms; this client reads whenever data arrives) are the comparison in
docs/design/native-ingest.md. Every process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import VENV_PYTHON, Stream, mib, ratio
from bench.recording_cost import record_ffmpeg
from bench.spike_native_ingest import measure_client
from tests.support.simulator import CameraSimulator, MountSpec


def client_main(urls: list[str], use_uvloop: bool, tick_ms: float) -> int:
    """``--client``: receive every URL; print READY, then answer each stdin line with counters."""
    from vmsd.ingest.rtsp.client import ClientEvent, MediaUnit, RtspClient
    from vmsd.ingest.rtsp.drain import Drain

    counts = {"access_units": 0, "keyframes": 0, "clock_samples": 0}

    def on_event(event: ClientEvent) -> None:
        if isinstance(event, MediaUnit):
            counts["access_units"] += 1
            counts["keyframes"] += event.keyframe
        else:
            counts["clock_samples"] += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        drain = Drain(int(tick_ms * 1_000_000)) if tick_ms > 0 else None
        clients = [RtspClient(u, on_event=on_event, drain=drain) for u in urls]
        await asyncio.gather(*(c.start() for c in clients))
        print("READY", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            lost = sum(c.counters.lost_packets for c in clients)
            reads = sum(c.counters.reads for c in clients)
            packets = sum(c.counters.rtp_packets for c in clients)
            print(json.dumps({**counts, "lost_packets": lost, "reads": reads, "rtp_packets": packets}), flush=True)
        await asyncio.gather(*(c.aclose() for c in clients))

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    return 0


def record_native(
    sim: CameraSimulator, names: list[str], seconds: float, warmup: float, use_uvloop: bool, tick_ms: float
) -> dict:
    n = len(names)
    cmd = [str(VENV_PYTHON), str(Path(__file__).resolve()), "--client", "--tick-ms", str(tick_ms)]
    cmd += ["--uvloop"] if use_uvloop else []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    w = measure_client([*cmd, *[sim.url(x) for x in names]], sim, n, seconds, warmup, env)
    t0, t1, c0, c1, s0, s1, k0, k1 = w.t0, w.t1, w.cpu0, w.cpu1, w.sim0, w.sim1, w.counters0, w.counters1
    mem, load0, load1 = w.memory, w.load0, w.load1
    wall = t1 - t0
    d = {k: k1[k] - k0[k] for k in k0}
    cpu = (c1 - c0) / wall
    return {
        "event_loop": "uvloop" if use_uvloop else "asyncio",
        "reads": f"drain every {tick_ms:g} ms" if tick_ms > 0 else "on arrival (BufferedProtocol)",
        "window_s": round(wall, 3),
        "load_average_1min_window_start_end": [round(load0, 2), round(load1, 2)],
        "cpu_cores": round(cpu, 5),
        "cpu_cores_per_camera": round(cpu / n, 6),
        "simulator_cpu_cores": round((s1 - s0) / wall, 4),
        "rss_mib": mib(mem["VmRSS"]),
        "counters_in_window": d,
        "access_units_expected": round(25 * n * wall),
        "reads_per_camera_s": round(d["reads"] / n / wall, 1),
        "us_per_packet": round(1e6 * (c1 - c0) / d["rtp_packets"], 2) if d["rtp_packets"] else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", action="store_true", help="internal: be the client for URLS")
    ap.add_argument("urls", nargs="*")
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--tick-ms", type=float, default=20, help="drain tick; 0: read on arrival")
    ap.add_argument("--no-ffmpeg", action="store_true", help="measure the native client only")
    args = ap.parse_args(argv)
    if args.client:
        return client_main(args.urls, args.uvloop, args.tick_ms)
    stream = Stream()
    names = [f"cam{i + 1}" for i in range(args.cameras)]
    work = Path(tempfile.mkdtemp(prefix="vmsd-bench-native-", dir="/tmp"))
    result: dict[str, Any] = {"cameras": args.cameras, "stream": stream.describe(), "seconds": args.seconds}
    try:
        with CameraSimulator([MountSpec(name, stream.clip()) for name in names]) as sim:
            result["native"] = record_native(sim, names, args.seconds, args.warmup, args.uvloop, args.tick_ms)
            if not args.no_ffmpeg:
                f = record_ffmpeg(sim, names, args.seconds, args.warmup, stream.fps, work)
                result["ffmpeg"] = {k: f[k] for k in ("cpu_cores_per_camera", "simulator_cpu_cores", "window_s")}
                result["ratio_native_over_ffmpeg"] = ratio(
                    result["native"]["cpu_cores_per_camera"], f["cpu_cores_per_camera"]
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
