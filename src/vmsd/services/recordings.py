"""Recorded footage: search, day timeline, review (play) — over vmsd.recordings.

A review streams MPEG-TS bytes remuxed by a worker thread (blocking PyAV and file I/O never
touch the event loop) through a bounded queue (vmsd.threads); the worker gives up when the
consumer has gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, cast

from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.recordings import search as search_mod
from vmsd.recordings.playback import PlaybackStats, remux_range
from vmsd.recordings.search import Gap, SearchResult, Span
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.storage.store import Storage
from vmsd.threads import iterate_in_thread
from vmsd.units import NS_PER_S

MAX_SEARCH_NS = 31 * validate.DAY_NS
MAX_PLAY_NS = validate.DAY_NS


@dataclass(frozen=True)
class Timeline:
    day_start_ns: int
    bucket_ns: int
    coverage_per_mille: list[int]
    spans: list[Span]
    gaps: list[Gap]


@dataclass
class Review:
    """A review under way: what was asked and found, then the footage (`chunks`, MPEG-TS bytes);
    `stats` fills in as the chunks are read (first packet time after the first chunk)."""

    start_ns: int
    end_ns: int
    found: SearchResult
    stats: PlaybackStats
    chunks: AsyncGenerator[bytes, None]


class RecordingService:
    def __init__(
        self, directory: CameraDirectory, storage: Storage, clock: Clock, *, events: EventBus | None = None
    ) -> None:
        self._directory = directory
        self._storage = storage
        self._clock = clock
        self._events = events

    async def _search(self, camera_id: str, start_ns: int, end_ns: int) -> SearchResult:
        await asyncio.to_thread(self._directory.require_known, camera_id)
        return await asyncio.to_thread(
            search_mod.search, self._storage.catalogue, camera_id, start_ns, end_ns, self._clock.wall_ns()
        )

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
    ) -> paging.Page[Span | Gap]:
        """Spans and gaps tiling the range: one time-ordered list. A page token is the time the
        page starts: where the previous page's last item ended."""
        camera_id = validate.camera_id(camera_id)
        activity.about(camera_id=camera_id, start_ns=start_ns, end_ns=end_ns)
        principal.require(Permission.RECORDINGS_SEARCH, camera_id)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_SEARCH_NS)
        size = paging.page_size(("page_size", page_size))
        from_ns = paging.cursor(page_token) or start_ns
        if not start_ns <= from_ns < end_ns:
            raise paging.bad_token()
        result = await self._search(camera_id, from_ns, end_ns)
        items: list[tuple[int, Span | Gap]] = sorted(
            [(s.start_ns, s) for s in result.spans] + [(g.start_ns, g) for g in result.gaps],
            key=lambda item: item[0],
        )
        return paging.Page([item for _, item in items[:size]], len(items) > size)

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
        result = await self._search(camera_id, start_ns, end_ns)
        buckets = -(-validate.DAY_NS // bucket_ns)
        return Timeline(
            day_start_ns=start_ns,
            bucket_ns=bucket_ns,
            coverage_per_mille=search_mod.coverage_per_mille(result.spans, start_ns, bucket_ns, buckets),
            spans=result.spans,
            gaps=result.gaps,
        )

    async def review(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int, reason: str
    ) -> Review:
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id, start_ns=start_ns, end_ns=end_ns)
        principal.require(Permission.RECORDINGS_PLAY, camera_id)
        # DPA 2018 s.62: a consultation of footage must record its justification.
        activity.touch(reason=validate.text(reason, "reason", required=True))
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_PLAY_NS)
        result = await self._search(camera_id, start_ns, end_ns)
        if not result.spans:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera_id!r} in the requested range")
        rows = await asyncio.to_thread(self._storage.catalogue.segments_in_range, camera_id, start_ns, end_ns)
        stats = PlaybackStats()
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
        return Review(start_ns, end_ns, result, stats, self._chunks(activity, rows, start_ns, end_ns, stats))

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
