"""Recorded footage: search, day timeline, review (play) — over vmsd.recordings.

A review streams MPEG-TS bytes remuxed by a worker thread (blocking PyAV and file I/O never
touch the event loop) through a bounded queue (vmsd.threads); the worker gives up when the
consumer has gone. A segment review (the web console) instead hands out the stored fMP4 segment
files themselves, to the principal who made it only; both are authorised, audited and announced
the same way (`_begin_review`).

With a site, a review covers every recorder holding footage of the range (recordings/parts.py:
which recorder plays each stretch, overlaps resolved the same way every time). A peer's part is
its own segment review, made there for the same principal with the same reason (audited there
with `via`); its segment files are fetched whole into local copies (services/peer_segments.py)
and remuxed or served like this recorder's own. A part that cannot be had is stated as
`unavailable` with the reason, naming the recorder and its stretch — the rest still plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import secrets
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.recordings import parts as parts_mod
from vmsd.recordings import search as search_mod
from vmsd.recordings.parts import Part, PartState, ReviewedSegment
from vmsd.recordings.playback import PlaybackStats, Source, remux_range, remux_sources
from vmsd.recordings.search import Gap, SearchResult, Span, Unavailable
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.services.peer_segments import PeerSegmentCopies
from vmsd.services.site_wide import PeerRecorder, Site
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
    `stats` fills in as the chunks are read (first packet time after the first chunk). `parts`
    says which recorder plays each stretch; a peer's part that fails mid-stream becomes
    `unavailable` in it while the stream goes on."""

    start_ns: int
    end_ns: int
    found: SearchResult
    stats: PlaybackStats
    chunks: AsyncGenerator[bytes, None]
    parts: list[Part] = field(default_factory=list)


@dataclass(frozen=True)
class HeldSegment:
    """A segment of a review and where it is: this recorder's catalogue `row`, or segment
    `peer_index` of `peer`'s own review `peer_review_id`."""

    segment: ReviewedSegment
    part: Part
    row: SegmentRow | None = None
    peer: PeerRecorder | None = None
    peer_review_id: str = ""
    peer_index: int = 0


@dataclass(frozen=True)
class SegmentReview:
    """A review delivered as stored segments: who made it, what it covers, which files (in time
    order, on whichever recorder of the site holds them), and which recorder plays each part."""

    review_id: str
    principal: str
    camera_id: str
    start_ns: int
    end_ns: int
    found: SearchResult
    segments: list[HeldSegment]
    made_mono_ns: int
    parts: list[Part] = field(default_factory=list)


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


def _when(time_ns: int, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return f"{dt.datetime.fromtimestamp(time_ns / NS_PER_S, dt.UTC):{fmt}}"


def _stretch(part: Part) -> str:
    return f"{_when(part.start_ns)}..{_when(part.end_ns, '%H:%M:%SZ')}"


def _nothing_playable(camera_id: str, parts: list[Part]) -> VmsdError:
    missing = "; ".join(
        f"recorder {p.recorder} holds {_stretch(p)}: {p.detail}" for p in parts if p.state is PartState.UNAVAILABLE
    )
    return VmsdError(
        ErrorKind.UNAVAILABLE,
        f"no footage of camera_id {camera_id!r} in the requested range can be had now ({missing})",
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
        self._copies = PeerSegmentCopies(storage.layout.peer_segments_dir, site.peers) if site is not None else None

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
        answers, unavailable = await self._site.search(principal, activity, camera_id, start_ns, end_ns)
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
            if result.unavailable:  # not "nothing recorded": a holder that did not answer may have it
                missing = "; ".join(f"recorder {u.recorder}: {u.reason}" for u in result.unavailable)
                raise VmsdError(
                    ErrorKind.UNAVAILABLE,
                    f"no footage of camera_id {camera_id!r} in the requested range was found here, and {missing}",
                )
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

    async def _gather(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        parts: list[Part],
        reason: str,
        *,
        complete_only: bool,
    ) -> tuple[list[HeldSegment], list[Part]]:
        """The segments of the played parts, in time order: this recorder's from its catalogue
        (`complete_only`: not one still being written), each peer's from a review made there
        for `principal` with `reason` (one per peer, asked at once). A peer that cannot make its
        review turns its parts `unavailable` (its reason names it). Audited here: `played_from`
        (the peers whose footage is in the review), `unavailable_parts`, `overlaps`."""
        played = [p for p in parts if p.state is PartState.PLAYED]
        local = [p for p in played if p.recorder == self._recorder_id]
        by_peer: dict[str, list[Part]] = {}
        for part in played:
            if part.recorder != self._recorder_id:
                by_peer.setdefault(part.recorder, []).append(part)
        held: list[HeldSegment] = []
        if local:
            rows = await asyncio.to_thread(
                self._storage.catalogue.segments_in_range, camera_id, local[0].start_ns, local[-1].end_ns
            )
            for row in rows:
                if complete_only and (row.state is not SegmentState.COMPLETE or row.end_ns is None):
                    continue  # a segment still being written has no complete end yet: it joins once closed
                within = _part_of(local, row.start_ns, row.end_ns)
                if within is not None:
                    held.append(HeldSegment(_reviewed(row, self._recorder_id), within, row=row))
        failed: dict[str, str] = {}
        if by_peer and self._site is not None:
            site = self._site
            asked = await asyncio.gather(
                *(self._peer_part(site, principal, camera_id, own, reason) for own in by_peer.values()),
                return_exceptions=True,
            )
            for recorder, answer in zip(by_peer, asked, strict=True):
                if isinstance(answer, VmsdError):
                    failed[recorder] = f"{answer.kind.value}: {answer.message}"
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    held += answer
            activity.touch(played_from=sorted(set(by_peer) - set(failed)))
        parts = [
            parts_mod.unavailable(p, failed[p.recorder]) if p.state is PartState.PLAYED and p.recorder in failed else p
            for p in parts
        ]
        _audit_parts(activity, parts)
        held.sort(key=lambda h: (h.segment.start_ns, h.segment.recorder))
        return held, parts

    async def _peer_part(
        self, site: Site, principal: Principal, camera_id: str, own: list[Part], reason: str
    ) -> list[HeldSegment]:
        """One peer's segments of its played parts `own`, from its review of their whole stretch."""
        peer = await site.locate(camera_id, own[0].recorder)
        review_id, segments = await site.peers.review_segments(
            peer.recorder_id, peer.address, site.forward(principal), camera_id, own[0].start_ns, own[-1].end_ns, reason
        )
        held: list[HeldSegment] = []
        for index, segment in enumerate(segments):
            part = _part_of(own, segment.start_ns, segment.end_ns)
            if part is not None:
                held.append(HeldSegment(segment, part, peer=peer, peer_review_id=review_id, peer_index=index))
        return held

    async def _peer_copy(self, principal: Principal, held: HeldSegment) -> Path:
        """The local copy of a peer's segment (fetched for `principal`, who made the review)."""
        assert self._copies is not None and self._site is not None and held.peer is not None
        return await self._copies.fetch(
            held.peer, self._site.forward(principal), held.peer_review_id, held.peer_index, held.segment
        )

    async def review(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int, reason: str
    ) -> Review:
        """A review as one MPEG-TS stream remuxed from the segments (gRPC Play). With a site, the
        footage of every recorder holding the range, in time order (`Review.parts`): a peer's
        segments are fetched from it (its own review, for this principal with the reason:
        audited there too) as the stream reaches them."""
        camera_id, start_ns, end_ns, result = await self._begin_review(
            principal, activity, camera_id, start_ns, end_ns, reason, site_wide=True
        )
        stats = PlaybackStats()
        parts = parts_mod.plan(result.spans, start_ns, end_ns)
        if all(p.recorder == self._recorder_id and p.state is PartState.PLAYED for p in parts):
            rows = await asyncio.to_thread(self._storage.catalogue.segments_in_range, camera_id, start_ns, end_ns)
            local = functools.partial(remux_range, self._storage, rows, start_ns, end_ns, stats)
            chunks = self._chunks(activity, local, stats)
            return Review(start_ns, end_ns, result, stats, chunks, parts)
        held, parts = await self._gather(principal, activity, camera_id, parts, reason, complete_only=False)
        if not held:
            raise _nothing_playable(camera_id, parts)
        loop = asyncio.get_running_loop()

        def path_of(segment: HeldSegment) -> Path | None:
            """The file to remux (blocking: runs on the remux thread; a peer's is fetched on the loop)."""
            if segment.row is not None:
                return self._storage.segment_path(segment.row)
            try:
                return asyncio.run_coroutine_threadsafe(self._peer_copy(principal, segment), loop).result()
            except VmsdError as error:  # that part is stated unavailable, the stream goes on
                if segment.part in parts:  # its first segment that could not be had
                    parts[parts.index(segment.part)] = parts_mod.unavailable(
                        segment.part, f"{error.kind.value}: {error.message}"
                    )
                return None

        sources = [
            Source(
                h.row.id if h.row is not None else 0,
                h.segment.start_ns,
                h.part.start_ns,
                h.part.end_ns,
                functools.partial(path_of, h),
                h.segment.recorder,
                writing=h.row is not None and h.row.state is SegmentState.WRITING,
            )
            for h in held
        ]
        remux = functools.partial(remux_sources, sources, stats)
        review = Review(start_ns, end_ns, result, stats, self._chunks(activity, remux, stats), parts)
        return review

    async def review_segments(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int, reason: str
    ) -> SegmentReview:
        """A review as the stored fMP4 segments themselves (the web console plays them with byte
        ranges, no remux): authorised, audited and announced exactly like `review`, over every
        recorder of the site holding the range. The segments are fetched with `segment_file`,
        by this principal only (a peer's through this recorder)."""
        camera_id, start_ns, end_ns, result = await self._begin_review(
            principal, activity, camera_id, start_ns, end_ns, reason, site_wide=True
        )
        parts = parts_mod.plan(result.spans, start_ns, end_ns)
        held, parts = await self._gather(principal, activity, camera_id, parts, reason, complete_only=True)
        if not held and any(p.state is PartState.UNAVAILABLE for p in parts):
            raise _nothing_playable(camera_id, parts)
        review = SegmentReview(
            review_id=secrets.token_urlsafe(16),
            principal=principal.name,
            camera_id=camera_id,
            start_ns=start_ns,
            end_ns=end_ns,
            found=result,
            segments=held,
            made_mono_ns=self._clock.mono_ns(),
            parts=parts,
        )
        activity.touch(review_id=review.review_id, segments=len(held))
        self._segment_reviews.add(review, self._clock.mono_ns())
        return review

    def segment_review(self, principal: Principal, activity: Activity, review_id: str) -> SegmentReview:
        """A segment review made by this principal and still usable (NOT_FOUND: no such review,
        or expired; PERMISSION_DENIED: another principal's, or it may no longer review the camera)."""
        principal.require(Permission.RECORDINGS_PLAY)  # before the lookup: a review id is never probed
        review = self._segment_reviews.get(review_id, self._clock.mono_ns())
        if review is None:
            raise VmsdError(ErrorKind.NOT_FOUND, "no such review (it may have expired): make the review again")
        activity.about(camera_id=review.camera_id, start_ns=review.start_ns, end_ns=review.end_ns)
        if review.principal != principal.name:
            raise VmsdError(ErrorKind.PERMISSION_DENIED, "this review was made by another principal")
        principal.require(Permission.RECORDINGS_PLAY, review.camera_id)
        return review

    async def segment_file(self, principal: Principal, activity: Activity, review_id: str, index: int) -> Path:
        """The stored file of segment `index` of a review made by this principal (see
        `segment_review`; NOT_FOUND: no such segment, or no longer stored). A peer's segment is
        its local copy, fetched from the peer for this principal (UNAVAILABLE naming the peer
        when it cannot be)."""
        review = self.segment_review(principal, activity, review_id)
        if not 0 <= index < len(review.segments):
            raise VmsdError(
                ErrorKind.NOT_FOUND, f"the review has {len(review.segments)} segment(s); no segment {index}"
            )
        held = review.segments[index]
        if held.row is None:
            activity.touch(from_recorder=held.segment.recorder)
            return await self._peer_copy(principal, held)
        path = self._storage.segment_path(held.row)
        if not await asyncio.to_thread(path.is_file):
            raise VmsdError(ErrorKind.NOT_FOUND, f"segment {index} of this review is no longer stored (erased)")
        return path

    async def segment_bytes(
        self, principal: Principal, activity: Activity, review_id: str, index: int
    ) -> AsyncGenerator[bytes, None]:
        """The bytes of `segment_file` in order (gRPC ReadSegment), read by a worker thread;
        checked before the first byte (the errors of `segment_file`), audited with the bytes sent."""
        path = await self.segment_file(principal, activity, review_id, index)
        return self._file_chunks(activity, path)

    async def _file_chunks(self, activity: Activity, path: Path) -> AsyncGenerator[bytes, None]:
        sent = 0
        produced = cast("AsyncGenerator[bytes, None]", iterate_in_thread(functools.partial(_read, path), maxsize=4))
        try:
            async with contextlib.aclosing(produced) as chunks:
                async for data in chunks:
                    sent += len(data)
                    yield data
        except OSError as error:
            raise VmsdError(ErrorKind.DATA_LOSS, f"the segment could not be read: {error}") from None
        finally:
            activity.touch(bytes=sent)

    async def _chunks(
        self, activity: Activity, remux: functools.partial[Any], stats: PlaybackStats
    ) -> AsyncGenerator[bytes, None]:
        """The remuxed footage, read by a worker thread that gives up when the consumer has gone."""
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


def _read(path: Path, chunk_bytes: int = 256 * 1024) -> Iterator[bytes]:
    with path.open("rb") as file:
        while data := file.read(chunk_bytes):
            yield data


def _part_of(parts: list[Part], start_ns: int, end_ns: int | None) -> Part | None:
    """The part (of one recorder's, which never overlap) that a segment's time falls in."""
    for part in parts:
        if start_ns < part.end_ns and (end_ns is None or end_ns > part.start_ns):
            return part
    return None


def _reviewed(row: SegmentRow, recorder_id: str) -> ReviewedSegment:
    return ReviewedSegment(
        row.start_ns, row.end_ns if row.end_ns is not None else row.start_ns, row.bytes or 0, row.sha256 or "",
        row.video_codec, row.width, row.height, recorder_id,
    )  # fmt: skip


def _audit_parts(activity: Activity, parts: list[Part]) -> None:
    missing = [f"{p.recorder} {_stretch(p)}" for p in parts if p.state is PartState.UNAVAILABLE]
    if missing:
        activity.touch(unavailable_parts=missing)
    overlaps = [f"{p.recorder} {_stretch(p)}" for p in parts if p.state is PartState.OVERLAP]
    if overlaps:
        activity.touch(overlaps=overlaps)
