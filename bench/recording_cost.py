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
    (RSS − base) / N.  Expected frames = 25 × N × (stop − all connected): an upper bound for
    vmsd, which starts each recording at the first keyframe (up to one GOP later).  vmsd's
    catalogue also gives the frames inside the measurement window (segment frames pro rata to
    overlap), to compare with 25 × N × window.

Everything lives under a fresh ``/tmp/vmsd-bench-*`` directory (removed unless ``--keep``);
clips are cached in ``/tmp/vmsd-bench-clips``.  Every process started here is stopped in a
``finally``.  Standard library only (plus ``tests.support``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.clips import make_clip  # noqa: E402
from tests.support.simulator import CameraSimulator, MountSpec, free_port  # noqa: E402

CLIPS_DIR = "/tmp/vmsd-bench-clips"
FPS = 25
SEGMENT_S = 60
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
FFMPEG = os.environ.get("VMSD_BENCH_FFMPEG", "/usr/bin/ffmpeg")
FFPROBE = os.environ.get("VMSD_BENCH_FFPROBE", "/usr/bin/ffprobe")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NS = 1_000_000_000


# -- /proc sampling -------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user+system, all threads) used so far by ``pid``, its reaped children and its
    live descendants."""
    total = 0
    for i, p in enumerate([pid, *_descendants(pid)]):
        fields = _stat_fields(p)
        if fields is None:
            if i == 0:
                raise RuntimeError(f"process {pid} is gone")
            continue
        # stat fields 14..17 (utime stime cutime cstime) are indices 11..14 here.
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and Pss of ``pid`` in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


# -- the two systems --------------------------------------------------------------------------------


def write_vmsd_config(path: Path, root: Path, urls: dict[str, str]) -> None:
    lines = [
        'recorder_id = "bench"',
        "[storage]",
        f'root = "{root}"',
        f'segment_duration = "{SEGMENT_S}s"',
        'min_free = "1MiB"',
        "[grpc]",
        f'listen = "127.0.0.1:{free_port()}"',
    ]
    for cam, url in urls.items():
        lines += ["[[cameras]]", f'id = "{cam}"', f'url = "{url}"']
    path.write_text("\n".join(lines) + "\n")


def start_vmsd(config: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as f:
        return subprocess.Popen(
            [str(VENV_PYTHON), "-m", "vmsd.cli.vmsd", "run", "--config", str(config), "--log-json"],
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=REPO,
        )


def wait_for_log(proc: subprocess.Popen, log: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vmsd exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        if needle in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no {needle!r} in the vmsd log after {timeout} s")


def start_ffmpeg(url: str, out_dir: Path) -> subprocess.Popen:
    out_dir.mkdir(parents=True)
    with open(out_dir / "ffmpeg.log", "wb") as log:
        return subprocess.Popen(
            [
                FFMPEG,
                "-hide_banner",
                "-nostats",
                "-loglevel",
                "warning",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
                "-c",
                "copy",
                "-f",
                "segment",
                "-segment_time",
                str(SEGMENT_S),
                str(out_dir / "OUT%03d.mp4"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop_vmsd(proc: subprocess.Popen, timeout: float = 30) -> float:
    """SIGTERM and wait; returns the seconds it took (SIGKILL and raise if it does not exit)."""
    began = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"vmsd did not exit within {timeout} s of SIGTERM; killed") from None
    return time.monotonic() - began


def stop_ffmpegs(procs: list[subprocess.Popen]) -> int:
    """``q`` to every ffmpeg, then SIGTERM, then SIGKILL; returns how many needed more than ``q``."""
    for p in procs:
        if p.poll() is None and p.stdin:
            try:
                p.stdin.write(b"q")
                p.stdin.close()
            except OSError:
                pass
    forced = 0
    for sig, grace in ((None, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            break
        if sig is not None:
            forced += len(alive) if sig == signal.SIGTERM else 0
            for p in alive:
                p.send_signal(sig)
        deadline = time.monotonic() + grace
        for p in alive:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    return forced


# -- measuring ------------------------------------------------------------------------------------


def wait_all_connected(sim: CameraSimulator, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    """Until every mount has at least one client (processes must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a recorder process exited while connecting")
        mounts = sim.status()["mounts"]
        if all(m.get("clients", 0) >= 1 for m in mounts.values()):
            return
        time.sleep(0.25)
    raise RuntimeError(f"not all cameras connected after {timeout} s: {sim.status()}")


def measure_window(pids: list[int], sim_pid: int, warmup: float, seconds: float, procs: list[subprocess.Popen]) -> dict:
    """Warm up, then CPU over ``seconds`` for ``pids`` and the simulator, memory at the end."""
    time.sleep(warmup)
    t0, cpu0, sim0 = time.monotonic(), [cpu_seconds(p) for p in pids], cpu_seconds(sim_pid)
    t0_wall = time.time_ns()
    time.sleep(seconds)
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
    }


def vmsd_catalogue(root: Path, window_ns: list[int]) -> dict:
    db = sqlite3.connect(f"file:{root / 'catalogue.db'}?mode=ro", uri=True)
    try:
        segs = db.execute("SELECT camera_id, state, start_ns, end_ns, bytes, frames FROM segments").fetchall()
        gaps = db.execute("SELECT start_ns, reason FROM gaps").fetchall()
    finally:
        db.close()
    w0, w1 = window_ns
    in_window = 0.0
    for _cam, _state, start, end, _b, frames in segs:
        if end and frames and end > start:
            overlap = max(0, min(end, w1) - max(start, w0))
            in_window += frames * overlap / (end - start)
    return {
        "segments": len(segs),
        "segments_not_complete": sum(1 for s in segs if s[1] != "complete"),
        "cameras_with_segments": len({s[0] for s in segs}),
        "frames": sum(s[5] or 0 for s in segs),
        "bytes": sum(s[4] or 0 for s in segs),
        "frames_in_window": round(in_window),
        # A clean stop opens one 'restart' gap per camera (closed when recording resumes); any
        # gap that began before the end of the window is a real interruption.
        "gaps_before_stop": sum(1 for start, _r in gaps if start <= w1),
        "gaps_opened_at_stop": sum(1 for start, _r in gaps if start > w1),
        "gaps_by_reason": {r: sum(1 for _s, x in gaps if x == r) for r in sorted({x for _s, x in gaps})},
    }


def ffmpeg_outputs(dirs: list[Path]) -> dict:
    files = sorted(f for d in dirs for f in d.glob("OUT*.mp4"))
    frames, unreadable = 0, 0
    for f in files:
        out = subprocess.run(
            [
                FFPROBE,
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
                str(f),
            ],
            capture_output=True,
            text=True,
        )
        try:
            frames += int(out.stdout.strip().split(",")[0])
        except ValueError:
            unreadable += 1
    return {
        "segments": len(files),
        "segments_unreadable": unreadable,
        "cameras_with_segments": sum(1 for d in dirs if any(d.glob("OUT*.mp4"))),
        "frames": frames,
        "bytes": sum(f.stat().st_size for f in files),
    }


# -- the scenario ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> dict:
    n = args.cameras
    clip = make_clip(CLIPS_DIR, codec="h264", width=1920, height=1080, fps=FPS, gop_s=2, seconds=30, bitrate="4M")
    names = [f"cam{i + 1}" for i in range(n)]
    result: dict = {
        "scenario": "recording_cost",
        "cameras": n,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "stream": {
            "codec": "h264",
            "width": 1920,
            "height": 1080,
            "fps": FPS,
            "gop_s": 2,
            "bitrate": "4M",
            "transport": "tcp",
        },
        "machine": {"cpus": os.cpu_count(), "clk_tck": CLK_TCK},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with CameraSimulator([MountSpec(name, clip) for name in names]) as sim:
        urls = {name: sim.url(name) for name in names}

        # vmsd with no cameras: the fixed cost of the process.
        cfg, root = work / "vmsd-base.toml", work / "vmsd-base-root"
        write_vmsd_config(cfg, root, {})
        proc = start_vmsd(cfg, work / "vmsd-base.log")
        try:
            wait_for_log(proc, work / "vmsd-base.log", "daemon_started", 60)
            time.sleep(2)
            base = memory_kib(proc.pid)
        finally:
            stop_vmsd(proc)
        print(f"vmsd base: {mib(base['VmRSS'])} MiB RSS", file=sys.stderr)

        # vmsd with N cameras.
        cfg, root = work / "vmsd.toml", work / "vmsd-root"
        write_vmsd_config(cfg, root, urls)
        print(f"vmsd: recording {n} cameras ...", file=sys.stderr)
        proc = start_vmsd(cfg, work / "vmsd.log")
        try:
            wait_all_connected(sim, [proc])
            connected = time.monotonic()
            m = measure_window([proc.pid], sim.pid, args.warmup, args.seconds, [proc])
            stopped = time.monotonic()
        finally:
            stop_s = stop_vmsd(proc)
        mem = m["memory_kib"][0]
        rec = vmsd_catalogue(root, m["window_wall_ns"])
        expected = FPS * n * (stopped - connected)
        result["vmsd"] = {
            "cpu_cores": round(m["cpu_cores"][0], 4),
            "cpu_cores_per_camera": round(m["cpu_cores"][0] / n, 5),
            "rss_mib": mib(mem["VmRSS"]),
            "rss_mib_per_camera": mib(mem["VmRSS"] / n),
            "rss_base_mib": mib(base["VmRSS"]),
            "rss_above_base_mib_per_camera": mib((mem["VmRSS"] - base["VmRSS"]) / n),
            "peak_rss_mib": mib(mem["VmHWM"]),
            "pss_mib": mib(mem.get("Pss", 0)),
            "simulator_cpu_cores": round(m["simulator_cpu_cores"], 4),
            "window_s": m["window_s"],
            "sigterm_to_exit_s": round(stop_s, 2),
            "exit_code": proc.returncode,
            "recorded": {
                **rec,
                "frames_expected": round(expected),
                "frames_expected_in_window": round(FPS * n * m["window_s"]),
            },
        }

        # N ffmpeg processes.
        print(f"ffmpeg: recording {n} cameras ...", file=sys.stderr)
        dirs = [work / "ffmpeg" / name for name in names]
        procs: list[subprocess.Popen] = []
        try:
            for name, d in zip(names, dirs, strict=True):
                procs.append(start_ffmpeg(urls[name], d))
            wait_all_connected(sim, procs)
            connected = time.monotonic()
            m = measure_window([p.pid for p in procs], sim.pid, args.warmup, args.seconds, procs)
            stopped = time.monotonic()
        finally:
            forced = stop_ffmpegs(procs)
        mems = m["memory_kib"]
        rss = [x["VmRSS"] for x in mems]
        total_cpu = sum(m["cpu_cores"])
        rec = ffmpeg_outputs(dirs)
        expected = FPS * n * (stopped - connected)
        result["ffmpeg"] = {
            "command": f"{FFMPEG} -hide_banner -nostats -loglevel warning -rtsp_transport tcp "
            f"-i URL -c copy -f segment -segment_time {SEGMENT_S} OUT%03d.mp4",
            "cpu_cores": round(total_cpu, 4),
            "cpu_cores_per_camera": round(total_cpu / n, 5),
            "cpu_cores_per_process": [round(c, 5) for c in m["cpu_cores"]],
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
            "recorded": {**rec, "frames_expected": round(expected)},
        }
    v, f = result["vmsd"], result["ffmpeg"]
    result["ratios_vmsd_over_ffmpeg"] = {
        "cpu": round(v["cpu_cores"] / f["cpu_cores"], 3) if f["cpu_cores"] else None,
        "rss": round(v["rss_mib"] / f["rss_mib"], 3) if f["rss_mib"] else None,
        "pss": round(v["pss_mib"] / f["pss_mib"], 3) if f["pss_mib"] else None,
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
            f"{v['rss_mib_per_camera']} ({v['rss_above_base_mib_per_camera']} above base {v['rss_base_mib']})",
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
        result = run(args, work)
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
