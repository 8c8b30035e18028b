"""`vmsctl audit`: the audit trail, and verifying its hash chain."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from vmsd.cli.vmsctl.client import Client, pages
from vmsd.cli.vmsctl.errors import EXIT_OK, EXIT_OTHER, UsageError
from vmsd.cli.vmsctl.output import emit_json, err, out, to_dict
from vmsd.cli.vmsctl.times import format_duration, format_time
from vmsd.times import parse_time
from vmsd.v1 import audit_pb2, common_pb2

_MAX_PAGE_SIZE = 10_000  # the server's maximum page_size


def cmd_audit(client: Client, args: argparse.Namespace) -> int:
    if args.verify:
        result = client.call(client.audit.VerifyAudit, audit_pb2.VerifyAuditRequest())
        if args.json:
            emit_json(to_dict(result))
        elif result.ok:
            out.print(f"audit chain intact: {result.records_checked} record(s), head {result.head_hash[:16]}…")
        else:
            out.print(f"AUDIT CHAIN BROKEN after {result.records_checked} record(s): {result.first_problem}")
        return EXIT_OK if result.ok else EXIT_OTHER
    if args.limit < 0:
        raise UsageError("--limit must be 0 (everything) or a positive number of records")
    now_ns = time.time_ns()
    request = audit_pb2.QueryAuditRequest(
        since_ns=parse_time(args.since, now_ns) if args.since else 0,
        until_ns=parse_time(args.until, now_ns) if args.until else 0,
        camera_id=args.camera or "",
        principal=args.principal or "",
        action=args.action or "",
        outcome=args.outcome or "",
        page_size=min(args.limit or _MAX_PAGE_SIZE, _MAX_PAGE_SIZE),
    )
    # Pages run from the newest record back, each under the server's message size cap.
    records: list[audit_pb2.AuditRecord] = []
    unavailable: dict[str, str] = {}  # with a site: recorders whose trail is missing
    for page in pages(client, client.audit.QueryAudit, request):
        records[:0] = page.records
        unavailable.update((u.recorder, u.reason) for u in page.unavailable)
        if args.limit and len(records) >= args.limit:
            break
    shown = records[-args.limit :] if args.limit else records
    truncated = page.truncated or len(shown) < len(records)
    response = audit_pb2.QueryAuditResponse(
        records=shown,
        truncated=truncated,
        unavailable=[common_pb2.UnavailableRecorder(recorder=r, reason=why) for r, why in sorted(unavailable.items())],
    )
    if args.json:
        emit_json(to_dict(response))
        return EXIT_OK
    # With a site, records of several recorders: each seq is that recorder's.
    site = len({r.recorder for r in response.records}) > 1
    columns = ["seq", "time", "principal", "action", "camera", "range", "reason", "outcome"]
    table = Table(*(["recorder", *columns] if site else columns), title="audit")
    for record in response.records:
        span = (
            f"{format_time(record.range.start_ns)} +{format_duration(record.range.end_ns - record.range.start_ns)}"
            if record.range.start_ns
            else ""
        )
        table.add_row(
            *([record.recorder] if site else []),
            str(record.seq),
            format_time(record.time_ns),
            record.principal or "(unauthenticated)",
            record.action.rsplit("/", 1)[-1],
            record.camera_id,
            span,
            record.reason,
            record.outcome,
        )
    out.print(table)
    for recorder, reason in sorted(unavailable.items()):
        err.print(f"recorder {recorder} is unavailable, its audit trail is not listed: {reason}")
    if response.truncated:
        out.print(f"(showing the newest {len(response.records)}; narrow with --since or raise --limit)")
    return EXIT_OK
