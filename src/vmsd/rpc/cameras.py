"""CameraService: protobuf ⇄ vmsd.services.cameras."""

from __future__ import annotations

from typing import Any

from vmsd.rpc import convert
from vmsd.rpc.calls import current_call
from vmsd.services.cameras import CameraService, CameraSpec, CameraView
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc


def _spec(spec: cameras_pb2.CameraSpec) -> CameraSpec:
    return CameraSpec(
        id=spec.id,
        name=spec.name,
        location=spec.location,
        url=spec.url,
        transport=spec.transport,
        enabled=spec.enabled,
        retention_max_age_ns=spec.retention_max_age_ns,
        rtsp_source=spec.rtsp_source,
    )


def _camera(view: CameraView) -> cameras_pb2.Camera:
    message = convert.camera(view.camera, view.status)
    for kind, text in view.recorder_alarms.items():
        message.status.alarms[kind] = text
    return message


class CameraServicer(cameras_pb2_grpc.CameraServiceServicer):
    def __init__(self, cameras: CameraService) -> None:
        self._cameras = cameras

    async def ListCameras(
        self, request: cameras_pb2.ListCamerasRequest, context: Any
    ) -> cameras_pb2.ListCamerasResponse:
        views = await self._cameras.list(current_call().require_principal())
        return cameras_pb2.ListCamerasResponse(cameras=[_camera(v) for v in views])

    async def GetCamera(self, request: cameras_pb2.GetCameraRequest, context: Any) -> cameras_pb2.Camera:
        call = current_call()
        return _camera(await self._cameras.get(call.require_principal(), call, request.camera_id))

    async def AddCamera(self, request: cameras_pb2.AddCameraRequest, context: Any) -> cameras_pb2.Camera:
        call = current_call()
        principal = call.require_principal()
        return _camera(await self._cameras.add(principal, call, _spec(request.camera), request.reason))

    async def UpdateCamera(self, request: cameras_pb2.UpdateCameraRequest, context: Any) -> cameras_pb2.Camera:
        call = current_call()
        principal = call.require_principal()
        return _camera(await self._cameras.update(principal, call, _spec(request.camera), request.reason))

    async def RemoveCamera(
        self, request: cameras_pb2.RemoveCameraRequest, context: Any
    ) -> cameras_pb2.RemoveCameraResponse:
        call = current_call()
        await self._cameras.remove(call.require_principal(), call, request.camera_id, request.reason)
        return cameras_pb2.RemoveCameraResponse()
