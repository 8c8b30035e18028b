"""`vmsctl report`: the management report of a period, as one self-contained HTML file or JSON.

The server sends the report as data (JSON); the HTML, with its charts, is drawn here, so the
recorder never needs matplotlib and an integrator's copy of the JSON is the same report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK, EXIT_OTHER
from vmsd.cli.vmsctl.output import err
from vmsd.errors import VmsdError
from vmsd.times import parse_time
from vmsd.v1 import common_pb2, report_pb2


def cmd_report(client: Client, args: argparse.Namespace) -> int:
    # Imported here: the report model (and matplotlib, for HTML) load only for this command.
    from vmsd.reports.build import Report
    from vmsd.reports.render import require_matplotlib, to_html

    now_ns = time.time_ns()
    request = report_pb2.GetReportRequest(
        range=common_pb2.TimeRange(start_ns=parse_time(args.start, now_ns), end_ns=parse_time(args.end, now_ns)),
        camera_ids=args.camera or [],
    )
    try:
        if args.format == "html":
            require_matplotlib()  # before asking the server: a missing extra is said at once
        response = client.call(client.reports.GetReport, request)
        if args.format == "json":
            data = response.report_json
        else:
            data = to_html(Report.from_json(response.report_json)).encode()
    except VmsdError as error:
        print(f"vmsctl: {error.message}", file=sys.stderr)
        return EXIT_OTHER
    Path(args.output).write_bytes(data)
    err.print(f"report written to {args.output} (content SHA-256 {response.sha256})")
    return EXIT_OK
