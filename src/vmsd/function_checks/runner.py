"""`FunctionChecks`: runs one check (cameras watched, pictures decoded, storage and clock probed) and the schedule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vmsd.audit import AuditLog
from vmsd.clock import Clock
from vmsd.config import HealthConfig
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.function_checks import records
from vmsd.function_checks.judging import judge_pictures, judge_recording, usual_rates
from vmsd.function_checks.pictures import sample_pictures
from vmsd.function_checks.report import (
    CameraCheck,
    ClockCheck,
    DiskCheck,
    Finding,
    FunctionCheckReport,
    PictureStats,
    worst,
)
from vmsd.function_checks.schedule import local_midnight_ns, next_run_ns
from vmsd.function_checks.thresholds import (
    BASELINE_SEGMENTS,
    BASELINE_WINDOW_NS,
    PICTURE_WINDOW_NS,
    WRITE_LATENCY_FAIL_NS,
    WRITE_LATENCY_WARN_NS,
)
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.log import get_logger
from vmsd.storage.catalogue import GapReason
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus, clock_status, disk_space
from vmsd.units import NS_PER_S
from vmsd.waits import wait_event

log = get_logger(component="health")


@dataclass(frozen=True)
class CheckTarget:
    """What a check needs of one camera: its id and a way to read its recorder's status."""

    camera_id: str
    status: Callable[[], CameraStatus | None]


class FunctionChecks:
    """Runs, stores, audits and alarms function checks. The constructor does no I/O."""

    def __init__(
        self,
        config: HealthConfig,
        storage: Storage,
        audit: AuditLog,
        clock: Clock,
        *,
        targets: Callable[[], list[CheckTarget]],
        min_free: Callable[[int], int],
        time_sync: Callable[[], ClockStatus] = clock_status,
        events: EventBus | None = None,
    ) -> None:
        self._config = config
        self._events = events
        self._storage = storage
        self._audit = audit
        self._clock = clock
        self._targets = targets
        self._min_free = min_free
        self._time_sync = time_sync
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self.latest: FunctionCheckReport | None = None
        self.runs = 0

    # -- schedule ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run a check at each of `[health] times` until aclose(). Wall-clock driven: it wakes at
        least once a minute to follow clock changes."""
        while not self._stop.is_set():
            due_ns = next_run_ns(self._clock.wall_ns(), self._config.times)
            if due_ns is None:
                await self._stop.wait()
                return
            while not self._stop.is_set() and self._clock.wall_ns() < due_ns:
                wait_s = min(60.0, (due_ns - self._clock.wall_ns()) / NS_PER_S)
                await wait_event(self._stop, max(0.01, wait_s))
            if self._stop.is_set():
                return
            try:
                await self.check(trigger="schedule", requested_by="vmsd")
            except Exception:  # a failed check must not end the schedule; the next one may work
                log.exception("function_check_failed")

    async def aclose(self) -> None:
        self._stop.set()

    # -- one check ---------------------------------------------------------------------------

    async def check(
        self,
        *,
        trigger: Literal["schedule", "request"],
        requested_by: str,
        role: str = "",
        camera_ids: set[str] | None = None,
    ) -> FunctionCheckReport:
        """Run a check of `camera_ids` (all cameras when None) and store, audit and alarm it."""
        async with self._lock:
            started_ns = self._clock.wall_ns()
            targets = [t for t in self._targets() if camera_ids is None or t.camera_id in camera_ids]
            before = {t.camera_id: t.status() for t in targets}
            mono_before_ns = self._clock.mono_ns()
            # Storage and the clock are checked while the cameras are being watched.
            disk_task = asyncio.to_thread(self._check_disk)
            clock_task = asyncio.to_thread(self._check_clock)
            pictures_task = asyncio.gather(
                *(asyncio.to_thread(self._pictures, t.camera_id, started_ns) for t in targets)
            )
            disk, clock, pictures = await asyncio.gather(disk_task, clock_task, pictures_task)
            remaining_ns = self._config.observe_ns - (self._clock.mono_ns() - mono_before_ns)
            if remaining_ns > 0:
                await asyncio.sleep(remaining_ns / NS_PER_S)
            observed_ns = max(1, self._clock.mono_ns() - mono_before_ns)
            now_ns = self._clock.wall_ns()
            cameras = []
            for target, camera_pictures in zip(targets, pictures, strict=True):
                cameras.append(
                    await asyncio.to_thread(
                        self._camera, target, before[target.camera_id], camera_pictures, now_ns, observed_ns
                    )
                )
            verdict = worst([f for c in cameras for f in c.findings] + disk.findings + clock.findings)
            report = FunctionCheckReport(
                id=0,
                started_ns=started_ns,
                finished_ns=self._clock.wall_ns(),
                trigger=trigger,
                requested_by=requested_by,
                verdict=verdict,
                cameras=cameras,
                disk=disk,
                clock=clock,
            )
            await asyncio.to_thread(self._record, report, role)
            return report

    def _camera(
        self,
        target: CheckTarget,
        before: CameraStatus | None,
        pictures: list[PictureStats],
        now_ns: int,
        observed_ns: int,
    ) -> CameraCheck:
        after = target.status()
        catalogue = self._storage.catalogue
        usual_fps, usual_bitrate = usual_rates(
            catalogue.segment_stats(target.camera_id, now_ns - BASELINE_WINDOW_NS, BASELINE_SEGMENTS)
        )
        midnight_ns = local_midnight_ns(now_ns)
        gaps = [
            g for g in catalogue.gaps_in_range(target.camera_id, midnight_ns, now_ns) if g.reason != GapReason.RESTART
        ]
        gap_ns = sum(min(now_ns, g.end_ns or now_ns) - max(midnight_ns, g.start_ns) for g in gaps)
        if after is None or before is None:
            return CameraCheck(
                target.camera_id,
                "disabled",
                "warning",
                [Finding("recording", "warning", "camera is disabled: not recorded")],
                gaps_today=len(gaps),
                gap_duration_today_ns=gap_ns,
            )
        frames = max(0, after.video_packets - before.video_packets)
        nbytes = max(0, after.bytes - before.bytes)
        findings = judge_recording(
            after,
            now_ns=now_ns,
            observed_ns=observed_ns,
            frames=frames,
            nbytes=nbytes,
            usual_fps=usual_fps,
            usual_bitrate_bps=usual_bitrate,
        )
        if gaps:
            findings.append(
                Finding("gaps", "warning", f"{len(gaps)} gap(s) today, {gap_ns / NS_PER_S:.0f}s without footage")
            )
        if after.state is CameraState.RECORDING:
            findings += judge_pictures(pictures)
        return CameraCheck(
            camera_id=target.camera_id,
            state=after.state.value,
            verdict=worst(findings),
            findings=findings,
            frames_per_s=round(frames * NS_PER_S / observed_ns, 2),
            usual_frames_per_s=round(usual_fps, 2),
            bitrate_bps=nbytes * 8 * NS_PER_S // observed_ns,
            usual_bitrate_bps=usual_bitrate,
            last_packet_ns=after.last_packet_ns,
            last_keyframe_ns=after.last_keyframe_ns,
            gaps_today=len(gaps),
            gap_duration_today_ns=gap_ns,
            camera_clock_ppm=after.camera_clock_ppm,
            camera_clock_status=after.camera_clock_status,
            camera_clock_offset_ns=after.camera_clock_offset_ns,
            timestamp_jumps=after.timestamp_jumps,
            pictures=pictures,
        )

    def _pictures(self, camera_id: str, now_ns: int) -> list[PictureStats]:
        rows = self._storage.catalogue.segments_in_range(camera_id, now_ns - PICTURE_WINDOW_NS, now_ns + NS_PER_S)
        return sample_pictures([(self._storage.segment_path(r), r.start_ns) for r in rows[-3:]])

    def _check_disk(self) -> DiskCheck:
        check = DiskCheck()
        try:
            space = disk_space(self._storage.layout.root)
            check.free_bytes, check.total_bytes = space.free_bytes, space.total_bytes
            check.min_free_bytes = self._min_free(space.total_bytes)
            check.write_latency_ns = self._storage.probe_write()
        except OSError as error:
            message = f"storage cannot be written: {error.strerror or error}"
            check.findings.append(Finding("disk_write", "fail", message))
        else:
            latency_ms = check.write_latency_ns / 1e6
            slow = f"a 64 KiB write+fsync took {latency_ms:.0f} ms"
            if check.write_latency_ns >= WRITE_LATENCY_FAIL_NS:
                check.findings.append(Finding("disk_write", "fail", slow))
            elif check.write_latency_ns >= WRITE_LATENCY_WARN_NS:
                check.findings.append(Finding("disk_write", "warning", slow))
            else:
                check.findings.append(Finding("disk_write", "ok", f"64 KiB write+fsync in {latency_ms:.1f} ms"))
        if check.total_bytes and check.free_bytes < check.min_free_bytes:
            check.findings.append(
                Finding(
                    "disk_free",
                    "warning",
                    f"free space {check.free_bytes >> 20} MiB is below min_free {check.min_free_bytes >> 20} MiB: "
                    "retention is shedding the oldest footage",
                )
            )
        elif check.total_bytes:
            check.findings.append(Finding("disk_free", "ok", f"{check.free_bytes >> 20} MiB free"))
        check.verdict = worst(check.findings)
        return check

    def _check_clock(self) -> ClockCheck:
        status = self._time_sync()
        check = ClockCheck(synchronized=status.synchronized, source=status.source)
        if status.synchronized == "yes":
            check.findings.append(Finding("time_sync", "ok", "recorder clock synchronised (NTP)"))
        elif status.synchronized == "no":
            check.findings.append(
                Finding("time_sync", "warning", "recorder clock is NOT synchronised: footage times may be wrong")
            )
        else:
            check.findings.append(
                Finding("time_sync", "warning", f"recorder clock synchronisation unknown ({status.source})")
            )
        check.verdict = worst(check.findings)
        return check

    def _record(self, report: FunctionCheckReport, role: str) -> None:
        records.record(self._storage, self._audit, report, role)
        self.latest = report
        self.runs += 1
        self._publish_findings(report)

    def _publish_findings(self, report: FunctionCheckReport) -> None:
        """One event per warning or failure: per camera, and recorder-wide for disk and clock."""
        if self._events is None:
            return
        found = [(c.camera_id, f) for c in report.cameras for f in c.findings]
        found += [("", f) for f in report.disk.findings + report.clock.findings]
        for camera_id, finding in found:
            if finding.severity in ("warning", "fail"):
                self._events.publish(
                    EventKind.FUNCTION_CHECK_FINDING,
                    camera_id,
                    check_id=report.id,
                    check=finding.check,
                    severity=finding.severity,
                    message=finding.message,
                )

    # -- stored reports (records.py) -----------------------------------------------------------

    def stored(self, check_id: int | None = None) -> FunctionCheckReport | None:
        """A stored report (the newest when `check_id` is None). Blocking."""
        return records.stored(self._storage, check_id)

    def stored_list(self, limit: int, *, before_id: int = 0) -> list[FunctionCheckReport]:
        """Stored reports, newest first, older than check `before_id` (0: from the newest)."""
        return records.stored_list(self._storage, limit, before_id=before_id)
