"""The ingest loop: one thread and asyncio loop that runs every native RTSP session of the
process and reads all their sockets on one `Drain` tick (issue #16's cost finding).

A thread wake-up costs ~60 µs of CPU on these VMs and one through an asyncio loop ~150 µs; a
loop per camera woke ~76 times per camera-second (a read per burst of the camera's packets, plus
timers). Here the whole process wakes once per tick for every camera: one `epoll_wait(0)`, one
`recv_into` per readable socket, the depacketisers, then `on_tick` callbacks — which is where a
camera's recorder thread is woken, at most once per tick and, while nobody watches the camera
live, only when a video keyframe came or every `NativeSource.batch_ns` (recording does not need a
frame sooner: its fragments are written once per GOP). The tick is 20 ms while any callback
answers True (a camera opening or watched live) and 100 ms otherwise (drain.py: fewer, larger
reads).

    ingest = IngestLoop.shared()                   # started on first use, a daemon thread
    result = ingest.run(coroutine, timeout_s)      # from any other thread: run on the loop, wait
    ingest.call_soon(fn, *args)                    # from any other thread
    ingest.on_tick(fn) / ingest.off_tick(fn)       # on the loop: fn() after every drain tick;
                                                   # True: its units are wanted at once (20 ms tick)

Contract: nothing on this loop blocks on a disk or on SQLite (the recorder threads do that); a
session's failure is its own (the loop runs on whatever one camera does). One loop carries ~100
cameras (the spike measured 64 at 0.31× ffmpeg's cost, parsing included); past that a second
loop would be added, cameras assigned round-robin — not built yet.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

from vmsd.ingest.rtsp.drain import DEFAULT_IDLE_TICK_NS, DEFAULT_TICK_NS, Drain

T = TypeVar("T")


class IngestLoop:
    """One thread, one asyncio loop, one `Drain`. The constructor does no I/O; `start()` starts
    the thread (idempotent)."""

    _shared: ClassVar[IngestLoop | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self, name: str = "ingest-0", tick_ns: int = DEFAULT_TICK_NS, idle_tick_ns: int = DEFAULT_IDLE_TICK_NS
    ) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.drain = Drain(tick_ns, on_tick=self._ticked, idle_tick_ns=idle_tick_ns)
        self._tick_callbacks: list[Callable[[], bool]] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> IngestLoop:
        """The process's ingest loop, started on first use (it lives as long as the process)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            cls._shared.start()
            return cls._shared

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self.loop.run_forever, name=self.name, daemon=True)
                self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coroutine` on the loop and wait for its result (its exception is raised here); on
        timeout it is cancelled and TimeoutError raised. Never call this from the loop itself."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"not done within {timeout_s:g} s on the ingest loop") from None

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Thread-safe; RuntimeError if the loop is closed."""
        self.loop.call_soon_threadsafe(callback, *args)

    def on_tick(self, callback: Callable[[], bool]) -> None:
        """On the loop: call `callback()` after every drain tick until `off_tick`; while any
        answers True, the drain ticks every `tick_ns` instead of `idle_tick_ns`."""
        self._tick_callbacks.append(callback)

    def off_tick(self, callback: Callable[[], bool]) -> None:
        if callback in self._tick_callbacks:
            self._tick_callbacks.remove(callback)

    @property
    def sessions(self) -> int:
        """How many sessions are called on each tick (every native camera open or opening)."""
        return len(self._tick_callbacks)

    def _ticked(self) -> bool:
        hurry = False
        for callback in list(self._tick_callbacks):
            hurry |= callback()
        return hurry
