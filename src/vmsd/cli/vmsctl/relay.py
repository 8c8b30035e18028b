"""`vmsctl relay`: watch a camera live, as MPEG-TS to a file or stdout."""

from __future__ import annotations

import argparse
import os
import sys
import time

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK
from vmsd.cli.vmsctl.mpegts import TsWriter
from vmsd.cli.vmsctl.output import emit_json, err
from vmsd.units import NS_PER_S


def cmd_relay(client: Client, args: argparse.Namespace) -> int:
    from vmsd.v1 import live_pb2, live_pb2_grpc

    stub = live_pb2_grpc.LiveServiceStub(client.channel)  # type: ignore[no-untyped-call]
    request = live_pb2.RelayRequest(camera_id=args.camera, duration_ns=int(args.duration * NS_PER_S))
    to_stdout = args.output == "-"
    handle = sys.stdout.buffer if to_stdout else open(args.output, "wb")  # noqa: SIM115 - closed below
    writer = TsWriter(handle)
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
        emit_json(summary)
    else:
        saved = args.output if writer.frames or to_stdout else f"{args.output} (nothing written: no file)"
        err.print(f"relayed {writer.frames} frames to {saved} ({missed} missed)")
    return EXIT_OK
