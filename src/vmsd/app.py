"""Wiring: build every component from the config, run them, stop them in order.

`Daemon.run()` is the whole life of `vmsd run`: open storage (with crash recovery) and the audit
trail, register the cameras, start the retention task, serve the control plane and tell systemd
READY=1 (`daemon_started`), then start one recorder per enabled camera in the background
(`cameras_started`), wait for SIGTERM/SIGINT, then stop the camera start-up if still running, the
control plane (with a grace period), the recorders (each closes its segment cleanly), and storage.

The control plane and READY=1 do not wait for the cameras: with a hundred cameras on a busy box,
starting them all took longer than systemd's start timeout, which then restarted the daemon in a
loop that recorded nothing.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from vmsd.audit import AuditEntry, AuditLog
from vmsd.cameras import CameraManager
from vmsd.clock import Clock, SystemClock
from vmsd.config import Config, TokenConfig, load_config
from vmsd.errors import ConfigError, ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.webhooks import Webhook
from vmsd.export.exporter import Exporter
from vmsd.export.model import CameraInfo
from vmsd.function_checks.runner import CheckTarget, FunctionChecks
from vmsd.ingest.recorder import CameraStatus
from vmsd.log import get_logger, redact_url, register_url_credentials
from vmsd.ops.metrics import CameraSample, EventCounts, Metrics, Sources
from vmsd.ops.sdnotify import Notifier
from vmsd.ops.watchdog import Watchdog, max_silence_ns, recorder_probe, recorder_summary
from vmsd.retention.holds import Holds
from vmsd.retention.task import RetentionTask
from vmsd.rpc.server import ControlPlane
from vmsd.services.audit import AuditService
from vmsd.services.authn import Authenticator
from vmsd.services.calls import CallAudit
from vmsd.services.cameras import CameraService
from vmsd.services.denials import DenialAggregator
from vmsd.services.directory import CameraDirectory
from vmsd.services.events import EventService
from vmsd.services.export_jobs import ExportJobs
from vmsd.services.exports import ExportService
from vmsd.services.function_checks import FunctionCheckService
from vmsd.services.holds import HoldService, RetentionService
from vmsd.services.live import LiveService
from vmsd.services.masks import MaskService
from vmsd.services.recordings import RecordingService
from vmsd.services.registry import Services
from vmsd.services.reports import ReportService
from vmsd.services.site import SiteService
from vmsd.services.site_wide import Site
from vmsd.services.status import StatusService
from vmsd.services.stills import StillService
from vmsd.site.coordinator import SiteCoordinator
from vmsd.site.operations import SiteOperations
from vmsd.site.peers import load_peer_credentials, load_site_token
from vmsd.storage.catalogue import GapReason
from vmsd.storage.errors import StorageError, StorageLost
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.storage.watch import STORAGE_LOST_EXIT, StorageWatch, clear_note, read_note, runtime_dir, write_note
from vmsd.units import NS_PER_MS
from vmsd.web.server import WebServer

log = get_logger(component="daemon")

# With [site], retention waits this long at most for the site's holds to be applied here.
SITE_HOLDS_WAIT_S = 30.0


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None, config_path: Path | None = None) -> None:
        self.config = config
        # Where SIGHUP re-reads [auth] tokens from (None: no reload, e.g. a config built in code).
        self.config_path = config_path
        self._reload_task: asyncio.Task[None] | None = None
        self.clock = clock or SystemClock()
        self.storage = Storage(config.storage.root, sync_interval_ns=config.storage.sync_interval_ns)
        self.audit = AuditLog(
            self.storage.layout.audit_path, self.clock, anchor_path=self.storage.layout.audit_anchor_path
        )
        # The one publisher of events (docs/grpc.md "Events"); opened after the catalogue.
        self.events = EventBus(self.storage.catalogue, self.clock, keep_ns=config.events.keep_ns)
        self.webhooks = [
            Webhook(self.events, w.url, w.kinds, str(w.secret_file), config.recorder_id) for w in config.events.webhooks
        ]
        self._webhook_tasks: list[asyncio.Task[None]] = []
        self.cameras = CameraManager(config, self.storage, self.clock, events=self.events)
        self.retention = RetentionTask(
            self.storage,
            self.audit,
            self.clock,
            default_max_age_ns=config.retention.max_age_ns,
            check_interval_ns=config.retention.check_interval_ns,
            min_free=config.storage.min_free.bytes_for,
            max_age_by_camera=self.cameras.max_age_overrides,
            events=self.events,
        )
        self.holds = Holds(self.storage.catalogue, self.clock, events=self.events)
        self.exporter = Exporter(
            self.storage,
            self.audit,
            self.clock,
            recorder_id=config.recorder_id,
            camera_info=self._camera_info,
            holds=self.holds,
            min_free=config.storage.min_free.bytes_for,
            max_total=config.export.max_total.bytes_for,
            events=self.events,
        )
        self.checks = FunctionChecks(
            config.health,
            self.storage,
            self.audit,
            self.clock,
            targets=self._check_targets,
            min_free=config.storage.min_free.bytes_for,
            events=self.events,
        )
        # With [site]: this recorder records the cameras it owns in etcd (vmsd.site).
        self.site = SiteCoordinator(config, self.cameras, self.clock) if config.site is not None else None
        self._site_task: asyncio.Task[None] | None = None
        self._checks_task: asyncio.Task[None] | None = None
        self.metrics: Metrics | None = None
        if config.metrics.address is not None:
            self.metrics = Metrics()
            self.metrics.add_sources(
                Sources(
                    cameras=self._camera_samples,
                    retention=lambda: self.retention.status,
                    function_check=lambda: self.checks.latest,
                    events=self._event_counts,
                    site=self.site.sample if self.site is not None else None,
                )
            )
            self.exporter.on_finished = self.metrics.observe_export
        # With [site]: search, timeline and holds cover the site's recorders (services/site_wide.py).
        self.site_ops = (
            SiteOperations(config, self.storage.catalogue, self.holds, self.audit) if config.site is not None else None
        )
        self._site_ops_task: asyncio.Task[None] | None = None
        site = (
            Site(config.recorder_id, self.site_ops.footage, self.site_ops.peers) if self.site_ops is not None else None
        )
        directory = CameraDirectory(self.cameras, self.storage.catalogue)
        retention = RetentionService(self.retention, self.storage.catalogue, config.retention.max_age_ns)
        exports = ExportService(
            self.exporter,
            site=site,
            segments=self.site_ops.peers if self.site_ops is not None else None,
            on_hold_change=self.site_ops.holds.changed if self.site_ops is not None else None,
        )
        events = EventService(self.events)
        # One aggregator for both transports: a flood over gRPC and HTTP together is one burst per key.
        denials = DenialAggregator(self.clock, config.grpc.denial_summary_interval_ns)
        self.services = Services(
            directory=directory,
            cameras=CameraService(self.cameras, self._alarms),
            recordings=RecordingService(
                directory, self.storage, self.clock, events=self.events, recorder_id=config.recorder_id, site=site
            ),
            live=LiveService(
                directory,
                self.cameras.recorders,
                events=self.events,
                on_sent=self.metrics.observe_live_send if self.metrics is not None else None,
                site=site,
                max_relays_per_principal=config.live.max_relays_per_principal,
                max_relays=config.live.max_relays,
            ),
            holds=HoldService(
                self.holds, self.clock, on_change=self.site_ops.holds.changed if self.site_ops is not None else None
            ),
            retention=retention,
            exports=exports,
            audit=AuditService(self.audit, directory, recorder_id=config.recorder_id, site=site),
            function_checks=FunctionCheckService(self.checks, directory),
            reports=ReportService(
                directory,
                self.storage,
                self.audit,
                self.checks,
                self.clock,
                recorder_id=config.recorder_id,
                max_age_ns=config.retention.max_age_ns,
            ),
            events=events,
            status=StatusService(
                self.cameras,
                self.clock,
                recorder_id=config.recorder_id,
                storage_root=config.storage.root,
                min_free=config.storage.min_free.bytes_for,
                alarms=self._alarms,
            ),
            masks=MaskService(self.cameras),
            stills=StillService(directory, self.storage),
            export_jobs=ExportJobs(exports, self.clock),
            site=SiteService(self.site),
            calls=CallAudit(self.audit, denials, events),
            audit_log=self.audit,
            clock=self.clock,
        )
        # One authenticator for both transports: a reload of [auth] tokens reaches both at once.
        self.authenticator = Authenticator(config.auth.tokens)
        self.control_plane = ControlPlane(config, self.services, self.authenticator, metrics=self.metrics)
        # The web console and JSON API (off unless [web] listen is set).
        self.web = WebServer(config, self.services, self.authenticator) if config.web.listen is not None else None
        self._calls_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Set as stop() begins: a retention still waiting for the site's holds gives up.
        self._closing = asyncio.Event()
        # systemd (Type=notify, WatchdogSec=): READY=1 once the control plane serves, WATCHDOG=1
        # only while every started recorder thread makes progress (a recorder started in the
        # background gets max_silence from its start); no-ops when not started by systemd.
        self.notifier = Notifier()
        self._recorder_summary = recorder_summary(self.cameras.recorders)
        self.watchdog = Watchdog(
            self.notifier,
            recorder_probe(self.cameras.recorders, self.clock, max_silence_ns(config.ingest)),
            self.clock,
            summary=self._watchdog_summary,
        )
        self._watchdog_task: asyncio.Task[None] | None = None
        # A storage outage longer than the watch's bound ends `run()` with STORAGE_LOST_EXIT.
        self.exit_status = 0
        self.storage_watch = StorageWatch(self.storage, self.clock, self._storage_lost)
        self._storage_watch_task: asyncio.Task[None] | None = None
        self._cameras_task: asyncio.Task[None] | None = None
        for camera in config.cameras:
            register_url_credentials(camera.url)

    def _alarms(self) -> dict[str, str]:
        """Recorder-wide alarms: retention's (disk, clock) and the site's (quorum, unfenced runs)."""
        alarms = dict(self.retention.status.alarms)
        if self.site is not None:
            alarms.update(self.site.alarms)
        if self.site_ops is not None:
            alarms.update(self.site_ops.alarms)
        return alarms

    def _camera_info(self, camera_id: str) -> CameraInfo | None:
        try:
            camera = self.cameras.get(camera_id).config
        except VmsdError:
            return None
        return CameraInfo(camera.id, camera.name, camera.location, [list(p) for p in camera.privacy_masks])

    def _check_targets(self) -> list[CheckTarget]:
        def status_of(camera_id: str) -> Callable[[], CameraStatus | None]:
            return lambda: self.cameras.status(camera_id)

        return [CheckTarget(m.config.id, status_of(m.config.id)) for m in self.cameras.list()]

    def _camera_samples(self) -> list[CameraSample]:
        return [
            CameraSample(camera_id, recorder.status, recorder.hub.subscriber_count)
            for camera_id, recorder in sorted(self.cameras.recorders().items())
        ]

    def _event_counts(self) -> EventCounts:
        return EventCounts(
            self.events.dropped,
            self.events.not_stored,
            [(redact_url(w.url), w.status.delivered, w.status.failures) for w in self.webhooks],
        )

    def _watchdog_summary(self) -> str:
        if not self.cameras.starting:
            return self._recorder_summary()
        enabled = sum(m.config.enabled for m in self.cameras.list())
        started = len(self.cameras.recorders())
        text = f"starting cameras, {started}/{enabled} started"
        return f"{text}; {self._recorder_summary()}" if started else text

    def request_stop(self) -> None:
        self._stopping.set()

    def request_reload(self) -> None:
        """SIGHUP: re-read the config file's [auth] tokens (one reload at a time)."""
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self.reload(), name="reload")

    async def reload(self) -> None:
        """Re-read the config file and apply its [auth] tokens; a file that does not load (or
        cannot be used) changes nothing and is logged. Every other section needs a restart."""
        if self.config_path is None:
            log.warning("reload_ignored", why="the daemon was not started from a config file")
            return
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as error:
            log.error("reload_failed", config=str(self.config_path), error=error.message)
            return
        unchanged = self.config.model_copy(update={"auth": config.auth})
        if config != unchanged:
            log.warning("reload_applies_tokens_only", config=str(self.config_path))
        await self.apply_tokens(config.auth.tokens)

    async def apply_tokens(self, tokens: list[TokenConfig]) -> None:
        """Accept exactly `tokens` from now on, on both transports, and end the browser sessions
        (and with them their live streams) of tokens removed or changed. Audited."""
        before = {t.name for t in self.config.auth.tokens}
        self.authenticator.replace(tokens)
        self.config = self.config.model_copy(update={"auth": self.config.auth.model_copy(update={"tokens": tokens})})
        ended = self.web.sessions.end_revoked(tokens) if self.web is not None else 0
        names = sorted(t.name for t in tokens)
        removed = sorted(before - set(names))
        detail = {"tokens": names, "removed": removed, "sessions_ended": ended}
        await self.services.calls.write(AuditEntry(action="auth.reload", principal="vmsd", detail=detail))
        log.info("tokens_reloaded", tokens=len(tokens), removed=len(removed), sessions_ended=ended)

    def _storage_lost(self, detail: str) -> None:
        write_note(runtime_dir(), detail, self.clock.wall_ns())
        self.exit_status = STORAGE_LOST_EXIT
        self.request_stop()

    def _open_storage(self) -> bool:
        """Open the storage root (blocking); True when the previous process lost its storage.
        StorageLost when it cannot be opened for writing (read-only, unreachable)."""
        try:
            self.storage.open()
        except (OSError, StorageError) as error:
            detail = f"cannot open storage root {self.config.storage.root}: {getattr(error, 'strerror', None) or error}"
            raise StorageLost(detail) from error
        return read_note(runtime_dir())

    async def start(self) -> None:
        """Open storage and audit, recover from any crash, register the cameras, serve the control
        plane, notify READY=1; then start the recorders in the background (`_start_cameras`)."""
        lost_before = await asyncio.to_thread(self._open_storage)
        reason = GapReason.STORAGE_ERROR if lost_before else GapReason.CRASH
        report = await asyncio.to_thread(reconcile, self.storage, reason=reason)
        clear_note(runtime_dir())
        if report.unindexed_files:
            log.error("unindexed_footage_present", files=len(report.unindexed_files))
        for webhook in self.webhooks:
            await asyncio.to_thread(webhook.open)
        await asyncio.to_thread(self.events.open)
        self._webhook_tasks = [asyncio.create_task(w.run(), name=f"webhook-{i}") for i, w in enumerate(self.webhooks)]
        await asyncio.to_thread(self.audit.open)
        await asyncio.to_thread(self.exporter.open)
        await self.cameras.start()
        self._retention_task = asyncio.create_task(self._run_retention(), name="retention")
        self._checks_task = asyncio.create_task(self.checks.run(), name="function-checks")
        address = self.config.metrics.address
        if self.metrics is not None and address is not None:
            try:
                await asyncio.to_thread(self.metrics.start, *address)
            except OSError as error:
                raise VmsdError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"[metrics] listen {self.config.metrics.listen!r}: cannot listen ({error.strerror or error})",
                ) from None
        self._calls_task = asyncio.create_task(self.services.calls.run(), name="denial-summaries")
        if self.config.site is not None and self.config.site.token_file is not None:
            # Peers of the site authenticate with this token (role `site`, services/authn.py).
            token = await asyncio.to_thread(load_site_token, self.config.site.token_file)
            self.authenticator.accept_site_token(token)
            if self.site_ops is not None:
                self.site_ops.accept_site_token(token)
        if self.site_ops is not None and self.config.site is not None and self.config.site.peer_tls is not None:
            # Peers are called over TLS ([site] peer_tls; the config requires [grpc] tls with it).
            assert self.config.grpc.tls is not None
            peer_tls, grpc_tls = self.config.site.peer_tls, self.config.grpc.tls
            self.site_ops.peers.accept_credentials(await asyncio.to_thread(load_peer_credentials, peer_tls, grpc_tls))
        await self.control_plane.start()
        if self.web is not None:
            try:
                await self.web.start()
            except OSError as error:
                raise VmsdError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"[web] listen {self.config.web.listen!r}: cannot listen ({error.strerror or error})",
                ) from None
        enabled = sum(m.config.enabled for m in self.cameras.list())
        log.info(
            "daemon_started",
            recorder_id=self.config.recorder_id,
            cameras=enabled,
            storage_root=str(self.config.storage.root),
        )
        self._watchdog_task = asyncio.create_task(self.watchdog.run(), name="watchdog")
        self._storage_watch_task = asyncio.create_task(self.storage_watch.run(), name="storage-watch")
        self.notifier.ready(f"started, starting {enabled} camera(s)")
        self._cameras_task = asyncio.create_task(self._start_cameras(), name="camera-start-up")
        if self.site is not None:
            self._site_task = asyncio.create_task(self.site.run(), name="site")
        if self.site_ops is not None:
            self._site_ops_task = asyncio.create_task(self.site_ops.run(), name="site-operations")

    async def _run_retention(self) -> None:
        """Retention; with [site], only once the site's holds are applied here (or after
        SITE_HOLDS_WAIT_S without etcd: a recorder cut off from etcd at start-up must still free
        space, and says so with the `site_holds_unsynced` alarm until the holds are synced)."""
        if self.site_ops is not None:
            waits = [asyncio.create_task(self.site_ops.holds.synced.wait()), asyncio.create_task(self._closing.wait())]
            _, pending = await asyncio.wait(waits, timeout=SITE_HOLDS_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if self._closing.is_set():
                return
            if not self.site_ops.holds.synced.is_set():
                self.site_ops.holds_overdue = True
                log.error("site_holds_unsynced", waited_s=SITE_HOLDS_WAIT_S)
        await self.retention.run()

    async def _start_cameras(self) -> None:
        began_ns = self.clock.mono_ns()
        started = await self.cameras.start_recorders()
        log.info("cameras_started", cameras=started, elapsed_ms=(self.clock.mono_ns() - began_ns) // NS_PER_MS)

    async def stop(self) -> None:
        # Stop pinging first: recorders being shut down look wedged to the probe.
        self.notifier.stopping("stopping")
        if self._cameras_task is not None:
            # A stop during camera start-up: start no more; those started stop with the others.
            self._cameras_task.cancel()
            await asyncio.gather(self._cameras_task, return_exceptions=True)
        await self.watchdog.aclose()
        if self._watchdog_task is not None:
            await self._watchdog_task
        await self.storage_watch.aclose()
        if self._storage_watch_task is not None:
            await asyncio.gather(self._storage_watch_task, return_exceptions=True)
        self.services.events.close()  # following streams end now, telling consumers to resume
        if self._reload_task is not None:
            await asyncio.gather(self._reload_task, return_exceptions=True)
        if self.web is not None:
            await self.web.aclose()
        await self.control_plane.aclose()
        # After the last call: every denial still being counted is written now.
        await self.services.calls.aclose()
        if self._calls_task is not None:
            await self._calls_task
        await self.checks.aclose()
        if self._checks_task is not None:
            await asyncio.gather(self._checks_task, return_exceptions=True)
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
        await self.services.export_jobs.aclose()  # exports under way finish on their own threads
        self._closing.set()
        await self.retention.aclose()
        if self._retention_task is not None:
            await asyncio.gather(self._retention_task, return_exceptions=True)
        if self._site_task is not None:
            # Claim nothing more; the cameras stop next, then the lease is revoked (peers take over).
            self._site_task.cancel()
            await asyncio.gather(self._site_task, return_exceptions=True)
        await self.cameras.stop()
        if self.site is not None:
            await self.site.aclose()
        if self._site_ops_task is not None:
            self._site_ops_task.cancel()
            await asyncio.gather(self._site_ops_task, return_exceptions=True)
        if self.site_ops is not None:
            await self.site_ops.aclose()
        for webhook in self.webhooks:
            await webhook.aclose()
        await asyncio.gather(*self._webhook_tasks, return_exceptions=True)
        await asyncio.to_thread(self.events.close)  # the recorders' last events are stored
        await asyncio.to_thread(self.audit.close)
        await asyncio.to_thread(self.storage.close)
        log.info("daemon_stopped", recorder_id=self.config.recorder_id)
        self.notifier.close()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (returns 0) or until the storage is lost (STORAGE_LOST_EXIT)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        await self.start()
        try:
            await self._stopping.wait()
        finally:
            log.info("daemon_stopping")
            await self.stop()
        return self.exit_status
