"""Waiting with a timeout without losing a cancellation.

`asyncio.wait_for` on Python 3.11 waits on a task of its own; when what it waits for finishes
just as the waiting task is cancelled, it returns the result and the cancellation is lost
(CPython gh-86296, fixed in 3.12). In a loop such as `while True: wait_for(event.wait(), t)`
the task then never ends, and `task.cancel()` — how vmsd stops its services — hangs the stop:
the site coordinator of a recorder being stopped went on polling etcd forever when a watch
event woke it at that moment. `asyncio.timeout()` waits in the caller's own task and cannot
lose a cancellation, so vmsd waits with it (this module) and never with `wait_for`.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True once `event` is set, False after `timeout_s` without it; cancellation propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
