"""The set of cameras being recorded: from the config file, plus those managed over the API.

Config-file cameras are read-only over the API (the file is the operator's source of truth);
API-managed cameras are persisted in the catalogue and restored at start-up. Start-up has two
steps: `start()` registers every camera in the catalogue (one transaction), `start_recorders()`
then starts the recorders, and may run in the background while the control plane already serves.
Adding a camera starts its recorder at once; updating restarts it; removing stops it (its footage
stays and is erased by retention as usual).

Every add, update and removal is first described as a `CameraChange` (each field's old and new
value) and handed to the caller's `authorise` callback, under the same lock as the change itself,
so the decision is made on the camera as it really is at that moment. Changes of a camera's
source (URL, transport) or retention decide which footage exists; the control plane lets only
some roles make them (rpc/cameras.py) and audits the change.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from vmsd.clock import Clock
from vmsd.config import CameraConfig, Config, RetentionConfig, format_validation_error
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.ingest.fencing import Fencing
from vmsd.ingest.recorder import CameraRecorder, CameraStatus
from vmsd.log import get_logger, redact_url, register_url_credentials
from vmsd.storage.store import Storage

log = get_logger(component="cameras")
STALL_CHECK_S = 0.5


@dataclass(frozen=True)
class ManagedCamera:
    config: CameraConfig
    source: Literal["config", "api"]


# The fields of a camera an audit record shows, in the API's words.
_AUDITED_FIELDS = ("name", "location", "url", "transport", "enabled", "retention_max_age_ns", "privacy_masks")
# A field's value when the camera is absent (added or removed): None, but a camera without
# masks is no change of its masks.
_ABSENT: dict[str, Any] = {"privacy_masks": []}
# Polygons of normalised (x, y) points: CameraConfig.privacy_masks.
PrivacyMasks = list[list[tuple[float, float]]]


def _raw_value(camera: CameraConfig | None, name: str) -> Any:
    if camera is None:
        return _ABSENT.get(name)
    if name == "privacy_masks":
        return [[list(point) for point in polygon] for polygon in camera.privacy_masks]
    return getattr(camera, name)


def _audited_value(camera: CameraConfig | None, name: str) -> Any:
    if camera is not None and name == "url":
        return redact_url(camera.url)  # credentials never reach the audit trail
    return _raw_value(camera, name)


@dataclass(frozen=True)
class OwnedCamera:
    """A site camera this recorder has just claimed (vmsd.site), to record under `fencing`."""

    camera_id: str
    fencing: Fencing
    hole: tuple[int, str] | None  # (start_ns, detail) of the `failover` gap when taken over from a lost owner


@dataclass(frozen=True)
class CameraChange:
    """What adding, updating or removing a camera changes.

    `old` is None for a new camera, `new` None for a removal. `recorded_before` says that the id
    already has footage in the catalogue (a camera removed earlier): giving it a source again
    continues that footage from wherever the new URL points.
    """

    camera_id: str
    old: CameraConfig | None
    new: CameraConfig | None
    recorded_before: bool = False

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        """Each field that changes: its old and new value (None where the camera is absent)."""
        changed: dict[str, dict[str, Any]] = {}
        for name in _AUDITED_FIELDS:
            if _raw_value(self.old, name) != _raw_value(self.new, name):
                changed[name] = {"old": _audited_value(self.old, name), "new": _audited_value(self.new, name)}
        return changed

    @property
    def source_changed(self) -> bool:
        """The camera's footage would come from somewhere else (a new camera's first source is not a change)."""
        if self.new is None or (self.old is None and not self.recorded_before):
            return False
        return "url" in self.fields or "transport" in self.fields

    @property
    def retention_changed(self) -> bool:
        """The camera's own retention is set, changed or dropped (for the recorder default)."""
        return "retention_max_age_ns" in self.fields

    def audit_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"changes": self.fields}
        if self.recorded_before and self.old is None:
            detail["recorded_before"] = True
        return detail


Authorise = Callable[[CameraChange], None]


class CameraManager:
    def __init__(self, config: Config, storage: Storage, clock: Clock, *, events: EventBus | None = None) -> None:
        self._config = config
        self._events = events
        self._storage = storage
        self._clock = clock
        self._cameras: dict[str, ManagedCamera] = {c.id: ManagedCamera(c, "config") for c in config.cameras}
        self._recorders: dict[str, CameraRecorder] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        # With [site], the config file's cameras are the site's: each is recorded here only while
        # this recorder owns it (vmsd.site starts and releases them); API cameras stay local.
        self._site = config.site is not None
        self._stall_task: asyncio.Task[None] | None = None
        self._stopping = False
        # True while start_recorders() runs (the watchdog's STATUS line says so).
        self.starting = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the API-managed cameras and register every camera in the catalogue; start nothing.

        Recorders are started by `start_recorders()`, which may run in the background: the
        control plane needs the cameras known (and in the catalogue), not recording.
        """
        for camera_id, spec_json in await asyncio.to_thread(self._storage.catalogue.api_cameras):
            if camera_id in self._cameras:
                log.warning("api_camera_shadowed", camera_id=camera_id, detail="the config file defines this id")
                continue
            try:
                camera = CameraConfig.model_validate_json(spec_json)
            except ValidationError as error:
                log.error("api_camera_invalid", camera_id=camera_id, error=format_validation_error(error))
                continue
            register_url_credentials(camera.url)
            self._cameras[camera_id] = ManagedCamera(camera, "api")
        # One transaction for all: a commit is an fsync, and a hundred of them in a row (each
        # through the thread pool) kept start-up waiting on the disk.
        rows = [(m.config.id, m.config.name, m.config.location) for m in self._cameras.values()]
        await asyncio.to_thread(self._storage.catalogue.upsert_cameras, rows, self._clock.wall_ns())
        self._stall_task = asyncio.create_task(self._stall_watch(), name="stall-watch")

    async def start_recorders(self) -> int:
        """Start the recorder of every enabled camera that has none yet; returns how many started.

        One camera at a time under the lock, yielding to the event loop after each, so that the
        control plane stays responsive and API changes interleave (a camera removed or updated
        meanwhile is skipped). Stops starting cameras once `stop()` has begun.
        """
        started = 0
        self.starting = True
        try:
            for camera_id in list(self._cameras):
                async with self._lock:
                    if self._stopping:
                        break
                    managed = self._cameras.get(camera_id)
                    if managed is not None and self._site and managed.source == "config":
                        continue  # recorded once owned (record_owned)
                    if managed is not None and managed.config.enabled and camera_id not in self._recorders:
                        try:
                            self._launch(managed.config)
                        except Exception:  # one camera's failure must not keep the others from starting
                            log.exception("camera_start_failed", camera_id=camera_id)
                            continue
                        started += 1
                await asyncio.sleep(0)
        finally:
            self.starting = False
        return started

    async def _stall_watch(self) -> None:
        """Interrupt camera reads that are blocked without video (see CameraRecorder.check_stall)."""
        while True:
            await asyncio.sleep(STALL_CHECK_S)
            await asyncio.to_thread(self._check_stalls, list(self._recorders.values()))  # /proc reads

    @staticmethod
    def _check_stalls(recorders: list[CameraRecorder]) -> None:
        for recorder in recorders:
            try:
                recorder.check_stall()
            except Exception:  # one camera's check must not stop the others'
                log.exception("stall_check_failed", camera_id=recorder.camera.id)

    async def stop(self) -> None:
        self._stopping = True
        if self._stall_task is not None:
            self._stall_task.cancel()
        for recorder in self._recorders.values():
            recorder.request_stop()
        await asyncio.gather(*(self._stop_recorder(camera_id) for camera_id in list(self._recorders)))

    async def _record(self, camera: CameraConfig) -> None:
        await asyncio.to_thread(
            self._storage.catalogue.upsert_camera, camera.id, camera.name, camera.location, self._clock.wall_ns()
        )
        if camera.enabled:
            self._launch(camera)

    def _launch(self, camera: CameraConfig, fencing: Fencing | None = None) -> None:
        recorder = CameraRecorder(
            camera,
            self._config.ingest,
            self._storage,
            self._clock,
            segment_duration_ns=self._config.storage.segment_duration_ns,
            events=self._events,
            fencing=fencing,
            camera_clock_tolerance_ns=self._config.health.camera_clock_tolerance_ns,
        )
        self._recorders[camera.id] = recorder
        task = asyncio.create_task(recorder.run(), name=f"recorder-{camera.id}")
        self._tasks[camera.id] = task
        if fencing is not None:
            task.add_done_callback(lambda _: self._forget(camera.id, recorder))

    def _forget(self, camera_id: str, recorder: CameraRecorder) -> None:
        """A site camera's recorder ended by itself (released to a newer owner): drop it."""
        if self._recorders.get(camera_id) is recorder:
            del self._recorders[camera_id]
            self._tasks.pop(camera_id, None)

    # -- a site's cameras (vmsd.site) ----------------------------------------------------------

    def site_cameras(self) -> list[CameraConfig]:
        """The site's cameras this recorder may record: the config file's enabled cameras."""
        return [m.config for m in self._cameras.values() if m.source == "config" and m.config.enabled]

    async def record_owned(self, cameras: list[OwnedCamera]) -> set[str]:
        """Start recording site cameras this recorder now owns, each's runs under its fencing;
        returns the ids started.

        A camera's `hole` (start_ns, detail): it was taken over from a lost owner: a `failover`
        gap from start_ns, closed by its first segment. The holes of a whole takeover are written
        in one catalogue transaction (one fsync, not one per camera). A camera whose earlier
        recorder is still finishing its last segment is not started: the caller tries again."""
        async with self._lock:
            if self._stopping:
                return set()
            ready = [c for c in cameras if self._may_record_owned(c.camera_id)]
            holes = [(c.camera_id, *c.hole) for c in ready if c.hole is not None]
            if holes:
                await asyncio.to_thread(self._storage.catalogue.open_failover_gaps, holes)
                if self._stopping:  # stop() began meanwhile: it has listed the recorders it stops
                    return set()
            started: set[str] = set()
            for camera in ready:
                try:
                    self._launch(self._cameras[camera.camera_id].config, camera.fencing)
                except Exception:  # one camera's failure must not leave the others started but unknown
                    log.exception("camera_start_failed", camera_id=camera.camera_id)
                    continue
                started.add(camera.camera_id)
                log.info("site_camera_recording", camera_id=camera.camera_id, epoch=camera.fencing.epoch)
            return started

    def _may_record_owned(self, camera_id: str) -> bool:
        managed = self._cameras.get(camera_id)
        return managed is not None and managed.config.enabled and camera_id not in self._recorders

    def release_owned(self, camera_id: str, detail: str) -> None:
        """A newer owner records the camera: stop after the current segment (a `failover` gap follows)."""
        recorder = self._recorders.get(camera_id)
        if recorder is not None and recorder.fencing is not None:
            recorder.release(detail)

    async def mark_runs_unfenced(self) -> int:
        """Mark every open site run as recorded unfenced; returns how many were marked."""
        return await asyncio.to_thread(self._storage.catalogue.mark_runs_unfenced)

    async def _stop_recorder(self, camera_id: str) -> None:
        recorder = self._recorders.pop(camera_id, None)
        task = self._tasks.pop(camera_id, None)
        if recorder is not None:
            await recorder.aclose()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # -- queries -------------------------------------------------------------------------------

    def list(self) -> list[ManagedCamera]:
        return [self._cameras[k] for k in sorted(self._cameras)]

    def get(self, camera_id: str) -> ManagedCamera:
        managed = self._cameras.get(camera_id)
        if managed is None:
            raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} does not exist")
        return managed

    def status(self, camera_id: str) -> CameraStatus | None:
        recorder = self._recorders.get(camera_id)
        return recorder.status if recorder is not None else None

    def recorders(self) -> dict[str, CameraRecorder]:
        return dict(self._recorders)

    @property
    def retention(self) -> RetentionConfig:
        return self._config.retention

    def max_age_overrides(self) -> dict[str, int]:
        """Per-camera retention windows (cameras.retention_max_age) of the configured cameras.

        Never below [retention] min_age: an API camera stored before the floor existed (or below
        a floor raised since) keeps its footage at least that long.
        """
        floor_ns = self._config.retention.min_age_ns
        return {
            m.config.id: max(m.config.retention_max_age_ns, floor_ns)
            for m in self._cameras.values()
            if m.config.retention_max_age_ns is not None
        }

    def known_ids(self) -> set[str]:
        """Cameras configured now (footage of removed cameras stays searchable via the catalogue)."""
        return set(self._cameras)

    # -- changes -------------------------------------------------------------------------------

    async def add(self, camera: CameraConfig, authorise: Authorise) -> ManagedCamera:
        async with self._lock:
            if camera.id in self._cameras:
                raise VmsdError(ErrorKind.ALREADY_EXISTS, f"camera_id {camera.id!r} already exists")
            known = await asyncio.to_thread(self._storage.catalogue.camera_ids)
            authorise(CameraChange(camera.id, None, camera, recorded_before=camera.id in known))
            await self._persist(camera)
            managed = ManagedCamera(camera, "api")
            self._cameras[camera.id] = managed
            await self._record(camera)
            log.info("camera_added", camera_id=camera.id)
            return managed

    async def update(self, camera: CameraConfig, authorise: Authorise) -> ManagedCamera:
        async with self._lock:
            old = self._require_api_managed(camera.id)
            # Masks have their own call (set_privacy_masks); an update keeps them.
            camera = camera.model_copy(update={"privacy_masks": old.config.privacy_masks})
            authorise(CameraChange(camera.id, old.config, camera))
            await self._persist(camera)
            await self._stop_recorder(camera.id)
            managed = ManagedCamera(camera, "api")
            self._cameras[camera.id] = managed
            await self._record(camera)
            log.info("camera_updated", camera_id=camera.id)
            return managed

    async def set_privacy_masks(self, camera_id: str, masks: PrivacyMasks, authorise: Authorise) -> ManagedCamera:
        """Replace an API-managed camera's privacy masks (validated by the caller: normalised
        polygons of at least 3 points) and persist them. The recorder keeps running: masks change
        what the console draws and what a redacted export paints, never what is recorded."""
        async with self._lock:
            old = self._require_api_managed(camera_id)
            camera = old.config.model_copy(update={"privacy_masks": masks})
            authorise(CameraChange(camera_id, old.config, camera))
            await self._persist(camera)
            managed = ManagedCamera(camera, "api")
            self._cameras[camera_id] = managed
            log.info("camera_privacy_masks_set", camera_id=camera_id, polygons=len(masks))
            return managed

    async def remove(self, camera_id: str, authorise: Authorise) -> None:
        async with self._lock:
            old = self._require_api_managed(camera_id)
            authorise(CameraChange(camera_id, old.config, None))
            await self._stop_recorder(camera_id)
            await asyncio.to_thread(self._storage.catalogue.delete_api_camera, camera_id)
            del self._cameras[camera_id]
            log.info("camera_removed", camera_id=camera_id)

    def _require_api_managed(self, camera_id: str) -> ManagedCamera:
        managed = self.get(camera_id)
        if managed.source == "config":
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"camera_id {camera_id!r} is defined in the config file; change it there",
            )
        return managed

    async def _persist(self, camera: CameraConfig) -> None:
        register_url_credentials(camera.url)
        data = camera.model_dump(mode="json", by_alias=True)
        if camera.retention_max_age_ns is not None:
            # Written back in the config's own unit syntax (a bare number is refused on reload).
            data["retention_max_age"] = f"{camera.retention_max_age_ns}ns"
        spec_json = json.dumps(data)
        await asyncio.to_thread(self._storage.catalogue.put_api_camera, camera.id, spec_json, self._clock.wall_ns())
