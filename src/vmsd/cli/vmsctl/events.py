"""`vmsctl events`: the recorder's events (stored ones, then live with --follow), one per line."""

from __future__ import annotations

import argparse
import json
import sys

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK, UsageError
from vmsd.cli.vmsctl.output import out, to_dict
from vmsd.cli.vmsctl.times import format_time


def cmd_events(client: Client, args: argparse.Namespace) -> int:
    from vmsd.v1 import events_pb2, events_pb2_grpc

    if args.after is not None and args.after < 0:
        raise UsageError("--after must be a sequence number (0 or more)")
    stub = events_pb2_grpc.EventServiceStub(client.channel)  # type: ignore[no-untyped-call]
    request = events_pb2.WatchEventsRequest(
        kinds=args.kind or [],
        cameras=args.camera or [],
        after_seq=args.after or 0,
        follow=args.follow,
        # Following without --after: what happens from now on, not the whole kept window first.
        from_now=args.follow and args.after is None,
    )
    # A following stream has no deadline: it runs until Ctrl-C (or the server ends it).
    timeout = None if args.follow else client.timeout
    try:
        for event in stub.WatchEvents(request, metadata=client.metadata, timeout=timeout):
            if args.json:
                # One JSON object per line (jq, log shippers), written as it arrives.
                print(json.dumps(to_dict(event), sort_keys=True), flush=True)
            else:
                fields = " ".join(f"{k}={v}" for k, v in sorted(event.fields.items()))
                out.print(
                    f"{event.seq}  {format_time(event.time_ns)}  {event.kind}  {event.camera_id or '-'}  {fields}",
                    markup=False,
                    soft_wrap=True,
                )
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return EXIT_OK
