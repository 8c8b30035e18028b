"""`vmsctl cameras`: the cameras and their recording state."""

from __future__ import annotations

import argparse
import time

from rich.table import Table

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK
from vmsd.cli.vmsctl.output import emit_json, out, to_dict
from vmsd.cli.vmsctl.times import format_duration, format_time
from vmsd.v1 import cameras_pb2

_STATE_NAMES = {v: k.removeprefix("CAMERA_STATE_").lower() for k, v in cameras_pb2.CameraState.items()}


def cmd_cameras(client: Client, args: argparse.Namespace) -> int:
    response = client.call(client.cameras.ListCameras, cameras_pb2.ListCamerasRequest())
    if args.json:
        emit_json(to_dict(response))
        return EXIT_OK
    table = Table(
        "id",
        "name",
        "state",
        "since",
        "last packet",
        "segments",
        "camera clock",
        "alarms",
        "last error",
        title="cameras",
    )
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
            camera_clock(status),
            ", ".join(sorted(status.alarms)) or "-",
            status.last_error or "-",  # the daemon removes credentials from it
        )
    out.print(table)
    return EXIT_OK


def camera_clock(status: cameras_pb2.CameraStatus) -> str:
    """`ok +0.003 s`, `offset +30.000 s`, `unknown`: the camera's clock against the recorder's."""
    if not status.camera_clock_status or status.camera_clock_status == "unknown":
        return "unknown"
    return f"{status.camera_clock_status} {status.camera_clock_offset_ns / 1e9:+.3f} s"
