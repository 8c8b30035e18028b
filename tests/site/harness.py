"""In-process site members for tests: real storage, CameraManager and SiteCoordinator against real etcd.

The cameras point at a closed loopback port: their recorders start (and retry connecting), which
is all ownership needs; footage across real failovers is tests/reliability/test_site.py's part.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmsd.cameras import CameraManager
from vmsd.clock import SystemClock
from vmsd.config import Config, parse_config
from vmsd.site.coordinator import SiteCoordinator
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

CLOSED_PORT_URL = "rtsp://127.0.0.1:9/none"


def site_config(root: Path, recorder_id: str, endpoints: list[str], cameras: list[str], **site: Any) -> Config:
    return parse_config(
        {
            "recorder_id": recorder_id,
            "storage": {"root": str(root / recorder_id), "min_free": "1MiB"},
            "site": {"name": "test-site", "etcd": endpoints, "lease_ttl": "2s", **site},
            "cameras": [{"id": c, "url": CLOSED_PORT_URL} for c in cameras],
        }
    )


@dataclass
class Member:
    config: Config
    storage: Storage
    cameras: CameraManager
    site: SiteCoordinator
    task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: Config) -> Member:
        storage = Storage(config.storage.root)
        await asyncio.to_thread(storage.open)
        await asyncio.to_thread(reconcile, storage)
        clock = SystemClock()
        cameras = CameraManager(config, storage, clock)
        await cameras.start()
        member = cls(config, storage, cameras, SiteCoordinator(config, cameras, clock))
        member.task = asyncio.create_task(member.site.run())
        return member

    def recording(self) -> set[str]:
        return set(self.cameras.recorders())

    async def crash(self) -> None:
        """As a kill -9 looks to etcd: coordination ends without revoking the lease."""
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.cameras.stop()
        with contextlib.suppress(Exception):
            await self.site._client.close()  # type: ignore[union-attr]
        await asyncio.to_thread(self.storage.close)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.cameras.stop()
        await self.site.aclose()
        await asyncio.to_thread(self.storage.close)


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 20, what: str = "", state: Callable[[], object] | None = None
) -> float:
    """Poll `predicate` until true; returns the seconds it took (fails after `timeout`, showing `state()`)."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            shown = f"; state: {state()}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}{shown}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began
