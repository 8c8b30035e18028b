"""The event bus with a real catalogue: sequence numbers, pruning, and publishing that never waits."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from vmsd.clock import FakeClock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus, SubscriberCutOff
from vmsd.events.kinds import EventKind
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.events import EventService
from vmsd.storage.catalogue import Catalogue
from vmsd.storage.errors import StorageError

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


class _SlowCatalogue(Catalogue):
    """A real catalogue whose event commits wait until told to go: holds open the moment between
    numbering a batch and storing it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.inserting = threading.Event()
        self.release = threading.Event()

    def insert_events(self, rows: list[tuple[int, int, str, str, str]]) -> None:
        self.inserting.set()
        self.release.wait(10)
        super().insert_events(rows)


def test_a_consumer_that_subscribes_while_a_batch_is_being_stored_misses_nothing(tmp_path: Path) -> None:
    catalogue = _SlowCatalogue(tmp_path / "catalogue.db")
    catalogue.open()
    bus = EventBus(catalogue, FakeClock(wall_ns=T), keep_ns=60 * S)
    bus.open()
    service = EventService(bus)
    admin = Principal("a", "admin", ("*",))
    seen: list[int] = []

    async def main() -> None:
        bus.publish(EventKind.DISK_LOW)  # seq 1: being stored, not yet committed
        await asyncio.to_thread(catalogue.inserting.wait, 10)
        stream = service.watch(admin, Activity(), kinds=[], cameras=[], follow=True)

        async def consume() -> None:
            async for event in stream:
                seen.append(event.seq)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)  # its read of the store found nothing yet
        catalogue.release.set()
        bus.publish(EventKind.DISK_LOW)  # seq 2
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    bus.close()
    catalogue.close()
    assert seen == [1, 2]


class _FailingCatalogue(Catalogue):
    """A real catalogue that refuses event commits while `down` is set (storage lost)."""

    down = False

    def insert_events(self, rows: list[tuple[int, int, str, str, str]]) -> None:
        if self.down:
            raise StorageError("disk I/O error")
        super().insert_events(rows)


def test_events_the_catalogue_refused_are_stored_later_and_no_number_names_two_events(tmp_path: Path) -> None:
    catalogue = _FailingCatalogue(tmp_path / "catalogue.db")
    catalogue.open()
    clock = FakeClock(wall_ns=T)
    bus = EventBus(catalogue, clock, keep_ns=60 * S)
    bus.open()
    bus.publish(EventKind.DISK_LOW, n=1)
    assert _stored(bus, 1) == [1]
    catalogue.down = True
    bus.publish(EventKind.STORAGE_ERROR, n=2)
    bus.publish(EventKind.DISK_LOW, n=3)
    deadline = time.monotonic() + 10
    while bus.not_stored < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bus.not_stored >= 2 and bus.window()[1] == 1  # refused: not numbered, not handed out
    catalogue.down = False  # storage back in place: stored in order within the retry delay
    stored = bus.stored_after(0, 10)
    deadline = time.monotonic() + 10
    while len(stored) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        stored = bus.stored_after(0, 10)
    assert [(e.seq, e.fields["n"]) for e in stored] == [(1, "1"), (2, "2"), (3, "3")]
    bus.close()
    bus = EventBus(catalogue, clock, keep_ns=60 * S)  # a restart numbers on from what is stored
    bus.open()
    bus.publish(EventKind.DISK_LOW, n=4)
    assert _stored(bus, 4)[-1] == 4
    bus.close()
    catalogue.close()


def test_a_following_stream_opened_while_the_daemon_stops_is_told_to_resume(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    bus = EventBus(catalogue, FakeClock(wall_ns=T), keep_ns=60 * S)
    bus.open()
    bus.publish(EventKind.DISK_LOW)
    assert _stored(bus, 1) == [1]
    service = EventService(bus)
    service.close()  # the daemon has begun to stop
    seen: list[int] = []

    async def main() -> None:
        stream = service.watch(Principal("a", "admin", ("*",)), Activity(), kinds=[], cameras=[], follow=True)
        async for event in stream:
            seen.append(event.seq)

    with pytest.raises(VmsdError) as caught:
        asyncio.run(asyncio.wait_for(main(), timeout=10))
    assert caught.value.kind is ErrorKind.UNAVAILABLE and "after_seq 1" in str(caught.value)
    assert seen == [1]  # the stored events first, then the word to resume
    bus.close()
    catalogue.close()
