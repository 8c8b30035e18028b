from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from vmsd.threads import iterate_in_thread


def test_items_arrive_in_order_and_the_producer_runs_off_the_loop() -> None:
    loop_thread = threading.get_ident()
    seen_threads: list[int] = []

    def produce() -> Iterator[int]:
        seen_threads.append(threading.get_ident())
        yield from range(20)

    async def main() -> list[int]:
        return [item async for item in iterate_in_thread(produce, maxsize=2)]

    assert asyncio.run(main()) == list(range(20))
    assert seen_threads and seen_threads[0] != loop_thread


def test_a_producer_error_reaches_the_consumer_as_it_is() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    async def main() -> list[int]:
        got: list[int] = []
        with pytest.raises(OSError, match="disk gone"):
            async for item in iterate_in_thread(produce):
                got.append(item)
        return got

    assert asyncio.run(main()) == [1]


def _counting(produced: list[int], finished: threading.Event) -> Iterator[int]:
    try:
        for i in range(1000):
            produced.append(i)
            yield i
    finally:
        finished.set()


def test_a_consumer_that_leaves_stops_a_bounded_producer() -> None:
    produced: list[int] = []
    finished = threading.Event()

    async def main() -> None:
        async for item in iterate_in_thread(lambda: _counting(produced, finished), maxsize=1):
            if item == 2:
                break

    asyncio.run(main())
    assert finished.wait(5)
    assert len(produced) < 1000


def test_run_to_end_keeps_the_producer_going_after_the_consumer_left() -> None:
    produced: list[int] = []
    finished = threading.Event()

    async def main() -> None:
        async for item in iterate_in_thread(lambda: _counting(produced, finished), run_to_end=True):
            if item == 2:
                break

    asyncio.run(main())
    assert finished.wait(5)
    assert len(produced) == 1000
