"""HoldService and RetentionService: thin translation to vmsd.retention."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from typing import Any

from vmsd.clock import Clock
from vmsd.retention.holds import Holds, no_such_hold
from vmsd.retention.task import RetentionTask
from vmsd.rpc import convert, paging, validate
from vmsd.rpc.auth import Permission, Principal
from vmsd.rpc.calls import current_call
from vmsd.storage.catalogue import Catalogue, HoldRow
from vmsd.v1 import holds_pb2, holds_pb2_grpc

NS_PER_S = 1_000_000_000
MAX_HOLD_NS = 366 * validate.DAY_NS
MAX_CAMERAS_PER_HOLD = 256
OUTSIDE_SCOPE = "a camera of the hold is outside this principal's scope"


def _hold(row: HoldRow, now_ns: int) -> holds_pb2.Hold:
    return holds_pb2.Hold(
        id=row.id,
        camera_ids=list(row.camera_ids),
        range=convert.time_range(row.start_ns, row.end_ns),
        case_ref=row.case_ref,
        reason=row.reason,
        created_by=row.created_by,
        created_ns=row.created_ns,
        until_ns=row.until_ns or 0,
        released_ns=row.released_ns or 0,
        released_by=row.released_by or "",
        release_reason=row.release_reason or "",
        active=row.active(now_ns),
    )


def _visible(principal: Principal, row: HoldRow) -> bool:
    return all(principal.in_scope(c) for c in row.camera_ids)


class HoldServicer(holds_pb2_grpc.HoldServiceServicer):
    def __init__(self, holds: Holds, clock: Clock) -> None:
        self._holds = holds
        self._clock = clock

    async def AddHold(self, request: holds_pb2.AddHoldRequest, context: Any) -> holds_pb2.Hold:
        call = current_call()
        principal = call.require_principal()
        call.touch(
            camera_id=",".join(request.camera_ids)[:200],
            start_ns=request.range.start_ns,
            end_ns=request.range.end_ns,
            case_ref=request.case_ref[:200],
        )
        principal.require(Permission.HOLDS_ADD)
        if not request.camera_ids:
            raise validate.invalid("camera_ids needs at least one camera")
        if len(request.camera_ids) > MAX_CAMERAS_PER_HOLD:
            raise validate.invalid(f"camera_ids has more than {MAX_CAMERAS_PER_HOLD} cameras")
        camera_ids = [validate.camera_id(c, f"camera_ids[{i}]") for i, c in enumerate(request.camera_ids)]
        for camera_id in camera_ids:
            principal.require(Permission.HOLDS_ADD, camera_id)
        start_ns, end_ns = validate.time_range(request.range.start_ns, request.range.end_ns, max_ns=MAX_HOLD_NS)
        case_ref = validate.text(request.case_ref, "case_ref", required=True, max_len=200)
        reason = validate.text(request.reason, "reason", required=True)
        until_ns = validate.until_ns(request.until_ns, self._clock.wall_ns())
        call.touch(reason=reason, case_ref=case_ref)
        row = await asyncio.to_thread(
            self._holds.add,
            camera_ids=camera_ids,
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            created_by=principal.name,
            until_ns=until_ns,
        )
        call.touch(hold_id=row.id)
        return _hold(row, self._clock.wall_ns())

    async def ListHolds(self, request: holds_pb2.ListHoldsRequest, context: Any) -> holds_pb2.ListHoldsResponse:
        call = current_call()
        principal = call.require_principal()
        if request.camera_id:
            call.about(camera_id=validate.camera_id(request.camera_id))  # a denial names the camera
        principal.require(Permission.HOLDS_VIEW, request.camera_id or None)
        size = paging.page_size(("page_size", request.page_size))
        after_id = paging.cursor(request.page_token)
        rows = await asyncio.to_thread(self._holds.list, include_released=request.include_released)
        now_ns = self._clock.wall_ns()
        wanted = [
            r
            for r in rows  # oldest first
            if r.id > after_id
            and _visible(principal, r)
            and (not request.camera_id or request.camera_id in r.camera_ids)
        ]
        page, more = paging.fit([_hold(r, now_ns) for r in wanted[:size]], len(wanted) > size)
        return holds_pb2.ListHoldsResponse(holds=page, next_page_token=paging.token(page[-1].id) if more else "")

    async def ReleaseHold(self, request: holds_pb2.ReleaseHoldRequest, context: Any) -> holds_pb2.Hold:
        call = current_call()
        principal = call.require_principal()
        call.touch(hold_id=request.hold_id)
        principal.require(Permission.HOLDS_RELEASE)
        if request.hold_id <= 0:
            raise validate.invalid("hold_id must be a positive hold id")
        reason = validate.text(request.reason, "reason", required=True)
        call.touch(reason=reason)
        row = await asyncio.to_thread(self._holds.get, request.hold_id)
        # Named before the scope check, so that a denial's audit record says which footage it was.
        call.touch(
            camera_id=",".join(row.camera_ids)[:200], start_ns=row.start_ns, end_ns=row.end_ns, case_ref=row.case_ref
        )
        if not _visible(principal, row):
            # Answered exactly like an absent id, or hold ids could be probed; the audit says why.
            call.touch(denied=OUTSIDE_SCOPE)
            raise no_such_hold(request.hold_id)
        released = await asyncio.to_thread(
            self._holds.release, request.hold_id, released_by=principal.name, reason=reason
        )
        return _hold(released, self._clock.wall_ns())


class RetentionServicer(holds_pb2_grpc.RetentionServiceServicer):
    def __init__(self, task: RetentionTask, catalogue: Catalogue, max_age_ns: int) -> None:
        self._task = task
        self._catalogue = catalogue
        self._max_age_ns = max_age_ns

    def _status(self) -> holds_pb2.RetentionStatus:
        status = self._task.status
        return holds_pb2.RetentionStatus(
            paused=status.paused,
            alarms=status.alarms,
            last_run_ns=status.last_run_ns,
            last_erased_segments=status.last_erased_segments,
            last_erased_bytes=status.last_erased_bytes,
            free_bytes=status.free_bytes,
            total_bytes=status.total_bytes,
            min_free_bytes=status.min_free_bytes,
            max_age_ns=self._max_age_ns,
        )

    async def GetRetentionStatus(self, request: Any, context: Any) -> holds_pb2.RetentionStatus:
        current_call().require_principal().require(Permission.CAMERAS_VIEW)
        return self._status()

    async def ConfirmClock(self, request: holds_pb2.ConfirmClockRequest, context: Any) -> holds_pb2.RetentionStatus:
        call = current_call()
        principal = call.require_principal()
        call.touch()
        principal.require(Permission.HOLDS_RELEASE)
        call.touch(reason=validate.text(request.reason, "reason", required=True))
        await asyncio.to_thread(self._task.confirm_clock)
        return self._status()

    async def ErasureSummary(
        self, request: holds_pb2.ErasureSummaryRequest, context: Any
    ) -> holds_pb2.ErasureSummaryResponse:
        principal = current_call().require_principal()
        principal.require(Permission.HOLDS_VIEW)
        start_ns, end_ns = validate.time_range(request.range.start_ns, request.range.end_ns, max_ns=MAX_HOLD_NS)
        size = paging.page_size(("page_size", request.page_size))
        # The token is the last (day, camera, reason) sent; none of the three contains "/".
        after = tuple(request.page_token.split("/")) if request.page_token else ()
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
        page, more = paging.fit(
            [
                holds_pb2.ErasureDay(
                    day=day,
                    camera_id=camera_id,
                    reason=reason,
                    segments=count,
                    bytes=nbytes,
                    footage=convert.time_range(first, last),
                )
                for (day, camera_id, reason), (count, nbytes, first, last) in wanted[:size]
            ],
            len(wanted) > size,
        )
        last = page[-1] if page else None
        return holds_pb2.ErasureSummaryResponse(
            days=page, next_page_token=f"{last.day}/{last.camera_id}/{last.reason}" if more and last else ""
        )
