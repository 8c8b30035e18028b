"""Benchmark scenario 6 — crash loss: footage lost per ``kill -9`` of ``vmsd run``, against the same
crash of ``ffmpeg -c copy -f segment``.

    .venv/bin/python bench/crash_loss.py [--crashes 20] [--cameras 2] [--alive 3 12] [--json OUT]

vmsd: start ``vmsd run`` on a config recording ``--cameras`` simulated cameras; once every camera
is recording, let it run for a random ``--alive`` time (seeded, so the kill falls at a different
point of the GOP and of the fragment each time), ``kill -9``, start it again, repeat; after the
last crash one more start recovers, then SIGTERM and ``vmsd fsck``.  Per crash and camera, from
the catalogue: the crash gap begins where the durable footage ends, so

    lost = kill time − start of the camera's crash gap (the end of its last durable frame)

measured on the recorder's clock, which is the simulator's timeline as it arrives on loopback
(every frame the simulator had sent before the kill is footage that could have been kept).
Each interrupted segment is also read with ffprobe: its duration must cover what the catalogue
claims (an index that promises footage the file does not hold would hide loss).  Also reported:
restart → recording again (crash gap end − process start), the contract's < 10 s.

ffmpeg (the peer): the same alive times, one ``ffmpeg -c copy -f segment`` per camera, started
in a fresh directory, ``kill -9``; lost = (kill − connect) − the duration ffprobe can read from
its files (a non-fragmented MP4 has no index until it is closed, so the segment being written
is lost whole).  Connect time is when the simulator first reports the client (before its first
frame), so ffmpeg's figure is an upper bound by a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    NS_PER_S,
    VENV_PYTHON,
    Stream,
    ffprobe_video,
    percentile,
    ratio,
    start_ffmpeg,
    start_vmsd,
    stop_vmsd,
    wait_all_connected,
    wait_for_log,
    write_vmsd_config,
)
from tests.support.simulator import CameraSimulator, MountSpec

SEGMENT_S = 60
DURATION_SLACK_NS = 50_000_000  # ffprobe vs catalogue: one frame and rounding


def _kill9(proc: subprocess.Popen[bytes]) -> int:
    killed_ns = time.time_ns()
    proc.kill()
    proc.wait()
    return killed_ns


def crash_vmsd(sim: CameraSimulator, names: list[str], alive_s: list[float], work: Path) -> dict:
    config = write_vmsd_config(work / "vmsd.toml", work / "root", {n: sim.url(n) for n in names}, segment_s=SEGMENT_S)
    kills: list[int] = []
    starts: list[int] = []
    for i, alive in enumerate([*alive_s, None]):
        log = work / f"vmsd-{i}.log"
        starts.append(time.time_ns())
        proc = start_vmsd(config, log)
        try:
            wait_for_log(proc, log, '"state": "recording"', 60, count=len(names))
            if alive is None:  # the start after the last crash: recover, then stop cleanly
                time.sleep(1)
                stop_vmsd(proc)
            else:
                time.sleep(alive)
                kills.append(_kill9(proc))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    fsck = subprocess.run(
        [str(VENV_PYTHON), "-m", "vmsd.cli.vmsd", "fsck", "--config", str(config)], capture_output=True, text=True
    )
    db = sqlite3.connect(f"file:{work / 'root' / 'catalogue.db'}?mode=ro", uri=True)
    try:
        gaps = db.execute(
            "SELECT camera_id, start_ns, end_ns FROM gaps WHERE reason = 'crash' ORDER BY start_ns"
        ).fetchall()
        segments = db.execute("SELECT camera_id, start_ns, end_ns, path FROM segments").fetchall()
    finally:
        db.close()
    lost_s: list[float] = []
    resume_s: list[float] = []
    unmatched = short_files = 0
    for k, killed_ns in enumerate(kills):
        for camera in names:
            # This crash's gap: the camera's last crash gap that began before the kill.
            mine = [g for g in gaps if g[0] == camera and g[1] <= killed_ns and (k == 0 or g[1] > kills[k - 1])]
            if not mine:
                unmatched += 1
                continue
            _cam, gap_start_ns, gap_end_ns = mine[-1]
            lost_s.append((killed_ns - gap_start_ns) / NS_PER_S)
            if gap_end_ns is not None:
                resume_s.append((gap_end_ns - starts[k + 1]) / NS_PER_S)
            interrupted = [s for s in segments if s[0] == camera and s[2] == gap_start_ns]
            for _c, start_ns, end_ns, path in interrupted:
                probe = ffprobe_video(work / "root" / path)
                if probe is None or probe[1] < end_ns - start_ns - DURATION_SLACK_NS:
                    short_files += 1
    return {
        "crashes": len(kills),
        "lost_s": [round(x, 3) for x in lost_s],
        "lost_max_s": round(max(lost_s), 3) if lost_s else None,
        "lost_p50_s": round(percentile(lost_s, 0.5), 3) if lost_s else None,
        "lost_mean_s": round(sum(lost_s) / len(lost_s), 3) if lost_s else None,
        "crashes_without_a_crash_gap": unmatched,
        "interrupted_files_shorter_than_catalogue": short_files,
        "restart_to_recording_max_s": round(max(resume_s), 2) if resume_s else None,
        "fsck_exit_code": fsck.returncode,
        "fsck_output_tail": (fsck.stdout + fsck.stderr)[-500:] if fsck.returncode else "",
    }


def crash_ffmpeg(sim: CameraSimulator, names: list[str], alive_s: list[float], work: Path) -> dict:
    lost_s: list[float] = []
    for i, alive in enumerate(alive_s):
        dirs = [work / "ffmpeg" / f"crash-{i}" / n for n in names]
        procs = [start_ffmpeg(sim.url(n), d, SEGMENT_S) for n, d in zip(names, dirs, strict=True)]
        try:
            wait_all_connected(sim, procs)
            connected_ns = time.time_ns()
            time.sleep(alive)
            killed_ns = time.time_ns()
            for p in procs:
                p.kill()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        # The mounts must have no ffmpeg clients left before the next round waits for new ones.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(m["clients"] for m in sim.status()["mounts"].values()):
            time.sleep(0.1)
        for d in dirs:
            readable_ns = sum(probe[1] for f in d.glob("OUT*.mp4") if (probe := ffprobe_video(f)) is not None)
            lost_s.append(max(0, killed_ns - connected_ns - readable_ns) / NS_PER_S)
    return {
        "crashes": len(alive_s),
        "lost_s": [round(x, 3) for x in lost_s],
        "lost_max_s": round(max(lost_s), 3) if lost_s else None,
        "lost_p50_s": round(percentile(lost_s, 0.5), 3) if lost_s else None,
        "lost_mean_s": round(sum(lost_s) / len(lost_s), 3) if lost_s else None,
    }


def run(
    crashes: int,
    cameras: int,
    alive: tuple[float, float],
    work: Path,
    stream: Stream | None = None,
    peer: bool = True,
    seed: int = 8,
) -> dict:
    stream = stream or Stream()
    clip = stream.clip()
    rng = random.Random(seed)
    alive_s = [round(rng.uniform(*alive), 2) for _ in range(crashes)]
    names = [f"cam{i + 1}" for i in range(cameras)]
    result: dict = {"scenario": "crash_loss", "crashes": crashes, "cameras": cameras, "alive_s": alive_s}
    with CameraSimulator([MountSpec(n, clip) for n in names]) as sim:
        print(f"crash_loss: vmsd, {crashes} × kill -9 ...", file=sys.stderr)
        result["vmsd"] = crash_vmsd(sim, names, alive_s, work)
        if peer:
            # The simulator still counts vmsd's last clients for a moment after it stopped.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(m["clients"] for m in sim.status()["mounts"].values()):
                time.sleep(0.1)
            print(f"crash_loss: ffmpeg, {crashes} × kill -9 ...", file=sys.stderr)
            result["ffmpeg"] = crash_ffmpeg(sim, names, alive_s, work)
            result["ratios_vmsd_over_ffmpeg"] = {
                k: ratio(result["vmsd"][k], result["ffmpeg"][k]) for k in ("lost_max_s", "lost_mean_s")
            }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--alive", type=float, nargs=2, default=[3.0, 12.0], metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-crash-") as tmp:
        report = run(args.crashes, args.cameras, tuple(args.alive), Path(tmp), peer=not args.no_peer)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
