"""The one publisher of events: publish from any thread without waiting; store, then fan out.

`publish()` is called where things happen — recorder threads, the retention task, the services on
the event loop — and only puts the event on a bounded queue: a recorder thread never waits for
SQLite or for a consumer. One writer thread takes what is queued, gives each event the next
sequence number, stores the batch in the catalogue (one transaction), and then hands it to every
subscription on that subscription's event loop. A full publish queue (the catalogue stuck for
minutes) drops the event and counts it (`dropped`, logged), rather than hold up recording.

Stored first, fanned out after: a consumer that subscribes, then reads what is stored, then takes
the live events, sees every event at least once and can drop the repeats by sequence number
(services/events.py does).

A subscription's queue is bounded: a consumer that falls that far behind is cut off (its next read
raises `SubscriberCutOff`) — it can resume from the last sequence number it got.

Events older than `[events] keep` are pruned by the writer thread (at start and every
PRUNE_INTERVAL_NS); the highest sequence number ever pruned is kept so that a resume from before
the window is refused rather than silently missing events.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections import deque
from dataclasses import dataclass

from vmsd.clock import Clock
from vmsd.events.kinds import Event, EventKind
from vmsd.log import get_logger
from vmsd.storage.catalogue import Catalogue, StoredEvent
from vmsd.units import NS_PER_S

log = get_logger(component="events")

MAX_PENDING = 10_000  # events waiting for the writer thread (about 2 MB at most)
MAX_BATCH = 500  # events stored in one transaction
RETRY_S = 1.0  # how soon events the catalogue refused are tried again
PRUNE_INTERVAL_NS = 3600 * NS_PER_S


@dataclass(frozen=True)
class _Pending:
    time_ns: int
    kind: EventKind
    camera_id: str
    fields: dict[str, str]


_STOP = object()


class SubscriberCutOff(Exception):
    """The consumer fell `max_queue` events behind and was cut off."""


class SubscriptionEnded(Exception):
    """The subscription was ended by its owner (the daemon is stopping)."""


class Subscription:
    """Live events for one consumer, delivered on its event loop. Bounded: see `next()`."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop, max_queue: int) -> None:
        self._bus = bus
        self._loop = loop
        self._max_queue = max_queue
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._cut_off_at = 0  # the sequence number that did not fit (0: not cut off)
        self._ended = False

    def _deliver(self, events: list[Event]) -> None:  # on the subscription's loop
        if self._cut_off_at:
            return
        if len(self._items) + len(events) > self._max_queue:
            self._cut_off_at = events[0].seq
            self._items.clear()  # nothing more is delivered: free the memory now
        else:
            self._items.extend(events)
        self._ready.set()

    def end(self) -> None:
        """Make `next()` raise SubscriptionEnded (call on the subscription's loop)."""
        self._ended = True
        self._ready.set()

    async def next(self) -> Event:
        """The next live event; SubscriberCutOff once the queue has overflowed, SubscriptionEnded
        once `end()` was called."""
        while True:
            if self._ended:
                raise SubscriptionEnded
            if self._cut_off_at:
                raise SubscriberCutOff(
                    f"the consumer fell more than {self._max_queue} events behind (at seq {self._cut_off_at}) "
                    "and was cut off; resume with the last seq it received"
                )
            if self._items:
                return self._items.popleft()
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        self._bus._unsubscribe(self)


class EventBus:
    """Publish, store and fan out events. The constructor does no I/O; `open()` starts the writer."""

    def __init__(self, catalogue: Catalogue, clock: Clock, *, keep_ns: int, max_pending: int = MAX_PENDING) -> None:
        self._catalogue = catalogue
        self._clock = clock
        self._keep_ns = keep_ns
        self._pending: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._last_seq = 0
        self._pruned_through = 0
        self._thread: threading.Thread | None = None
        self.dropped = 0  # events lost because the queue was full
        self.not_stored = 0  # events the catalogue refused so far (kept and retried, see _unstored)
        # Events the catalogue refused (storage lost for a while): retried before anything newer, so
        # they keep their order and get their numbers only once stored (bounded like the queue).
        self._unstored: list[_Pending] = []

    # -- any thread --------------------------------------------------------------------------

    def publish(self, kind: EventKind, camera_id: str = "", **fields: object) -> None:
        """Queue an event; never blocks. Fields are kept as text (None and "" are left out)."""
        text = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
        try:
            self._pending.put_nowait(_Pending(self._clock.wall_ns(), kind, camera_id, text))
        except queue.Full:
            with self._lock:
                self.dropped += 1
                dropped = self.dropped
            if dropped & (dropped - 1) == 0:  # 1, 2, 4, 8…: visible, not a flood
                log.error("events_dropped", dropped=dropped, kind=str(kind), queue=self._pending.maxsize)

    def window(self) -> tuple[int, int]:
        """(highest sequence number pruned, highest handed out): a resume may start at or after the first."""
        with self._lock:
            return self._pruned_through, self._last_seq

    def subscribe(self, loop: asyncio.AbstractEventLoop, *, max_queue: int) -> Subscription:
        subscription = Subscription(self, loop, max_queue)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    # -- blocking (call from a worker thread) ------------------------------------------------

    def open(self) -> None:
        """Read where the sequence stands, prune, and start the writer thread."""
        _lowest, highest = self._catalogue.event_seq_bounds()
        pruned = int(self._catalogue.get_meta("events_pruned_through") or 0)
        with self._lock:
            self._last_seq = max(highest, pruned)
            self._pruned_through = pruned
        self._prune()
        self._thread = threading.Thread(target=self._run, name="events-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Store what is queued, then stop the writer (before the catalogue closes)."""
        if self._thread is None:
            return
        self._pending.put(_STOP)
        self._thread.join()
        self._thread = None

    def stored_after(self, after_seq: int, limit: int) -> list[Event]:
        return [_event(row) for row in self._catalogue.events_after(after_seq, limit=limit)]

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        next_prune_ns = self._clock.mono_ns() + PRUNE_INTERVAL_NS
        stopping = False
        while not stopping:
            wait_s = max(0.0, (next_prune_ns - self._clock.mono_ns()) / NS_PER_S)
            if self._unstored:
                wait_s = min(wait_s, RETRY_S)  # storage may be back: store them without waiting for news
            batch: list[_Pending] = []
            try:
                item = self._pending.get(timeout=wait_s)
                while True:
                    if item is _STOP:
                        stopping = True
                    elif isinstance(item, _Pending):
                        batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        break
                    item = self._pending.get_nowait()
            except queue.Empty:
                pass
            if self._unstored:
                batch = self._unstored + batch
                self._unstored = []
            if batch:
                self._store_and_fan_out(batch)
            if self._clock.mono_ns() >= next_prune_ns:
                self._prune()
                next_prune_ns = self._clock.mono_ns() + PRUNE_INTERVAL_NS

    def _store_and_fan_out(self, batch: list[_Pending]) -> None:
        """Number, store, then hand out. Only stored events are numbered and handed out: a number
        never names two events (after a restart numbering carries on from what is stored), and a
        consumer that resumes from the store finds every event it was handed."""
        with self._lock:
            first = self._last_seq + 1
        events = [Event(first + i, p.time_ns, p.kind, p.camera_id, p.fields) for i, p in enumerate(batch)]
        rows = [(e.seq, e.time_ns, str(e.kind), e.camera_id, json.dumps(e.fields, sort_keys=True)) for e in events]
        try:
            self._catalogue.insert_events(rows)
        except Exception:
            self.not_stored += len(rows)
            log.exception("events_not_stored", count=len(rows))
            kept = batch[-self._pending.maxsize :]
            if len(kept) < len(batch):
                with self._lock:
                    self.dropped += len(batch) - len(kept)
            self._unstored = kept
            return
        with self._lock:
            self._last_seq = first + len(batch) - 1
            # Taken after the commit: a consumer that subscribed before it gets these here, one that
            # subscribes after it reads them from the store (WatchEvents drops repeats by seq).
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            try:
                subscription._loop.call_soon_threadsafe(subscription._deliver, events)
            except RuntimeError:  # its loop has closed: the consumer is gone
                self._unsubscribe(subscription)

    def _prune(self) -> None:
        try:
            through = self._catalogue.prune_events(self._clock.wall_ns() - self._keep_ns)
        except Exception:
            log.exception("events_not_pruned")
            return
        with self._lock:
            self._pruned_through = max(self._pruned_through, through)


def _event(row: StoredEvent) -> Event:
    fields = json.loads(row.fields_json)
    return Event(row.seq, row.time_ns, EventKind(row.kind), row.camera_id, {str(k): str(v) for k, v in fields.items()})
