"""vmsctl's command line: the parser, and running a command with errors turned into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NoReturn

import grpc

from vmsd.cli.vmsctl.audit import cmd_audit
from vmsd.cli.vmsctl.cameras import cmd_cameras
from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_FOR_STATUS, EXIT_OK, EXIT_OTHER, EXIT_USAGE, UsageError
from vmsd.cli.vmsctl.events import cmd_events
from vmsd.cli.vmsctl.function_checks import cmd_health
from vmsd.cli.vmsctl.holds import cmd_hold_add, cmd_hold_list, cmd_hold_release
from vmsd.cli.vmsctl.recordings import cmd_play, cmd_search
from vmsd.cli.vmsctl.relay import cmd_relay
from vmsd.cli.vmsctl.report import cmd_report
from vmsd.cli.vmsctl.retention import cmd_retention
from vmsd.cli.vmsctl.site import cmd_site, cmd_site_move
from vmsd.cli.vmsctl.times import join_relative_times
from vmsd.cli.vmsctl.words import cli_words
from vmsd.errors import ErrorKind, VmsdError
from vmsd.times import TIME_FORMATS, parse_time


def cmd_export(client: Client, args: argparse.Namespace) -> int:
    # Imported here, as `verify` below: the bundle verifier (pydantic, cryptography) loads only for these commands.
    from vmsd.cli.vmsctl.export import cmd_export as run_export

    now_ns = time.time_ns()
    return run_export(client, args, parse_time(args.start, now_ns), parse_time(args.end, now_ns))


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
    audit.add_argument("--action", help="exactly this action, or a prefix ending in * (e.g. 'export.*')")
    audit.add_argument("--outcome", help="a status name such as OK or PERMISSION_DENIED")
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
        "--allow-partial",
        action="store_true",
        help="with a site: when a recorder holding part of the range cannot be reached, export what the others "
        "hold (the manifest names what may be missing) instead of failing",
    )
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

    report = sub.add_parser("report", help="the management report of a period (supervisor): HTML with charts, or JSON")
    report.add_argument("--from", dest="start", required=True, metavar="T", help=f"start: {TIME_FORMATS}")
    report.add_argument("--to", dest="end", required=True, metavar="T", help="end, same formats")
    report.add_argument(
        "--camera", action="append", metavar="CAM", help="only this camera (repeatable; default: all yours)"
    )
    report.add_argument(
        "--format", choices=("html", "json"), default="html", help="html (default, needs vmsd[report]) or json"
    )
    report.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    report.set_defaults(func=cmd_report)

    events = sub.add_parser(
        "events", help="the recorder's events (camera connected/disconnected, gaps, holds, exports, …)"
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep watching for new events (Ctrl-C ends)")
    events.add_argument("--kind", action="append", metavar="K", help="only this kind (repeatable; docs/grpc.md)")
    events.add_argument("--camera", action="append", metavar="C", help="only this camera or glob (repeatable)")
    events.add_argument(
        "--after", type=int, metavar="SEQ", help="events after this sequence number (resume where you left off)"
    )
    events.set_defaults(func=cmd_events)

    site = sub.add_parser("site", help="a site of recorders: members, lease health, camera owners and epochs")
    site.set_defaults(func=cmd_site)
    site_commands = site.add_subparsers(dest="site_command", parser_class=_Parser)
    site_move = site_commands.add_parser("move", help="move a camera to another recorder (make-before-break; audited)")
    site_move.add_argument("camera", metavar="CAM")
    site_move.add_argument("--to", required=True, metavar="REC", help="the recorder_id that should record it")
    site_move.add_argument("--reason", required=True)
    site_move.set_defaults(func=cmd_site_move)
    return parser


def _hoist_json(argv: list[str]) -> list[str]:
    """`--json` is global but people put it anywhere (`vmsctl hold list --json`)."""
    return ["--json", *(a for a in argv if a != "--json")] if "--json" in argv else argv


def _discard_stdout() -> None:
    """The reader of stdout has gone: later writes (the interpreter's final flush) go nowhere
    instead of failing with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    arguments = _hoist_json(join_relative_times(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(arguments)
    if args.command == "verify":  # offline: no server, no token
        from vmsd.cli.vmsctl.verify import cmd_verify

        try:
            verdict = cmd_verify(args.dir, args.json, args.key_fingerprint, args.trusted_key)
            sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
            return verdict
        except BrokenPipeError:
            # `vmsctl verify DIR | head`: the report was not read to its end, so this is not the
            # "verified" answer (0) a script could take it for.
            _discard_stdout()
            return EXIT_OTHER
    try:
        client = Client(args)
        status = int(args.func(client, args))
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return status
    except UsageError as error:
        print(f"vmsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except VmsdError as error:  # a time on the command line that vmsd.times.parse_time refused
        print(f"vmsctl: {error}", file=sys.stderr)
        return EXIT_USAGE if error.kind is ErrorKind.INVALID_ARGUMENT else EXIT_OTHER
    except grpc.RpcError as error:
        code = error.code()
        print(f"vmsctl: {code.name}: {cli_words(error.details() or '')}", file=sys.stderr)
        return EXIT_FOR_STATUS.get(code, EXIT_OTHER)
    except BrokenPipeError:
        # `vmsctl relay … -o - | ffplay -`: the viewer was closed. That ends the command, as it
        # ends `cat`.
        _discard_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
