"""`vmsctl retention`: retention status, alarms and the erasure log; confirming the clock."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from vmsd.cli.vmsctl.client import Client, pages
from vmsd.cli.vmsctl.errors import EXIT_OK
from vmsd.cli.vmsctl.output import emit_json, out, to_dict
from vmsd.cli.vmsctl.times import format_duration, format_time
from vmsd.times import parse_time
from vmsd.v1 import common_pb2, holds_pb2


def cmd_retention(client: Client, args: argparse.Namespace) -> int:
    if args.confirm_clock:
        status = client.call(client.retention.ConfirmClock, holds_pb2.ConfirmClockRequest(reason=args.confirm_clock))
    else:
        status = client.call(client.retention.GetRetentionStatus, holds_pb2.RetentionStatusRequest())
    now_ns = time.time_ns()
    since_ns = parse_time(args.since, now_ns)
    request = holds_pb2.ErasureSummaryRequest(range=common_pb2.TimeRange(start_ns=since_ns, end_ns=now_ns + 1))
    summary = holds_pb2.ErasureSummaryResponse()
    for page in pages(client, client.retention.ErasureSummary, request):
        summary.days.extend(page.days)
    if args.json:
        emit_json({"status": to_dict(status), "erasures": to_dict(summary)["days"]})
        return EXIT_OK
    out.print(
        f"retention: {'PAUSED' if status.paused else 'running'}, window {format_duration(status.max_age_ns)}, "
        f"free {status.free_bytes / 2**30:.1f} GiB of {status.total_bytes / 2**30:.1f} GiB "
        f"(min_free {status.min_free_bytes / 2**30:.1f} GiB)"
    )
    for kind, message in sorted(status.alarms.items()):
        out.print(f"  ALARM {kind}: {message}")
    table = Table("day", "camera", "reason", "segments", "bytes", "footage from", "footage to", title="erasures")
    for day in summary.days:
        table.add_row(
            day.day,
            day.camera_id,
            day.reason,
            str(day.segments),
            str(day.bytes),
            format_time(day.footage.start_ns),
            format_time(day.footage.end_ns),
        )
    out.print(table)
    return EXIT_OK
