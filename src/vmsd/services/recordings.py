"""Recorded footage: search, day timeline, review (play) — over vmsd.recordings.

A review streams MPEG-TS bytes remuxed by a worker thread (blocking PyAV and file I/O never
touch the event loop) through a bounded queue (vmsd.threads); the worker gives up when the
consumer has gone. A segment review (the web console) instead hands out the stored fMP4 segment
files themselves, to the principal who made it only; both are authorised, audited and announced
the same way (`_begin_review`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import secrets
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.recordings import search as search_mod
from vmsd.recordings.playback import PlaybackStats, remux_range
from vmsd.recordings.search import Gap, SearchResult, Span, Unavailable
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.services.site_wide import Site
from vmsd.storage.catalogue import SegmentRow, SegmentState
from vmsd.storage.store import Storage
from vmsd.threads import iterate_in_thread
from vmsd.units import NS_PER_S

MAX_SEARCH_NS = 31 * validate.DAY_NS
MAX_PLAY_NS = validate.DAY_NS
# A segment review's files can be fetched for this long after it was made (a shift), and at most
# this many reviews are kept at once.
REVIEW_LIFETIME_NS = 12 * 3600 * NS_PER_S
MAX_SEGMENT_REVIEWS = 1000


@dataclass(frozen=True)
class Timeline:
    day_start_ns: int
    bucket_ns: int
    coverage_per_mille: list[int]
    spans: list[Span]
    gaps: list[Gap]
    unavailable: list[Unavailable] = field(default_factory=list)


@dataclass
class Review:
    """A review under way: what was asked and found, then the footage (`chunks`, MPEG-TS bytes);
    `stats` fills in as the chunks are read (first packet time after the first chunk)."""

    start_ns: int
    end_ns: int
    found: SearchResult
    stats: PlaybackStats
    chunks: AsyncGenerator[bytes, None]


@dataclass(frozen=True)
class SegmentReview:
    """A review delivered as stored segments: who made it, what it covers, which files."""

    review_id: str
    principal: str
    camera_id: str
    start_ns: int
    end_ns: int
    found: SearchResult
    segments: list[SegmentRow]
    made_mono_ns: int


class _SegmentReviews:
    """The segment reviews still usable: each for REVIEW_LIFETIME_NS, at most MAX_SEGMENT_REVIEWS
    (the oldest go first). Memory only: a restart ends them, like the sessions that made them."""

    def __init__(self) -> None:
        self._reviews: OrderedDict[str, SegmentReview] = OrderedDict()

    def add(self, review: SegmentReview, now_mono_ns: int) -> None:
        self._expire(now_mono_ns)
        self._reviews[review.review_id] = review
        while len(self._reviews) > MAX_SEGMENT_REVIEWS:
            self._reviews.popitem(last=False)

    def get(self, review_id: str, now_mono_ns: int) -> SegmentReview | None:
        self._expire(now_mono_ns)
        return self._reviews.get(review_id)

    def _expire(self, now_mono_ns: int) -> None:
        while self._reviews:
            oldest = next(iter(self._reviews.values()))
            if now_mono_ns - oldest.made_mono_ns < REVIEW_LIFETIME_NS:
                break
            self._reviews.popitem(last=False)


@dataclass(frozen=True)
class SearchPage(paging.Page[Span | Gap]):
    """A page of a search, and the recorders of the site whose part is missing from it."""

    unavailable: list[Unavailable] = field(default_factory=list)


def _split_review(camera_id: str, spans: list[Span]) -> str:
    parts = ", ".join(
        f"{span.recorder} {dt.datetime.fromtimestamp(span.start_ns / NS_PER_S, dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        f"..{dt.datetime.fromtimestamp(span.end_ns / NS_PER_S, dt.UTC):%H:%M:%SZ}"
        for span in spans
    )
    return (
        f"the footage of camera_id {camera_id!r} in this range is on more than one recorder ({parts}):"
        " review each recorder's part on its own range"
    )


class RecordingService:
    """Search, timeline and review. With a `site`, search and timeline merge the spans of every
    recorder of the site holding the camera's footage (services/site_wide.py); each span names its
    `recorder` (this one's `recorder_id` without a site too)."""

    def __init__(
        self,
        directory: CameraDirectory,
        storage: Storage,
        clock: Clock,
        *,
        events: EventBus | None = None,
        recorder_id: str = "",
        site: Site | None = None,
    ) -> None:
        self._directory = directory
        self._storage = storage
        self._clock = clock
        self._events = events
        self._recorder_id = recorder_id
        self._site = site
        self._segment_reviews = _SegmentReviews()

    async def _search(self, camera_id: str, start_ns: int, end_ns: int) -> SearchResult:
        """This recorder's own spans (each naming it) and gaps."""
        await asyncio.to_thread(self._directory.require_known, camera_id)
        found = await asyncio.to_thread(
            search_mod.search, self._storage.catalogue, camera_id, start_ns, end_ns, self._clock.wall_ns()
        )
        return SearchResult([replace(s, recorder=self._recorder_id) for s in found.spans], found.gaps)

    async def _site_search(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int
    ) -> SearchResult:
        """This recorder's part merged with every other holder's (just its own without a site)."""
        own = await self._search(camera_id, start_ns, end_ns)
        if self._site is None:
            return own
        site = self._site
        headers = site.forward(principal)
        answers, unavailable = await site.fan_out(
            principal,
            activity,
            camera_id,
            lambda peer: site.peers.search(peer.recorder_id, peer.address, headers, camera_id, start_ns, end_ns),
        )
        if not answers and not unavailable:
            return own
        parts = [own, *(answer for _, answer in answers), SearchResult([], [], unavailable)]
        return search_mod.merge(parts, start_ns, end_ns)

    async def search(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        start_ns: int,
        end_ns: int,
        *,
        page_size: int = 0,
        page_token: str = "",
    ) -> SearchPage:
        """Spans and gaps tiling the range: one time-ordered list. A page token is the time the
        page starts: where the previous page's last item ended. With a site: every holder's
        spans, and the holders that did not answer (`unavailable`, on every page)."""
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id, start_ns=start_ns, end_ns=end_ns)
        principal.require(Permission.RECORDINGS_SEARCH, camera_id)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_SEARCH_NS)
        size = paging.page_size(("page_size", page_size))
        from_ns = paging.cursor(page_token) or start_ns
        if not start_ns <= from_ns < end_ns:
            raise paging.bad_token()
        result = await self._site_search(principal, activity, camera_id, from_ns, end_ns)
        items: list[tuple[int, Span | Gap]] = sorted(
            [(s.start_ns, s) for s in result.spans] + [(g.start_ns, g) for g in result.gaps],
            key=lambda item: item[0],
        )
        return SearchPage([item for _, item in items[:size]], len(items) > size, result.unavailable)

    async def timeline(
        self, principal: Principal, activity: Activity, camera_id: str, day: str, bucket_ns: int = 0
    ) -> Timeline:
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id)
        principal.require(Permission.RECORDINGS_SEARCH, camera_id)
        try:
            day_start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise validate.invalid(f"day {day[:40]!r} must be a UTC date as YYYY-MM-DD") from None
        bucket_ns = bucket_ns or 60 * NS_PER_S
        if not NS_PER_S <= bucket_ns <= validate.DAY_NS:
            raise validate.invalid("bucket_ns must be between 1 s and 1 day")
        start_ns = int(day_start.timestamp()) * NS_PER_S
        end_ns = start_ns + validate.DAY_NS
        validate.time_range(start_ns, end_ns, max_ns=validate.DAY_NS, field="day")
        result = await self._site_search(principal, activity, camera_id, start_ns, end_ns)
        buckets = -(-validate.DAY_NS // bucket_ns)
        return Timeline(
            day_start_ns=start_ns,
            bucket_ns=bucket_ns,
            coverage_per_mille=search_mod.coverage_per_mille(result.spans, start_ns, bucket_ns, buckets),
            spans=result.spans,
            gaps=result.gaps,
            unavailable=result.unavailable,
        )

    async def _begin_review(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        start_ns: int,
        end_ns: int,
        reason: str,
        *,
        site_wide: bool = False,
    ) -> tuple[str, int, int, SearchResult]:
        """What every review does first, whatever it then delivers: audit what is asked, check
        the permission, the scope and the reason, find the footage (`site_wide`: on any
        recorder of the site), tell the event stream."""
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id, start_ns=start_ns, end_ns=end_ns)
        principal.require(Permission.RECORDINGS_PLAY, camera_id)
        # DPA 2018 s.62: a consultation of footage must record its justification.
        activity.touch(reason=validate.text(reason, "reason", required=True))
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_PLAY_NS)
        if site_wide:
            result = await self._site_search(principal, activity, camera_id, start_ns, end_ns)
        else:
            result = await self._search(camera_id, start_ns, end_ns)
        if not result.spans:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera_id!r} in the requested range")
        if self._events is not None:
            self._events.publish(
                EventKind.REVIEW_STARTED,
                camera_id,
                principal=principal.name,
                role=principal.role,
                start_ns=start_ns,
                end_ns=end_ns,
                reason=reason.strip(),
            )
        return camera_id, start_ns, end_ns, result

    async def review(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int, reason: str
    ) -> Review:
        """A review as one MPEG-TS stream remuxed from the segments (gRPC Play). With a site,
        footage held by one other recorder is played from it (for this principal, with the
        reason: audited there too); a range whose footage lies on several recorders is
        FAILED_PRECONDITION naming each recorder's part (one stream cannot join them yet)."""
        camera_id, start_ns, end_ns, result = await self._begin_review(
            principal, activity, camera_id, start_ns, end_ns, reason, site_wide=True
        )
        stats = PlaybackStats()
        holders = sorted({span.recorder for span in result.spans} - {self._recorder_id})
        if holders and self._site is not None:
            if len(holders) > 1 or any(span.recorder == self._recorder_id for span in result.spans):
                raise VmsdError(ErrorKind.FAILED_PRECONDITION, _split_review(camera_id, result.spans))
            peer = await self._site.locate(camera_id, holders[0])
            activity.touch(played_from=peer.recorder_id)
            chunks = await self._site.peers.play(
                peer.recorder_id, peer.address, self._site.forward(principal), camera_id, start_ns, end_ns,
                reason, stats,
            )  # fmt: skip
            return Review(start_ns, end_ns, result, stats, self._relayed(activity, chunks, stats))
        rows = await asyncio.to_thread(self._storage.catalogue.segments_in_range, camera_id, start_ns, end_ns)
        return Review(start_ns, end_ns, result, stats, self._chunks(activity, rows, start_ns, end_ns, stats))

    async def _relayed(
        self, activity: Activity, chunks: AsyncGenerator[bytes, None], stats: PlaybackStats
    ) -> AsyncGenerator[bytes, None]:
        """A peer's review passed through (closed as soon as the consumer stops)."""
        try:
            async with contextlib.aclosing(chunks) as stream:
                async for data in stream:
                    yield data
        finally:
            activity.touch(bytes=stats.bytes, video_frames=stats.video_frames)

    async def review_segments(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int, reason: str
    ) -> SegmentReview:
        """A review as the stored fMP4 segments themselves (the web console plays them with byte
        ranges, no remux): authorised, audited and announced exactly like `review`. The
        segments are fetched with `segment_file`, by this principal only."""
        camera_id, start_ns, end_ns, result = await self._begin_review(
            principal, activity, camera_id, start_ns, end_ns, reason
        )
        rows = await asyncio.to_thread(self._storage.catalogue.segments_in_range, camera_id, start_ns, end_ns)
        # A segment still being written has no complete end yet: it joins reviews once closed.
        complete = [row for row in rows if row.state is SegmentState.COMPLETE and row.end_ns is not None]
        review = SegmentReview(
            review_id=secrets.token_urlsafe(16),
            principal=principal.name,
            camera_id=camera_id,
            start_ns=start_ns,
            end_ns=end_ns,
            found=result,
            segments=complete,
            made_mono_ns=self._clock.mono_ns(),
        )
        activity.touch(review_id=review.review_id, segments=len(complete))
        self._segment_reviews.add(review, self._clock.mono_ns())
        return review

    async def segment_file(self, principal: Principal, activity: Activity, review_id: str, index: int) -> Path:
        """The stored file of segment `index` of a review made by this principal (NOT_FOUND: no
        such review, expired, or the segment is no longer stored; PERMISSION_DENIED: another
        principal's review, or the principal may no longer review this camera)."""
        review = self._segment_reviews.get(review_id, self._clock.mono_ns())
        if review is None:
            raise VmsdError(ErrorKind.NOT_FOUND, "no such review (it may have expired): make the review again")
        activity.about(camera_id=review.camera_id, start_ns=review.start_ns, end_ns=review.end_ns)
        if review.principal != principal.name:
            raise VmsdError(ErrorKind.PERMISSION_DENIED, "this review was made by another principal")
        principal.require(Permission.RECORDINGS_PLAY, review.camera_id)
        if not 0 <= index < len(review.segments):
            raise VmsdError(
                ErrorKind.NOT_FOUND, f"the review has {len(review.segments)} segment(s); no segment {index}"
            )
        path = self._storage.segment_path(review.segments[index])
        if not await asyncio.to_thread(path.is_file):
            raise VmsdError(ErrorKind.NOT_FOUND, f"segment {index} of this review is no longer stored (erased)")
        return path

    async def _chunks(
        self, activity: Activity, rows: list[Any], start_ns: int, end_ns: int, stats: PlaybackStats
    ) -> AsyncGenerator[bytes, None]:
        """The remuxed footage, read by a worker thread that gives up when the consumer has gone."""
        remux = functools.partial(remux_range, self._storage, rows, start_ns, end_ns, stats)
        # An async generator (typed as an iterator): closed as soon as the consumer stops.
        produced = cast("AsyncGenerator[bytes, None]", iterate_in_thread(remux, maxsize=8))
        try:
            async with contextlib.aclosing(produced) as chunks:
                async for data in chunks:
                    yield data
        except Exception as error:  # raised by the worker: the file's problem, to the client as DATA_LOSS
            raise VmsdError(ErrorKind.DATA_LOSS, f"recorded footage could not be read: {error}") from None
        finally:
            activity.touch(bytes=stats.bytes, video_frames=stats.video_frames, segments=len(stats.segments))
