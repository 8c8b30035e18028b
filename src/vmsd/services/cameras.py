"""Cameras: list, get, add, update, remove — with the one check of every camera change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from vmsd.cameras import CameraChange, CameraManager, ManagedCamera
from vmsd.config import CameraConfig, format_validation_error
from vmsd.errors import ErrorKind, VmsdError
from vmsd.ingest.hub import StreamConfig
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity


@dataclass(frozen=True)
class CameraSpec:
    """A camera as a client describes it (API field names; 0 retention: the recorder's)."""

    id: str
    name: str = ""
    location: str = ""
    url: str = ""
    transport: str = ""
    enabled: bool = False
    retention_max_age_ns: int = 0
    rtsp_source: str = ""  # [[cameras]] source; "": the config's default ("native")


@dataclass(frozen=True)
class CameraView:
    """A camera with its recorder's status and the recorder-wide alarms (disk pressure, clock
    doubt), which show on every camera's status too."""

    camera: ManagedCamera
    status: CameraStatus | None
    recorder_alarms: dict[str, str] = field(default_factory=dict)
    # What the camera sends now (codec, picture size), when its recorder has seen a keyframe.
    stream: StreamConfig | None = None


def _spec_to_config(spec: CameraSpec) -> CameraConfig:
    validate.camera_id(spec.id, "camera.id")
    data: dict[str, Any] = {
        "id": spec.id,
        "name": validate.text(spec.name, "camera.name", max_len=200),
        "location": validate.text(spec.location, "camera.location", max_len=200),
        "url": spec.url,
        "transport": spec.transport or "tcp",
        "enabled": spec.enabled,
    }
    if spec.rtsp_source:  # else the config's default, so the API and a config file agree
        data["source"] = spec.rtsp_source
    if spec.retention_max_age_ns:
        data["retention_max_age"] = f"{spec.retention_max_age_ns}ns"
    try:
        return CameraConfig.model_validate(data)
    except ValidationError as error:
        # Field names as the API knows them: camera.url, camera.transport, …
        message = format_validation_error(error).replace("retention_max_age", "retention_max_age_ns")
        # The config's `source` is the API's `rtsp_source` (Camera.source says config/api).
        lines = "; ".join(
            f"camera.{'rtsp_' if line.startswith('source') else ''}{line}" for line in message.splitlines()
        )
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, lines) from None


class CameraService:
    def __init__(self, cameras: CameraManager, recorder_alarms: Callable[[], dict[str, str]]) -> None:
        self._cameras = cameras
        self._recorder_alarms = recorder_alarms

    def _view(self, managed: ManagedCamera) -> CameraView:
        camera_id = managed.config.id
        recorder = self._cameras.recorders().get(camera_id)
        stream = recorder.hub.stream if recorder is not None else None
        return CameraView(managed, self._cameras.status(camera_id), dict(self._recorder_alarms()), stream)

    def recording(self) -> dict[str, bool]:
        """Each configured camera: is it recording now (the transports' per-camera health)."""
        recording = {}
        for managed in self._cameras.list():
            status = self._cameras.status(managed.config.id)
            recording[managed.config.id] = status is not None and status.state is CameraState.RECORDING
        return recording

    async def list(self, principal: Principal) -> list[CameraView]:
        principal.require(Permission.CAMERAS_VIEW)
        return [self._view(m) for m in self._cameras.list() if principal.in_scope(m.config.id)]

    async def get(self, principal: Principal, activity: Activity, camera_id: str) -> CameraView:
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id)
        principal.require(Permission.CAMERAS_VIEW, camera_id)
        return self._view(self._cameras.get(camera_id))

    async def add(self, principal: Principal, activity: Activity, spec: CameraSpec, reason: str) -> CameraView:
        config = self._authorised_spec(principal, activity, spec, reason)
        return self._view(await self._cameras.add(config, self._authorise_change(principal, activity)))

    async def update(self, principal: Principal, activity: Activity, spec: CameraSpec, reason: str) -> CameraView:
        config = self._authorised_spec(principal, activity, spec, reason)
        return self._view(await self._cameras.update(config, self._authorise_change(principal, activity)))

    async def remove(self, principal: Principal, activity: Activity, camera_id: str, reason: str) -> None:
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id)
        principal.require(Permission.CAMERAS_MANAGE, camera_id)
        activity.touch(reason=validate.text(reason, "reason", required=True))
        await self._cameras.remove(camera_id, self._authorise_change(principal, activity))

    def _authorised_spec(
        self, principal: Principal, activity: Activity, spec: CameraSpec, reason_text: str
    ) -> CameraConfig:
        """Shared by add and update: audit what is attempted, check the role, the reason, the
        spec and then the scope of the camera it names."""
        activity.touch(camera_id=spec.id[:64])
        principal.require(Permission.CAMERAS_MANAGE)
        reason = validate.text(reason_text, "reason", required=True)
        config = _spec_to_config(spec)
        principal.require(Permission.CAMERAS_MANAGE, config.id)
        activity.touch(camera_id=config.id, reason=reason)
        return config

    def _authorise_change(self, principal: Principal, activity: Activity) -> Callable[[CameraChange], None]:
        def authorise(change: CameraChange) -> None:
            """The one check of every camera change (called by the CameraManager under its lock,
            with the camera as it is): a source or retention change needs
            CAMERAS_SOURCE_RETENTION, and no retention may be under [retention] min_age. The
            audit record gets old and new values."""
            activity.touch(**change.audit_detail())
            if change.source_changed or change.retention_changed:
                principal.require(Permission.CAMERAS_SOURCE_RETENTION, change.camera_id)
            age_ns = change.new.retention_max_age_ns if change.new is not None else None
            if age_ns is not None:
                problem = self._cameras.retention.floor_problem(age_ns, "camera.retention_max_age_ns")
                if problem is not None:
                    raise VmsdError(ErrorKind.INVALID_ARGUMENT, problem)

        return authorise
