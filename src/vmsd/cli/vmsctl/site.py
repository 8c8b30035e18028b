"""`vmsctl site`: the site's members and camera owners; `vmsctl site move CAM --to REC --reason TEXT`."""

from __future__ import annotations

import argparse

from rich.table import Table

from vmsd.cli.vmsctl.client import Client
from vmsd.cli.vmsctl.errors import EXIT_OK
from vmsd.cli.vmsctl.output import emit_json, out, to_dict
from vmsd.cli.vmsctl.times import format_duration
from vmsd.v1 import site_pb2


def cmd_site(client: Client, args: argparse.Namespace) -> int:
    site = client.call(client.site.GetSite, site_pb2.GetSiteRequest())
    if args.json:
        emit_json(to_dict(site))
        return EXIT_OK
    fence = "fenced" if site.fenced else "UNFENCED (its lease is not renewed: recording goes on, marked)"
    out.print(
        f"site {site.site}: answered by {site.recorder_id}, {fence}; lease TTL {format_duration(site.lease_ttl_ns)}"
    )
    members = Table("recorder", "address", "alive", "cameras", "spare", "capacity", "version", title="members")
    for m in site.members:
        members.add_row(
            m.recorder_id,
            m.address,
            "yes" if m.alive else "NO",
            str(m.cameras_owned),
            str(m.spare_capacity),
            str(m.capacity),
            m.version,
        )
    out.print(members)
    owners = Table("camera", "owner", "epoch", title="camera owners")
    for o in site.owners:
        owners.add_row(o.camera_id, o.owner or "(none: failover under way)", str(o.epoch) if o.epoch else "")
    out.print(owners)
    return EXIT_OK


def cmd_site_move(client: Client, args: argparse.Namespace) -> int:
    request = site_pb2.MoveCameraRequest(camera_id=args.camera, to=args.to, reason=args.reason)
    reply = client.call(client.site.MoveCamera, request)
    if args.json:
        emit_json(to_dict(reply))
        return EXIT_OK
    out.print(f"{reply.camera_id}: {reply.to} takes it over now; its previous recorder stops after its current segment")
    return EXIT_OK
