"""Reading many camera connections in bulk on one timer tick (issue #16's cost finding).

Letting the event loop call each connection back whenever bytes arrive costs a loop wake-up per
camera and arrival (~50 per camera-second from a 4 Mbit/s camera; ~60–150 µs of CPU each on
these VMs). A ``Drain`` instead wakes once per ``tick_ns`` for all its connections: one
``epoll_wait(0)`` for which are readable, then one ``recv_into`` per readable connection (more only
when a read filled the buffer). The spike measured this at 47 syscalls per camera-second.

Between ticks a connection's bytes wait in its socket, and each read costs about the same
whatever it brings (the syscall, the per-read bookkeeping): at 16 cameras, reading every 60 ms
instead of every 20 ms halved the ingest thread's CPU (measured 2026-12-02, 1.6 → 0.8 s per
30 s), and every 100 ms took the whole daemon from 0.31 to 0.24 % of a core per camera. So the
tick is ``tick_ns`` only while ``on_tick()`` answers True (someone wants the units at once: a
live viewer) and ``idle_tick_ns`` otherwise (recording needs nothing sooner: it writes a
fragment per GOP).

The connections stay asyncio transports for connecting and writing (requests, receiver reports);
the client pauses the transport's reading and hands the drain a duplicate of its socket.
``Drain`` itself does no I/O but ``epoll_wait``; the readers it calls do the ``recv_into``.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable

from vmsd.log import get_logger
from vmsd.units import NS_PER_MS, NS_PER_S

log = get_logger(component="ingest")

DEFAULT_TICK_NS = 20 * NS_PER_MS
# The ingest loop's tick while nobody watches any of its cameras live.
DEFAULT_IDLE_TICK_NS = 100 * NS_PER_MS


class Drain:
    """One per event loop (not thread-safe). ``add(fd, read)``: call ``read()`` on every tick the
    descriptor is readable; ``remove(fd)``; the tick runs while any descriptor is registered, and
    ends with ``on_tick()`` (what the tick's reads produced is handed on there, once per tick),
    whose answer sets the next tick: ``tick_ns`` later if True (units wanted at once), else
    ``idle_tick_ns`` (default: ``tick_ns``) later."""

    def __init__(
        self,
        tick_ns: int = DEFAULT_TICK_NS,
        on_tick: Callable[[], bool | None] | None = None,
        idle_tick_ns: int | None = None,
    ) -> None:
        idle_tick_ns = tick_ns if idle_tick_ns is None else idle_tick_ns
        if tick_ns <= 0 or idle_tick_ns <= 0:
            raise ValueError(f"drain ticks must be positive, not {tick_ns} / {idle_tick_ns} ns")
        self.tick_ns = tick_ns
        self.idle_tick_ns = idle_tick_ns
        self.ticks = 0
        self.failed_readers = 0
        self._on_tick = on_tick
        self._readers: dict[int, Callable[[], None]] = {}
        self._epoll: select.epoll | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_s = 0.0

    def add(self, fd: int, read: Callable[[], None]) -> None:
        if self._epoll is None:
            self._epoll = select.epoll()
        self._epoll.register(fd, select.EPOLLIN)
        self._readers[fd] = read
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._next_s = loop.time() + self.tick_ns / NS_PER_S
            self._timer = loop.call_at(self._next_s, self._tick, loop)

    def remove(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None and self._epoll is not None:
            self._epoll.unregister(fd)
        if not self._readers:
            self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self._readers.clear()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ticks += 1
        assert self._epoll is not None
        for fd, _events in self._epoll.poll(0):
            read = self._readers.get(fd)
            if read is not None:
                try:
                    read()
                except Exception:
                    # A bug met by one connection's bytes must not stop the tick of every other
                    # one: that connection is no longer read (its session stalls and the
                    # recorder's stall watch reconnects it), the rest go on.
                    log.exception("drain_reader_failed")
                    self.failed_readers += 1
                    self.remove(fd)
                    if self._epoll is None:
                        return
        hurry = True
        if self._on_tick is not None:
            try:
                hurry = bool(self._on_tick())
            except Exception:
                log.exception("drain_tick_callback_failed")
        if self._epoll is None:
            return  # the last reader went away during the tick
        # An absolute schedule; after a late tick, skip ahead rather than run ticks back to back.
        period_ns = self.tick_ns if hurry else self.idle_tick_ns
        self._next_s = max(self._next_s + period_ns / NS_PER_S, loop.time())
        self._timer = loop.call_at(self._next_s, self._tick, loop)
