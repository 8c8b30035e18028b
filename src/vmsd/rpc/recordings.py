"""RecordingService: protobuf ⇄ vmsd.services.recordings (search, day timeline, review)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vmsd.recordings.parts import Part, ReviewedSegment
from vmsd.recordings.search import Span
from vmsd.rpc import convert, paging
from vmsd.rpc.calls import current_call
from vmsd.services.recordings import RecordingService, Review
from vmsd.v1 import recordings_pb2, recordings_pb2_grpc


def _header(review: Review) -> recordings_pb2.PlayHeader:
    return recordings_pb2.PlayHeader(
        container="mpegts",
        first_packet_ns=review.stats.first_packet_ns,
        requested=convert.time_range(review.start_ns, review.end_ns),
        spans=[convert.span(s) for s in review.found.spans],
        gaps=[convert.gap(g) for g in review.found.gaps],
        parts=[_part(p) for p in review.parts],
        unavailable=[convert.unavailable(u) for u in review.found.unavailable],
    )


def _part(part: Part) -> recordings_pb2.PlayPart:
    return recordings_pb2.PlayPart(
        range=convert.time_range(part.start_ns, part.end_ns), recorder=part.recorder, state=part.state.value,
        detail=part.detail,
    )  # fmt: skip


def _segment(segment: ReviewedSegment) -> recordings_pb2.ReviewedSegment:
    return recordings_pb2.ReviewedSegment(
        range=convert.time_range(segment.start_ns, segment.end_ns), bytes=segment.bytes, sha256=segment.sha256,
        video_codec=segment.video_codec, width=segment.width, height=segment.height, recorder=segment.recorder,
    )  # fmt: skip


class RecordingServicer(recordings_pb2_grpc.RecordingServiceServicer):
    def __init__(self, recordings: RecordingService) -> None:
        self._recordings = recordings

    async def Search(self, request: recordings_pb2.SearchRequest, context: Any) -> recordings_pb2.SearchResponse:
        call = current_call()
        principal = call.require_principal()
        range_ = request.range
        found = await self._recordings.search(
            principal, call, request.camera_id, range_.start_ns, range_.end_ns,
            page_size=request.page_size, page_token=request.page_token,
        )  # fmt: skip
        messages = [convert.span(i) if isinstance(i, Span) else convert.gap(i) for i in found.items]
        page, more = paging.fit(messages, found.more)
        spans = [m for m in page if isinstance(m, recordings_pb2.RecordedSpan)]
        return recordings_pb2.SearchResponse(
            spans=spans,
            gaps=[m for m in page if isinstance(m, recordings_pb2.Gap)],
            recorded_ns=sum(s.range.end_ns - s.range.start_ns for s in spans),
            next_page_token=paging.token(page[-1].range.end_ns) if more else "",
            unavailable=[convert.unavailable(u) for u in found.unavailable],
        )

    async def Timeline(self, request: recordings_pb2.TimelineRequest, context: Any) -> recordings_pb2.TimelineResponse:
        call = current_call()
        principal = call.require_principal()
        timeline = await self._recordings.timeline(principal, call, request.camera_id, request.day, request.bucket_ns)
        return recordings_pb2.TimelineResponse(
            day_start_ns=timeline.day_start_ns,
            bucket_ns=timeline.bucket_ns,
            coverage_per_mille=timeline.coverage_per_mille,
            spans=[convert.span(s) for s in timeline.spans],
            gaps=[convert.gap(g) for g in timeline.gaps],
            unavailable=[convert.unavailable(u) for u in timeline.unavailable],
        )

    async def Play(self, request: recordings_pb2.PlayRequest, context: Any) -> AsyncIterator[recordings_pb2.PlayChunk]:
        call = current_call()
        principal = call.require_principal()
        range_ = request.range
        review = await self._recordings.review(
            principal, call, request.camera_id, range_.start_ns, range_.end_ns, request.reason
        )
        sent_header = False
        async with contextlib.aclosing(review.chunks) as chunks:
            async for data in chunks:
                if not sent_header:  # the first packet's time is known once the first chunk is out
                    sent_header = True
                    yield recordings_pb2.PlayChunk(header=_header(review))
                yield recordings_pb2.PlayChunk(data=data)
        stats = review.stats
        yield recordings_pb2.PlayChunk(
            trailer=recordings_pb2.PlayTrailer(
                bytes=stats.bytes,
                video_frames=stats.video_frames,
                last_packet_ns=stats.last_packet_ns,
                parts=[_part(p) for p in review.parts],
            )
        )

    async def ReviewSegments(
        self, request: recordings_pb2.ReviewSegmentsRequest, context: Any
    ) -> recordings_pb2.ReviewSegmentsResponse:
        call = current_call()
        principal = call.require_principal()
        range_ = request.range
        review = await self._recordings.review_segments(
            principal, call, request.camera_id, range_.start_ns, range_.end_ns, request.reason
        )
        return recordings_pb2.ReviewSegmentsResponse(
            review_id=review.review_id,
            requested=convert.time_range(review.start_ns, review.end_ns),
            segments=[_segment(h.segment) for h in review.segments],
            spans=[convert.span(s) for s in review.found.spans],
            gaps=[convert.gap(g) for g in review.found.gaps],
            parts=[_part(p) for p in review.parts],
            unavailable=[convert.unavailable(u) for u in review.found.unavailable],
        )

    async def ReadSegment(
        self, request: recordings_pb2.ReadSegmentRequest, context: Any
    ) -> AsyncIterator[recordings_pb2.SegmentChunk]:
        call = current_call()
        principal = call.require_principal()
        chunks = await self._recordings.segment_bytes(principal, call, request.review_id, request.index)
        async with contextlib.aclosing(chunks) as reading:
            async for data in reading:
                yield recordings_pb2.SegmentChunk(data=data)
