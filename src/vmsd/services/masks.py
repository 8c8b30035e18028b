"""Privacy masks: read and replace a camera's `privacy_masks` (the console's mask editor).

A mask is a polygon of normalised points (x right, y down, 0..1 of the picture), as in the
config file. They are a *display* mask: the console draws them over live and review video for the
roles that must see them masked, and a redacted export paints them into its working copy; the
recorded master is never masked.

Masks are saved to the camera's config the way camera updates are (vmsd.cameras.CameraManager):
API-managed cameras only — a camera defined in the config file is changed there
(FAILED_PRECONDITION). Replacing them needs `cameras.manage` in the camera's scope and a reason,
and is audited with the old and new polygons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vmsd.cameras import CameraChange, CameraManager, ManagedCamera, PrivacyMasks
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity

MAX_POLYGONS = 32
MAX_POINTS = 64


@dataclass(frozen=True)
class CameraMasks:
    camera_id: str
    masks: PrivacyMasks
    # False for a camera defined in the config file: its masks are changed there.
    editable: bool


def polygons(value: object, field: str = "masks") -> PrivacyMasks:
    """`value` (as decoded from JSON: lists of [x, y] lists) as polygons; INVALID_ARGUMENT naming
    the polygon and point at fault otherwise."""
    if not isinstance(value, list | tuple):
        raise validate.invalid(f"{field} must be a list of polygons, each a list of [x, y] points")
    if len(value) > MAX_POLYGONS:
        raise validate.invalid(f"{field} has more than {MAX_POLYGONS} polygons")
    found: PrivacyMasks = []
    for i, polygon in enumerate(value):
        if not isinstance(polygon, list | tuple):
            raise validate.invalid(f"{field}[{i}] must be a list of [x, y] points")
        if not 3 <= len(polygon) <= MAX_POINTS:
            raise validate.invalid(f"{field}[{i}] must have from 3 to {MAX_POINTS} points, not {len(polygon)}")
        points: list[tuple[float, float]] = []
        for j, point in enumerate(polygon):
            if not (
                isinstance(point, list | tuple)
                and len(point) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
            ):
                raise validate.invalid(f"{field}[{i}][{j}] must be [x, y]: two numbers from 0 to 1")
            x, y = float(point[0]), float(point[1])
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):  # NaN fails too
                raise validate.invalid(
                    f"{field}[{i}][{j}] [{x}, {y}] is outside 0..1 (fractions of the picture: x right, y down)"
                )
            points.append((x, y))
        found.append(points)
    return found


def _view(managed: ManagedCamera) -> CameraMasks:
    polygons = [[(x, y) for x, y in polygon] for polygon in managed.config.privacy_masks]
    return CameraMasks(managed.config.id, polygons, managed.source == "api")


class MaskService:
    def __init__(self, cameras: CameraManager) -> None:
        self._cameras = cameras

    async def get(self, principal: Principal, activity: Activity, camera_id: str) -> CameraMasks:
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id)
        principal.require(Permission.CAMERAS_VIEW, camera_id)
        return _view(self._cameras.get(camera_id))

    async def set(
        self, principal: Principal, activity: Activity, camera_id: str, masks: object, reason: str
    ) -> CameraMasks:
        """Replace the camera's masks ([] removes them all)."""
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id)
        principal.require(Permission.CAMERAS_MANAGE, camera_id)
        activity.touch(reason=validate.text(reason, "reason", required=True))
        wanted = polygons(masks)
        return _view(await self._cameras.set_privacy_masks(camera_id, wanted, _audited(activity)))


def _audited(activity: Activity) -> Callable[[CameraChange], None]:
    def authorise(change: CameraChange) -> None:
        """Nothing beyond cameras.manage to decide (masks change no footage); the audit record
        gets the old and new polygons."""
        activity.touch(**change.audit_detail())

    return authorise
