"""Search latency through gRPC on a synthetic catalogue (issue: control plane; bench scenario 3).

Method: build a catalogue of C cameras × D days of 60 s segments (bulk-inserted rows; no media
files are needed to search), start the real daemon in-process with its real gRPC server on
loopback (no cameras configured, so nothing else runs), then issue Search calls for random 1 h
and 24 h ranges through a real grpc.aio client and report p50/p99/max of the round trip.
Gaps are sprinkled in (one 5-minute outage per camera per day) so responses carry both spans
and gaps.

Peer, in the same run on the same catalogue file: the same ranges read straight from SQLite with
Python's sqlite3 module (segment rows and gap rows overlapping the range, over the indexes the
catalogue has, no gRPC, no merging) — the floor under any search built on this catalogue, so
the ratio says what the control plane adds.

    .venv/bin/python bench/search_latency.py [--cameras 50] [--days 31] [--calls 500] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, ratio
from vmsd.app import Daemon
from vmsd.config import parse_config
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.v1 import common_pb2, recordings_pb2, recordings_pb2_grpc

S = 1_000_000_000
SEGMENT_NS = 60 * S
TOKEN = "bench-token"


def build_catalogue(root: Path, cameras: int, days: int, end_ns: int) -> int:
    storage = Storage(root)
    storage.open()
    reconcile(storage)
    start_ns = end_ns - days * 86400 * S
    total = 0
    for index in range(cameras):
        camera_id = f"cam-{index:03d}"
        storage.catalogue.upsert_camera(camera_id, "", "", start_ns)
        rows = []
        prev = "0" * 64
        outage_every = 86400 * S
        t = start_ns
        while t + SEGMENT_NS <= end_ns:
            if (t - start_ns) % outage_every == 12 * 3600 * S:  # a 5-minute outage at noon each day
                storage.catalogue.insert_gap(camera_id, t, t + 300 * S, "camera_offline")
                t += 300 * S
                continue
            digest = hashlib.sha256(f"{camera_id}{t}".encode()).hexdigest()
            rows.append(
                (
                    camera_id,
                    None,
                    f"recordings/{camera_id}/x/{t}.mp4",
                    t,
                    t + SEGMENT_NS,
                    30_000_000,
                    digest,
                    prev,
                    "h264",
                    1920,
                    1080,
                    0,
                    1500,
                )
            )
            prev = digest
            t += SEGMENT_NS
        storage.catalogue.insert_segments_bulk(rows)
        total += len(rows)
    storage.close()
    return total


def ranges(cameras: int, days: int, calls: int, length_ns: int, end_ns: int, seed: int) -> list[tuple[str, int, int]]:
    """``calls`` random (camera, start, end) ranges of ``length_ns`` inside the catalogue."""
    rng = random.Random(seed)
    out = []
    for _ in range(calls):
        start_ns = end_ns - rng.randrange(length_ns, days * 86400 * S)
        out.append((f"cam-{rng.randrange(cameras):03d}", start_ns, start_ns + length_ns))
    return out


def measure_sqlite(root: Path, queries: list[tuple[str, int, int]], warmup: int) -> list[float]:
    """Round trip of the raw rows for each range, in ms (the floor: no gRPC, no Python objects)."""
    db = sqlite3.connect(f"file:{root / 'catalogue.db'}?mode=ro", uri=True)
    samples = []
    try:
        for index, (camera_id, start_ns, end_ns) in enumerate(queries):
            began = time.perf_counter_ns()
            db.execute(
                "SELECT start_ns, end_ns, path FROM segments WHERE camera_id = ? AND start_ns < ? "
                "AND start_ns >= ? AND coalesce(end_ns, start_ns) > ? ORDER BY start_ns",
                (camera_id, end_ns, start_ns - 2 * SEGMENT_NS, start_ns),
            ).fetchall()
            db.execute(
                "SELECT start_ns, end_ns, reason FROM gaps WHERE camera_id = ? AND start_ns < ? "
                "AND coalesce(end_ns, 9223372036854775807) > ? ORDER BY start_ns",
                (camera_id, end_ns, start_ns),
            ).fetchall()
            if index >= warmup:
                samples.append((time.perf_counter_ns() - began) / 1e6)
    finally:
        db.close()
    return samples


WARMUP_CALLS = 20
RANGES = (("1h", 3600 * S), ("24h", 86400 * S))


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
    }


async def measure(root: Path, cameras: int, days: int, calls: int, end_ns: int) -> dict[str, dict[str, float]]:
    """Search round trips through the real daemon's gRPC server, per range length."""
    config = parse_config(
        {
            "recorder_id": "bench",
            "storage": {"root": str(root)},
            "grpc": {"listen": "127.0.0.1:0"},
            "auth": {
                "tokens": [{"name": "bench", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "role": "admin"}]
            },
        }
    )
    daemon = Daemon(config)
    await daemon.start()
    results: dict[str, dict[str, float]] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{daemon.control_plane.port}") as channel:
            stub = recordings_pb2_grpc.RecordingServiceStub(channel)
            metadata = [("authorization", f"Bearer {TOKEN}")]
            for seed, (label, length_ns) in enumerate(RANGES):
                samples: list[float] = []
                spans = gaps = 0
                queries = ranges(cameras, days, calls + WARMUP_CALLS, length_ns, end_ns, seed)
                for index, (camera_id, start_ns, stop_ns) in enumerate(queries):
                    request = recordings_pb2.SearchRequest(
                        camera_id=camera_id, range=common_pb2.TimeRange(start_ns=start_ns, end_ns=stop_ns)
                    )
                    began = time.perf_counter_ns()
                    response = await stub.Search(request, metadata=metadata)
                    elapsed_ms = (time.perf_counter_ns() - began) / 1e6
                    if index >= WARMUP_CALLS:  # warm-up calls are not counted
                        samples.append(elapsed_ms)
                        spans += len(response.spans)
                        gaps += len(response.gaps)
                results[label] = {
                    **summary(samples),
                    "mean_spans": spans / len(samples),
                    "mean_gaps": gaps / len(samples),
                }
    finally:
        await daemon.stop()
    return results


def run(cameras: int, days: int, calls: int, work: Path) -> dict:
    """Scenario 3: build the catalogue in ``work``, measure vmsd's Search and the SQLite floor."""
    end_ns = (time.time_ns() // SEGMENT_NS) * SEGMENT_NS
    began = time.monotonic()
    rows = build_catalogue(work, cameras, days, end_ns)
    build_s = time.monotonic() - began
    vmsd = asyncio.run(measure(work, cameras, days, calls, end_ns))
    floor = {
        label: summary(measure_sqlite(work, ranges(cameras, days, calls + WARMUP_CALLS, length_ns, end_ns, seed),
                                      WARMUP_CALLS))
        for seed, (label, length_ns) in enumerate(RANGES)
    }  # fmt: skip
    return {
        "scenario": "search",
        "cameras": cameras,
        "days": days,
        "segments": rows,
        "build_s": round(build_s, 1),
        "calls": calls,
        "vmsd": vmsd,
        "sqlite": floor,
        "ratios_vmsd_over_sqlite": {
            label: {k: ratio(vmsd[label][k], floor[label][k], 1) for k in ("p50_ms", "p99_ms")} for label in vmsd
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=50)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmsd-bench-search-") as tmp:
        report = run(args.cameras, args.days, args.calls, Path(tmp))
    print(
        f"Search through gRPC: {args.cameras} cameras × {args.days} days = {report['segments']} segments "
        f"(built in {report['build_s']:.1f} s), {args.calls} calls per range\n"
    )
    print("| range | p50 ms | p99 ms | max ms | SQLite p99 ms | spans/response | gaps/response |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, figures in report["vmsd"].items():
        print(
            f"| {label} | {figures['p50_ms']} | {figures['p99_ms']} | {figures['max_ms']} | "
            f"{report['sqlite'][label]['p99_ms']} | {figures['mean_spans']:.1f} | {figures['mean_gaps']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
