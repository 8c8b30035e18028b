"""The one bridge from a blocking iterator (run in a thread) to an async iterator.

PyAV remuxing and export building block for seconds; they run in a worker thread of their own and
hand items over through a queue, which the event loop reads without blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")

_END = object()
_PUT_RETRY_S = 0.5  # how often a producer blocked on a full queue looks whether the consumer left


@dataclass(frozen=True, slots=True)
class _Failure:
    error: Exception


async def iterate_in_thread(
    produce: Callable[[], Iterable[T]], *, maxsize: int = 0, run_to_end: bool = False
) -> AsyncIterator[T]:
    """Yield what `produce()` yields, running it in a daemon thread.

    `maxsize` bounds the queue between the thread and the consumer (0: unbounded), so a slow
    consumer holds back a fast producer. When the consumer stops early (returns, is cancelled or
    fails) the producer stops at its next item, unless `run_to_end`: then it runs to its end and
    its items are dropped (use with an unbounded queue, so it never waits on a consumer that left).
    An exception raised by the producer is raised here, to the consumer, as it is.
    """
    items: queue.Queue[object] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_PUT_RETRY_S)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put(item):
                    return
        except Exception as error:  # handed to the consumer, which decides what it means
            put(_Failure(error))
            return
        put(_END)

    threading.Thread(target=run, daemon=True).start()
    try:
        while True:
            item = await asyncio.to_thread(items.get)
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield cast(T, item)
    finally:
        if not run_to_end:
            stop.set()
        # A consumer cancelled while a worker waits in items.get() would leave that executor
        # thread blocked forever (and a handful of those starve every to_thread): wake it.
        with contextlib.suppress(queue.Full):
            items.put_nowait(_END)
