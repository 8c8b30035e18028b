"""The event bus with a real catalogue: sequence numbers, pruning, and publishing that never waits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vmsd.clock import FakeClock
from vmsd.events.bus import EventBus, SubscriberCutOff
from vmsd.events.kinds import EventKind
from vmsd.storage.catalogue import Catalogue

S = 1_000_000_000
T = 1_767_225_600 * S


def _catalogue(tmp_path: Path) -> Catalogue:
    catalogue = Catalogue(tmp_path / "catalogue.db")
    catalogue.open()
    return catalogue


def _stored(bus: EventBus, count: int, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        seqs = [e.seq for e in bus.stored_after(0, 1000)]
        if len(seqs) >= count or time.monotonic() > deadline:
            return seqs
        time.sleep(0.02)


def test_sequence_numbers_continue_across_restarts_and_pruning(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    clock = FakeClock(wall_ns=T)
    bus = EventBus(catalogue, clock, keep_ns=60 * S)
    bus.open()
    for i in range(3):
        bus.publish(EventKind.DISK_LOW, n=i, empty="", none=None)
    assert _stored(bus, 3) == [1, 2, 3]
    assert bus.stored_after(0, 10)[0].fields == {"n": "0"}  # empty and None fields are left out
    bus.close()
    clock.advance(120 * S)  # all three are now older than keep: pruned at the next open
    bus = EventBus(catalogue, clock, keep_ns=60 * S)
    bus.open()
    assert bus.window() == (3, 3)
    bus.publish(EventKind.DISK_LOW)
    assert _stored(bus, 1) == [4]  # never a number handed out before, even with the table emptied
    bus.close()
    catalogue.close()


def test_a_full_publish_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    bus = EventBus(catalogue, FakeClock(wall_ns=T), keep_ns=60 * S, max_pending=5)
    # Not opened: nothing drains the queue, as when the catalogue is stuck.
    began = time.monotonic()
    for _ in range(8):
        bus.publish(EventKind.CAMERA_CONNECTED, "cam")
    assert time.monotonic() - began < 1.0
    assert bus.dropped == 3
    catalogue.close()


def test_a_subscription_that_falls_behind_is_cut_off(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    bus = EventBus(catalogue, FakeClock(wall_ns=T), keep_ns=60 * S)
    bus.open()

    async def consume() -> str:
        subscription = bus.subscribe(asyncio.get_running_loop(), max_queue=10)
        try:
            for _ in range(25):
                bus.publish(EventKind.DISK_LOW)
            await asyncio.to_thread(_stored, bus, 25)
            await asyncio.sleep(0.1)  # the deliveries reach this loop
            try:
                while True:
                    await asyncio.wait_for(subscription.next(), timeout=5)
            except SubscriberCutOff as cut:
                return str(cut)
        finally:
            subscription.close()

    message = asyncio.run(consume())
    assert "fell more than 10 events behind" in message and "resume with the last seq" in message
    bus.close()
    catalogue.close()
