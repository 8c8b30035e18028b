"""RecordingService: search, day timeline, review playback — thin over vmsd.recordings."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

from vmsd.cameras import CameraManager
from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.recordings import search as search_mod
from vmsd.recordings.playback import PlaybackStats, remux_range
from vmsd.rpc import convert, paging, validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import current_call
from vmsd.storage.store import Storage
from vmsd.v1 import recordings_pb2, recordings_pb2_grpc

NS_PER_S = 1_000_000_000
MAX_SEARCH_NS = 31 * validate.DAY_NS
MAX_PLAY_NS = validate.DAY_NS
_END = object()


class RecordingServicer(recordings_pb2_grpc.RecordingServiceServicer):
    def __init__(self, cameras: CameraManager, storage: Storage, clock: Clock) -> None:
        self._cameras = cameras
        self._storage = storage
        self._clock = clock

    def _known(self, camera_id: str) -> None:
        """Footage exists for configured cameras and for removed ones still in the catalogue."""
        if camera_id not in self._cameras.known_ids() and camera_id not in self._storage.catalogue.camera_ids():
            raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} does not exist")

    async def Search(self, request: recordings_pb2.SearchRequest, context: Any) -> recordings_pb2.SearchResponse:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.about(camera_id=camera_id, start_ns=request.range.start_ns, end_ns=request.range.end_ns)
        principal.require(Permission.RECORDINGS_SEARCH, camera_id)
        start_ns, end_ns = validate.time_range(request.range.start_ns, request.range.end_ns, max_ns=MAX_SEARCH_NS)
        size = paging.page_size(("page_size", request.page_size))
        # A page token is the time the page starts: where the previous page's last item ended.
        from_ns = paging.cursor(request.page_token) or start_ns
        if not start_ns <= from_ns < end_ns:
            raise paging.bad_token()
        await asyncio.to_thread(self._known, camera_id)
        result = await asyncio.to_thread(
            search_mod.search, self._storage.catalogue, camera_id, from_ns, end_ns, self._clock.wall_ns()
        )
        # Spans and gaps tile the range: one time-ordered list, cut where a page is full.
        items: list[tuple[int, recordings_pb2.RecordedSpan | recordings_pb2.Gap]] = sorted(
            [(s.start_ns, convert.span(s)) for s in result.spans] + [(g.start_ns, convert.gap(g)) for g in result.gaps],
            key=lambda item: item[0],
        )
        page, more = paging.fit([message for _, message in items[:size]], len(items) > size)
        spans = [m for m in page if isinstance(m, recordings_pb2.RecordedSpan)]
        return recordings_pb2.SearchResponse(
            spans=spans,
            gaps=[m for m in page if isinstance(m, recordings_pb2.Gap)],
            recorded_ns=sum(s.range.end_ns - s.range.start_ns for s in spans),
            next_page_token=paging.token(page[-1].range.end_ns) if more else "",
        )

    async def Timeline(self, request: recordings_pb2.TimelineRequest, context: Any) -> recordings_pb2.TimelineResponse:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.about(camera_id=camera_id)
        principal.require(Permission.RECORDINGS_SEARCH, camera_id)
        try:
            day = dt.datetime.strptime(request.day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            raise validate.invalid(f"day {request.day[:40]!r} must be a UTC date as YYYY-MM-DD") from None
        bucket_ns = request.bucket_ns or 60 * NS_PER_S
        if not NS_PER_S <= bucket_ns <= validate.DAY_NS:
            raise validate.invalid("bucket_ns must be between 1 s and 1 day")
        start_ns = int(day.timestamp()) * NS_PER_S
        end_ns = start_ns + validate.DAY_NS
        validate.time_range(start_ns, end_ns, max_ns=validate.DAY_NS, field="day")
        await asyncio.to_thread(self._known, camera_id)
        result = await asyncio.to_thread(
            search_mod.search, self._storage.catalogue, camera_id, start_ns, end_ns, self._clock.wall_ns()
        )
        buckets = -(-validate.DAY_NS // bucket_ns)
        return recordings_pb2.TimelineResponse(
            day_start_ns=start_ns,
            bucket_ns=bucket_ns,
            coverage_per_mille=search_mod.coverage_per_mille(result.spans, start_ns, bucket_ns, buckets),
            spans=[convert.span(s) for s in result.spans],
            gaps=[convert.gap(g) for g in result.gaps],
        )

    async def Play(self, request: recordings_pb2.PlayRequest, context: Any) -> AsyncIterator[recordings_pb2.PlayChunk]:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.touch(camera_id=camera_id, start_ns=request.range.start_ns, end_ns=request.range.end_ns)
        principal.require(Permission.RECORDINGS_PLAY, camera_id)
        # DPA 2018 s.62: a consultation of footage must record its justification.
        reason = validate.text(request.reason, "reason", required=True)
        call.touch(reason=reason)
        start_ns, end_ns = validate.time_range(request.range.start_ns, request.range.end_ns, max_ns=MAX_PLAY_NS)
        await asyncio.to_thread(self._known, camera_id)
        result = await asyncio.to_thread(
            search_mod.search, self._storage.catalogue, camera_id, start_ns, end_ns, self._clock.wall_ns()
        )
        if not result.spans:
            raise VmsdError(ErrorKind.NOT_FOUND, f"no footage of camera_id {camera_id!r} in the requested range")
        rows = await asyncio.to_thread(self._storage.catalogue.segments_in_range, camera_id, start_ns, end_ns)
        stats = PlaybackStats()
        chunks: queue.Queue[object] = queue.Queue(maxsize=8)
        stop = threading.Event()
        producer = threading.Thread(
            target=_produce, args=(self._storage, rows, start_ns, end_ns, stats, chunks, stop), daemon=True
        )
        producer.start()
        sent_header = False
        try:
            while True:
                item = await asyncio.to_thread(chunks.get)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise VmsdError(ErrorKind.DATA_LOSS, f"recorded footage could not be read: {item}")
                if not sent_header:
                    sent_header = True
                    yield recordings_pb2.PlayChunk(
                        header=recordings_pb2.PlayHeader(
                            container="mpegts",
                            first_packet_ns=stats.first_packet_ns,
                            requested=convert.time_range(start_ns, end_ns),
                            spans=[convert.span(s) for s in result.spans],
                            gaps=[convert.gap(g) for g in result.gaps],
                        )
                    )
                assert isinstance(item, bytes)
                yield recordings_pb2.PlayChunk(data=item)
            yield recordings_pb2.PlayChunk(
                trailer=recordings_pb2.PlayTrailer(
                    bytes=stats.bytes, video_frames=stats.video_frames, last_packet_ns=stats.last_packet_ns
                )
            )
        finally:
            stop.set()
            # A consumer cancelled while a worker waits in chunks.get() would leave that executor
            # thread blocked forever (and a handful of those starve every to_thread): wake it.
            with contextlib.suppress(queue.Full):
                chunks.put_nowait(_END)
            call.touch(bytes=stats.bytes, video_frames=stats.video_frames, segments=len(stats.segments))


def _produce(
    storage: Storage,
    rows: list[Any],
    start_ns: int,
    end_ns: int,
    stats: PlaybackStats,
    chunks: queue.Queue[object],
    stop: threading.Event,
) -> None:
    """Worker thread: remux into the bounded queue; gives up when the client has gone."""

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    try:
        for data in remux_range(storage, rows, start_ns, end_ns, stats):
            if not put(data):
                return
    except Exception as error:  # reported to the client as DATA_LOSS, with the file's problem
        put(error)
        return
    put(_END)
