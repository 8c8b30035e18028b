"""`vmsctl hold add|list|release`: evidence holds."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.table import Table

from vmsd.cli.vmsctl.client import Client, pages
from vmsd.cli.vmsctl.errors import EXIT_OK
from vmsd.cli.vmsctl.output import emit_json, out, to_dict
from vmsd.cli.vmsctl.times import format_time, time_range
from vmsd.times import parse_time
from vmsd.v1 import holds_pb2


def _hold_table(holds: Any) -> Table:
    table = Table("id", "cameras", "from", "to", "case", "reason", "by", "held", "state", title="holds")
    for hold in holds:
        state = "active" if hold.active else ("released" if hold.released_ns else "lapsed")
        table.add_row(
            str(hold.id),
            ", ".join(hold.camera_ids),
            format_time(hold.range.start_ns),
            format_time(hold.range.end_ns),
            hold.case_ref,
            hold.reason,
            hold.created_by,
            hold_held(hold),
            state + (f" ({hold.release_reason})" if hold.released_ns else ""),
        )
    return table


def hold_held(hold: Any) -> str:
    """How long a hold lasts (active), or how it ended (released, lapsed)."""
    if hold.released_ns:
        return f"released {format_time(hold.released_ns)} by {hold.released_by or '?'}"
    if hold.until_ns:
        return f"{'until' if hold.active else 'lapsed'} {format_time(hold.until_ns)}"
    return "until released"


def cmd_hold_add(client: Client, args: argparse.Namespace) -> int:
    now_ns = time.time_ns()
    request = holds_pb2.AddHoldRequest(
        camera_ids=args.cameras,
        range=time_range(args),
        case_ref=args.case,
        reason=args.reason,
        until_ns=parse_time(args.until, now_ns) if args.until else 0,
    )
    hold = client.call(client.holds.AddHold, request)
    if args.json:
        emit_json(to_dict(hold))
    else:
        out.print(_hold_table([hold]))
    return EXIT_OK


def cmd_hold_list(client: Client, args: argparse.Namespace) -> int:
    request = holds_pb2.ListHoldsRequest(include_released=args.all, camera_id=args.camera or "")
    response = holds_pb2.ListHoldsResponse()
    for page in pages(client, client.holds.ListHolds, request):
        response.holds.extend(page.holds)
    if args.json:
        emit_json(to_dict(response))
    else:
        out.print(_hold_table(response.holds))
    return EXIT_OK


def cmd_hold_release(client: Client, args: argparse.Namespace) -> int:
    hold = client.call(client.holds.ReleaseHold, holds_pb2.ReleaseHoldRequest(hold_id=args.id, reason=args.reason))
    if args.json:
        emit_json(to_dict(hold))
    else:
        out.print(_hold_table([hold]))
    return EXIT_OK
