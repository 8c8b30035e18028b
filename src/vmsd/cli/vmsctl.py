"""`vmsctl`: the command-line client of vmsd's gRPC control plane.

    vmsctl [--server HOST:PORT] [--token-file F] [--tls-ca F --tls-cert F --tls-key F] [--json] COMMAND

Commands: cameras · search · play · relay · hold add|list|release · retention · export · verify
(offline) · audit [--since T] [--verify] · health. `VMSD_SERVER` stands in for --server. The token:
--token-file F, else --token T (visible to other users in `ps`), else `VMSD_TOKEN`.
A reader that closes stdout (`relay … -o - | ffplay -`, then quitting the player) ends the command
quietly with 0; a relay or play that fails or receives nothing leaves no output file.
Times: ISO-8601 with `Z` or an offset, or relative: `now`, `-30s`, `-10m`, `-2h`, `-1d`.
Exit codes: 0 ok, 2 usage error, 3 not found, 4 permission denied/unauthenticated, 1 other;
`verify` also 5: the bundle is intact but its key was not checked against a trusted one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from vmsd.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    cameras_pb2,
    cameras_pb2_grpc,
    common_pb2,
    health_pb2,
    health_pb2_grpc,
    holds_pb2,
    holds_pb2_grpc,
    recordings_pb2,
    recordings_pb2_grpc,
)

NS_PER_S = 1_000_000_000
EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_DENIED = 0, 1, 2, 3, 4
_EXIT_FOR_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_DENIED,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_DENIED,
}
_MAX_PAGE_SIZE = 10_000  # the server's maximum page_size
_RELATIVE_RE = re.compile(r"^-(\d+)(s|m|h|d)$")
_UNIT_NS = {"s": NS_PER_S, "m": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": 86400 * NS_PER_S}
_STATE_NAMES = {v: k.removeprefix("CAMERA_STATE_").lower() for k, v in cameras_pb2.CameraState.items()}

# Piped output is not squeezed into 80 columns: it is read by people with wide terminals and grep.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False)
_TIME_OPTIONS = ("--from", "--to", "--since", "--until")
TIME_FORMATS = (
    "ISO-8601 in UTC (2026-11-24T21:00:00Z) or with an offset (2026-11-24T21:00:00+01:00), now, -30s, -10m, -2h, -1d"
)


class UsageError(Exception):
    pass


def parse_time(text: str, now_ns: int | None = None) -> int:
    """ISO-8601 with 'Z' or an offset, or relative to now ('now', '-30s', '-10m', '-2h', '-1d')."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    text = text.strip()
    if text == "now":
        return now_ns
    match = _RELATIVE_RE.match(text)
    if match:
        return now_ns - int(match.group(1)) * _UNIT_NS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}: use ISO-8601 (e.g. 2026-11-24T10:00:00Z) or -30s/-10m/-2h/-1d/now"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"time {text!r} has no timezone: add 'Z' for UTC or an offset such as +01:00")
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def format_time(ns: int) -> str:
    if ns <= 0:
        return "-"
    seconds, nanos = divmod(ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1_000_000:03d}Z"


def format_duration(ns: int) -> str:
    seconds = ns / NS_PER_S
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _days_or_seconds(seconds: str) -> str:
    value = int(seconds)
    return f"{value // 86400} day(s)" if value % 86400 == 0 else f"{value} s"


_NO_TOKEN = "no token given: pass --token or set VMSD_TOKEN"
# The daemon's messages name request fields (the gRPC API's words: `range.end_ns`, metadata); the
# person at the terminal typed options. Fields are renamed where a message starts with one; the
# unambiguous ones (`range.start_ns`, `until_ns`, ...) wherever they appear.
_CLI_WORDS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"range\.(start|end)_ns (-?\d+) is not a time between 2000 and 2100 in nanoseconds since the epoch"),
        lambda m: f"{'--from' if m[1] == 'start' else '--to'} {format_time(int(m[2]))} is not between 2000 and 2100",
    ),
    (re.compile(r"\brange\.start_ns\b"), "--from"),
    (re.compile(r"\brange\.end_ns\b"), "--to"),
    (
        re.compile(r"^range is longer than the maximum of (\d+) s"),
        lambda m: f"--from … --to spans more than the maximum of {_days_or_seconds(m[1])}",
    ),
    (re.compile(r"\(or 0: until released\)"), "(or leave --until out: until released)"),
    (re.compile(r"\bsince_ns\b"), "--since"),
    (re.compile(r"\buntil_ns\b"), "--until"),
    (re.compile(r"^duration_ns\b"), "--duration"),
    (re.compile(r"^case_ref\b"), "--case"),
    (re.compile(r"^(reason|recipient|principal|limit)\b"), r"--\1"),
    (re.compile(r"^camera_ids\[\d+\]"), "camera"),
    (re.compile(r"^camera_ids\b"), "the camera list"),
    (re.compile(r"^camera_id\b"), "camera"),
    (re.compile(r"\bthis principal's scope"), "this token's cameras"),
    (re.compile(r"^(missing|this call needs) 'authorization: Bearer <token>' metadata$"), _NO_TOKEN),
    (
        re.compile(r"^authorization metadata must be 'Bearer <token>'$"),
        "the token is empty: check --token or VMSD_TOKEN",
    ),
]


def cli_words(message: str) -> str:
    """A daemon error message in the CLI's words (option names instead of request fields)."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message


# -- connection ---------------------------------------------------------------------------------


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        server = args.server or os.environ.get("VMSD_SERVER") or "127.0.0.1:50051"
        self.token = _token(args)
        if args.tls_ca or args.tls_cert or args.tls_key:
            if bool(args.tls_cert) != bool(args.tls_key):
                raise UsageError("--tls-cert and --tls-key go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(args.tls_ca) if args.tls_ca else None,
                private_key=_read(args.tls_key) if args.tls_key else None,
                certificate_chain=_read(args.tls_cert) if args.tls_cert else None,
            )
            self.channel = grpc.secure_channel(server, credentials)
        else:
            self.channel = grpc.insecure_channel(server)
        self.timeout = args.timeout
        # The generated stubs are untyped.
        self.cameras = cameras_pb2_grpc.CameraServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.recordings = recordings_pb2_grpc.RecordingServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.holds = holds_pb2_grpc.HoldServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.retention = holds_pb2_grpc.RetentionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.checks = health_pb2_grpc.FunctionCheckServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=self.timeout)


def _token(args: argparse.Namespace) -> str:
    """--token-file, else --token, else $VMSD_TOKEN (a command line is visible to every user)."""
    if args.token_file:
        path = args.token_file
        text = _read(path).decode("utf-8", errors="replace").strip()
        if not text:
            raise UsageError(f"token file {path} is empty")
        if os.stat(path).st_mode & 0o077:
            print(f"vmsctl: warning: token file {path} is readable by other users (chmod 600 it)", file=sys.stderr)
        return text
    return str(args.token or os.environ.get("VMSD_TOKEN") or "").strip()


def _pages(client: Client, method: Callable[..., Any], request: Any) -> Iterator[Any]:
    """Every reply of a paged list call: the server keeps each under its message size cap."""
    while True:
        page = client.call(method, request)
        yield page
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def _emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=False))


def _to_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result


# -- commands -----------------------------------------------------------------------------------


def cmd_cameras(client: Client, args: argparse.Namespace) -> int:
    response = client.call(client.cameras.ListCameras, cameras_pb2.ListCamerasRequest())
    if args.json:
        _emit_json(_to_dict(response))
        return EXIT_OK
    table = Table("id", "name", "state", "since", "last packet", "segments", "alarms", "last error", title="cameras")
    now_ns = time.time_ns()
    for camera in response.cameras:
        status = camera.status
        age = format_duration(now_ns - status.last_packet_ns) + " ago" if status.last_packet_ns else "never"
        table.add_row(
            camera.id,
            camera.name,
            _STATE_NAMES.get(status.state, "?"),
            format_time(status.state_since_ns),
            age,
            str(status.segments_written),
            ", ".join(sorted(status.alarms)) or "-",
            status.last_error or "-",  # the daemon removes credentials from it
        )
    out.print(table)
    return EXIT_OK


def _range(args: argparse.Namespace) -> common_pb2.TimeRange:
    now_ns = time.time_ns()
    return common_pb2.TimeRange(start_ns=parse_time(args.start, now_ns), end_ns=parse_time(args.end, now_ns))


def cmd_search(client: Client, args: argparse.Namespace) -> int:
    request = recordings_pb2.SearchRequest(camera_id=args.camera, range=_range(args))
    response = recordings_pb2.SearchResponse()
    for page in _pages(client, client.recordings.Search, request):
        response.spans.extend(page.spans)
        response.gaps.extend(page.gaps)
        response.recorded_ns += page.recorded_ns
    if args.json:
        _emit_json(_to_dict(response))
        return EXIT_OK
    rows: list[tuple[int, int, str, str]] = [
        (s.range.start_ns, s.range.end_ns, "recorded", f"{s.segments} segment(s), {s.video_codec} {s.width}x{s.height}")
        for s in response.spans
    ]
    rows += [
        (g.range.start_ns, g.range.end_ns, f"gap: {g.reason}", g.detail + (" (ongoing)" if g.open else ""))
        for g in response.gaps
    ]
    table = Table("from", "to", "length", "what", "detail", title=f"{args.camera}")
    for start_ns, end_ns, what, detail in sorted(rows):
        table.add_row(format_time(start_ns), format_time(end_ns), format_duration(end_ns - start_ns), what, detail)
    out.print(table)
    total = request.range.end_ns - request.range.start_ns
    out.print(
        f"recorded {format_duration(response.recorded_ns)} of {format_duration(total)}"
        f" ({100 * response.recorded_ns / total:.1f}%)"
    )
    return EXIT_OK


def cmd_play(client: Client, args: argparse.Namespace) -> int:
    request = recordings_pb2.PlayRequest(camera_id=args.camera, range=_range(args), reason=args.reason)
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
        "gaps": [_to_dict(g) for g in header.gaps] if header else [],
    }
    if args.json:
        print(json.dumps(summary, indent=2), file=sys.stderr if sink else sys.stdout)
    else:
        err.print(
            f"wrote {written} bytes ({summary['video_frames']} frames, MPEG-TS) to {args.output}: "
            f"{format_time(int(summary['first_packet_ns']))} → {format_time(int(summary['last_packet_ns']))}"
        )
    return EXIT_OK


def cmd_audit(client: Client, args: argparse.Namespace) -> int:
    if args.verify:
        result = client.call(client.audit.VerifyAudit, audit_pb2.VerifyAuditRequest())
        if args.json:
            _emit_json(_to_dict(result))
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
        page_size=min(args.limit or _MAX_PAGE_SIZE, _MAX_PAGE_SIZE),
    )
    # Pages run from the newest record back, each under the server's message size cap.
    records: list[audit_pb2.AuditRecord] = []
    for page in _pages(client, client.audit.QueryAudit, request):
        records[:0] = page.records
        if args.limit and len(records) >= args.limit:
            break
    shown = records[-args.limit :] if args.limit else records
    truncated = page.truncated or len(shown) < len(records)
    response = audit_pb2.QueryAuditResponse(records=shown, truncated=truncated)
    if args.json:
        _emit_json(_to_dict(response))
        return EXIT_OK
    table = Table("seq", "time", "principal", "action", "camera", "range", "reason", "outcome", title="audit")
    for record in response.records:
        span = (
            f"{format_time(record.range.start_ns)} +{format_duration(record.range.end_ns - record.range.start_ns)}"
            if record.range.start_ns
            else ""
        )
        table.add_row(
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
    if response.truncated:
        out.print(f"(showing the newest {len(response.records)}; narrow with --since or raise --limit)")
    return EXIT_OK


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
        range=_range(args),
        case_ref=args.case,
        reason=args.reason,
        until_ns=parse_time(args.until, now_ns) if args.until else 0,
    )
    hold = client.call(client.holds.AddHold, request)
    if args.json:
        _emit_json(_to_dict(hold))
    else:
        out.print(_hold_table([hold]))
    return EXIT_OK


def cmd_hold_list(client: Client, args: argparse.Namespace) -> int:
    request = holds_pb2.ListHoldsRequest(include_released=args.all, camera_id=args.camera or "")
    response = holds_pb2.ListHoldsResponse()
    for page in _pages(client, client.holds.ListHolds, request):
        response.holds.extend(page.holds)
    if args.json:
        _emit_json(_to_dict(response))
    else:
        out.print(_hold_table(response.holds))
    return EXIT_OK


def cmd_hold_release(client: Client, args: argparse.Namespace) -> int:
    hold = client.call(client.holds.ReleaseHold, holds_pb2.ReleaseHoldRequest(hold_id=args.id, reason=args.reason))
    if args.json:
        _emit_json(_to_dict(hold))
    else:
        out.print(_hold_table([hold]))
    return EXIT_OK


def cmd_retention(client: Client, args: argparse.Namespace) -> int:
    if args.confirm_clock:
        status = client.call(client.retention.ConfirmClock, holds_pb2.ConfirmClockRequest(reason=args.confirm_clock))
    else:
        status = client.call(client.retention.GetRetentionStatus, holds_pb2.RetentionStatusRequest())
    now_ns = time.time_ns()
    since_ns = parse_time(args.since, now_ns)
    request = holds_pb2.ErasureSummaryRequest(range=common_pb2.TimeRange(start_ns=since_ns, end_ns=now_ns + 1))
    summary = holds_pb2.ErasureSummaryResponse()
    for page in _pages(client, client.retention.ErasureSummary, request):
        summary.days.extend(page.days)
    if args.json:
        _emit_json({"status": _to_dict(status), "erasures": _to_dict(summary)["days"]})
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


class _TsWriter:
    """Muxes relayed packets into MPEG-TS (playable while written, also to a pipe)."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self._output: Any = None
        self._video: Any = None
        self._audio: Any = None
        self._extradata = b""
        self._codec = ""
        self._origin_ns: int | None = None
        self._last_dts: dict[int, int] = {}
        self.frames = 0

    def configure(self, config: Any) -> None:
        import io

        import av

        self._extradata = bytes(config.video_extradata)
        self._codec = config.video_codec
        if self._output is not None:
            # The camera reconnected or changed parameters: in-band parameter sets at the next
            # keyframe carry the change; MPEG-TS decoders follow them.
            return
        template = av.open(io.BytesIO(bytes(config.init_segment)), format="mp4")
        self._output = av.open(self._sink, "w", format="mpegts", options={"flush_packets": "1"})
        self._video = self._output.add_stream_from_template(template.streams.video[0])
        if template.streams.audio:
            self._audio = self._output.add_stream_from_template(template.streams.audio[0])
        template.close()

    def write(self, packet: Any) -> None:
        from fractions import Fraction

        import av

        from vmsd.ingest.bitstream import parameter_sets

        if self._output is None:
            return
        video = packet.kind == 1
        stream = self._video if video else self._audio
        if stream is None:
            return
        data = bytes(packet.data)
        if video and packet.keyframe and parameter_sets(self._codec, data[:4096]) is None:
            data = self._extradata + data  # a camera that sends its SPS/PPS only out of band
        if self._origin_ns is None:
            if not (video and packet.keyframe):
                return  # start the file on a keyframe
            self._origin_ns = packet.dts_ns
        dts = (packet.dts_ns - self._origin_ns) * 90_000 // NS_PER_S
        pts = (packet.pts_ns - self._origin_ns) * 90_000 // NS_PER_S
        if dts < 0 or dts <= self._last_dts.get(packet.kind, -1):
            return
        self._last_dts[packet.kind] = dts
        out = av.Packet(data)
        out.stream = stream
        out.time_base = Fraction(1, 90_000)
        out.dts, out.pts = dts, max(pts, dts)
        out.is_keyframe = bool(packet.keyframe)
        try:
            self._output.mux(out)
        except BrokenPipeError:
            self._output = None  # the reader has gone: not even the trailer can be written
            raise
        self.frames += video

    def close(self) -> None:
        if self._output is not None:
            self._output.close()


def cmd_relay(client: Client, args: argparse.Namespace) -> int:
    from vmsd.v1 import live_pb2, live_pb2_grpc

    stub = live_pb2_grpc.LiveServiceStub(client.channel)  # type: ignore[no-untyped-call]
    request = live_pb2.RelayRequest(camera_id=args.camera, duration_ns=int(args.duration * NS_PER_S))
    to_stdout = args.output == "-"
    handle = sys.stdout.buffer if to_stdout else open(args.output, "wb")  # noqa: SIM115 - closed below
    writer = _TsWriter(handle)
    missed = 0
    began = time.monotonic()
    try:
        for message in stub.Relay(request, metadata=client.metadata):
            kind = message.WhichOneof("kind")
            if kind == "config":
                writer.configure(message.config)
            elif kind == "packet":
                writer.write(message.packet)
            elif kind == "notice":
                missed = message.notice.missed_frames_total
                err.print(f"relay: fell behind, {message.notice.missed_frames} frames skipped")
    except KeyboardInterrupt:
        pass
    finally:
        writer.close()
        if not to_stdout:
            handle.close()
            if writer.frames == 0:  # failed, or nothing came: no empty file left behind
                os.unlink(args.output)
    summary = {
        "output": args.output,
        "frames": writer.frames,
        "missed_frames": missed,
        "seconds": round(time.monotonic() - began, 1),
    }
    if args.json and not to_stdout:
        _emit_json(summary)
    else:
        saved = args.output if writer.frames or to_stdout else f"{args.output} (nothing written: no file)"
        err.print(f"relayed {writer.frames} frames to {saved} ({missed} missed)")
    return EXIT_OK


def cmd_export(client: Client, args: argparse.Namespace) -> int:
    from vmsd.cli.export import cmd_export as run_export

    now_ns = time.time_ns()
    return run_export(client, args, parse_time(args.start, now_ns), parse_time(args.end, now_ns))


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
        _emit_json(_to_dict(report))
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


# -- parsing ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations of the global options: `search --to T` must never be read as a prefix of
    # --token/--token-file (ambiguous, or worse, taken as the token).
    parser = _Parser(prog="vmsctl", description="Control a vmsd recorder over gRPC.", allow_abbrev=False)
    parser.add_argument("--server", help="HOST:PORT (default $VMSD_SERVER or 127.0.0.1:50051)")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token-file", metavar="FILE", help="read the bearer token from FILE (default $VMSD_TOKEN)")
    token.add_argument(
        "--token",
        help="bearer token: visible to other users of this machine (ps); prefer --token-file or $VMSD_TOKEN",
    )
    parser.add_argument("--tls-ca", help="CA certificate to verify the server")
    parser.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", help="client key (mutual TLS)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call deadline in seconds (default 30)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("cameras", help="cameras and their recording state").set_defaults(func=cmd_cameras)

    search = sub.add_parser("search", help="recorded spans and gaps of a camera")
    search.add_argument("camera")
    search.add_argument("--from", dest="start", required=True, metavar="T", help=f"start: {TIME_FORMATS}")
    search.add_argument("--to", dest="end", default="now", metavar="T", help="end, same formats (default now)")
    search.set_defaults(func=cmd_search)

    play = sub.add_parser("play", help="review recorded footage into a playable MPEG-TS file")
    play.add_argument("camera")
    play.add_argument("--from", dest="start", required=True, metavar="T", help=f"start: {TIME_FORMATS}")
    play.add_argument("--to", dest="end", required=True, metavar="T", help="end, same formats")
    play.add_argument("--reason", required=True, help="why the footage is reviewed (audited)")
    play.add_argument("-o", "--output", required=True, help="file to write, or - for stdout")
    play.set_defaults(func=cmd_play)

    audit = sub.add_parser("audit", help="the audit trail")
    audit.add_argument("--since", metavar="T", help=f"from: {TIME_FORMATS}")
    audit.add_argument("--until", metavar="T", help="to, same formats")
    audit.add_argument("--camera")
    audit.add_argument("--principal")
    audit.add_argument("--limit", type=int, default=1000, help="show the newest N records (default 1000; 0: all)")
    audit.add_argument("--verify", action="store_true", help="verify the whole hash chain")
    audit.set_defaults(func=cmd_audit)

    relay = sub.add_parser("relay", help="watch a camera live: write MPEG-TS to a file or stdout")
    relay.add_argument("camera")
    relay.add_argument("--duration", type=float, default=0.0, metavar="S", help="seconds (default: until Ctrl-C)")
    relay.add_argument("-o", "--output", required=True, help="file to write, or - for stdout (e.g. | ffplay -)")
    relay.set_defaults(func=cmd_relay)

    export = sub.add_parser("export", help="make a signed evidence bundle and download it to DIR")
    export.add_argument("camera")
    export.add_argument("--from", dest="start", required=True, metavar="T", help=f"start: {TIME_FORMATS}")
    export.add_argument("--to", dest="end", required=True, metavar="T", help="end, same formats")
    export.add_argument("--case", required=True, help="case reference (recorded in the manifest and audit)")
    export.add_argument("--reason", required=True)
    export.add_argument("--recipient", default="", help="who the evidence is released to")
    export.add_argument("--redact", action="store_true", help="also a working copy with privacy masks blacked out")
    export.add_argument("--no-originals", action="store_true", help="leave out the bit-exact recorded segments")
    export.add_argument("--no-hold", action="store_true", help="do not place an evidence hold on the range")
    export.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="a new or empty folder (never written over)"
    )
    export.set_defaults(func=cmd_export)

    verify = sub.add_parser(
        "verify",
        help="verify an export bundle offline (no server needed)",
        description="Verify an export bundle offline. Exit 0: verified against the trusted key given; "
        "1: verification failed; 2: usage error; 5: intact and signed, but the key was not checked against "
        "a trusted one (give --key-fingerprint or --trusted-key, obtained from the recorder's operator).",
    )
    verify.add_argument("dir")
    verify.add_argument(
        "--key-fingerprint",
        metavar="FP",
        help="the recorder key's SHA-256 fingerprint, from its operator (`vmsd key-fingerprint` on the recorder)",
    )
    verify.add_argument(
        "--trusted-key", metavar="FILE", help="the recorder's public key (PEM), obtained from its operator"
    )
    verify.set_defaults(func=None)

    hold = sub.add_parser("hold", help="evidence holds: footage nothing erases").add_subparsers(
        dest="hold_command", required=True, parser_class=_Parser
    )
    hold_add = hold.add_parser("add", help="place a hold on one or more cameras' footage")
    hold_add.add_argument("cameras", nargs="+", metavar="CAM")
    hold_add.add_argument("--from", dest="start", required=True, metavar="T", help=f"start: {TIME_FORMATS}")
    hold_add.add_argument("--to", dest="end", required=True, metavar="T", help="end, same formats")
    hold_add.add_argument("--case", required=True, help="case reference, e.g. a crime number")
    hold_add.add_argument("--reason", required=True)
    hold_add.add_argument("--until", metavar="T", help="expiry (review) date, same formats; default: until released")
    hold_add.set_defaults(func=cmd_hold_add)
    hold_list = hold.add_parser("list", help="holds (active ones unless --all)")
    hold_list.add_argument("--all", action="store_true", help="include released and lapsed holds")
    hold_list.add_argument("--camera")
    hold_list.set_defaults(func=cmd_hold_list)
    hold_release = hold.add_parser("release", help="release a hold (supervisor)")
    hold_release.add_argument("id", type=int)
    hold_release.add_argument("--reason", required=True)
    hold_release.set_defaults(func=cmd_hold_release)

    retention = sub.add_parser("retention", help="retention status, alarms and the erasure log")
    retention.add_argument("--since", default="-1d", metavar="T", help=f"erasures since (default -1d): {TIME_FORMATS}")
    retention.add_argument("--confirm-clock", metavar="REASON", help="resume erasure after a clock alarm")
    retention.set_defaults(func=cmd_retention)

    health = sub.add_parser(
        "health", help="function check: is every camera recording a usable picture (runs one now unless --last/--id)"
    )
    health.add_argument("--camera", action="append", metavar="CAM", help="check only this camera (repeatable)")
    health.add_argument("--last", action="store_true", help="show the newest stored check instead of running one")
    health.add_argument("--id", type=int, default=0, help="show a stored check by id")
    health.set_defaults(func=cmd_health)
    return parser


def _join_relative_times(argv: list[str]) -> list[str]:
    """Let `--from -2h` through: argparse would take `-2h` for an option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if item in _TIME_OPTIONS and _RELATIVE_RE.match(following):
            joined.append(f"{item}={following}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def _hoist_json(argv: list[str]) -> list[str]:
    """`--json` is global but people put it anywhere (`vmsctl hold list --json`)."""
    return ["--json", *(a for a in argv if a != "--json")] if "--json" in argv else argv


def main(argv: list[str] | None = None) -> int:
    arguments = _hoist_json(_join_relative_times(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(arguments)
    if args.command == "verify":  # offline: no server, no token
        from vmsd.cli.verify import cmd_verify

        return cmd_verify(args.dir, args.json, args.key_fingerprint, args.trusted_key)
    try:
        client = Client(args)
        return int(args.func(client, args))
    except UsageError as error:
        print(f"vmsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as error:
        code = error.code()
        print(f"vmsctl: {code.name}: {cli_words(error.details() or '')}", file=sys.stderr)
        return _EXIT_FOR_STATUS.get(code, EXIT_OTHER)
    except BrokenPipeError:
        # `vmsctl relay … -o - | ffplay -`: the viewer was closed. That ends the command, as it
        # ends `cat`; later writes (the interpreter's final flush) go nowhere instead of failing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
