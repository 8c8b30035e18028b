"""Evidence holds and retention: add, list, release holds; retention status, clock confirmation,
and what retention erased (per day, camera and reason) — over vmsd.retention."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from vmsd.clock import Clock
from vmsd.retention.holds import Holds, no_such_hold
from vmsd.retention.task import RetentionStatus, RetentionTask
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.storage.catalogue import Catalogue, HoldRow
from vmsd.units import NS_PER_S

MAX_HOLD_NS = 366 * validate.DAY_NS
MAX_CAMERAS_PER_HOLD = 256
OUTSIDE_SCOPE = "a camera of the hold is outside this principal's scope"


@dataclass(frozen=True)
class Hold:
    row: HoldRow
    active: bool


@dataclass(frozen=True)
class ErasureDay:
    day: str  # UTC, YYYY-MM-DD
    camera_id: str
    reason: str
    segments: int
    bytes: int
    first_ns: int  # the footage erased: from the earliest start …
    last_ns: int  # … to the latest end


@dataclass(frozen=True)
class RetentionView:
    status: RetentionStatus
    max_age_ns: int


def _visible(principal: Principal, row: HoldRow) -> bool:
    return all(principal.in_scope(c) for c in row.camera_ids)


class HoldService:
    """Holds on this recorder. With a [site], `on_change` is told of every hold made or released
    here, so that it reaches the site's other recorders (vmsd.site.holds): the local hold is
    made (or released) first and stands whatever etcd does."""

    def __init__(self, holds: Holds, clock: Clock, *, on_change: Callable[[], None] | None = None) -> None:
        self._holds = holds
        self._clock = clock
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _hold(self, row: HoldRow, now_ns: int | None = None) -> Hold:
        return Hold(row, row.active(self._clock.wall_ns() if now_ns is None else now_ns))

    async def add(
        self,
        principal: Principal,
        activity: Activity,
        *,
        camera_ids: list[str],
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        until_ns: int = 0,
    ) -> Hold:
        activity.touch(camera_id=",".join(camera_ids)[:200], start_ns=start_ns, end_ns=end_ns, case_ref=case_ref[:200])
        principal.require(Permission.HOLDS_ADD)
        if not camera_ids:
            raise validate.invalid("camera_ids needs at least one camera")
        if len(camera_ids) > MAX_CAMERAS_PER_HOLD:
            raise validate.invalid(f"camera_ids has more than {MAX_CAMERAS_PER_HOLD} cameras")
        camera_ids = [validate.camera_id(c, f"camera_ids[{i}]") for i, c in enumerate(camera_ids)]
        for camera_id in camera_ids:
            principal.require(Permission.HOLDS_ADD, camera_id)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_HOLD_NS)
        case_ref = validate.text(case_ref, "case_ref", required=True, max_len=200)
        reason = validate.text(reason, "reason", required=True)
        until = validate.until_ns(until_ns, self._clock.wall_ns())
        activity.touch(reason=reason, case_ref=case_ref)
        row = await asyncio.to_thread(
            self._holds.add,
            camera_ids=camera_ids,
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            created_by=principal.name,
            until_ns=until,
        )
        activity.touch(hold_id=row.id)
        self._changed()
        return self._hold(row)

    async def list(
        self,
        principal: Principal,
        activity: Activity,
        *,
        camera_id: str = "",
        include_released: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> paging.Page[Hold]:
        """Oldest first; a page token is the id of the last hold sent."""
        if camera_id:
            activity.about(camera_id=validate.camera_id(camera_id))  # a denial names the camera
        principal.require(Permission.HOLDS_VIEW, camera_id or None)
        size = paging.page_size(("page_size", page_size))
        after_id = paging.cursor(page_token)
        rows = await asyncio.to_thread(self._holds.list, include_released=include_released)
        wanted = [
            r
            for r in rows
            if r.id > after_id and _visible(principal, r) and (not camera_id or camera_id in r.camera_ids)
        ]
        now_ns = self._clock.wall_ns()
        return paging.Page([self._hold(r, now_ns) for r in wanted[:size]], len(wanted) > size)

    async def release(self, principal: Principal, activity: Activity, hold_id: int, reason: str) -> Hold:
        activity.touch(hold_id=hold_id)
        principal.require(Permission.HOLDS_RELEASE)
        if hold_id <= 0:
            raise validate.invalid("hold_id must be a positive hold id")
        reason = validate.text(reason, "reason", required=True)
        activity.touch(reason=reason)
        row = await asyncio.to_thread(self._holds.get, hold_id)
        # Named before the scope check, so that a denial's audit record says which footage it was.
        activity.touch(
            camera_id=",".join(row.camera_ids)[:200], start_ns=row.start_ns, end_ns=row.end_ns, case_ref=row.case_ref
        )
        if not _visible(principal, row):
            # Answered exactly like an absent id, or hold ids could be probed; the audit says why.
            activity.touch(denied=OUTSIDE_SCOPE)
            raise no_such_hold(hold_id)
        released = await asyncio.to_thread(self._holds.release, hold_id, released_by=principal.name, reason=reason)
        self._changed()
        return self._hold(released)


class RetentionService:
    def __init__(self, task: RetentionTask, catalogue: Catalogue, max_age_ns: int) -> None:
        self._task = task
        self._catalogue = catalogue
        self._max_age_ns = max_age_ns

    @property
    def alarms(self) -> dict[str, str]:
        """Recorder-wide alarms (disk pressure, clock doubt)."""
        return self._task.status.alarms

    def _view(self) -> RetentionView:
        return RetentionView(self._task.status, self._max_age_ns)

    async def status(self, principal: Principal) -> RetentionView:
        principal.require(Permission.CAMERAS_VIEW)
        return self._view()

    async def confirm_clock(self, principal: Principal, activity: Activity, reason: str) -> RetentionView:
        activity.touch()
        principal.require(Permission.HOLDS_RELEASE)
        activity.touch(reason=validate.text(reason, "reason", required=True))
        await asyncio.to_thread(self._task.confirm_clock)
        return self._view()

    async def erasures(
        self, principal: Principal, start_ns: int, end_ns: int, *, page_size: int = 0, page_token: str = ""
    ) -> paging.Page[ErasureDay]:
        """Erased segments per (day, camera, reason), in that order. The token is the last
        (day, camera, reason) sent; none of the three contains "/"."""
        principal.require(Permission.HOLDS_VIEW)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_HOLD_NS)
        size = paging.page_size(("page_size", page_size))
        after = tuple(page_token.split("/")) if page_token else ()
        if after and len(after) != 3:
            raise paging.bad_token()
        rows = await asyncio.to_thread(self._catalogue.erased_in_range, start_ns, end_ns)
        days: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 2**63 - 1, 0])
        for row in rows:
            if not principal.in_scope(row.camera_id):
                continue
            day = dt.datetime.fromtimestamp(row.erased_ns // NS_PER_S, tz=dt.UTC).strftime("%Y-%m-%d")
            entry = days[(day, row.camera_id, row.reason)]
            entry[0] += 1
            entry[1] += row.bytes
            entry[2] = min(entry[2], row.start_ns)
            entry[3] = max(entry[3], row.end_ns)
        wanted = [(key, value) for key, value in sorted(days.items()) if key > after]
        return paging.Page([ErasureDay(*key, *value) for key, value in wanted[:size]], len(wanted) > size)


def erasure_token(day: ErasureDay) -> str:
    return f"{day.day}/{day.camera_id}/{day.reason}"
