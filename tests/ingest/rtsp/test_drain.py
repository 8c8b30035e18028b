"""The drain (drain.py) on real socket pairs: a connection whose reader fails is taken off the
tick and every other connection is still read; `on_tick` follows each tick's reads."""

from __future__ import annotations

import asyncio
import socket

from vmsd.ingest.rtsp.drain import Drain
from vmsd.units import NS_PER_MS


async def test_a_failing_reader_is_dropped_and_the_others_are_still_read() -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    got: list[bytes] = []
    ticks_seen: list[int] = []
    drain = Drain(5 * NS_PER_MS, on_tick=lambda: ticks_seen.append(drain.ticks))

    def broken() -> None:
        raise RuntimeError("a bug met by this camera's bytes")

    def good() -> None:
        got.append(pairs[1][1].recv(100))

    try:
        for _, ours in pairs:
            ours.setblocking(False)
        drain.add(pairs[0][1].fileno(), broken)
        drain.add(pairs[1][1].fileno(), good)
        for round_ in range(3):
            pairs[0][0].send(b"x")
            pairs[1][0].send(b"frame %d" % round_)
            for _ in range(100):
                await asyncio.sleep(0.005)
                if len(got) > round_:
                    break
        assert got == [b"frame 0", b"frame 1", b"frame 2"]
        assert drain.failed_readers == 1  # taken off at its first failure, not once per tick
        assert ticks_seen and ticks_seen == sorted(ticks_seen)
    finally:
        drain.close()
        for a, b in pairs:
            a.close()
            b.close()


async def test_the_tick_is_short_only_while_on_tick_asks_for_it() -> None:
    """`on_tick()` answering True (units wanted at once) keeps the short tick; False the idle one."""
    ours, theirs = socket.socketpair()
    hurry = [True]
    times: list[float] = []
    loop = asyncio.get_running_loop()

    def ticked() -> bool:
        times.append(loop.time())
        return hurry[0]

    drain = Drain(5 * NS_PER_MS, on_tick=ticked, idle_tick_ns=50 * NS_PER_MS)
    try:
        drain.add(ours.fileno(), lambda: None)
        await asyncio.sleep(0.2)
        fast = len(times)
        hurry[0] = False
        await asyncio.sleep(0.5)
        slow = len(times) - fast
        # ~40 ticks of 5 ms in 0.2 s (fewer on a loaded machine; at the idle period at most 5),
        # then ~10 of 50 ms in 0.5 s (never more).
        assert fast > 10
        assert 2 <= slow <= 11
    finally:
        drain.close()
        ours.close()
        theirs.close()
