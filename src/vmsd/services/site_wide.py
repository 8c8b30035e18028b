"""What the use cases need of a site of recorders: who else holds a camera's footage, and a way
to ask them (transport-neutral; the etcd and gRPC parts are vmsd.site's, wired by vmsd.app).

A site-wide answer is this recorder's own part plus each peer's, asked for the ORIGINAL
principal (forwarded: services/forwarding.py). A peer that does not answer, or refuses, is an
explicit `Unavailable` part of the answer (its recorder id and why), never silence. A call that
itself came through a peer is answered from this recorder alone: the recorder that fanned out
asks every holder itself, so forwarding never chains or loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from vmsd.audit import AuditFilters, AuditRecord
from vmsd.errors import ErrorKind, VmsdError
from vmsd.ingest.hub import Missed, RelayPacket, StreamConfig
from vmsd.log import get_logger
from vmsd.recordings.parts import ReviewedSegment
from vmsd.recordings.search import SearchResult, Unavailable
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.forwarding import Forwarded
from vmsd.site.footage import PeerRecorder

__all__ = ["PeerCalls", "PeerRecorder", "Site", "SiteDirectory", "Unavailable"]

log = get_logger(component="site")

T = TypeVar("T")


class SiteDirectory(Protocol):
    async def holders(self, camera_id: str) -> tuple[list[PeerRecorder], list[Unavailable]]:
        """The OTHER recorders that hold footage of `camera_id`: the live ones (to ask), and
        those known to hold some that are not live now (reported as unavailable)."""
        ...

    async def recorders(self) -> tuple[list[PeerRecorder], list[Unavailable]]:
        """Every OTHER recorder of the site, live (to ask) or not (unavailable)."""
        ...

    async def owner(self, camera_id: str) -> PeerRecorder | None:
        """The OTHER live recorder recording the camera now (None: this one, or nobody)."""
        ...


class PeerCalls(Protocol):
    """Calls to a peer (vmsd.site.peers.PeerClient), each with the headers of the forwarded
    principal (`Site.forward`); they raise VmsdError (UNAVAILABLE: the peer did not answer)."""

    async def search(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
    ) -> SearchResult:
        """The peer's own spans and gaps of the camera."""
        ...

    async def review_segments(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
        reason: str,
    ) -> tuple[str, list[ReviewedSegment]]:
        """The peer's own review of the range (made there, with the reason: audited there): its
        review id and its complete stored segments, in time order."""
        ...

    def read_segment(
        self, recorder_id: str, address: str, headers: Sequence[tuple[str, str]], review_id: str, index: int
    ) -> Awaitable[AsyncGenerator[bytes, None]]:
        """The bytes of segment `index` of the peer's review `review_id`, once the first has come."""
        ...

    def relay(
        self, recorder_id: str, address: str, headers: Sequence[tuple[str, str]], camera_id: str, duration_ns: int
    ) -> Awaitable[AsyncGenerator[StreamConfig | RelayPacket | Missed, None]]:
        """The peer's live relay of the camera, once its first message has come."""
        ...

    async def query_audit(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        filters: AuditFilters,
        page_size: int,
        before_seq: int,
    ) -> tuple[list[tuple[AuditRecord, bool]], bool]:
        """The peer's own newest matching records before `before_seq` (0: the newest), oldest
        first, each with its `redacted` flag, and whether older ones remain."""
        ...


class Site:
    """This recorder's view of its site for the use cases. No I/O in the constructor."""

    def __init__(self, recorder_id: str, directory: SiteDirectory, peers: PeerCalls) -> None:
        self.recorder_id = recorder_id
        self.directory = directory
        self.peers = peers

    async def locate(self, camera_id: str, recorder_id: str) -> PeerRecorder:
        """The live peer `recorder_id` holding footage of the camera; UNAVAILABLE when it is not live."""
        live, unavailable = await self.directory.holders(camera_id)
        for peer in live:
            if peer.recorder_id == recorder_id:
                return peer
        why = next((u.reason for u in unavailable if u.recorder == recorder_id), "not a live member of the site")
        raise VmsdError(ErrorKind.UNAVAILABLE, f"recorder {recorder_id}: {why}")

    def forward(self, principal: Principal) -> list[tuple[str, str]]:
        """The headers a call to a peer carries for `principal` (services/forwarding.py)."""
        return Forwarded.of(principal, self.recorder_id).headers()

    async def fan_out(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str | None,
        ask: Callable[[PeerRecorder], Awaitable[T]],
    ) -> tuple[list[tuple[PeerRecorder, T]], list[Unavailable]]:
        """`ask` every other holder of the camera's footage (every other recorder of the site
        when `camera_id` is None) at once, for `principal`. Returns the answers and the
        recorders that gave none. Audited on this side (`site_peers`, and `site_unavailable`
        when some did not answer); each peer audits its side with `via`."""
        if principal.via:
            return [], []  # answered for a peer: this recorder's part only
        if camera_id is None:
            live, unavailable = await self.directory.recorders()
        else:
            live, unavailable = await self.directory.holders(camera_id)
        results = await asyncio.gather(*(ask(peer) for peer in live), return_exceptions=True)
        answers: list[tuple[PeerRecorder, T]] = []
        for peer, result in zip(live, results, strict=True):
            if isinstance(result, VmsdError):
                unavailable.append(Unavailable(peer.recorder_id, f"{result.kind.value}: {result.message}"))
            elif isinstance(result, BaseException):
                log.error("peer_call_failed", peer=peer.recorder_id, exc_info=result)
                unavailable.append(Unavailable(peer.recorder_id, "INTERNAL: the call failed (logged by this recorder)"))
            else:
                answers.append((peer, result))
        if live or unavailable:
            activity.touch(camera_id=camera_id or "", site_peers=sorted(p.recorder_id for p in live))
        if unavailable:
            activity.touch(site_unavailable=sorted({u.recorder for u in unavailable}))
        return answers, unavailable

    async def search(
        self, principal: Principal, activity: Activity, camera_id: str, start_ns: int, end_ns: int
    ) -> tuple[list[tuple[PeerRecorder, SearchResult]], list[Unavailable]]:
        """Every other holder's spans and gaps of the camera in [start_ns, end_ns), asked for
        `principal` (see `fan_out`)."""
        headers = self.forward(principal)
        return await self.fan_out(
            principal,
            activity,
            camera_id,
            lambda peer: self.peers.search(peer.recorder_id, peer.address, headers, camera_id, start_ns, end_ns),
        )
