"""Export speed: vmsd's evidence export of 1 h of one camera vs `ffmpeg -f concat -c copy` + sha256sum.

    .venv/bin/python bench/export_speed.py [--minutes 60] [--json OUT.json] [--keep]

Footage: a 60 s 1080p25 H.264 clip at 4 Mbit/s (libx264 -preset ultrafast -g 50 -bf 0, CBR-ish
via -b:v/-maxrate/-bufsize, AUD NAL units), encoded once and cached in /tmp/vmsd-bench-clips, is
fed `--minutes` times (the smoke run: a shorter, smaller clip) through the real Segmenter under
a FakeClock with 60 s segments — one continuous run (the clip's timestamps restart each minute;
the segmenter's timeline continues them one frame later, as it does for a camera whose clock
jumps), so the catalogue holds real hashed, chained 60 s segments exactly as recording makes them.

Compared, in the same invocation, on the same segment files, page cache warm for all (every
segment is read once before the first measurement):
  vmsd (originals)     Exporter.export: copy + re-hash every segment into the bundle, remux the
                       master (faststart), hash, sign — the default bundle.
  vmsd (no originals)  the same without the copies (segments are still re-hashed in place).
  ffmpeg + sha256sum   `ffmpeg -f concat -safe 0 -i list -c copy -movflags +faststart master.mp4`
                       then `sha256sum` of every segment and of the master — the minimum a
                       hand-made evidence copy with checksums costs.
  ffmpeg alone         the concat remux without checksums (a lower bound for the remux part;
                       coreutils' sha256sum does not use the CPU's SHA extensions, OpenSSL —
                       and so Python's hashlib — does, which is most of the difference).
Each is run `--repeat` times (default 2); the best wall time is reported, with CPU time
(user+sys of this process's children for ffmpeg/sha256sum; of this process for vmsd).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stream
from tests.support.feed import feed
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.export.exporter import Exporter
from vmsd.export.manifest import ClockStatus
from vmsd.export.model import CameraInfo, ExportRequest
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

S = 1_000_000_000
START_NS = 1_767_312_000 * S  # 2026-01-02T00:00:00Z
CLIPS = Path("/tmp/vmsd-bench-clips")


EXPORT_STREAM = Stream(clip_seconds=60)


def clip(stream: Stream = EXPORT_STREAM) -> Path:
    CLIPS.mkdir(parents=True, exist_ok=True)
    size, rate, gop = f"{stream.width}x{stream.height}", stream.fps, stream.fps * stream.gop_s
    name = f"export-{stream.height}p{rate}-{stream.bitrate}-{stream.clip_seconds}s"
    target = CLIPS / (name + ".ts")
    if not target.exists():
        partial = target.with_suffix(f".partial{os.getpid()}.ts")
        subprocess.run(
            [
                "ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                "-t", str(stream.clip_seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-bf", "0",
                "-b:v", stream.bitrate, "-maxrate", stream.bitrate, "-bufsize", "8M",
                "-x264-params", "aud=1:scenecut=0", str(partial),
            ],
            check=True,
        )  # fmt: skip
        partial.rename(target)
    return target


def record(root: Path, source: Path, minutes: int) -> Storage:
    storage = Storage(root)
    storage.open()
    reconcile(storage)
    storage.catalogue.upsert_camera("cam", "Bench camera", "", 0)
    clock = FakeClock(wall_ns=START_NS)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=60 * S)
    for minute in range(minutes):
        last = minute == minutes - 1
        feed(segmenter, clock, source, end_reason="camera_offline" if last else None)
        clock.advance(40_000_000)  # the next minute's first frame comes one frame later
    return storage


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(feeds: int, repeat: int, work: Path, stream: Stream = EXPORT_STREAM) -> dict:
    """Scenario 5: record ``feeds`` × the clip through the Segmenter in ``work``, then time each contender."""
    source = clip(stream)
    t0 = time.monotonic()
    storage = record(work / "root", source, feeds)
    record_s = time.monotonic() - t0
    rows = storage.catalogue.segments("cam")
    paths = [storage.segment_path(r) for r in rows]
    footage_bytes = sum(r.bytes or 0 for r in rows)
    first_ns, last_ns = rows[0].start_ns, rows[-1].end_ns or rows[-1].start_ns
    gaps = [g for g in storage.catalogue.gaps("cam") if g.end_ns is not None]
    print(
        f"recorded {len(rows)} segments ({len(gaps)} closed gaps), {footage_bytes / 1e9:.2f} GB, "
        f"{(last_ns - first_ns) / S:.0f} s of footage in {record_s:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    for path in paths:  # warm the page cache for every contender alike
        with open(path, "rb") as f:
            while f.read(8 << 20):
                pass
    clock = FakeClock(wall_ns=last_ns + 3600 * S)
    audit = AuditLog(work / "root" / "audit.db", clock)
    audit.open()
    exporter = Exporter(
        storage,
        audit,
        clock,
        recorder_id="bench",
        camera_info=lambda c: CameraInfo(c, "Bench camera"),
        time_sync=lambda: ClockStatus(source="bench", synchronized="unknown", detail={}),
    )
    exporter.open()
    results: dict[str, dict[str, float]] = {}

    def vmsd(originals: bool) -> tuple[float, float]:
        before_wall, before_cpu = time.monotonic(), cpu_self()
        result = exporter.export(
            ExportRequest(
                camera_id="cam", start_ns=first_ns, end_ns=last_ns, case_ref="BENCH", reason="benchmark",
                principal="bench", include_originals=originals,
            )
        )  # fmt: skip
        elapsed, cpu = time.monotonic() - before_wall, cpu_self() - before_cpu
        assert result.manifest.masters[0].video_frames > 0
        shutil.rmtree(result.path)
        return elapsed, cpu

    def ffmpeg(checksums: bool) -> tuple[float, float]:
        out = work / "ffmpeg"
        out.mkdir(exist_ok=True)
        listing = out / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in paths))
        before_wall, before_cpu = time.monotonic(), cpu_children()
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
             "-movflags", "+faststart", str(out / "master.mp4")],
            check=True,
        )  # fmt: skip
        if checksums:
            subprocess.run(
                ["sha256sum", *map(str, paths), str(out / "master.mp4")], check=True, stdout=subprocess.DEVNULL
            )
        elapsed, cpu = time.monotonic() - before_wall, cpu_children() - before_cpu
        shutil.rmtree(out)
        return elapsed, cpu

    contenders = {
        "vmsd export (with originals)": lambda: vmsd(True),
        "vmsd export (no originals)": lambda: vmsd(False),
        "ffmpeg concat -c copy + sha256sum": lambda: ffmpeg(True),
        "ffmpeg concat -c copy alone": lambda: ffmpeg(False),
    }
    for name, run in contenders.items():
        runs = [run() for _ in range(repeat)]
        wall, cpu = min(runs)
        results[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "footage_x_realtime": 0.0}
        results[name]["footage_x_realtime"] = round((last_ns - first_ns) / S / wall, 1)
        print(
            f"{name:36s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  ({results[name]['footage_x_realtime']}x real time)",
            file=sys.stderr,
        )
    baseline = results["ffmpeg concat -c copy + sha256sum"]["wall_s"]
    for name in results:
        results[name]["ratio_vs_ffmpeg"] = round(results[name]["wall_s"] / baseline, 2)
    print(
        "ratios (wall, vs ffmpeg+sha256sum): " + ", ".join(f"{n}: {r['ratio_vs_ffmpeg']}" for n, r in results.items())
    )
    report = {
        "scenario": "export",
        "segments": len(rows),
        "footage_bytes": footage_bytes,
        "footage_s": (last_ns - first_ns) / S,
        "cpus": os.cpu_count(),
        "results": results,
    }
    audit.close()
    storage.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vmsd-bench-export-"))
    try:
        report = run(args.minutes, args.repeat, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
