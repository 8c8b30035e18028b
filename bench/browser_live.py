"""Benchmark scenario — browser live: vmsd's live WebSocket (fMP4 for Media Source Extensions, what
the console's live grid opens) against vmsd's gRPC relay and GStreamer's RTSP relay, same camera,
same run; and vmsd's delay from a frame's arrival at the hub to its send.

    .venv/bin/python bench/browser_live.py [--viewers 1 10 100] [--seconds 20] [--json OUT]

Set-up as the relay scenario (``relay_cost.relays``): one simulated camera recorded by vmsd (here
with [web] and [metrics] on), GStreamer's relay (``gst_relay.py``) of the same mount, and in the
background a reference viewer on the camera plus one primer viewer on each of the three relays,
so that all three have their upstream running, and vmsd's hub is warm, in the idle baseline.

For each viewer count N and each system in turn, N viewers in a separate process (WebSocket
viewers: ``ws_client.py``, one principal each, as the grid's tiles of N operators would be):

* CPU per viewer = (server's cores with N viewers − its idle baseline) / N over ``--seconds``
  after ``--warmup``; the WebSocket and gRPC viewers are both measured on the vmsd process;
* send delay (vmsd, both transports) = the daemon's ``vmsd_live_send_delay_seconds{transport}``
  histogram — a video frame's arrival at the hub (``RelayPacket.received_mono_ns``) to the
  transport having handed it to the viewer's socket — scraped before and after the window:
  p50/p99 interpolated within buckets, and the share within 50 ms (a bucket edge, so exact);
* added latency (the client's view, as in the relay scenario) over the reference viewer on the
  first ``sampled`` viewers, and time to first frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families

from bench.common import Stream, ratio
from bench.relay_cost import (
    TOKEN,
    _run_viewers,
    _vmsd_viewer,
    _window_cores,
    background,
    phase_figures,
    reference_arrivals,
    relays,
)
from bench.rtsp_client import watch
from bench.ws_client import watch_websocket

# system -> (relay_cost._viewers' client kind, the server process measured)
SYSTEMS = {"websocket": ("websocket", "vmsd"), "grpc": ("vmsd", "vmsd"), "gstreamer": ("gst", "gstreamer")}
GOAL_DELAY_S = 0.05
Buckets = dict[str, dict[float, float]]  # transport -> upper bound (s) -> cumulative count


def _background_process(
    reference_url: str, gst_url: str, grpc_port: int, ws_url: str, index: int, stop: Any, queue: Any
) -> None:
    """The reference viewer (on the camera) and one primer viewer on each relay, until ``stop``."""

    async def all_four() -> list[tuple[bytes, int]]:
        reference, *_ = await asyncio.gather(
            watch(reference_url, 1e9, stop=stop.is_set),
            watch(gst_url, 1e9, stop=stop.is_set, record_frames=False),
            _vmsd_viewer(grpc_port, index, 0, False, stop=stop.is_set),  # 0: no time limit
            watch_websocket(ws_url, f"{TOKEN}-{index}", 1e9, record_frames=False, stop=stop.is_set),
        )
        return reference.frames

    queue.put(asyncio.run(all_four()))


def send_delay_buckets(metrics_port: int) -> Buckets:
    """The daemon's send-delay histogram, per transport."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name == "vmsd_live_send_delay_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    out.setdefault(sample.labels["transport"], {})[float(sample.labels["le"])] = sample.value
    return out


def delay_figures(before: Buckets, after: Buckets, transport: str) -> dict[str, Any]:
    """Send-delay figures of the frames sent between two scrapes."""
    now, then = after.get(transport, {}), before.get(transport, {})
    cumulative = sorted((le, now[le] - then.get(le, 0.0)) for le in now)
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0:
        return {"frames": 0, "p50_ms": None, "p99_ms": None, "within_50ms": None}

    def quantile_ms(q: float) -> float | None:
        lower, below = 0.0, 0.0
        for le, count in cumulative:
            if count >= q * total:
                if le == float("inf"):
                    return None  # beyond the last bucket: not measurable here
                share = (q * total - below) / (count - below) if count > below else 1.0
                return round(1000 * (lower + (le - lower) * share), 2)
            lower, below = le, count
        return None

    within = next(count for le, count in cumulative if le >= GOAL_DELAY_S)
    return {
        "frames": int(total),
        "p50_ms": quantile_ms(0.5),
        "p99_ms": quantile_ms(0.99),
        "within_50ms": round(within / total, 5),
    }


def run(
    viewer_counts: list[int],
    seconds: float,
    warmup: float,
    work: Path,
    stream: Stream | None = None,
    sampled: int = 10,
) -> dict[str, Any]:
    stream = stream or Stream()
    report: dict[str, Any] = {
        "scenario": "browser_live",
        "stream": stream.describe(),
        "seconds": seconds,
        "warmup_s": warmup,
        "latency_sampled_viewers": sampled,
        "viewers": {},
    }
    primer = max(viewer_counts)
    with relays(stream, primer + 1, work, web=True) as r:
        assert r.web_port is not None and r.metrics_port is not None
        metrics_port = r.metrics_port
        ws_url = f"ws://127.0.0.1:{r.web_port}/api/v1/cameras/cam/live"
        targets = {"websocket": ws_url, "grpc": str(r.grpc_port), "gstreamer": r.gst_url}
        pids = {"vmsd": r.daemon.pid, "gstreamer": r.gst.pid}
        args = (r.camera_url, r.gst_url, r.grpc_port, ws_url, primer)
        with background(_background_process, args, max(2.0, warmup)) as finish:
            idle = {server: _window_cores(pid, seconds) for server, pid in pids.items()}
            report["idle_cores"] = {k: round(v, 4) for k, v in idle.items()}
            phases: dict[int, dict[str, tuple[list, float, tuple[Any, Any]]]] = {}
            for count in viewer_counts:
                print(f"browser_live: {count} viewers ...", file=sys.stderr)
                phases[count] = {
                    system: _run_viewers(
                        client,
                        targets[system],
                        count,
                        pids[server],
                        seconds,
                        warmup,
                        sampled,
                        probe=None if server == "gstreamer" else lambda: send_delay_buckets(metrics_port),
                    )
                    for system, (client, server) in SYSTEMS.items()
                }
            reference = reference_arrivals(finish())
    for count, by_system in phases.items():
        figures: dict[str, Any] = {}
        for system, (viewers, cores, (before, after)) in by_system.items():
            figures[system] = phase_figures(viewers, reference, cores, idle[SYSTEMS[system][1]], count)
            if before is not None:
                figures[system]["send_delay"] = delay_figures(before, after, system)
        gst = figures["gstreamer"]["cores_per_viewer"]
        figures["cpu_ratios_over_gstreamer"] = {
            system: ratio(figures[system]["cores_per_viewer"], gst, 2) for system in ("websocket", "grpc")
        }
        report["viewers"][str(count)] = figures
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--sampled", type=int, default=10, help="viewers whose every frame is timed")
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-browser-live-") as tmp:
        report = run(args.viewers, args.seconds, args.warmup, Path(tmp), sampled=args.sampled)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
