"""Benchmark scenario 4 — live relay: vmsd's gRPC relay against GStreamer's RTSP server relaying
the same camera to the same number of viewers, in the same run.

    .venv/bin/python bench/relay_cost.py [--viewers 10 50 100] [--seconds 20] [--json OUT]

Set-up: one simulated camera; vmsd records it (the relay is a by-product of recording: the hub
fans out the packets the recorder already has); ``bench/gst_relay.py`` (system python,
gst-rtsp-server, one shared ``rtspsrc ! rtph264depay ! rtph264pay`` pipeline) pulls the same
mount.  A *reference* viewer connects straight to the simulator for the whole run, and one
*primer* viewer stays on the GStreamer relay, so that both servers have their upstream session
running during their idle baseline and only the viewers' cost is in the difference; likewise one
primer stays on vmsd's relay, which keeps its hub warm (a hub nobody watches caches no GOP, so
its first viewer waits for the next keyframe by design: that is the cold case, not measured here).

For each viewer count N and each system, N viewers run in a separate process (grpc.aio
``LiveService.Relay`` calls for vmsd, one principal each; ``bench/rtsp_client.py`` RTSP/TCP
clients for GStreamer):

* CPU per viewer = (server's cores with N viewers − its idle baseline) / N, over ``--seconds``
  after ``--warmup`` (utime+stime from /proc of the server process and its descendants);
* added latency = a viewer's arrival time of a frame − the reference viewer's arrival time of
  the same frame (frames matched by their last bytes, see rtsp_client), p50/p99 over the first
  ``sampled`` viewers (the others read without parsing, to keep the client process light),
  leaving out each viewer's first second (vmsd starts a viewer with its GOP cache,
  which is older by design);
* time to first frame = from the viewer opening its connection to the arrival of the first
  complete keyframe (what a player needs to show a picture), p50/p99 over viewers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import multiprocessing.synchronize
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from bench.common import (
    NS_PER_MS,
    NS_PER_S,
    SYSTEM_PYTHON,
    Stream,
    cpu_seconds,
    grpc_port_from_log,
    percentile,
    ratio,
    start_vmsd,
    stop_vmsd,
    wait_for_log,
    write_vmsd_config,
)
from bench.rtsp_client import KEY_BYTES, Watched, watch
from tests.support.simulator import CameraSimulator, MountSpec, free_port

GST_RELAY = Path(__file__).with_name("gst_relay.py")
TOKEN = "bench-relay"
SKIP_FIRST_NS = NS_PER_S  # each viewer's first second is not used for latency (GOP cache)
RATIO_KEYS = ("cores_per_viewer", "latency_p50_ms", "latency_p99_ms", "first_frame_p50_ms")


# -- viewers (run in child processes) -------------------------------------------------------------


async def _vmsd_viewer(
    port: int, index: int, seconds: float, record_frames: bool, stop: Callable[[], bool] | None = None
) -> Watched:
    from vmsd.v1 import live_pb2, live_pb2_grpc

    out = Watched(connect_ns=time.time_ns())
    # Its own connection, as a separate viewer would have (grpc otherwise carries every channel of
    # this process on one, and vmsd bounds the streams of one connection: [grpc] max_streams_per_connection).
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        call = stub.Relay(
            live_pb2.RelayRequest(camera_id="cam", duration_ns=int(seconds * NS_PER_S)),
            metadata=[("authorization", f"Bearer {TOKEN}-{index}")],
        )
        async for message in call:
            if stop is not None and stop():
                call.cancel()
                break
            if message.WhichOneof("kind") != "packet" or message.packet.kind != live_pb2.MediaPacket.KIND_VIDEO:
                continue
            now_ns = time.time_ns()
            if out.first_keyframe_ns is None and message.packet.keyframe:
                out.first_keyframe_ns = now_ns
            if record_frames:
                out.frames.append((message.packet.data[-KEY_BYTES:], now_ns))
    return out


async def _viewers(system: str, target: str, count: int, seconds: float, sampled: int) -> list[dict[str, Any]]:
    """``count`` viewers; the first ``sampled`` note every frame's arrival (for latency), the others
    only their first keyframe (so that the client process does not become the bottleneck)."""
    if system == "vmsd":
        coros = [_vmsd_viewer(int(target), i, seconds, i < sampled) for i in range(count)]
    elif system == "websocket":
        from bench.ws_client import watch_websocket

        coros = [watch_websocket(target, f"{TOKEN}-{i}", seconds, record_frames=i < sampled) for i in range(count)]
    else:
        coros = [watch(target, seconds, record_frames=i < sampled) for i in range(count)]
    results = await asyncio.gather(*coros, return_exceptions=True)
    return [{"error": repr(r)} if isinstance(r, BaseException) else _as_dict(r) for r in results]


def _as_dict(watched: Watched) -> dict[str, Any]:
    return {"connect_ns": watched.connect_ns, "first_keyframe_ns": watched.first_keyframe_ns, "frames": watched.frames}


def _viewers_process(
    system: str,
    target: str,
    count: int,
    seconds: float,
    sampled: int,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    queue.put(asyncio.run(_viewers(system, target, count, seconds, sampled)))


def _background_process(
    reference_url: str,
    gst_url: str,
    vmsd_port: int,
    vmsd_index: int,
    stop: multiprocessing.synchronize.Event,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """The reference viewer (on the camera) and one primer viewer on each relay, until ``stop``."""

    async def all_three() -> Watched:
        reference, _gst, _vmsd = await asyncio.gather(
            watch(reference_url, 1e9, stop=stop.is_set),
            watch(gst_url, 1e9, stop=stop.is_set, record_frames=False),
            _vmsd_viewer(vmsd_port, vmsd_index, 0, False, stop=stop.is_set),  # 0: no time limit
        )
        return reference

    queue.put(asyncio.run(all_three()).frames)


# -- figures --------------------------------------------------------------------------------------


def added_latency_ms(reference: dict[bytes, list[int]], viewers: list[dict[str, Any]]) -> tuple[list[float], int, int]:
    """Per-frame latency added over the reference viewer; also (frames considered, frames matched)."""
    out: list[float] = []
    considered = 0
    for viewer in viewers:
        for key, arrival_ns in viewer.get("frames", []):
            if arrival_ns - viewer["connect_ns"] < SKIP_FIRST_NS:
                continue
            considered += 1
            times = reference.get(key)
            if not times:
                continue
            # The clip loops, so a key recurs every loop: the nearest reference arrival is this frame's.
            i = bisect_left(times, arrival_ns)
            nearest = min(times[max(0, i - 1) : i + 1], key=lambda t: abs(arrival_ns - t))
            out.append((arrival_ns - nearest) / NS_PER_MS)
    return out, considered, len(out)


def phase_figures(
    viewers: list[dict[str, Any]], reference: dict[bytes, list[int]], cores: float, idle: float, count: int
) -> dict[str, Any]:
    ok = [v for v in viewers if "error" not in v]
    sampled = [v for v in ok if v["frames"]]
    ttff = [(v["first_keyframe_ns"] - v["connect_ns"]) / NS_PER_MS for v in ok if v["first_keyframe_ns"]]
    latency, considered, matched = added_latency_ms(reference, ok)
    per_viewer = (cores - idle) / count
    return {
        "cores": round(cores, 4),
        "cores_per_viewer": round(per_viewer, 5),
        "viewer_errors": len(viewers) - len(ok),
        "viewer_errors_sample": [v["error"] for v in viewers if "error" in v][:3],
        "viewers_without_keyframe": len(ok) - len(ttff),
        "frames_per_sampled_viewer": round(sum(len(v["frames"]) for v in sampled) / max(1, len(sampled)), 1),
        "frames_matched": f"{matched}/{considered}",
        "latency_p50_ms": round(percentile(latency, 0.5), 2) if latency else None,
        "latency_p99_ms": round(percentile(latency, 0.99), 2) if latency else None,
        "first_frame_p50_ms": round(percentile(ttff, 0.5), 1) if ttff else None,
        "first_frame_p99_ms": round(percentile(ttff, 0.99), 1) if ttff else None,
    }


def _window_cores(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


# Spawned, not forked: the parent may hold grpc and asyncio state (the search scenario runs a
# daemon in-process) that a forked child must not inherit.
_SPAWN = multiprocessing.get_context("spawn")


def _run_viewers(
    system: str,
    target: str,
    count: int,
    pid: int,
    seconds: float,
    warmup: float,
    sampled: int,
    probe: Callable[[], Any] | None = None,
) -> tuple[list, float, tuple[Any, Any]]:
    """The viewers' results, the server's cores over the window, and ``probe()`` called right
    before and right after the window (None, None without one)."""
    queue = _SPAWN.Queue()
    client = _SPAWN.Process(target=_viewers_process, args=(system, target, count, warmup + seconds + 1, sampled, queue))
    client.start()
    try:
        time.sleep(warmup)  # everyone connected and past the GOP cache
        before = probe() if probe is not None else None
        cores = _window_cores(pid, seconds)
        after = probe() if probe is not None else None
        viewers = queue.get(timeout=120 + count)
    finally:
        client.join(30)
        if client.is_alive():
            client.kill()
    return viewers, cores, (before, after)


# -- the set-up, shared with the browser-live scenario --------------------------------------------


@dataclasses.dataclass(frozen=True)
class Relays:
    """One simulated camera, vmsd recording it, and GStreamer's relay of it, all running."""

    camera_url: str
    daemon: subprocess.Popen[bytes]
    grpc_port: int
    gst: subprocess.Popen[str]
    gst_url: str
    web_port: int | None = None
    metrics_port: int | None = None


@contextlib.contextmanager
def relays(stream: Stream, principals: int, work: Path, *, web: bool = False, source: str = "") -> Iterator[Relays]:
    """Start the camera, vmsd (with ``principals`` viewer tokens, ``{TOKEN}-{i}``; with ``web``,
    also [web] and [metrics] on free ports; ``source``: the camera's RTSP source, the daemon's
    default when empty) and GStreamer's relay; stop them all afterwards."""
    with CameraSimulator([MountSpec("cam", stream.clip())]) as sim:
        # One principal per viewer, as distinct control-room clients would be (16 relays each at most).
        extra = "".join(
            f'[[auth.tokens]]\nname = "viewer-{i}"\n'
            f'sha256 = "{hashlib.sha256(f"{TOKEN}-{i}".encode()).hexdigest()}"\nrole = "viewer"\n'
            for i in range(principals)
        )
        web_port = metrics_port = None
        if web:
            web_port, metrics_port = free_port(), free_port()
            extra += f'[web]\nlisten = "127.0.0.1:{web_port}"\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
        config = write_vmsd_config(
            work / "vmsd.toml", work / "root", {"cam": sim.url("cam")}, extra=extra, source=source
        )
        log = work / "vmsd.log"
        daemon = start_vmsd(config, log)
        gst = subprocess.Popen(
            [SYSTEM_PYTHON, str(GST_RELAY), "--upstream", sim.url("cam")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert gst.stdout is not None
            gst_url = f"rtsp://127.0.0.1:{int(gst.stdout.readline().split()[1])}/relay"
            wait_for_log(daemon, log, '"state": "recording"', 60)
            yield Relays(sim.url("cam"), daemon, grpc_port_from_log(log), gst, gst_url, web_port, metrics_port)
        finally:
            gst.terminate()
            try:
                gst.wait(10)
            except subprocess.TimeoutExpired:
                gst.kill()
                gst.wait()
            stop_vmsd(daemon)


@contextlib.contextmanager
def background(target: Callable[..., None], args: tuple[Any, ...], settle_s: float) -> Iterator[Callable[[], Any]]:
    """Run ``target(*args, stop, queue)`` in a process (the reference and primer viewers) for the
    block; yields a function that stops it and returns what it put on the queue."""
    stop = _SPAWN.Event()
    queue = _SPAWN.Queue()
    process = _SPAWN.Process(target=target, args=(*args, stop, queue))
    process.start()
    try:
        time.sleep(settle_s)
        if not process.is_alive():
            raise RuntimeError("the reference/primer viewers exited early (see the traceback above)")

        def finish() -> Any:
            stop.set()
            return queue.get(timeout=60)

        yield finish
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()


def reference_arrivals(frames: list[tuple[bytes, int]]) -> dict[bytes, list[int]]:
    """The reference viewer's arrival times per frame key (a looping clip repeats its keys)."""
    reference: dict[bytes, list[int]] = {}
    for key, arrival_ns in frames:
        reference.setdefault(key, []).append(arrival_ns)
    return reference


# -- the scenario ---------------------------------------------------------------------------------


def run(
    viewer_counts: list[int],
    seconds: float,
    warmup: float,
    work: Path,
    stream: Stream | None = None,
    sampled: int = 10,
    source: str = "",
) -> dict:
    """Scenario 4; latency is sampled on the first ``sampled`` viewers of each count; ``source``:
    the camera's RTSP source in vmsd (what a relayed frame passes through before the relay)."""
    stream = stream or Stream()
    report: dict[str, Any] = {
        "scenario": "relay",
        "stream": stream.describe(),
        "seconds": seconds,
        "warmup_s": warmup,
        "latency_sampled_viewers": sampled,
        "source": source or "default",
        "viewers": {},
    }
    primer = max(viewer_counts)
    with (
        relays(stream, primer + 1, work, source=source) as r,
        background(_background_process, (r.camera_url, r.gst_url, r.grpc_port, primer), max(2.0, warmup)) as finish,
    ):
        idle = {"vmsd": _window_cores(r.daemon.pid, seconds), "gstreamer": _window_cores(r.gst.pid, seconds)}
        report["idle_cores"] = {k: round(v, 4) for k, v in idle.items()}
        phases: dict[int, dict[str, tuple[list, float, tuple[Any, Any]]]] = {}
        for count in viewer_counts:
            print(f"relay: {count} viewers ...", file=sys.stderr)
            phases[count] = {
                "vmsd": _run_viewers("vmsd", str(r.grpc_port), count, r.daemon.pid, seconds, warmup, sampled),
                "gstreamer": _run_viewers("gst", r.gst_url, count, r.gst.pid, seconds, warmup, sampled),
            }
        reference = reference_arrivals(finish())
    for count, by_system in phases.items():
        figures = {
            system: phase_figures(viewers, reference, cores, idle[system], count)
            for system, (viewers, cores, _) in by_system.items()
        }
        v, g = figures["vmsd"], figures["gstreamer"]
        figures["ratios_vmsd_over_gstreamer"] = {k: ratio(v[k], g[k], 2) for k in RATIO_KEYS}
        report["viewers"][str(count)] = figures
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--sampled", type=int, default=10, help="viewers whose every frame is timed")
    parser.add_argument("--source", choices=["native", "ffmpeg"], help="vmsd's RTSP source (default: the daemon's)")
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-relay-") as tmp:
        report = run(args.viewers, args.seconds, args.warmup, Path(tmp), sampled=args.sampled, source=args.source or "")
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
