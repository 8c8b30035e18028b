"""`Services`: every use case a transport serves, built once by the daemon (vmsd.app)."""

from __future__ import annotations

from dataclasses import dataclass

from vmsd.audit import AuditLog
from vmsd.clock import Clock
from vmsd.services.audit import AuditService
from vmsd.services.calls import CallAudit
from vmsd.services.cameras import CameraService
from vmsd.services.directory import CameraDirectory
from vmsd.services.events import EventService
from vmsd.services.export_jobs import ExportJobs
from vmsd.services.exports import ExportService
from vmsd.services.function_checks import FunctionCheckService
from vmsd.services.holds import HoldService, RetentionService
from vmsd.services.live import LiveService
from vmsd.services.masks import MaskService
from vmsd.services.recordings import RecordingService
from vmsd.services.reports import ReportService
from vmsd.services.site import SiteService
from vmsd.services.status import StatusService
from vmsd.services.stills import StillService


@dataclass(frozen=True)
class Services:
    directory: CameraDirectory
    cameras: CameraService
    recordings: RecordingService
    live: LiveService
    holds: HoldService
    retention: RetentionService
    exports: ExportService
    audit: AuditService
    function_checks: FunctionCheckService
    reports: ReportService
    events: EventService
    status: StatusService
    masks: MaskService
    stills: StillService
    export_jobs: ExportJobs
    site: SiteService
    # The transports' records of their calls (every audited call's outcome, denials,
    # undecodable requests), written alike for gRPC and HTTP.
    calls: CallAudit
    # The same trail and clock as the use cases, for what a transport needs beyond `calls`.
    audit_log: AuditLog
    clock: Clock
