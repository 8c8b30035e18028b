"""SiteService: protobuf ⇄ vmsd.services.site (the site's members, camera owners, moves)."""

from __future__ import annotations

from typing import Any

from vmsd.rpc.calls import current_call
from vmsd.services.site import SiteService
from vmsd.v1 import site_pb2, site_pb2_grpc


class SiteServicer(site_pb2_grpc.SiteServiceServicer):
    def __init__(self, site: SiteService) -> None:
        self._site = site

    async def GetSite(self, request: site_pb2.GetSiteRequest, context: Any) -> site_pb2.GetSiteResponse:
        status = await self._site.status(current_call().require_principal())
        return site_pb2.GetSiteResponse(
            site=status.site,
            recorder_id=status.recorder_id,
            fenced=status.fenced,
            lease_ttl_ns=status.lease_ttl_ns,
            members=[
                site_pb2.SiteMember(
                    recorder_id=m.recorder_id,
                    address=m.address,
                    alive=m.alive,
                    cameras_owned=m.owned,
                    spare_capacity=m.spare,
                    capacity=m.capacity,
                    version=m.version,
                )
                for m in status.members
            ],
            owners=[site_pb2.CameraOwner(camera_id=o.camera_id, owner=o.owner, epoch=o.epoch) for o in status.owners],
        )

    async def MoveCamera(self, request: site_pb2.MoveCameraRequest, context: Any) -> site_pb2.MoveCameraResponse:
        call = current_call()
        await self._site.move(call.require_principal(), call, request.camera_id, request.to, request.reason)
        return site_pb2.MoveCameraResponse(camera_id=request.camera_id, to=request.to)
