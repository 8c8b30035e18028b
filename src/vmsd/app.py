"""Wiring: build every component from the config, run them, stop them in order.

`Daemon.run()` is the whole life of `vmsd run`: open storage (with recovery), start one recorder
per enabled camera, wait for SIGTERM/SIGINT, then stop the recorders (each closes its segment
cleanly) and close storage.
"""

from __future__ import annotations

import asyncio
import signal

from vmsd.clock import Clock, SystemClock
from vmsd.config import Config
from vmsd.ingest.recorder import CameraRecorder
from vmsd.log import get_logger, register_url_credentials
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

log = get_logger(component="daemon")


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.storage = Storage(config.storage.root, sync_interval_ns=config.storage.sync_interval_ns)
        self.recorders: dict[str, CameraRecorder] = {}
        self._stopping = asyncio.Event()
        for camera in config.cameras:
            register_url_credentials(camera.url)

    def request_stop(self) -> None:
        self._stopping.set()

    async def start(self) -> None:
        """Open storage, recover from any crash, and start the recorders (returns once started)."""
        await asyncio.to_thread(self.storage.open)
        report = await asyncio.to_thread(reconcile, self.storage)
        if report.unindexed_files:
            log.error("unindexed_footage_present", files=len(report.unindexed_files))
        for camera in self.config.cameras:
            await asyncio.to_thread(
                self.storage.catalogue.upsert_camera, camera.id, camera.name, camera.location, self.clock.wall_ns()
            )
            if not camera.enabled:
                continue
            self.recorders[camera.id] = CameraRecorder(
                camera,
                self.config.ingest,
                self.storage,
                self.clock,
                segment_duration_ns=self.config.storage.segment_duration_ns,
            )
        self._tasks = [
            asyncio.create_task(recorder.run(), name=f"recorder-{camera_id}")
            for camera_id, recorder in self.recorders.items()
        ]
        log.info(
            "daemon_started",
            recorder_id=self.config.recorder_id,
            cameras=len(self.recorders),
            storage_root=str(self.config.storage.root),
        )

    async def stop(self) -> None:
        for recorder in self.recorders.values():
            recorder.request_stop()
        await asyncio.gather(*(recorder.aclose() for recorder in self.recorders.values()))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.storage.close)
        log.info("daemon_stopped", recorder_id=self.config.recorder_id)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        await self.start()
        try:
            await self._stopping.wait()
        finally:
            log.info("daemon_stopping")
            await self.stop()
