"""A still picture of a camera (the console's mask editor draws on it): its newest recorded
keyframe as a JPEG, decoded on a worker thread.

Needs `live.relay` in the camera's scope, like watching it live, and is audited like a look at
live pictures (camera, the picture's time, masked or not). For a role that must see privacy masks
the transport asks for `masked`, and the masks are painted into the picture here, so the
unmasked picture never leaves the recorder for that role.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.redact import Polygon, mask_yuv420p
from vmsd.recordings.still import Picture, still
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.storage.store import Storage


class StillService:
    def __init__(self, directory: CameraDirectory, storage: Storage) -> None:
        self._directory = directory
        self._storage = storage

    async def still(self, principal: Principal, activity: Activity, camera_id: str, *, masked: bool) -> Picture:
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id, masked=masked)
        principal.require(Permission.LIVE_RELAY, camera_id)
        camera = self._directory.configured(camera_id).config  # NOT_FOUND for an unknown camera
        polygons: list[Polygon] = list(camera.privacy_masks) if masked else []
        picture = await asyncio.to_thread(self._picture, camera_id, polygons)
        if picture is None:
            raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} has no recorded picture yet")
        activity.touch(start_ns=picture.time_ns, end_ns=picture.time_ns, bytes=len(picture.jpeg))
        return picture

    def _picture(self, camera_id: str, polygons: list[Polygon]) -> Picture | None:
        """Blocking (SQLite, PyAV): the newest segment, and the one before it in case the newest
        has no complete fragment yet."""
        catalogue = self._storage.catalogue
        last = catalogue.last_segment(camera_id)
        if last is None:
            return None
        rows = catalogue.segments_in_range(camera_id, last.start_ns - 1, last.start_ns + 1)
        paths = [(self._storage.segment_path(row), row.start_ns) for row in rows]
        prepare = functools.partial(_masked, polygons) if polygons else None
        return still(paths, prepare)


def _masked(polygons: list[Polygon], frame: Any) -> Any:
    return mask_yuv420p(frame, {}, polygons)
