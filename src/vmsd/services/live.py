"""Live relay: subscribe one viewer to a camera's hub, within per-principal and overall limits.

The hub never waits for a slow viewer (it drops whole GOPs, then the subscriber); the transport
gives up on a viewer that stops reading (gRPC: [grpc] send_timeout, rpc/limits.py; the live
WebSocket: [web] send_timeout, web/api/live.py). Both transports get the same checks, limits and
audit record (who, camera, when, how long, bytes, frames, missed frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.ingest.hub import VIDEO, CameraHub, Missed, RelayPacket, StreamConfig, SubscriberGone
from vmsd.ingest.recorder import CameraRecorder
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.services.site_wide import Site
from vmsd.site.footage import PeerRecorder
from vmsd.units import NS_PER_S

MAX_DURATION_NS = 7 * validate.DAY_NS


@dataclass(frozen=True)
class MissedNotice:
    """Frames the viewer missed (it fell behind): now, and since the relay began."""

    frames: int
    total: int


RelayItem = RelayPacket | StreamConfig | MissedNotice
CameraRecorders = Callable[[], dict[str, CameraRecorder]]


SendObserver = Callable[[str, int], None]


class LiveService:
    def __init__(
        self,
        directory: CameraDirectory,
        recorders: CameraRecorders,
        *,
        events: EventBus | None = None,
        on_sent: SendObserver | None = None,
        site: Site | None = None,
        max_relays_per_principal: int = 16,
        max_relays: int = 256,
    ) -> None:
        self._directory = directory
        self._max_per_principal = max_relays_per_principal
        self._max_relays = max_relays
        self._recorders = recorders
        self._events = events
        # With a [site]: a camera another recorder records is relayed from it (its owner).
        self._site = site
        self._active: Counter[str] = Counter()
        # Told (transport, ns from the frame's arrival at the recorder to its send) per video frame
        # sent; the metrics' histogram (ops/metrics.py) when metrics are on.
        self.on_sent = on_sent

    @property
    def active_relays(self) -> int:
        return sum(self._active.values())

    async def relay(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        duration_ns: int = 0,
        *,
        transport: str,
    ) -> AsyncGenerator[RelayItem, None]:
        """The camera's stream configuration, packets and missed-frame notices, until the
        duration (0: no limit) ends or the consumer stops.

        Checks when awaited (a VmsdError from `await relay(…)`, before anything is streamed, so that
        an HTTP transport can still answer with a status); the viewer is counted and subscribed
        when the stream is first read. `transport` names the sender in the send-delay figures.
        With a [site], a camera another recorder records is relayed from that recorder (its owner)."""
        camera_id = validate.camera_id(camera_id)
        activity.touch(camera_id=camera_id)
        principal.require(Permission.LIVE_RELAY, camera_id)
        if duration_ns < 0 or duration_ns > MAX_DURATION_NS:
            raise validate.invalid(f"duration_ns must be between 0 (no limit) and {MAX_DURATION_NS // NS_PER_S} s")
        self._directory.configured(camera_id)  # NOT_FOUND for an unknown camera
        recorder = self._recorders().get(camera_id)
        owner = None
        if recorder is None and self._site is not None and not principal.via:
            owner = await self._site.directory.owner(camera_id)
        if recorder is None and owner is None:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"camera_id {camera_id!r} is not being recorded")
        self._check_limits(principal)
        return self._stream(principal, activity, camera_id, recorder, owner, duration_ns, transport)

    def _check_limits(self, principal: Principal) -> None:
        if self._active[principal.name] >= self._max_per_principal:
            raise VmsdError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"at most {self._max_per_principal} relays at once per principal ([live] max_relays_per_principal)",
            )
        if self.active_relays >= self._max_relays:
            raise VmsdError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"at most {self._max_relays} relays at once on this recorder ([live] max_relays)",
            )

    async def _stream(
        self,
        principal: Principal,
        activity: Activity,
        camera_id: str,
        recorder: CameraRecorder | None,
        owner: PeerRecorder | None,
        duration_ns: int,
        transport: str,
    ) -> AsyncGenerator[RelayItem, None]:
        self._check_limits(principal)  # again: others may have started since relay() checked
        started_ns = time.time_ns()
        deadline_mono_ns = time.monotonic_ns() + duration_ns if duration_ns else None
        self._active[principal.name] += 1
        try:
            if owner is not None:
                # Relayed from the recorder that records it (which audits it too, with `via`).
                assert self._site is not None
                activity.touch(relayed_from=owner.recorder_id)
                items = await self._site.peers.relay(
                    owner.recorder_id, owner.address, self._site.forward(principal), camera_id, duration_ns
                )
            else:
                assert recorder is not None
                items = _hub_items(recorder.hub)
        except BaseException:
            self._active[principal.name] -= 1
            raise
        if self._events is not None:
            self._events.publish(
                EventKind.RELAY_STARTED,
                camera_id,
                principal=principal.name,
                role=principal.role,
                duration_ns=duration_ns,
            )
        sent_bytes = frames = missed = 0
        try:
            async with contextlib.aclosing(items) as stream:
                while True:
                    if deadline_mono_ns is not None:
                        remaining_s = (deadline_mono_ns - time.monotonic_ns()) / NS_PER_S
                        if remaining_s <= 0:
                            break
                        try:
                            async with asyncio.timeout(remaining_s):
                                item = await anext(stream)
                        except TimeoutError:
                            break
                    else:
                        item = await anext(stream)
                    if isinstance(item, RelayPacket):
                        sent_bytes += len(item.data)
                        frames += item.kind == VIDEO
                        yield item
                        # Resumed: the transport has sent the item and asks for the next one.
                        if item.kind == VIDEO and self.on_sent is not None:
                            self.on_sent(transport, time.monotonic_ns() - item.received_mono_ns)
                    elif isinstance(item, StreamConfig):
                        yield item
                    elif isinstance(item, Missed):
                        missed += item.frames
                        yield MissedNotice(item.frames, missed)
        except StopAsyncIteration:
            pass  # the owner ended the relay (its duration, or it stopped recording the camera)
        except SubscriberGone as gone:
            raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, f"relay ended: {gone}") from None
        finally:
            self._active[principal.name] -= 1
            activity.touch(
                start_ns=started_ns,
                end_ns=time.time_ns(),
                bytes=sent_bytes,
                video_frames=frames,
                missed_frames=missed,
            )


async def _hub_items(hub: CameraHub) -> AsyncGenerator[RelayPacket | StreamConfig | Missed, None]:
    """A subscriber's items from the hub, subscribed at the first item asked for and closed when
    the relay ends (a generator never started holds no subscriber)."""
    subscriber = hub.subscribe(asyncio.get_running_loop())
    try:
        while True:
            yield await subscriber.next()
    finally:
        subscriber.close()
