"""Recorded footage over HTTP: search, reviews, and the reviewed segment files.

- GET /api/v1/cameras/{camera_id}/search?from=T&to=T → the document `vmsctl --json search`
  prints (vmsd.recordings.documents), every page of the search in one answer.
- POST /api/v1/cameras/{camera_id}/reviews {"from", "to", "reason"} → the review's segments,
  each with a URL; authorised, audited and announced like gRPC Play (RecordingService).
- GET /api/v1/reviews/{review_id}/segments/{index} → the stored fMP4 file as it is (no remux),
  with HTTP byte ranges, to the principal who made the review only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.recordings.documents import gap_document, search_document, span_document, unavailable_document
from vmsd.recordings.search import Gap, Span, Unavailable
from vmsd.services import paging
from vmsd.services.recordings import SegmentReview
from vmsd.web.context import Deps, context, json_body, ns, query_time, text_field, time_field

SEGMENT_PATH = "/api/v1/reviews/{review_id}/segments/{index}"


def review_document(review: SegmentReview) -> dict[str, Any]:
    return {
        "review_id": review.review_id,
        "camera_id": review.camera_id,
        "start_ns": ns(review.start_ns),
        "end_ns": ns(review.end_ns),
        "segments": [
            {
                "url": f"/api/v1/reviews/{review.review_id}/segments/{index}",
                "start_ns": ns(held.segment.start_ns),
                "end_ns": ns(held.segment.end_ns),
                "video_codec": held.segment.video_codec,
                "width": held.segment.width,
                "height": held.segment.height,
                "recorder": held.segment.recorder,
                # Where this segment's part of the review starts and ends (an overlap's later part
                # joins where the earlier one ends: the player starts there).
                "play_from_ns": ns(held.part.start_ns),
                "play_to_ns": ns(held.part.end_ns),
            }
            for index, held in enumerate(review.segments)
        ],
        "parts": [
            {
                "start_ns": ns(p.start_ns),
                "end_ns": ns(p.end_ns),
                "recorder": p.recorder,
                "state": p.state.value,
                "detail": p.detail,
            }
            for p in review.parts
        ],
        "spans": [span_document(s) for s in review.found.spans],
        "gaps": [gap_document(g) for g in review.found.gaps],
        "unavailable": [unavailable_document(u) for u in review.found.unavailable],
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    recordings = deps.services.recordings
    clock = deps.services.clock

    async def search(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        now_ns = clock.wall_ns()
        start_ns = query_time(request, "from", now_ns)
        end_ns = query_time(request, "to", now_ns, default="now")
        spans: list[Span] = []
        gaps: list[Gap] = []
        unavailable: dict[str, Unavailable] = {}
        token = ""
        while True:  # every page: a browser wants the whole range in one answer
            page = await recordings.search(
                principal, ctx, request.match_info["camera_id"], start_ns, end_ns,
                page_size=paging.MAX_PAGE_SIZE, page_token=token,
            )  # fmt: skip
            unavailable.update((u.recorder, u) for u in page.unavailable)
            for item in page.items:
                if isinstance(item, Span):
                    spans.append(item)
                else:
                    gaps.append(item)
            if not page.more or not page.items:
                break
            token = paging.token(page.items[-1].end_ns)
        return web.json_response(search_document(spans, gaps, unavailable.values()))

    async def review(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        body = await json_body(request)
        now_ns = clock.wall_ns()
        reason = text_field(body, "reason")  # required: the service says so, audited
        made = await recordings.review_segments(
            principal, ctx, request.match_info["camera_id"],
            time_field(body, "from", now_ns), time_field(body, "to", now_ns), reason,
        )  # fmt: skip
        return web.json_response(review_document(made), status=201)

    async def segment(request: web.Request) -> web.FileResponse:
        ctx = context(request)
        principal = ctx.require_principal()
        index_text = request.match_info["index"]
        if not (index_text.isascii() and index_text.isdigit()) or len(index_text) > 6:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"segment index {index_text[:20]!r} must be a number")
        path = await recordings.segment_file(principal, ctx, request.match_info["review_id"], int(index_text))
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    app.router.add_get("/api/v1/cameras/{camera_id}/search", search)
    app.router.add_post("/api/v1/cameras/{camera_id}/reviews", review)
    app.router.add_get(SEGMENT_PATH, segment)
