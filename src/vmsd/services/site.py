"""The site view and operator moves (`vmsctl site`, SiteService): over vmsd.site's coordinator.

GetSite shows members (alive, address, cameras owned, spare capacity) and each camera's owner and
epoch, the owners limited to the caller's camera scope. A move needs cameras.manage in the
camera's scope and a reason, and is audited (who moved which camera to which recorder, from
which owner). A recorder without [site] answers FAILED_PRECONDITION.
"""

from __future__ import annotations

from dataclasses import replace

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.site.coordinator import SiteCoordinator, SiteStatus


class SiteService:
    def __init__(self, site: SiteCoordinator | None) -> None:
        self._site = site

    def _require_site(self) -> SiteCoordinator:
        if self._site is None:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION, "this recorder is not a member of a site (no [site] in its config)"
            )
        return self._site

    async def status(self, principal: Principal) -> SiteStatus:
        principal.require(Permission.CAMERAS_VIEW)
        status = await self._require_site().status()
        return replace(status, owners=[o for o in status.owners if principal.in_scope(o.camera_id)])

    async def move(self, principal: Principal, activity: Activity, camera_id: str, to: str, reason: str) -> str:
        """Ask `to` to take the camera over; returns the owner it is taken from ("" when unowned)."""
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id)
        principal.require(Permission.CAMERAS_MANAGE, camera_id)
        reason = validate.text(reason, "reason", required=True)
        to = validate.text(to, "to", required=True)
        site = self._require_site()
        status = await site.status()
        previous = next((o.owner for o in status.owners if o.camera_id == camera_id), "")
        activity.touch(camera_id=camera_id, reason=reason, to=to, previous_owner=previous)
        await site.move(camera_id, to, principal=principal.name, reason=reason)
        return previous
