"""Wiring: build every component from the config, run them, stop them in order.

`Daemon.run()` is the whole life of `vmsd run`: open storage (with crash recovery) and the audit
trail, start one recorder per enabled camera, serve the control plane, wait for SIGTERM/SIGINT,
then stop the control plane (with a grace period), the recorders (each closes its segment
cleanly), and storage.
"""

from __future__ import annotations

import asyncio
import signal

from vmsd.audit import AuditLog
from vmsd.cameras import CameraManager
from vmsd.clock import Clock, SystemClock
from vmsd.config import Config
from vmsd.log import get_logger, register_url_credentials
from vmsd.rpc.server import ControlPlane
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

log = get_logger(component="daemon")


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.storage = Storage(config.storage.root, sync_interval_ns=config.storage.sync_interval_ns)
        self.audit = AuditLog(
            self.storage.layout.audit_path, self.clock, anchor_path=self.storage.layout.audit_anchor_path
        )
        self.cameras = CameraManager(config, self.storage, self.clock)
        self.control_plane = ControlPlane(config, self.cameras, self.storage, self.audit, self.clock)
        self._stopping = asyncio.Event()
        for camera in config.cameras:
            register_url_credentials(camera.url)

    def request_stop(self) -> None:
        self._stopping.set()

    async def start(self) -> None:
        """Open storage and audit, recover from any crash, start recorders and the control plane."""
        await asyncio.to_thread(self.storage.open)
        report = await asyncio.to_thread(reconcile, self.storage)
        if report.unindexed_files:
            log.error("unindexed_footage_present", files=len(report.unindexed_files))
        await asyncio.to_thread(self.audit.open)
        await self.cameras.start()
        await self.control_plane.start()
        log.info(
            "daemon_started",
            recorder_id=self.config.recorder_id,
            cameras=len(self.cameras.recorders()),
            storage_root=str(self.config.storage.root),
        )

    async def stop(self) -> None:
        await self.control_plane.aclose()
        await self.cameras.stop()
        await asyncio.to_thread(self.audit.close)
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
