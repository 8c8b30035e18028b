"""Watch events: what is stored after a sequence number, then (when following) live events, within
the caller's scope.

Who sees what (docs/grpc.md "Events"): the role needs `events.watch`; an event about a camera is
shown only when the camera is in the principal's scope; recorder-wide events (no camera: disk low,
erasure passes, recorder clock alarms) to every principal that may watch; and the access events
(review_started, relay_started, request_denied: who looked at what) only to roles that may also
read the audit trail. A camera filter naming a camera id (no wildcard) outside the scope is
PERMISSION_DENIED, as everywhere; a glob is simply narrowed to the scope.

Resume: `after_seq` N gives every event after N (0: from the oldest kept). When events after N have already been pruned
(older than `[events] keep`), the call is FAILED_PRECONDITION naming the oldest sequence number
still kept — never a stream that silently starts later.

A consumer that falls behind (its subscription's queue full) is cut off with RESOURCE_EXHAUSTED;
one that stops reading is ended by the transport's send timeout. Neither holds up the daemon.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus, SubscriberCutOff, Subscription, SubscriptionEnded
from vmsd.events.kinds import ACCESS_KINDS, Event, EventKind
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity

MAX_FILTERS = 64
PAGE = 500  # stored events read per query
MAX_QUEUE = 1000  # live events a consumer may fall behind before it is cut off
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class EventFilter:
    kinds: frozenset[EventKind]
    camera_globs: tuple[str, ...]

    def admits(self, principal: Principal, event: Event) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if event.kind in ACCESS_KINDS and not principal.can(Permission.AUDIT_READ):
            return False
        if not event.camera_id:
            return not self.camera_globs  # a camera filter asks for those cameras' events only
        if not principal.in_scope(event.camera_id):
            return False
        return not self.camera_globs or any(fnmatch.fnmatchcase(event.camera_id, g) for g in self.camera_globs)


class EventService:
    def __init__(self, bus: EventBus, *, max_queue: int = MAX_QUEUE) -> None:
        self._bus = bus
        self._max_queue = max_queue
        self._following: set[Subscription] = set()
        self._closed = False

    def close(self) -> None:
        """End every following stream now (the daemon is stopping), telling the consumers to resume
        later, rather than have the server's shutdown grace period wait for them; streams opened
        after this are told the same once their stored events are sent. On the event loop."""
        self._closed = True
        for subscription in list(self._following):
            subscription.end()

    def denied(self, *, method: str, principal: str, role: str, camera_id: str, outcome: str, peer: str) -> None:
        """A request refused (UNAUTHENTICATED or PERMISSION_DENIED): the transport tells the first
        of each burst of repeats, as it audits them (services/denials.py)."""
        self._bus.publish(
            EventKind.REQUEST_DENIED,
            camera_id,
            method=method,
            principal=principal,
            role=role,
            outcome=outcome,
            peer=peer,
        )

    def _filter(self, principal: Principal, activity: Activity, kinds: list[str], cameras: list[str]) -> EventFilter:
        if len(kinds) > MAX_FILTERS or len(cameras) > MAX_FILTERS:
            raise validate.invalid(f"at most {MAX_FILTERS} kinds and {MAX_FILTERS} cameras")
        known = {k.value for k in EventKind}
        for kind in kinds:
            if kind not in known:
                raise validate.invalid(
                    f"kinds: {kind[:80]!r} is not an event kind (one of: {', '.join(sorted(known))})"
                )
        globs = []
        for glob in cameras:
            glob = validate.text(glob, "cameras", required=True, max_len=128)
            if _GLOB_CHARS.isdisjoint(glob):
                activity.about(camera_id=validate.camera_id(glob, "cameras"))
                principal.require(Permission.EVENTS_WATCH, glob)
            globs.append(glob)
        principal.require(Permission.EVENTS_WATCH)
        return EventFilter(frozenset(EventKind(k) for k in kinds), tuple(globs))

    async def watch(
        self,
        principal: Principal,
        activity: Activity,
        *,
        kinds: list[str],
        cameras: list[str],
        after_seq: int = 0,
        follow: bool = False,
        from_now: bool = False,
    ) -> AsyncGenerator[Event, None]:
        """Stored events after `after_seq` (from_now: none), then, when following, live ones until
        the consumer stops."""
        chosen = self._filter(principal, activity, kinds, cameras)
        if after_seq < 0:
            raise validate.invalid("after_seq must not be negative")
        subscription = self._bus.subscribe(asyncio.get_running_loop(), max_queue=self._max_queue) if follow else None
        if subscription is not None:
            self._following.add(subscription)
        try:
            pruned_through, last_seq = self._bus.window()
            if from_now:
                after_seq = last_seq
            elif after_seq > last_seq:
                raise VmsdError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"after_seq {after_seq} is beyond the newest event ({last_seq}) of this recorder",
                )
            elif 0 < after_seq < pruned_through:  # 0: from the oldest event kept
                raise VmsdError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"events after seq {after_seq} up to {pruned_through} are no longer kept ([events] keep); "
                    f"the oldest kept is seq {pruned_through + 1}: resume from after_seq {pruned_through} "
                    "knowing that events were missed",
                )
            cursor = after_seq
            while True:
                page = await asyncio.to_thread(self._bus.stored_after, cursor, PAGE)
                for event in page:
                    cursor = event.seq
                    if chosen.admits(principal, event):
                        yield event
                if len(page) < PAGE:
                    break
            if subscription is None:
                return
            if self._closed:
                subscription.end()  # opened while the daemon stops: no live events will follow
            while True:
                try:
                    event = await subscription.next()
                except SubscriberCutOff as cut:
                    raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, f"event stream ended: {cut}") from None
                except SubscriptionEnded:
                    raise VmsdError(
                        ErrorKind.UNAVAILABLE,
                        f"the recorder is stopping: resume with after_seq {cursor} once it is back",
                    ) from None
                if event.seq <= cursor:
                    continue  # already sent from the store
                cursor = event.seq
                if chosen.admits(principal, event):
                    yield event
        finally:
            if subscription is not None:
                self._following.discard(subscription)
                subscription.close()
