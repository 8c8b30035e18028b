"""The one answer to "does this camera exist?" (scope is the principal's: services/access.py).

A camera is *configured* while it is in the CameraManager; footage of a removed camera stays in
the catalogue and stays searchable, reviewable and exportable, so "has footage or is configured"
is what the recorded-footage use cases ask.
"""

from __future__ import annotations

from vmsd.cameras import CameraManager, ManagedCamera
from vmsd.errors import ErrorKind, VmsdError
from vmsd.storage.catalogue import Catalogue


def no_such_camera(camera_id: str) -> VmsdError:
    return VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} does not exist")


class CameraDirectory:
    def __init__(self, cameras: CameraManager, catalogue: Catalogue) -> None:
        self._cameras = cameras
        self._catalogue = catalogue

    def configured_ids(self) -> set[str]:
        return self._cameras.known_ids()

    def configured(self, camera_id: str) -> ManagedCamera:
        """The configured camera; NOT_FOUND otherwise."""
        return self._cameras.get(camera_id)

    def recorded_ids(self) -> list[str]:
        """Blocking (SQLite): every camera the catalogue holds footage or gaps of."""
        return self._catalogue.camera_ids()

    def require_known(self, camera_id: str) -> None:
        """Blocking (SQLite): NOT_FOUND unless the camera is configured or has footage."""
        if camera_id not in self.configured_ids() and camera_id not in self.recorded_ids():
            raise no_such_camera(camera_id)
