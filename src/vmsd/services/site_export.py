"""An export across a failover (issue #15): which other recorders of the site hold part of the
range, and a way for the exporter (on its worker thread) to fetch their parts.

The recorder asked for an export finds the camera's footage in the range on every recorder of
the site (a site-wide search, asked of each holder for the ORIGINAL principal), and fetches each
other holder's segments over its gRPC link (`FetchSegments`, for that principal: re-authorised
and audited on the peer with `via`). Evidence must not be silently incomplete: when a holder
cannot be asked and some of the range is covered by no recorder that answered, the export is
refused (UNAVAILABLE, naming the recorder and the time that may be on it) unless the request
accepts a partial export — then the manifest's `missing` says what is missing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Generator, Sequence
from typing import Any, Protocol, TypeVar

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.site_parts import PartItem, SiteParts
from vmsd.recordings.search import SearchResult, Span
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.site_wide import Site
from vmsd.units import NS_PER_S

T = TypeVar("T")

# The exporter's worker waits this long for one message of a peer's part (the peer client's own
# deadline per message is shorter, so this only fires if the event loop itself is gone).
_BRIDGE_TIMEOUT_S = 120.0


class SegmentSource(Protocol):
    """A peer's part of an export (vmsd.site.peers.PeerClient.fetch_segments)."""

    def fetch_segments(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        export_id: str,
    ) -> Awaitable[AsyncGenerator[PartItem, None]]:
        """The peer's header, then each segment's row and bytes, once its header has come."""
        ...


def _when(value_ns: int) -> str:
    return dt.datetime.fromtimestamp(value_ns / NS_PER_S, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def uncovered(spans: list[Span], start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """[start_ns, end_ns) minus the union of `spans` (pure)."""
    holes: list[tuple[int, int]] = []
    cursor = start_ns
    for span in sorted(spans, key=lambda s: s.start_ns):
        if span.start_ns > cursor:
            holes.append((cursor, min(span.start_ns, end_ns)))
        cursor = max(cursor, span.end_ns)
    if cursor < end_ns:
        holes.append((cursor, end_ns))
    return [(a, b) for a, b in holes if b > a]


async def plan(
    site: Site,
    segments: SegmentSource,
    principal: Principal,
    activity: Activity,
    own: SearchResult,
    *,
    camera_id: str,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    case_ref: str,
    reason: str,
    allow_partial: bool,
) -> SiteParts | None:
    """The other recorders' parts of the export (None: only this recorder's footage is
    concerned — a call forwarded by a peer, or no other recorder holds any of the range and all
    answered). UNAVAILABLE when a holder cannot be asked and part of the range may be on it,
    unless `allow_partial`."""
    answers, unavailable = await site.search(principal, activity, camera_id, start_ns, end_ns)
    headers = site.forward(principal)  # for the peers' fetches below
    holding = sorted(
        ((peer, answer) for peer, answer in answers if answer.spans), key=lambda item: item[1].spans[0].start_ns
    )
    missing: list[mf.MissingPart] = []
    if unavailable:
        # Only time nobody who answered covers can be on a recorder that did not (up to now).
        spans = own.spans + [span for _, answer in holding for span in answer.spans]
        holes = uncovered(spans, start_ns, min(end_ns, now_ns))
        if holes and not allow_partial:
            who = "; ".join(f"recorder {u.recorder} ({u.reason})" for u in unavailable)
            when = ", ".join(f"{_when(a)}..{_when(b)}" for a, b in holes)
            raise VmsdError(
                ErrorKind.UNAVAILABLE,
                f"the export of camera_id {camera_id!r} would be incomplete: {who} cannot be asked for its "
                f"footage, and {when} may be on it. Try again when it is back, or accept a partial export "
                "(allow_partial)",
            )
        missing = [
            mf.MissingPart(recorder=u.recorder, reason=u.reason, spans=[mf.time_span(a, b) for a, b in holes])
            for u in unavailable
        ]
    if not holding and not missing:
        return None
    addresses = {peer.recorder_id: peer.address for peer, _ in holding}
    loop = asyncio.get_running_loop()

    def fetch(recorder_id: str, export_id: str) -> Generator[PartItem, None, None]:
        """The peer's part, read from the exporter's worker thread (each message is awaited on
        the event loop, where the gRPC call lives)."""
        opened = segments.fetch_segments(
            recorder_id, addresses[recorder_id], headers, camera_id, start_ns, end_ns, case_ref, reason, export_id
        )
        items: AsyncGenerator[PartItem, None] = _wait(loop, _awaited(opened))
        try:
            while True:
                try:
                    item = _wait(loop, _next(items))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            _wait(loop, items.aclose())

    return SiteParts(
        peers=[peer.recorder_id for peer, _ in holding],
        source_bytes=sum(span.bytes for _, answer in holding for span in answer.spans),
        fetch=fetch,
        missing=missing,
    )


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _next(items: AsyncGenerator[T, None]) -> T:
    return await anext(items)


def _wait(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on `loop` from a worker thread and wait for it."""
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result(timeout=_BRIDGE_TIMEOUT_S)
    except TimeoutError:
        future.cancel()
        raise VmsdError(
            ErrorKind.UNAVAILABLE, "a peer's part of the export did not come (the recorder is stopping?)"
        ) from None
