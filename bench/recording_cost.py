#!/usr/bin/env python3
"""Benchmark scenario 1 — recording cost: vmsd against one ``ffmpeg -c copy`` per camera.

    python bench/recording_cost.py --cameras 16 --seconds 60 [--warmup 10] [--json OUT.json]

What is compared
    N simulated cameras (1080p25, H.264, 4 Mbit/s, GOP 2 s, RTSP over TCP from
    ``tests/support/simulator.py``; all mounts serve one cached clip) recorded by

    * vmsd: one ``python -m vmsd.cli.vmsd run --config FILE`` with N cameras, 60 s segments;
    * ffmpeg: N × ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60
      OUT%03d.mp4`` — what Frigate runs per camera (plus ``-hide_banner -nostats -loglevel
      warning``, which only quiet its log).

    Both run against the same simulator process, one after the other, on the same machine, in
    the same invocation, so the ratios are not skewed by a different machine or load.

Method (each system)
    1. Start it; wait until the simulator reports a client on every mount (all cameras
       connected); then wait ``--warmup`` seconds (connection set-up, first segment, caches).
    2. Sample CPU: utime+stime+cutime+cstime from ``/proc/<pid>/stat`` of the process and every
       live descendant (vmsd is one process with threads; each ffmpeg one process), and the same
       for the simulator.
    3. Wait ``--seconds``; sample CPU again, and memory: VmRSS and VmHWM (peak) from
       ``/proc/<pid>/status`` and Pss from ``/proc/<pid>/smaps_rollup`` (RSS counts the shared
       library pages of N ffmpeg processes N times; PSS splits them between the sharers).
    4. Stop it cleanly (SIGTERM to vmsd; ``q`` on stdin to ffmpeg, then SIGTERM, then SIGKILL)
       and check what was recorded: vmsd from its catalogue (segments, frames, gaps); ffmpeg by
       counting the video packets of its files with ffprobe.

    CPU cost = ΔCPU-seconds / wall seconds of the window = average cores used (0.10 = 10 % of one
    core); per camera = that / N.  Memory "per camera" = total / N.  "vmsd base" is the VmRSS of
    a vmsd with zero cameras, measured first, so the per-camera increment can be read off as
    (RSS − base) / N, from the mean of RSS sampled through the window (and from its largest).
    Expected frames = 25 × N × (stop − all connected): an upper bound for
    vmsd, which starts each recording at the first keyframe (up to one GOP later).  vmsd's
    catalogue also gives the frames inside the measurement window (segment frames pro rata to
    overlap), to compare with 25 × N × window.

Everything lives under a fresh ``/tmp/vmsd-bench-*`` directory (removed unless ``--keep``);
clips are cached in ``/tmp/vmsd-bench-clips``.  Every process started here is stopped in a
``finally``.  Standard library only (plus ``tests.support``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    CLK_TCK,
    NS_PER_S,
    Stream,
    cpu_seconds,
    ffmpeg_segment_command,
    ffprobe_video,
    memory_kib,
    mib,
    ratio,
    start_ffmpeg,
    start_vmsd,
    stop_ffmpegs,
    stop_vmsd,
    wait_all_connected,
    wait_for_log,
    write_vmsd_config,
)
from tests.support.simulator import CameraSimulator, MountSpec

SEGMENT_S = 60


def measure_window(
    pids: list[int], sim_pid: int, warmup: float, seconds: float, procs: list[subprocess.Popen[bytes]]
) -> dict:
    """Warm up, then CPU over ``seconds`` for ``pids`` and the simulator, memory at the end and
    VmRSS sampled every RSS_SAMPLE_S through the window (its mean and largest: the simulator's
    cameras are GOP-aligned, so every recorder's GOP buffers fill and empty together and one
    sample can land anywhere in a swing of ~0.7 MiB per camera)."""
    time.sleep(warmup)
    t0, cpu0, sim0 = time.monotonic(), [cpu_seconds(p) for p in pids], cpu_seconds(sim_pid)
    t0_wall = time.time_ns()
    samples: list[list[int]] = [[] for _ in pids]
    while time.monotonic() < t0 + seconds:
        time.sleep(min(RSS_SAMPLE_S, max(0.0, t0 + seconds - time.monotonic())))
        for sampled, pid in zip(samples, pids, strict=True):
            with contextlib.suppress(OSError, KeyError):
                sampled.append(memory_kib(pid, pss=False)["VmRSS"])
    t1, cpu1, sim1 = time.monotonic(), [cpu_seconds(p) for p in pids], cpu_seconds(sim_pid)
    t1_wall = time.time_ns()
    if any(p.poll() is not None for p in procs):
        raise RuntimeError("a recorder process exited during the measurement window")
    wall = t1 - t0
    mem = [memory_kib(p) for p in pids]
    return {
        "window_s": round(wall, 3),
        "window_wall_ns": [t0_wall, t1_wall],
        "cpu_cores": [(b - a) / wall for a, b in zip(cpu0, cpu1, strict=True)],
        "simulator_cpu_cores": (sim1 - sim0) / wall,
        "memory_kib": mem,
        "rss_mean_kib": [sum(x) / len(x) if x else m["VmRSS"] for x, m in zip(samples, mem, strict=True)],
        "rss_max_kib": [max(x, default=m["VmRSS"]) for x, m in zip(samples, mem, strict=True)],
    }


STOP_GAP_SLACK_NS = 2 * NS_PER_S
RSS_SAMPLE_S = 0.5


def _stop_gap(start_ns: int, reason: str, window_end_ns: int) -> bool:
    return reason == "restart" and start_ns > window_end_ns - STOP_GAP_SLACK_NS


def vmsd_catalogue(root: Path, window_ns: list[int], fps: int) -> dict:
    """What vmsd recorded, from its catalogue.

    Lost frames: segment times are the camera's frame times mapped onto the recorder's clock, so
    a segment of duration D holds D × fps frames unless packets were lost on the way.  Gaps: a
    clean stop opens one 'restart' gap per camera (closed when recording resumes); any gap that
    began before the end of the window is a real interruption.
    """
    db = sqlite3.connect(f"file:{root / 'catalogue.db'}?mode=ro", uri=True)
    try:
        segs = db.execute("SELECT camera_id, state, start_ns, end_ns, bytes, frames FROM segments").fetchall()
        gaps = db.execute("SELECT start_ns, reason FROM gaps").fetchall()
    finally:
        db.close()
    w0, w1 = window_ns
    in_window = 0.0
    deficits = []
    for _cam, _state, start, end, _b, frames in segs:
        if end and frames and end > start:
            overlap = max(0, min(end, w1) - max(start, w0))
            in_window += frames * overlap / (end - start)
            deficits.append(round((end - start) * fps / NS_PER_S) - frames)
    lost = sum(d for d in deficits if d > 0)
    return {
        "segments": len(segs),
        "segments_not_complete": sum(1 for s in segs if s[1] != "complete"),
        "cameras_with_segments": len({s[0] for s in segs}),
        "frames": sum(s[5] or 0 for s in segs),
        "frames_lost": lost,
        # Per segment: expected − recorded frames; > 0 is loss. A segment whose duration the
        # drift correction stretched by more than half a frame would show ±1 here without loss.
        "segments_short_of_frames": sum(1 for d in deficits if d > 0),
        "segment_frame_deficit_min_max": [min(deficits), max(deficits)] if deficits else None,
        "seconds_recorded": round(sum((s[3] or s[2]) - s[2] for s in segs) / NS_PER_S, 1),
        "bytes": sum(s[4] or 0 for s in segs),
        "frames_in_window": round(in_window),
        # The stop's own 'restart' gap begins where the camera's last frame ended, which on a
        # loaded machine can be a few frames before the window's end: it is not an interruption.
        "gaps_before_stop": sum(1 for start, r in gaps if start <= w1 and not _stop_gap(start, r, w1)),
        "gaps_opened_at_stop": sum(1 for start, r in gaps if start > w1 or _stop_gap(start, r, w1)),
        "gaps_by_reason": {r: sum(1 for _s, x in gaps if x == r) for r in sorted({x for _s, x in gaps})},
    }


def ffmpeg_outputs(dirs: list[Path]) -> dict:
    """What the ffmpeg peers recorded: video packets and durations from ffprobe."""
    files = sorted(f for d in dirs for f in d.glob("OUT*.mp4"))
    frames, duration_ns, unreadable = 0, 0, 0
    for f in files:
        probe = ffprobe_video(f)
        if probe is None:
            unreadable += 1
        else:
            frames += probe[0]
            duration_ns += probe[1]
    return {
        "segments": len(files),
        "segments_unreadable": unreadable,
        "cameras_with_segments": sum(1 for d in dirs if any(d.glob("OUT*.mp4"))),
        "frames": frames,
        "seconds_recorded": round(duration_ns / NS_PER_S, 1),
        "bytes": sum(f.stat().st_size for f in files),
    }


def vmsd_base_rss_kib(sim: CameraSimulator, work: Path) -> int:
    """VmRSS of a vmsd with zero cameras: the fixed cost of the process."""
    cfg, root, log = work / "vmsd-base.toml", work / "vmsd-base-root", work / "vmsd-base.log"
    write_vmsd_config(cfg, root, {})
    proc = start_vmsd(cfg, log)
    try:
        wait_for_log(proc, log, "daemon_started", 60)
        time.sleep(2)
        return memory_kib(proc.pid)["VmRSS"]
    finally:
        stop_vmsd(proc)


def record_vmsd(
    sim: CameraSimulator,
    names: list[str],
    seconds: float,
    warmup: float,
    fps: int,
    work: Path,
    tag: str = "vmsd",
    source: str = "",
    per_mount: int = 1,
) -> dict:
    """One vmsd recording a camera per name in ``names`` (every camera on ``source``, the default
    when empty): CPU/memory over the window, and what it recorded. ``per_mount`` cameras share
    each mount (``sim_mounts``): separate RTSP sessions of one simulator pipeline."""
    n = len(names)
    cfg, root, log = work / f"{tag}.toml", work / f"{tag}-root", work / f"{tag}.log"
    urls = {name: sim.url(mount) for name, mount in zip(names, sim_mounts(names, per_mount), strict=True)}
    write_vmsd_config(cfg, root, urls, segment_s=SEGMENT_S, source=source)
    proc = start_vmsd(cfg, log)
    try:
        wait_all_connected(sim, [proc], timeout=60 + n, clients=per_mount)
        connected = time.monotonic()
        m = measure_window([proc.pid], sim.pid or 0, warmup, seconds, [proc])
        stopped = time.monotonic()
    finally:
        stop_s = stop_vmsd(proc, timeout=30 + n)
    mem = m["memory_kib"][0]
    rec = vmsd_catalogue(root, m["window_wall_ns"], fps)
    cpu = m["cpu_cores"][0]
    return {
        "cpu_cores": round(cpu, 4),
        "cpu_cores_per_camera": round(cpu / n, 5),
        "rss_mib": mib(mem["VmRSS"]),
        "rss_mib_per_camera": mib(mem["VmRSS"] / n),
        "rss_window_mean_mib": mib(m["rss_mean_kib"][0]),
        "rss_window_max_mib": mib(m["rss_max_kib"][0]),
        "peak_rss_mib": mib(mem["VmHWM"]),
        "pss_mib": mib(mem.get("Pss", 0)),
        "simulator_cpu_cores": round(m["simulator_cpu_cores"], 4),
        "window_s": m["window_s"],
        "sigterm_to_exit_s": round(stop_s, 2),
        "exit_code": proc.returncode,
        "recorded": {
            **rec,
            # An upper bound: vmsd starts each recording at the first keyframe (up to a GOP later).
            "frames_expected": round(fps * n * (stopped - connected)),
            "frames_expected_in_window": round(fps * n * m["window_s"]),
        },
    }


def sim_mounts(names: list[str], per_mount: int) -> list[str]:
    """The simulator mount each camera of ``names`` records: its own, or with ``per_mount`` > 1
    the first name of its group of ``per_mount`` (the simulator then has only those mounts)."""
    return [names[i - i % per_mount] for i in range(len(names))]


def record_ffmpeg(
    sim: CameraSimulator,
    names: list[str],
    seconds: float,
    warmup: float,
    fps: int,
    work: Path,
    tag: str = "ffmpeg",
    per_mount: int = 1,
) -> dict:
    """N ``ffmpeg -c copy -f segment`` processes, one per camera (``per_mount`` cameras per
    simulator mount, as ``record_vmsd``): CPU/memory and what they recorded."""
    n = len(names)
    dirs = [work / tag / name for name in names]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # One ffmpeg per mount first: GStreamer's RTSP server answers 503 to a DESCRIBE that meets
        # a shared mount still preparing its media, and ffmpeg exits on it (no retry; vmsd retries).
        # So the mount's other sessions join once it streams.
        pairs = list(zip(sim_mounts(names, per_mount), dirs, strict=True))
        first: dict[str, Path] = {}
        for mount, d in pairs:
            first.setdefault(mount, d)
        for mount, d in first.items():
            procs.append(start_ffmpeg(sim.url(mount), d, SEGMENT_S))
        if per_mount > 1:
            wait_all_connected(sim, procs, timeout=60 + n, clients=1)
        for mount, d in pairs:
            if first[mount] != d:
                procs.append(start_ffmpeg(sim.url(mount), d, SEGMENT_S))
        wait_all_connected(sim, procs, timeout=60 + n, clients=per_mount)
        connected = time.monotonic()
        m = measure_window([p.pid for p in procs], sim.pid or 0, warmup, seconds, procs)
        stopped = time.monotonic()
    finally:
        forced = stop_ffmpegs(procs)
    mems = m["memory_kib"]
    rss = [x["VmRSS"] for x in mems]
    total_cpu = sum(m["cpu_cores"])
    return {
        "command": " ".join(ffmpeg_segment_command("URL", Path("."), SEGMENT_S)),
        "cpu_cores": round(total_cpu, 4),
        "cpu_cores_per_camera": round(total_cpu / n, 5),
        "rss_mib": mib(sum(rss)),
        "rss_mib_per_camera": mib(sum(rss) / n),
        "rss_mib_per_process_min_max": [mib(min(rss)), mib(max(rss))],
        "peak_rss_mib_per_process_max": mib(max(x["VmHWM"] for x in mems)),
        "pss_mib": mib(sum(x.get("Pss", 0) for x in mems)),
        "pss_mib_per_camera": mib(sum(x.get("Pss", 0) for x in mems) / n),
        "simulator_cpu_cores": round(m["simulator_cpu_cores"], 4),
        "window_s": m["window_s"],
        "needed_signal_after_q": forced,
        "exit_codes": sorted({p.returncode for p in procs}),
        "recorded": {**ffmpeg_outputs(dirs), "frames_expected": round(fps * n * (stopped - connected))},
    }


def run(cameras: int, seconds: float, warmup: float, work: Path, stream: Stream | None = None) -> dict:
    """Scenario 1 for one N: vmsd and N × ffmpeg against one simulator, one after the other."""
    stream = stream or Stream()
    clip = stream.clip()
    work.mkdir(parents=True, exist_ok=True)
    names = [f"cam{i + 1}" for i in range(cameras)]
    result: dict = {
        "scenario": "recording_cost",
        "cameras": cameras,
        "seconds": seconds,
        "warmup_s": warmup,
        "stream": stream.describe(),
        "machine": {"cpus": os.cpu_count(), "clk_tck": CLK_TCK},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with CameraSimulator([MountSpec(name, clip) for name in names]) as sim:
        base_kib = vmsd_base_rss_kib(sim, work)
        print(f"recording_cost: vmsd, {cameras} cameras ...", file=sys.stderr)
        v = record_vmsd(sim, names, seconds, warmup, stream.fps, work, source="ffmpeg")
        print(f"recording_cost: vmsd with the native RTSP client, {cameras} cameras ...", file=sys.stderr)
        nat = record_vmsd(sim, names, seconds, warmup, stream.fps, work, tag="vmsd-native", source="native")
        # Per camera above the idle daemon: the window's mean (what the cameras cost), and its
        # largest sample (every camera's GOP buffer full at once).
        above = lambda mib_total: round((mib_total - mib(base_kib)) / cameras, 2)  # noqa: E731
        for side in (v, nat):
            side["rss_base_mib"] = mib(base_kib)
            side["rss_above_base_mib_per_camera"] = above(side["rss_window_mean_mib"])
            side["rss_above_base_max_mib_per_camera"] = above(side["rss_window_max_mib"])
        print(f"recording_cost: ffmpeg, {cameras} cameras ...", file=sys.stderr)
        f = record_ffmpeg(sim, names, seconds, warmup, stream.fps, work)
    # CPU-seconds per recorded camera-second: the window's CPU over the footage actually kept.
    # vmsd's catalogue gives the frames inside the window exactly; ffmpeg has no catalogue, so its
    # share of footage kept is taken over its whole run (frames / frames expected).
    for side in (v, nat):
        kept_s = side["recorded"]["frames_in_window"] / stream.fps
        side["cpu_s_per_recorded_s"] = round(side["cpu_cores"] * side["window_s"] / kept_s, 5) if kept_s else None
    f_share = f["recorded"]["frames"] / f["recorded"]["frames_expected"] if f["recorded"]["frames_expected"] else 0
    f["cpu_s_per_recorded_s"] = round(f["cpu_cores_per_camera"] / min(1.0, f_share), 5) if f_share else None
    # "vmsd" is the FFmpeg source (the default, and what earlier reports measured); "vmsd_native"
    # the same daemon with every camera on source = "native", in the same run.
    result["vmsd"], result["vmsd_native"], result["ffmpeg"] = v, nat, f
    result["ratios_native_over_ffmpeg"] = {
        "cpu": ratio(nat["cpu_cores"], f["cpu_cores"]),
        "cpu_per_recorded_s": ratio(nat["cpu_s_per_recorded_s"], f["cpu_s_per_recorded_s"]),
        "rss": ratio(nat["rss_mib"], f["rss_mib"]),
    }
    result["ratios_vmsd_over_ffmpeg"] = {
        "cpu": ratio(v["cpu_cores"], f["cpu_cores"]),
        "cpu_per_recorded_s": ratio(v["cpu_s_per_recorded_s"], f["cpu_s_per_recorded_s"]),
        "rss": ratio(v["rss_mib"], f["rss_mib"]),
        "pss": ratio(v["pss_mib"], f["pss_mib"]),
    }
    return result


def markdown(r: dict) -> str:
    v, f, q = r["vmsd"], r["ffmpeg"], r["ratios_vmsd_over_ffmpeg"]
    n = r["cameras"]
    pct = lambda c: f"{100 * c:.2f} %"  # noqa: E731
    rows = [
        ("CPU, average cores (total)", f"{v['cpu_cores']:.3f}", f"{f['cpu_cores']:.3f}", f"{q['cpu']}"),
        ("CPU per camera (% of a core)", pct(v["cpu_cores_per_camera"]), pct(f["cpu_cores_per_camera"]), f"{q['cpu']}"),
        ("RSS total (MiB)", f"{v['rss_mib']}", f"{f['rss_mib']}", f"{q['rss']}"),
        (
            "RSS per camera (MiB)",
            f"{v['rss_mib_per_camera']} ({v['rss_above_base_mib_per_camera']} above base {v['rss_base_mib']}, "
            f"largest {v['rss_above_base_max_mib_per_camera']})",
            f"{f['rss_mib_per_camera']}",
            f"{q['rss']}",
        ),
        ("PSS total (MiB)", f"{v['pss_mib']}", f"{f['pss_mib']}", f"{q['pss']}"),
        ("Peak RSS (MiB)", f"{v['peak_rss_mib']}", f"{f['peak_rss_mib_per_process_max']} per process (max)", ""),
        ("Simulator CPU (cores)", f"{v['simulator_cpu_cores']:.3f}", f"{f['simulator_cpu_cores']:.3f}", ""),
        (
            "Segments (cameras with any)",
            f"{v['recorded']['segments']} ({v['recorded']['cameras_with_segments']})",
            f"{f['recorded']['segments']} ({f['recorded']['cameras_with_segments']})",
            "",
        ),
        (
            "Frames recorded / expected",
            f"{v['recorded']['frames']} / {v['recorded']['frames_expected']}",
            f"{f['recorded']['frames']} / {f['recorded']['frames_expected']}",
            "",
        ),
        (
            "Frames in window / expected",
            f"{v['recorded']['frames_in_window']} / {v['recorded']['frames_expected_in_window']}",
            "n/a",
            "",
        ),
        (
            "Gaps before stop (+ opened by the stop)",
            f"{v['recorded']['gaps_before_stop']} (+{v['recorded']['gaps_opened_at_stop']})",
            "n/a",
            "",
        ),
    ]
    out = [
        f"Recording cost: {n} × 1080p25 H.264 4 Mbit/s (GOP 2 s), {r['seconds']} s window "
        f"after {r['warmup_s']} s warm-up, {r['machine']['cpus']} CPUs",
        "",
        "| | vmsd | ffmpeg × N | vmsd / ffmpeg |",
        "|---|---:|---:|---:|",
    ]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    nat = r.get("vmsd_native")
    if nat is not None:
        qn = r["ratios_native_over_ffmpeg"]
        out += [
            "",
            '| source = "native" (same run) | vmsd native | ffmpeg × N | native / ffmpeg |',
            "|---|---:|---:|---:|",
            f"| CPU per camera (% of a core) | {pct(nat['cpu_cores_per_camera'])} | "
            f"{pct(f['cpu_cores_per_camera'])} | {qn['cpu']} |",
            f"| CPU-s per recorded camera-s | {nat['cpu_s_per_recorded_s']} | {f['cpu_s_per_recorded_s']} | "
            f"{qn['cpu_per_recorded_s']} |",
            f"| RSS per camera (MiB) | {nat['rss_mib_per_camera']} "
            f"({nat['rss_above_base_mib_per_camera']} above base, "
            f"largest {nat['rss_above_base_max_mib_per_camera']}) | "
            f"{f['rss_mib_per_camera']} | {qn['rss']} |",
            f"| Frames in window / expected | {nat['recorded']['frames_in_window']} / "
            f"{nat['recorded']['frames_expected_in_window']} | n/a | |",
            f"| Gaps before stop | {nat['recorded']['gaps_before_stop']} | n/a | |",
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60, help="measurement window (s)")
    ap.add_argument("--warmup", type=float, default=10, help="after all cameras connect (s)")
    ap.add_argument("--json", type=Path, help="write all figures here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if args.cameras < 1 or args.seconds <= 0 or args.warmup < 0:
        ap.error("--cameras must be >= 1, --seconds > 0, --warmup >= 0")
    work = Path(tempfile.mkdtemp(prefix="vmsd-bench-", dir="/tmp"))
    try:
        result = run(args.cameras, args.seconds, args.warmup, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
