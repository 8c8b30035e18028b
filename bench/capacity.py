"""Benchmark scenario 2 — capacity: the most cameras recorded for a window with zero gaps and zero
lost packets, the simulator running beside the recorder on the same machine.

Method: for each N of an increasing ladder (e.g. 32, 64, 96, 128), a fresh simulator with N mounts
and a fresh recorder; wait until every camera is connected, warm up, record for ``seconds``, stop.
A step passes when every camera recorded, nothing is lost and no gap opened before the stop:

* vmsd: from its catalogue — no gap began inside the run, and every segment holds
  duration × fps frames (segment times are the camera's frame times, so a lost packet shows
  as a missing frame), every camera has segments;
* ffmpeg (the peer, N × ``ffmpeg -c copy -f segment``): every process stayed up, every file is
  readable, and the video packets recorded are at least fps × N × (stop − all connected) less
  one GOP per camera (ffmpeg has no catalogue; its first packet comes at its own connect time).

The ladder stops at the first failing step for each system; capacity is the last passing N.
The simulator's own CPU is reported for each step: past some N the simulator, not the
recorder, is what cannot keep up, and that is worth knowing when reading the figure.

    .venv/bin/python bench/capacity.py --steps 32 64 96 128 192 --seconds 600 [--source native]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Stream
from bench.recording_cost import record_ffmpeg, record_vmsd, sim_mounts
from tests.support.simulator import CameraSimulator, MountSpec


def vmsd_passed(figures: dict, cameras: int) -> tuple[bool, str]:
    rec = figures["recorded"]
    problems = []
    if rec["cameras_with_segments"] < cameras:
        problems.append(f"{cameras - rec['cameras_with_segments']} camera(s) recorded nothing")
    if rec["gaps_before_stop"]:
        problems.append(f"{rec['gaps_before_stop']} gap(s) {rec['gaps_by_reason']}")
    if rec["frames_lost"]:
        problems.append(
            f"{rec['frames_lost']} frame(s) lost in {rec['segments_short_of_frames']} segment(s) "
            f"(per-segment deficit min/max {rec['segment_frame_deficit_min_max']})"
        )
    return not problems, "; ".join(problems) or "ok"


def ffmpeg_passed(figures: dict, cameras: int, fps: int, gop_s: int) -> tuple[bool, str]:
    rec = figures["recorded"]
    problems = []
    if rec["cameras_with_segments"] < cameras:
        problems.append(f"{cameras - rec['cameras_with_segments']} camera(s) recorded nothing")
    if rec["segments_unreadable"]:
        problems.append(f"{rec['segments_unreadable']} unreadable file(s)")
    if any(code not in (0, 255) for code in figures["exit_codes"]):
        problems.append(f"exit codes {figures['exit_codes']}")
    short = rec["frames_expected"] - fps * gop_s * cameras - rec["frames"]
    if short > 0:
        problems.append(f"{short} frame(s) short of the expected count")
    return not problems, "; ".join(problems) or "ok"


def run(
    steps: list[int],
    seconds: float,
    warmup: float,
    work: Path,
    stream: Stream | None = None,
    peer: bool = True,
    source: str = "",
    per_mount: int = 1,
) -> dict:
    """Climb ``steps`` for vmsd (every camera on ``source``: the daemon's default when empty) and
    for the ffmpeg peer when ``peer``, until each fails once. ``per_mount``: cameras per simulator
    mount (each its own RTSP session and TCP connection; the simulator payloads a mount's
    stream once for all of them, so it costs far less per camera)."""
    stream = stream or Stream()
    clip = stream.clip()
    result: dict = {
        "scenario": "capacity",
        "steps": steps,
        "seconds": seconds,
        "warmup_s": warmup,
        "source": source or "default",
        "cameras_per_mount": per_mount,
        "runs": [],
    }
    record_source = functools.partial(record_vmsd, source=source, per_mount=per_mount)
    record_peer = functools.partial(record_ffmpeg, per_mount=per_mount)
    climbing = {"vmsd": True, "ffmpeg": peer}
    best = {"vmsd": 0, "ffmpeg": 0}
    for n in steps:
        if not any(climbing.values()):
            break
        names = [f"cam{i + 1}" for i in range(n)]
        for system, record in (("vmsd", record_source), ("ffmpeg", record_peer)):
            if not climbing[system]:
                continue
            print(f"capacity: {system}, {n} cameras for {seconds} s ...", file=sys.stderr)
            # A fresh simulator per run: its timeline and client bookkeeping start clean.
            mounts = sorted(set(sim_mounts(names, per_mount)), key=names.index)
            with CameraSimulator([MountSpec(name, clip) for name in mounts], ready_timeout=60) as sim:
                try:
                    figures = record(sim, names, seconds, warmup, stream.fps, work, tag=f"cap-{system}-{n}")
                except RuntimeError as exc:
                    figures = {"error": str(exc)[-2000:]}
                finally:
                    # 128 cameras × 4 Mbit/s × 10 min is ~40 GB: keep only the figures.
                    for leftover in (work / f"cap-{system}-{n}", work / f"cap-{system}-{n}-root"):
                        shutil.rmtree(leftover, ignore_errors=True)
            if "error" in figures:
                passed, why = False, figures["error"].splitlines()[0]
            elif system == "vmsd":
                passed, why = vmsd_passed(figures, n)
            else:
                passed, why = ffmpeg_passed(figures, n, stream.fps, stream.gop_s)
            result["runs"].append(
                {
                    "system": system,
                    "cameras": n,
                    "passed": passed,
                    "why": why,
                    "cpu_cores": figures.get("cpu_cores"),
                    "simulator_cpu_cores": figures.get("simulator_cpu_cores"),
                    "rss_mib": figures.get("rss_mib"),
                    "frames": figures.get("recorded", {}).get("frames"),
                }
            )
            if passed:
                best[system] = n
            else:
                climbing[system] = False
    result["capacity"] = {"vmsd": best["vmsd"], "ffmpeg": best["ffmpeg"] if peer else None}
    # "At least the top step" when the top step passed: the ladder did not find the limit.
    result["ladder_exhausted"] = {s: best[s] == steps[-1] for s in best}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[32, 64, 96, 128])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--no-peer", action="store_true", help="do not climb the ffmpeg ladder")
    ap.add_argument("--source", choices=["ffmpeg", "native"], help="every camera's source (default: the daemon's)")
    ap.add_argument("--per-mount", type=int, default=1, help="cameras per simulator mount (default 1)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-capacity-") as tmp:
        result = run(
            args.steps,
            args.seconds,
            args.warmup,
            Path(tmp),
            peer=not args.no_peer,
            source=args.source or "",
            per_mount=args.per_mount,
        )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
