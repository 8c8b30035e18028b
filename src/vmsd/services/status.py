"""Recorder status: what the recorder is, how long it has run, its disk, its clock and its cameras.

One answer for a status page. The disk is measured now (statvfs of the storage root); the clock's
synchronisation comes from `timedatectl` (vmsd.system_facts), asked at most every
CLOCK_CACHE_NS because a console polls this page and a subprocess per poll is waste. Camera counts
cover the caller's scope only, so a scoped principal learns nothing about other cameras.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import vmsd
from vmsd.cameras import CameraManager
from vmsd.clock import Clock
from vmsd.ingest.recorder import CameraState
from vmsd.services.access import Permission, Principal
from vmsd.system_facts import ClockStatus, DiskSpace, clock_status, disk_space
from vmsd.units import NS_PER_S

CLOCK_CACHE_NS = 30 * NS_PER_S


@dataclass(frozen=True)
class RecorderStatus:
    recorder_id: str
    version: str
    started_ns: int  # wall time the daemon started
    uptime_ns: int
    storage_root: str
    disk: DiskSpace | None  # None when the storage root cannot be measured (disk_error says why)
    disk_error: str
    min_free_bytes: int  # the [storage] min_free threshold on this filesystem (0 when unmeasured)
    clock: ClockStatus
    # Recorder-wide alarms (disk pressure, clock step or doubt), as on every camera's status.
    alarms: dict[str, str] = field(default_factory=dict)
    cameras_configured: int = 0
    cameras_enabled: int = 0
    cameras_recording: int = 0


class StatusService:
    def __init__(
        self,
        cameras: CameraManager,
        clock: Clock,
        *,
        recorder_id: str,
        storage_root: Path,
        min_free: Callable[[int], int],
        alarms: Callable[[], dict[str, str]],
        space: Callable[[Path], DiskSpace] = disk_space,
        clock_state: Callable[[], ClockStatus] = clock_status,
    ) -> None:
        self._cameras = cameras
        self._clock = clock
        self._recorder_id = recorder_id
        self._root = storage_root
        self._min_free = min_free
        self._alarms = alarms
        self._space = space
        self._clock_state = clock_state
        self._started_ns = clock.wall_ns()
        self._started_mono_ns = clock.mono_ns()
        self._clock_cache: tuple[int, ClockStatus] | None = None

    async def status(self, principal: Principal) -> RecorderStatus:
        principal.require(Permission.CAMERAS_VIEW)
        disk: DiskSpace | None = None
        disk_error = ""
        try:
            disk = await asyncio.to_thread(self._space, self._root)
        except OSError as error:
            disk_error = f"cannot measure storage root {self._root}: {error.strerror or error}"
        in_scope = [m for m in self._cameras.list() if principal.in_scope(m.config.id)]
        recording = 0
        for managed in in_scope:
            camera_status = self._cameras.status(managed.config.id)
            recording += camera_status is not None and camera_status.state is CameraState.RECORDING
        return RecorderStatus(
            recorder_id=self._recorder_id,
            version=vmsd.__version__,
            started_ns=self._started_ns,
            uptime_ns=self._clock.mono_ns() - self._started_mono_ns,
            storage_root=str(self._root),
            disk=disk,
            disk_error=disk_error,
            min_free_bytes=self._min_free(disk.total_bytes) if disk is not None else 0,
            clock=await self._clock_status(),
            alarms=dict(self._alarms()),
            cameras_configured=len(in_scope),
            cameras_enabled=sum(m.config.enabled for m in in_scope),
            cameras_recording=recording,
        )

    async def _clock_status(self) -> ClockStatus:
        now_ns = self._clock.mono_ns()
        if self._clock_cache is None or now_ns - self._clock_cache[0] >= CLOCK_CACHE_NS:
            self._clock_cache = (now_ns, await asyncio.to_thread(self._clock_state))
        return self._clock_cache[1]
