"""Per-camera fan-out of live packets to relay subscribers, without ever blocking the recorder.

The recorder thread calls `configure()` when the stream's parameters are known or change, and
`publish()` for every packet — both take one short lock and never wait: a subscriber's queue is
bounded, and a subscriber that falls behind loses whole GOPs (its queue is cut back to the next
keyframe, and it is told how many frames it missed). A subscriber that reads nothing for
`max_silence_ns` is disconnected. So nothing a subscriber does can delay or drop a recorded
packet, or another subscriber's packets.

A subscriber starts at the most recent keyframe: the hub keeps the current GOP (since the last
video keyframe) while relaying is in demand — from the first subscription until `keep_warm_ns`
after the last one ends — so a new viewer's first frame decodes at once. A cold hub (nobody
watched recently) makes the first viewer wait for the next keyframe, and costs the recorder
nothing: `wanted` is False and it does not even copy the packet.

Asyncio side: `subscribe(loop)` / `Subscriber.next()` / `unsubscribe()`. Wake-ups cross from the
recorder thread with one `call_soon_threadsafe` per packet (per event loop) that sets the events
of the subscribers that were waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from vmsd.units import NS_PER_S

VIDEO = 0
AUDIO = 1


@dataclass(frozen=True)
class StreamConfig:
    """What a decoder (or a muxer) needs; `init_segment` is an fMP4 header (ftyp+moov) of the streams."""

    generation: int
    video_codec: str
    width: int
    height: int
    video_extradata: bytes
    audio_codec: str
    audio_sample_rate: int
    audio_channels: int
    audio_extradata: bytes
    init_segment: bytes
    # Transport encodings, built once and shared by every viewer (see `encoded_once`).
    encoded: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RelayPacket:
    kind: int  # VIDEO or AUDIO
    data: bytes
    pts_ns: int  # wall time, ns since the epoch
    dts_ns: int
    keyframe: bool
    generation: int
    received_mono_ns: int  # when the recorder got it (for latency measurement)
    # Video: the time since the previous frame of this session (0 for its first). Live fMP4 uses
    # it as this frame's duration: the next frame's time is unknown yet, and waiting for it would
    # add a frame of latency.
    duration_ns: int = 0
    # Transport encodings, built once and shared by every viewer (see `encoded_once`).
    encoded: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


T = TypeVar("T")


def encoded_once(item: RelayPacket | StreamConfig, key: str, encode: Callable[[], T]) -> T:
    """`item` encoded for a transport (`key`), built by the first viewer that needs it and the
    very same object for every later one: N viewers cost one encoding, not N.

    Event-loop side only (not locked): every subscriber of a hub is served on the daemon's loop.
    The hub hands the same item object to every subscriber, so the memo lives on the item and
    goes away with it.
    """
    cached = item.encoded.get(key)
    if cached is None:
        cached = item.encoded[key] = encode()
    return cast(T, cached)


@dataclass(frozen=True)
class Missed:
    """Told to a subscriber after its queue was cut back: frames it will never see."""

    frames: int


class SubscriberGone(Exception):
    """The hub disconnected this subscriber (it fell too far behind, or the hub closed)."""


class Subscriber:
    def __init__(self, hub: CameraHub, loop: asyncio.AbstractEventLoop, max_queue_frames: int) -> None:
        self._hub = hub
        self._loop = loop
        self._event = asyncio.Event()
        self._max_queue_frames = max_queue_frames
        # Guarded by the hub's lock:
        self.queue: deque[RelayPacket | StreamConfig | Missed] = deque()
        self.queued_frames = 0
        self.missed_frames = 0
        self.waiting = False
        self.closed_reason: str | None = None
        self.last_read_mono_ns = time.monotonic_ns()
        self.need_keyframe = False

    # -- recorder thread (hub lock held) ------------------------------------------------------

    def _offer(self, item: RelayPacket | StreamConfig) -> bool:
        """Queue an item; returns True when the subscriber should be woken."""
        if isinstance(item, RelayPacket) and item.kind == VIDEO:
            if self.need_keyframe and not item.keyframe:
                self.missed_frames += 1
                return False
            self.need_keyframe = False
            if self.queued_frames >= self._max_queue_frames:
                self._cut_back()
                if self.need_keyframe and not item.keyframe:
                    self.missed_frames += 1
                    return False
                self.need_keyframe = False
            self.queued_frames += 1
        elif isinstance(item, RelayPacket) and self.need_keyframe:
            return False  # audio of a GOP the subscriber is skipping
        self.queue.append(item)
        wake = self.waiting
        self.waiting = False
        return wake

    def _cut_back(self) -> None:
        """Drop whole GOPs from the head until the queue starts at its newest keyframe (or is empty)."""
        last_key = None
        for index, item in enumerate(self.queue):
            if isinstance(item, RelayPacket) and item.kind == VIDEO and item.keyframe:
                last_key = index
        keep_from = last_key if last_key is not None and last_key > 0 else len(self.queue)
        dropped = 0
        kept: deque[RelayPacket | StreamConfig | Missed] = deque()
        for index, item in enumerate(self.queue):
            if index < keep_from and isinstance(item, RelayPacket):
                if item.kind == VIDEO:
                    dropped += 1
                continue
            kept.append(item)  # configs are never dropped: the decoder needs them
        self.queue = kept
        self.queued_frames -= dropped
        self.missed_frames += dropped
        if last_key is None or last_key == 0:
            self.need_keyframe = True
        self.queue.append(Missed(dropped))

    def _close(self, reason: str) -> bool:
        self.closed_reason = reason
        wake = self.waiting
        self.waiting = False
        return wake

    # -- asyncio side -------------------------------------------------------------------------

    async def next(self) -> RelayPacket | StreamConfig | Missed:
        """The next item; raises SubscriberGone when the hub disconnected this subscriber."""
        while True:
            with self._hub.lock:
                self.last_read_mono_ns = time.monotonic_ns()
                if self.queue:
                    item = self.queue.popleft()
                    if isinstance(item, RelayPacket) and item.kind == VIDEO:
                        self.queued_frames -= 1
                    return item
                if self.closed_reason is not None:
                    raise SubscriberGone(self.closed_reason)
                self.waiting = True
                self._event.clear()
            await self._event.wait()

    def close(self) -> None:
        self._hub.unsubscribe(self)


def _wake(subscribers: list[Subscriber]) -> None:
    """Wake these subscribers with one cross-thread call per event loop, not one per subscriber:
    each call writes to the loop's self-pipe, and 100 viewers would be 100 writes per frame."""
    if not subscribers:
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Event]] = {}
    for subscriber in subscribers:
        by_loop.setdefault(subscriber._loop, []).append(subscriber._event)
    for loop, events in by_loop.items():
        loop.call_soon_threadsafe(_set_all, events)


def _set_all(events: list[asyncio.Event]) -> None:
    for event in events:
        event.set()


class CameraHub:
    def __init__(
        self,
        camera_id: str,
        *,
        max_queue_frames: int = 100,
        max_silence_ns: int = 10 * NS_PER_S,
        keep_warm_ns: int = 300 * NS_PER_S,
        max_gop_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.camera_id = camera_id
        self.lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._config: StreamConfig | None = None
        self._gop: list[RelayPacket] = []
        self._gop_bytes = 0
        self._max_queue_frames = max_queue_frames
        self._max_silence_ns = max_silence_ns
        self._keep_warm_ns = keep_warm_ns
        self._max_gop_bytes = max_gop_bytes
        self._warm_until_mono_ns = 0
        self.generation = 0

    @property
    def stream(self) -> StreamConfig | None:
        """The stream's current configuration (codec, size), None before the first keyframe."""
        with self.lock:
            return self._config

    # -- recorder thread ----------------------------------------------------------------------

    @property
    def wanted(self) -> bool:
        """Whether publishing is useful now (someone watches, or did recently). Lock-free read."""
        return bool(self._subscribers) or time.monotonic_ns() < self._warm_until_mono_ns

    def configure(self, config: StreamConfig) -> None:
        to_wake: list[Subscriber] = []
        with self.lock:
            self._config = config
            self.generation = config.generation
            self._gop.clear()
            self._gop_bytes = 0
            for subscriber in self._subscribers:
                if subscriber._offer(config):
                    to_wake.append(subscriber)
        _wake(to_wake)

    def publish(self, packet: RelayPacket) -> None:
        to_wake: list[Subscriber] = []
        now_mono_ns = packet.received_mono_ns
        with self.lock:
            if packet.kind == VIDEO and packet.keyframe:
                self._gop.clear()
                self._gop_bytes = 0
            if not self._gop or packet.kind == VIDEO or self._gop_bytes < self._max_gop_bytes:
                self._gop.append(packet)
                self._gop_bytes += len(packet.data)
            if self._gop_bytes > self._max_gop_bytes:  # a pathological GOP: stop caching it
                self._gop.clear()
                self._gop_bytes = 0
            for subscriber in list(self._subscribers):
                # A subscriber blocked in next() on an empty queue is keeping up, however long ago
                # it last read (the camera may have been silent).
                if not subscriber.waiting and now_mono_ns - subscriber.last_read_mono_ns > self._max_silence_ns:
                    self._subscribers.remove(subscriber)
                    if subscriber._close(f"fell behind: nothing read for {self._max_silence_ns // NS_PER_S}s"):
                        to_wake.append(subscriber)
                elif subscriber._offer(packet):
                    to_wake.append(subscriber)
        _wake(to_wake)

    def session_ended(self) -> None:
        """The camera disconnected: the cached GOP is stale (subscribers wait for the next session)."""
        with self.lock:
            self._gop.clear()
            self._gop_bytes = 0

    # -- asyncio side -------------------------------------------------------------------------

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscriber:
        subscriber = Subscriber(self, loop, self._max_queue_frames)
        with self.lock:
            if self._config is not None:
                subscriber.queue.append(self._config)
            starts_on_key = bool(self._gop) and self._gop[0].kind == VIDEO and self._gop[0].keyframe
            if starts_on_key:
                for packet in self._gop:
                    subscriber._offer(packet)
            else:
                subscriber.need_keyframe = True
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
            if not self._subscribers:
                self._warm_until_mono_ns = time.monotonic_ns() + self._keep_warm_ns

    def close(self) -> None:
        with self.lock:
            subscribers, self._subscribers = self._subscribers, []
            woken = [s for s in subscribers if s._close("recorder stopped")]
        _wake(woken)

    @property
    def subscriber_count(self) -> int:
        with self.lock:
            return len(self._subscribers)
