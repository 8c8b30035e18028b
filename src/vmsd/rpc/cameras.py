"""CameraService: thin translation between protobuf and the CameraManager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from vmsd.cameras import CameraChange, CameraManager, ManagedCamera
from vmsd.config import CameraConfig, format_validation_error
from vmsd.errors import ErrorKind, VmsdError
from vmsd.rpc import convert, validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import current_call
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc


def _spec_to_config(spec: cameras_pb2.CameraSpec) -> CameraConfig:
    validate.camera_id(spec.id, "camera.id")
    data: dict[str, Any] = {
        "id": spec.id,
        "name": validate.text(spec.name, "camera.name", max_len=200),
        "location": validate.text(spec.location, "camera.location", max_len=200),
        "url": spec.url,
        "transport": spec.transport or "tcp",
        "enabled": spec.enabled,
    }
    if spec.retention_max_age_ns:
        data["retention_max_age"] = f"{spec.retention_max_age_ns}ns"
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as error:
        # Field names as the API knows them: camera.url, camera.transport, …
        message = format_validation_error(error).replace("retention_max_age", "retention_max_age_ns")
        lines = "; ".join(f"camera.{line}" for line in message.splitlines())
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, lines) from None


class CameraServicer(cameras_pb2_grpc.CameraServiceServicer):
    def __init__(self, cameras: CameraManager, recorder_alarms: Callable[[], dict[str, str]]) -> None:
        self._cameras = cameras
        # Recorder-wide alarms (disk pressure, clock doubt) show on every camera's status too.
        self._recorder_alarms = recorder_alarms

    def _camera(self, managed: ManagedCamera) -> cameras_pb2.Camera:
        message = convert.camera(managed, self._cameras.status(managed.config.id))
        for kind, text in self._recorder_alarms().items():
            message.status.alarms[kind] = text
        return message

    async def ListCameras(
        self, request: cameras_pb2.ListCamerasRequest, context: Any
    ) -> cameras_pb2.ListCamerasResponse:
        principal = current_call().require_principal()
        principal.require(Permission.CAMERAS_VIEW)
        visible = [m for m in self._cameras.list() if principal.in_scope(m.config.id)]
        return cameras_pb2.ListCamerasResponse(cameras=[self._camera(m) for m in visible])

    async def GetCamera(self, request: cameras_pb2.GetCameraRequest, context: Any) -> cameras_pb2.Camera:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.about(camera_id=camera_id)
        principal.require(Permission.CAMERAS_VIEW, camera_id)
        return self._camera(self._cameras.get(camera_id))

    def _authorised_spec(self, spec: cameras_pb2.CameraSpec, reason_text: str) -> CameraConfig:
        """Shared by Add and Update: audit what is attempted, check the role, the reason, the
        spec and then the scope of the camera it names."""
        call = current_call()
        principal = call.require_principal()
        call.touch(camera_id=spec.id[:64])
        principal.require(Permission.CAMERAS_MANAGE)
        reason = validate.text(reason_text, "reason", required=True)
        config = _spec_to_config(spec)
        principal.require(Permission.CAMERAS_MANAGE, config.id)
        call.touch(camera_id=config.id, reason=reason)
        return config

    def _authorise_change(self, change: CameraChange) -> None:
        """The one check of every camera change (called by the CameraManager under its lock, with
        the camera as it is): a source or retention change needs CAMERAS_SOURCE_RETENTION, and
        no retention may be under [retention] min_age. The audit record gets old and new values."""
        call = current_call()
        call.touch(**change.audit_detail())
        if change.source_changed or change.retention_changed:
            call.require_principal().require(Permission.CAMERAS_SOURCE_RETENTION, change.camera_id)
        age_ns = change.new.retention_max_age_ns if change.new is not None else None
        if age_ns is not None:
            problem = self._cameras.retention.floor_problem(age_ns, "camera.retention_max_age_ns")
            if problem is not None:
                raise VmsdError(ErrorKind.INVALID_ARGUMENT, problem)

    async def AddCamera(self, request: cameras_pb2.AddCameraRequest, context: Any) -> cameras_pb2.Camera:
        config = self._authorised_spec(request.camera, request.reason)
        return self._camera(await self._cameras.add(config, self._authorise_change))

    async def UpdateCamera(self, request: cameras_pb2.UpdateCameraRequest, context: Any) -> cameras_pb2.Camera:
        config = self._authorised_spec(request.camera, request.reason)
        return self._camera(await self._cameras.update(config, self._authorise_change))

    async def RemoveCamera(
        self, request: cameras_pb2.RemoveCameraRequest, context: Any
    ) -> cameras_pb2.RemoveCameraResponse:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.touch(camera_id=camera_id)
        principal.require(Permission.CAMERAS_MANAGE, camera_id)
        call.touch(reason=validate.text(request.reason, "reason", required=True))
        await self._cameras.remove(camera_id, self._authorise_change)
        return cameras_pb2.RemoveCameraResponse()
