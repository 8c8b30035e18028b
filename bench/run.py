"""Run the benchmark suite (issue #8) and write ``report.md``, ``report.json`` and PNG plots.

    .venv/bin/python bench/run.py                 # the full suite (make bench): ~1.5-2 h
    .venv/bin/python bench/run.py --smoke         # tiny parameters, ~1.5 min (make bench-smoke, CI)
    .venv/bin/python bench/run.py --only search relay --set relay.seconds=30 --out /tmp/b

Scenarios (each a module with a ``run(...)`` function; its parameters are the keys below and can
be overridden with ``--set scenario.param=JSON``): recording cost, capacity, search, relay,
browser live (issue #14), export, crash loss, start-up under load, native ingest spike (issue
#16), site failover (issue #15).  They run one after the other (never two at once: each measures
CPU on a shared machine), each in its own scratch
directory that is deleted afterwards.  A scenario that fails is reported as failed and the others
still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    browser_live,
    capacity,
    crash_loss,
    export_speed,
    failover,
    recording_cost,
    relay_cost,
    report,
    search_latency,
    spike_native_ingest,
    startup,
)
from bench.common import SMOKE_STREAM, Stream

BENCH_DIR = Path(__file__).resolve().parent

# The parameters.
FULL: dict[str, dict[str, Any]] = {
    "recording": {"cameras": [8, 32, 64], "seconds": 120, "warmup": 10},
    # per_mount: 8 RTSP sessions per simulator mount, so that the simulator (one GStreamer
    # pipeline per mount) is not what runs out of CPU first: with a mount per camera it took
    # 1.13 of the 2 cores at 192 cameras, with 8 per mount 0.2 (bench/README.md).
    "capacity": {
        "steps": [32, 64, 96, 128, 192],
        "seconds": 600,
        "warmup": 10,
        "peer": True,
        "source": "",
        "per_mount": 8,
    },
    "search": {"cameras": 50, "days": 31, "calls": 500},
    "relay": {"viewers": [10, 50, 100], "seconds": 20, "warmup": 3, "sampled": 10},
    "browser_live": {"viewers": [1, 10, 100], "seconds": 20, "warmup": 3, "sampled": 10},
    "export": {"minutes": 60, "repeat": 2},
    "crash": {"crashes": 20, "cameras": 2, "alive": [3.0, 12.0]},
    # watchdog_s: the shipped unit's WatchdogSec.
    "startup": {"steps": [64, 128, 192], "busy_cores": 1, "timeout_s": 300, "settle_s": 20, "watchdog_s": 30},
    # Issue #16's go/no-go for a native RTSP client (~6 min).
    "ingest_spike": {"cameras": [16, 64], "seconds": 60, "warmup": 10, "loops": 1, "tick_ms": 15, "uvloop": False},
    # Issue #15: kill -9 of a site recorder → first new segment on a peer (3 recorders, 3 etcd).
    # stream "small" (360p25 1 Mbit/s): for a machine that cannot carry 3 × 64 of the full stream.
    "failover": {"per_recorder": [16, 64], "kills": 10, "lease_ttl_s": 5, "source": "ffmpeg", "stream": "full"},
}
# Enough to exercise every code path and produce every figure, in about a minute and a half.
SMOKE: dict[str, dict[str, Any]] = {
    "recording": {"cameras": [2], "seconds": 4, "warmup": 1},
    "capacity": {"steps": [2], "seconds": 4, "warmup": 1, "peer": True, "source": "", "per_mount": 2},
    "search": {"cameras": 2, "days": 2, "calls": 30},
    "relay": {"viewers": [2], "seconds": 3, "warmup": 2, "sampled": 1},
    "browser_live": {"viewers": [2], "seconds": 3, "warmup": 2, "sampled": 1},
    "export": {"minutes": 3, "repeat": 1},
    "crash": {"crashes": 2, "cameras": 1, "alive": [1.5, 3.0]},
    "startup": {"steps": [8], "busy_cores": 1, "timeout_s": 60, "settle_s": 3, "watchdog_s": 2},
    "ingest_spike": {"cameras": [2], "seconds": 3, "warmup": 1, "loops": 1, "tick_ms": 15, "uvloop": False},
    "failover": {"per_recorder": [1], "kills": 2, "lease_ttl_s": 3, "source": "ffmpeg", "stream": "small"},
}


def recording_ladder(p: dict[str, Any], work: Path, stream: Stream) -> list[dict[str, Any]]:
    out = []
    for n in p["cameras"]:
        out.append(recording_cost.run(n, p["seconds"], p["warmup"], work / f"n{n}", stream))
        shutil.rmtree(work / f"n{n}", ignore_errors=True)  # 64 cameras × 2 systems × 2 min is ~8 GB
    return out


def spike_ladder(p: dict[str, Any], work: Path, stream: Stream) -> list[dict[str, Any]]:
    out = []
    for n in p["cameras"]:
        out.append(
            spike_native_ingest.run(
                n, p["seconds"], p["warmup"], work / f"n{n}", stream,
                loops=p["loops"], tick_ms=p["tick_ms"], use_uvloop=p["uvloop"],
            )
        )  # fmt: skip
        shutil.rmtree(work / f"n{n}", ignore_errors=True)
    return out


def scenarios(stream: Stream, export_stream: Stream) -> dict[str, Callable[[dict[str, Any], Path], Any]]:
    """Scenario name -> function(params, scratch dir) returning its figures."""
    return {
        "recording": lambda p, work: recording_ladder(p, work, stream),
        "capacity": lambda p, work: capacity.run(
            p["steps"], p["seconds"], p["warmup"], work, stream, p["peer"], p["source"], p["per_mount"]
        ),
        "search": lambda p, work: search_latency.run(p["cameras"], p["days"], p["calls"], work),
        "relay": lambda p, work: relay_cost.run(p["viewers"], p["seconds"], p["warmup"], work, stream, p["sampled"]),
        "browser_live": lambda p, work: browser_live.run(
            p["viewers"], p["seconds"], p["warmup"], work, stream, p["sampled"]
        ),
        "export": lambda p, work: export_speed.run(p["minutes"], p["repeat"], work, export_stream),
        "crash": lambda p, work: crash_loss.run(p["crashes"], p["cameras"], tuple(p["alive"]), work, stream),
        "startup": lambda p, work: startup.run(
            p["steps"],
            work,
            stream,
            busy_cores=p["busy_cores"],
            timeout_s=p["timeout_s"],
            settle_s=p["settle_s"],
            watchdog_s=p["watchdog_s"],
        ),
        "ingest_spike": lambda p, work: spike_ladder(p, work, stream),
        "failover": lambda p, work: failover.run(
            p["per_recorder"],
            p["kills"],
            p["lease_ttl_s"],
            work,
            SMOKE_STREAM if p["stream"] == "small" else stream,
            p["source"],
        ),
    }


def parse_overrides(settings: list[str], params: dict[str, dict[str, Any]]) -> None:
    for setting in settings:
        key, sep, value = setting.partition("=")
        scenario, dot, name = key.partition(".")
        if not sep or not dot or scenario not in params or name not in params[scenario]:
            raise SystemExit(f"--set {setting!r}: expected SCENARIO.PARAM=JSON with a known scenario and parameter")
        params[scenario][name] = json.loads(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny parameters (CI); the report says so")
    ap.add_argument("--only", nargs="+", choices=list(FULL), help="run only these scenarios")
    ap.add_argument("--set", action="append", default=[], metavar="SCENARIO.PARAM=JSON", help="override a parameter")
    ap.add_argument("--out", type=Path, default=BENCH_DIR, help="where report.md, report.json and plots go")
    args = ap.parse_args(argv)
    params = json.loads(json.dumps(SMOKE if args.smoke else FULL))
    parse_overrides(args.set, params)
    stream = SMOKE_STREAM if args.smoke else Stream()
    export_stream = SMOKE_STREAM if args.smoke else export_speed.EXPORT_STREAM
    chosen = args.only or list(FULL)
    args.out.mkdir(parents=True, exist_ok=True)

    began = time.monotonic()
    meta: dict[str, Any] = {
        "command": shlex.join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "host": platform.node(),
        "params": {k: params[k] for k in chosen},
    }
    results: dict[str, Any] = {}
    failed = []
    runners = scenarios(stream, export_stream)
    for name in chosen:
        print(f"== {name} {params[name]}", file=sys.stderr, flush=True)
        work = Path(tempfile.mkdtemp(prefix=f"vmsd-bench-{name}-", dir="/tmp"))
        t0 = time.monotonic()
        try:
            results[name] = runners[name](params[name], work)
        except Exception as exc:  # one scenario's failure must not hide the others' figures
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
            failed.append(name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"== {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    meta["elapsed_s"] = time.monotonic() - began
    meta["plots"] = report.plot(results, args.out)
    (args.out / "report.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str) + "\n")
    (args.out / "report.md").write_text(report.render(results, meta) + "\n")
    print(f"wrote {args.out / 'report.md'} ({len(meta['plots'])} plots)", file=sys.stderr)
    if failed:
        print(f"failed scenarios: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
