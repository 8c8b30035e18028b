"""EventService: protobuf ⇄ vmsd.services.events (the event stream)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vmsd.events.kinds import Event
from vmsd.rpc.calls import current_call
from vmsd.services.events import EventService
from vmsd.v1 import events_pb2, events_pb2_grpc


def event_message(event: Event, recorder_id: str) -> events_pb2.Event:
    return events_pb2.Event(
        seq=event.seq,
        time_ns=event.time_ns,
        kind=str(event.kind),
        camera_id=event.camera_id,
        recorder_id=recorder_id,
        fields=event.fields,
    )


class EventServicer(events_pb2_grpc.EventServiceServicer):
    def __init__(self, events: EventService, recorder_id: str) -> None:
        self._events = events
        self._recorder_id = recorder_id

    async def WatchEvents(
        self, request: events_pb2.WatchEventsRequest, context: Any
    ) -> AsyncIterator[events_pb2.Event]:
        # A generator: the interceptor sends each message with [grpc] send_timeout (rpc/limits.py),
        # ending a stream whose client stopped reading.
        call = current_call()
        events = self._events.watch(
            call.require_principal(),
            call,
            kinds=list(request.kinds),
            cameras=list(request.cameras),
            after_seq=request.after_seq,
            follow=request.follow,
            from_now=request.from_now,
        )
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                yield event_message(event, self._recorder_id)
