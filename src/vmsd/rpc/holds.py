"""HoldService and RetentionService: protobuf ⇄ vmsd.services.holds."""

from __future__ import annotations

from typing import Any

from vmsd.rpc import convert, paging
from vmsd.rpc.calls import current_call
from vmsd.services.holds import Hold, HoldService, RetentionService, RetentionView, erasure_token
from vmsd.v1 import holds_pb2, holds_pb2_grpc


def _hold(hold: Hold) -> holds_pb2.Hold:
    row = hold.row
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
        active=hold.active,
    )


def _status(view: RetentionView) -> holds_pb2.RetentionStatus:
    status = view.status
    return holds_pb2.RetentionStatus(
        paused=status.paused,
        alarms=status.alarms,
        last_run_ns=status.last_run_ns,
        last_erased_segments=status.last_erased_segments,
        last_erased_bytes=status.last_erased_bytes,
        free_bytes=status.free_bytes,
        total_bytes=status.total_bytes,
        min_free_bytes=status.min_free_bytes,
        max_age_ns=view.max_age_ns,
    )


class HoldServicer(holds_pb2_grpc.HoldServiceServicer):
    def __init__(self, holds: HoldService) -> None:
        self._holds = holds

    async def AddHold(self, request: holds_pb2.AddHoldRequest, context: Any) -> holds_pb2.Hold:
        call = current_call()
        hold = await self._holds.add(
            call.require_principal(),
            call,
            camera_ids=list(request.camera_ids),
            start_ns=request.range.start_ns,
            end_ns=request.range.end_ns,
            case_ref=request.case_ref,
            reason=request.reason,
            until_ns=request.until_ns,
        )
        return _hold(hold)

    async def ListHolds(self, request: holds_pb2.ListHoldsRequest, context: Any) -> holds_pb2.ListHoldsResponse:
        call = current_call()
        found = await self._holds.list(
            call.require_principal(),
            call,
            camera_id=request.camera_id,
            include_released=request.include_released,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        page, more = paging.fit([_hold(h) for h in found.items], found.more)
        return holds_pb2.ListHoldsResponse(holds=page, next_page_token=paging.token(page[-1].id) if more else "")

    async def ReleaseHold(self, request: holds_pb2.ReleaseHoldRequest, context: Any) -> holds_pb2.Hold:
        call = current_call()
        return _hold(await self._holds.release(call.require_principal(), call, request.hold_id, request.reason))


class RetentionServicer(holds_pb2_grpc.RetentionServiceServicer):
    def __init__(self, retention: RetentionService) -> None:
        self._retention = retention

    async def GetRetentionStatus(self, request: Any, context: Any) -> holds_pb2.RetentionStatus:
        return _status(await self._retention.status(current_call().require_principal()))

    async def ConfirmClock(self, request: holds_pb2.ConfirmClockRequest, context: Any) -> holds_pb2.RetentionStatus:
        call = current_call()
        return _status(await self._retention.confirm_clock(call.require_principal(), call, request.reason))

    async def ErasureSummary(
        self, request: holds_pb2.ErasureSummaryRequest, context: Any
    ) -> holds_pb2.ErasureSummaryResponse:
        principal = current_call().require_principal()
        range_ = request.range
        found = await self._retention.erasures(
            principal, range_.start_ns, range_.end_ns, page_size=request.page_size, page_token=request.page_token
        )
        days = [
            holds_pb2.ErasureDay(
                day=d.day,
                camera_id=d.camera_id,
                reason=d.reason,
                segments=d.segments,
                bytes=d.bytes,
                footage=convert.time_range(d.first_ns, d.last_ns),
            )
            for d in found.items
        ]
        page, more = paging.fit(days, found.more)
        kept = found.items[: len(page)]
        return holds_pb2.ErasureSummaryResponse(
            days=page, next_page_token=erasure_token(kept[-1]) if more and kept else ""
        )
