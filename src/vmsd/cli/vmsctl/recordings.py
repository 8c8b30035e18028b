"""`vmsctl search` (recorded spans and gaps) and `vmsctl play` (review footage into MPEG-TS)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rich.table import Table

from vmsd.cli.vmsctl.client import Client, pages
from vmsd.cli.vmsctl.errors import EXIT_NOT_FOUND, EXIT_OK, UsageError
from vmsd.cli.vmsctl.output import emit_json, err, out, to_dict
from vmsd.cli.vmsctl.times import format_duration, format_time, time_range
from vmsd.recordings.documents import search_document
from vmsd.recordings.search import Gap, Span, Unavailable
from vmsd.v1 import recordings_pb2


def cmd_search(client: Client, args: argparse.Namespace) -> int:
    request = recordings_pb2.SearchRequest(camera_id=args.camera, range=time_range(args))
    response = recordings_pb2.SearchResponse()
    # With a site, every page names the recorders whose part is missing: each once.
    unavailable: dict[str, Unavailable] = {}
    for page in pages(client, client.recordings.Search, request):
        response.spans.extend(page.spans)
        response.gaps.extend(page.gaps)
        response.recorded_ns += page.recorded_ns
        unavailable.update((u.recorder, Unavailable(u.recorder, u.reason)) for u in page.unavailable)
    if args.json:
        spans = [
            Span(
                s.range.start_ns, s.range.end_ns, s.segments, s.bytes, s.video_codec, s.width, s.height, s.has_audio,
                s.recorder,
            )
            for s in response.spans
        ]  # fmt: skip
        gaps = [Gap(g.range.start_ns, g.range.end_ns, g.reason, g.detail, g.open) for g in response.gaps]
        emit_json(search_document(spans, gaps, unavailable.values()))
        return EXIT_OK
    rows: list[tuple[int, int, str, str]] = [
        (
            s.range.start_ns, s.range.end_ns, f"recorded on {s.recorder}" if s.recorder else "recorded",
            f"{s.segments} segment(s), {s.video_codec} {s.width}x{s.height}",
        )
        for s in response.spans
    ]  # fmt: skip
    rows += [
        (g.range.start_ns, g.range.end_ns, f"gap: {g.reason}", g.detail + (" (ongoing)" if g.open else ""))
        for g in response.gaps
    ]
    table = Table("from", "to", "length", "what", "detail", title=f"{args.camera}")
    for start_ns, end_ns, what, detail in sorted(rows):
        table.add_row(format_time(start_ns), format_time(end_ns), format_duration(end_ns - start_ns), what, detail)
    out.print(table)
    for missing in unavailable.values():
        err.print(f"recorder {missing.recorder} is unavailable, its footage is not listed: {missing.reason}")
    total = request.range.end_ns - request.range.start_ns
    out.print(
        f"recorded {format_duration(response.recorded_ns)} of {format_duration(total)}"
        f" ({100 * response.recorded_ns / total:.1f}%)"
    )
    return EXIT_OK


def cmd_play(client: Client, args: argparse.Namespace) -> int:
    request = recordings_pb2.PlayRequest(camera_id=args.camera, range=time_range(args), reason=args.reason)
    sink = sys.stdout.buffer if args.output == "-" else None
    written = 0
    header: Any = None
    trailer: Any = None
    target = args.output + ".partial" if sink is None else "-"
    handle = sink or open(target, "wb")  # noqa: SIM115 - closed below, renamed on success
    try:
        for chunk in client.recordings.Play(request, metadata=client.metadata, timeout=client.timeout):
            kind = chunk.WhichOneof("kind")
            if kind == "data":
                handle.write(chunk.data)
                written += len(chunk.data)
            elif kind == "header":
                header = chunk.header
            elif kind == "trailer":
                trailer = chunk.trailer
    finally:
        if sink is None:
            handle.close()
            if trailer is None or not written:  # failed, cut short or empty: no file that looks like a clip
                os.unlink(target)
    if trailer is not None and not written:
        err.print(f"the daemon sent no footage of {args.camera} for this range; nothing was saved")
        return EXIT_NOT_FOUND
    if sink is None:
        if trailer is None:
            raise UsageError("the stream ended without its trailer; nothing was saved")
        os.replace(target, args.output)
    summary = {
        "output": args.output,
        "bytes": written,
        "container": header.container if header else "",
        "first_packet_ns": header.first_packet_ns if header else 0,
        "last_packet_ns": trailer.last_packet_ns if trailer else 0,
        "video_frames": trailer.video_frames if trailer else 0,
        "gaps": [to_dict(g) for g in header.gaps] if header else [],
        # With a [site]: which recorder played each stretch (as played: the trailer's), and the
        # recorders that did not answer.
        "parts": [to_dict(p) for p in trailer.parts] if trailer else [],
        "unavailable": [to_dict(u) for u in header.unavailable] if header else [],
    }
    if args.json:
        print(json.dumps(summary, indent=2), file=sys.stderr if sink else sys.stdout)
    else:
        err.print(
            f"wrote {written} bytes ({summary['video_frames']} frames, MPEG-TS) to {args.output}: "
            f"{format_time(int(summary['first_packet_ns']))} → {format_time(int(summary['last_packet_ns']))}"
        )
        for part in trailer.parts if trailer else []:
            if part.state != "played":  # never left out silently
                err.print(
                    f"{part.state}: {part.recorder} {format_time(part.range.start_ns)} →"
                    f" {format_time(part.range.end_ns)} not played ({part.detail})"
                )
        for missing in header.unavailable if header else []:
            err.print(f"unavailable: recorder {missing.recorder}: {missing.reason}")
    return EXIT_OK
