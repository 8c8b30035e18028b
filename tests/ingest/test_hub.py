"""The relay hub: keyframe starts, whole-GOP drops for slow subscribers, disconnection of stalled
ones, and a recorder side that never waits for anybody."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from vmsd.ingest.hub import AUDIO, VIDEO, CameraHub, Missed, RelayPacket, StreamConfig, SubscriberGone

MS = 1_000_000
CONFIG = StreamConfig(1, "h264", 320, 240, b"\x00\x00\x00\x01g", "", 0, 0, b"", b"init")


def packet(index: int, *, kind: int = VIDEO, gop: int = 50) -> RelayPacket:
    return RelayPacket(
        kind, b"x" * 1000, index * 40 * MS, index * 40 * MS, kind == VIDEO and index % gop == 0, 1, time.monotonic_ns()
    )


async def drain(subscriber, count: int) -> list[object]:  # type: ignore[no-untyped-def]
    return [await asyncio.wait_for(subscriber.next(), 1) for _ in range(count)]


async def test_a_subscriber_starts_at_the_latest_keyframe_from_the_cache() -> None:
    hub = CameraHub("cam")
    hub.configure(CONFIG)
    for index in range(120):  # keyframes at 0, 50, 100
        hub.publish(packet(index))
    subscriber = hub.subscribe(asyncio.get_running_loop())
    items = await drain(subscriber, 21)
    assert items[0] == CONFIG
    assert [p.dts_ns // (40 * MS) for p in items[1:]] == list(range(100, 120))  # type: ignore[union-attr]
    assert items[1].keyframe  # type: ignore[union-attr]


async def test_a_cold_hub_makes_the_first_viewer_wait_for_a_keyframe() -> None:
    hub = CameraHub("cam")
    hub.configure(CONFIG)
    subscriber = hub.subscribe(asyncio.get_running_loop())
    for index in range(30, 60):
        hub.publish(packet(index))
    items = await drain(subscriber, 1 + 10)
    assert items[0] == CONFIG
    assert items[1].dts_ns == 50 * 40 * MS and items[1].keyframe  # type: ignore[union-attr]


async def test_a_slow_subscriber_loses_whole_gops_and_is_told() -> None:
    hub = CameraHub("cam", max_queue_frames=60)
    hub.configure(CONFIG)
    slow = hub.subscribe(asyncio.get_running_loop())
    fast = hub.subscribe(asyncio.get_running_loop())
    received_fast = []
    for index in range(200):
        hub.publish(packet(index))
        hub.publish(packet(index, kind=AUDIO))
        received_fast += [await fast.next(), await fast.next()]
    assert [p.dts_ns for p in received_fast if isinstance(p, RelayPacket) and p.kind == VIDEO] == [
        i * 40 * MS for i in range(200)
    ]  # the fast one got every frame
    items = []
    while slow.queue:
        items.append(await slow.next())
    notices = [i for i in items if isinstance(i, Missed)]
    video = [i for i in items if isinstance(i, RelayPacket) and i.kind == VIDEO]
    assert notices and sum(n.frames for n in notices) == 200 - len(video)
    # What remains starts on a keyframe and is contiguous from there: only whole GOPs were dropped.
    assert video[0].keyframe
    assert [v.dts_ns for v in video] == [video[0].dts_ns + i * 40 * MS for i in range(len(video))]


async def test_a_stalled_subscriber_is_disconnected_and_nobody_waits_for_it() -> None:
    hub = CameraHub("cam", max_queue_frames=50, max_silence_ns=200 * MS)
    hub.configure(CONFIG)
    stalled = hub.subscribe(asyncio.get_running_loop())
    stalled.last_read_mono_ns -= 300 * MS  # it has not read for 300 ms
    began = time.perf_counter_ns()
    for index in range(1000):
        hub.publish(packet(index))
    per_packet_ns = (time.perf_counter_ns() - began) / 1000
    assert hub.subscriber_count == 0
    with pytest.raises(SubscriberGone, match="fell behind"):
        while True:
            await stalled.next()
    assert per_packet_ns < 1_000_000  # publish never blocks (generous bound: 1 ms, not a timing test)


async def test_subscribe_churn_leaves_nothing_behind() -> None:
    hub = CameraHub("cam")
    hub.configure(CONFIG)
    for index in range(60):
        hub.publish(packet(index))
    loop = asyncio.get_running_loop()
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(1000):
        subscriber = hub.subscribe(loop)
        await subscriber.next()
        subscriber.close()
    gc.collect()
    assert hub.subscriber_count == 0
    assert len(gc.get_objects()) - before < 200
