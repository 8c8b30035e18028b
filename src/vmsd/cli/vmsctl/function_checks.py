"""`vmsctl health`: run a function check now (or show a stored one)."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK, EXIT_OTHER
from vmsd.cli.vmsctl.output import emit_json, out, to_dict
from vmsd.cli.vmsctl.times import format_duration, format_time
from vmsd.v1 import health_pb2

_SEVERITY_NAMES = {0: "?", 1: "ok", 2: "WARNING", 3: "FAIL"}
# A function check watches the cameras for [health] observe (5 s by default) and decodes pictures.
FUNCTION_CHECK_TIMEOUT_S = 180.0


def _bitrate(bps: int) -> str:
    return f"{bps / 1e6:.2f} Mbit/s" if bps >= 1_000_000 else f"{bps // 1000} kbit/s"


def cmd_health(client: Client, args: argparse.Namespace) -> int:
    """Run a function check now (or show a stored one) and print it; exit 1 when anything fails."""
    if args.last or args.id:
        request = health_pb2.GetFunctionCheckRequest(id=args.id or 0)
        report = client.call(client.checks.GetFunctionCheck, request)
    else:
        run = health_pb2.RunFunctionCheckRequest(camera_ids=args.camera or [])
        timeout = max(client.timeout or 0.0, FUNCTION_CHECK_TIMEOUT_S)
        report = client.checks.RunFunctionCheck(run, metadata=client.metadata, timeout=timeout)
    failed = report.verdict == health_pb2.SEVERITY_FAIL
    if args.json:
        emit_json(to_dict(report))
        return EXIT_OTHER if failed else EXIT_OK
    now_ns = time.time_ns()
    table = Table("camera", "state", "verdict", "fps (usual)", "bitrate (usual)", "keyframe", "gaps today")
    table.title = f"function check {report.id} ({report.trigger}, {format_time(report.finished_ns)})"
    problems: list[str] = []
    for camera in report.cameras:
        keyframe = format_duration(now_ns - camera.last_keyframe_ns) + " ago" if camera.last_keyframe_ns else "-"
        problems += [
            f"{camera.camera_id}: {_SEVERITY_NAMES[f.severity]}: {f.message}"
            for f in camera.findings
            if f.severity != health_pb2.SEVERITY_OK
        ]
        table.add_row(
            camera.camera_id,
            camera.state,
            _SEVERITY_NAMES[camera.verdict],
            f"{camera.frames_per_s:.1f} ({camera.usual_frames_per_s:.1f})",
            f"{_bitrate(camera.bitrate_bps)} ({_bitrate(camera.usual_bitrate_bps)})",
            keyframe,
            f"{camera.gaps_today} ({format_duration(camera.gap_duration_today_ns)})" if camera.gaps_today else "0",
        )
    out.print(table)
    # Findings as whole lines (a table column would wrap them into fragments on a terminal).
    for line in problems:
        out.print(line, soft_wrap=True)
    disk = report.disk
    out.print(
        f"storage: {_SEVERITY_NAMES[disk.verdict]}: {disk.free_bytes / 2**30:.1f} GiB free of "
        f"{disk.total_bytes / 2**30:.1f} GiB (min_free {disk.min_free_bytes / 2**30:.1f} GiB), "
        f"write+fsync {disk.write_latency_ns / 1e6:.1f} ms"
    )
    for finding in disk.findings:
        if finding.severity != health_pb2.SEVERITY_OK:
            out.print(f"  {finding.message}")
    clock = report.clock
    out.print(f"clock: {_SEVERITY_NAMES[clock.verdict]}: synchronised {clock.synchronized} ({clock.source})")
    out.print(f"verdict: {_SEVERITY_NAMES[report.verdict]}")
    return EXIT_OTHER if failed else EXIT_OK
