"""Function checks: is every camera recording a usable picture, with the right time, onto a disk
that can take it?

Control rooms run a daily check of every camera (it is in the codes of practice: "cameras are
checked daily to ensure they are recording and images carry the correct date and time"). A
function check does that check for them, on a schedule (`[health] times`, twice a day by
default) and on demand (`vmsctl health`), and keeps every report:

- per camera: state; frames and bytes received while the check watches (`[health] observe`)
  against the camera's usual frame rate and bitrate (its complete segments of the last day);
  the newest keyframe; gaps since local midnight; timing (camera clock rate against the
  recorder's, timestamp jumps, recorder clock steps);
- pictures: keyframes of the newest recorded footage are decoded (from the segment files, so
  what is checked is what was recorded) and judged with numpy: blank/black, frozen (identical
  across samples), obscured or defocused (very little detail);
- storage: free space against `min_free`, and the latency of a small fsync'd write;
- the recorder's clock: whether NTP has synchronised it (timedatectl).

Every finding has a severity (ok < warning < fail); the worst is the verdict. Each run is stored
in the catalogue, written to the audit trail (action `function_check`) and every warning or
failure is logged as an `alarm` event. Checks run one at a time.

The judging functions (`picture_stats`, `judge_pictures`, `judge_recording`) are pure, so the
thresholds are tested without cameras.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import Clock
from vmsd.config import HealthConfig
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.log import get_logger
from vmsd.storage.catalogue import GAP_RESTART
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus, clock_status, disk_space

log = get_logger(component="health")

NS_PER_S = 1_000_000_000
Severity = Literal["ok", "warning", "fail"]
_RANK: dict[str, int] = {"ok": 0, "warning": 1, "fail": 2}

# -- thresholds (why each value: docs/design/health.md) ------------------------------------------
# Pictures are judged on luma scaled to this width: enough for the statistics, cheap to compute.
SAMPLE_WIDTH = 320
# How much recent footage is decoded, and how many of its keyframes are judged.
PICTURE_WINDOW_NS = 30 * NS_PER_S
MAX_PICTURES = 5
# Black: dark on average, and even the brightest 0.1 % (bright_luma) no more than a dim grey: a
# night scene with one street light is dark, not black.
BLACK_MEAN_LUMA = 30.0
BLACK_BRIGHT_LUMA = 45.0
# Low detail: the mean absolute luma gradient between neighbouring pixels (at SAMPLE_WIDTH). A
# covered lens or a grey frame measures ~0; FFmpeg's testsrc2 pattern, mostly flat colour blocks,
# 1.8; a street scene several times that.
LOW_DETAIL = 0.5
# Frozen: consecutive samples (seconds apart) differ by less than this mean absolute luma. A live
# scene differs by sensor noise alone by more; a camera that keeps sending one frame by nothing.
FROZEN_MEAN_DIFF = 0.25
# Recording: fractions of the usual rate below which the camera is reported.
LOW_FPS_FRACTION = 0.5
LOW_BITRATE_FRACTION = 0.25
# A keyframe older than this while recording means the stream lost its keyframes.
KEYFRAME_MAX_AGE_NS = 20 * NS_PER_S
# Camera clock running this far from the recorder's (ppm, after slewing) is worth a look.
CLOCK_RATE_WARN_PPM = 500
# Storage write latency (64 KiB + fsync).
WRITE_LATENCY_WARN_NS = 500_000_000
WRITE_LATENCY_FAIL_NS = 5 * NS_PER_S
# The usual rate comes from up to a day of complete segments.
BASELINE_WINDOW_NS = 86_400 * NS_PER_S
BASELINE_SEGMENTS = 1440
MAX_STORED_LIST = 1000


@dataclass(frozen=True)
class Finding:
    check: str  # e.g. "recording", "frame_rate", "picture_black"
    severity: Severity
    message: str


@dataclass(frozen=True)
class PictureStats:
    time_ns: int
    mean_luma: float
    bright_luma: float
    detail: float  # mean absolute gradient of luma
    diff_from_previous: float | None  # mean absolute luma difference from the previous sample


@dataclass
class CameraCheck:
    camera_id: str
    state: str
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    frames_per_s: float = 0.0
    usual_frames_per_s: float = 0.0
    bitrate_bps: int = 0
    usual_bitrate_bps: int = 0
    last_packet_ns: int = 0
    last_keyframe_ns: int = 0
    gaps_today: int = 0
    gap_duration_today_ns: int = 0
    camera_clock_ppm: int = 0
    timestamp_jumps: int = 0
    pictures: list[PictureStats] = field(default_factory=list)


@dataclass
class DiskCheck:
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    free_bytes: int = 0
    total_bytes: int = 0
    min_free_bytes: int = 0
    write_latency_ns: int = 0


@dataclass
class ClockCheck:
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    synchronized: str = "unknown"
    source: str = ""


@dataclass
class FunctionCheckReport:
    id: int
    started_ns: int
    finished_ns: int
    trigger: str  # "schedule" | "request"
    requested_by: str
    verdict: Severity
    cameras: list[CameraCheck]
    disk: DiskCheck
    clock: ClockCheck

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FunctionCheckReport:
        data = json.loads(text)

        def findings(items: list[dict[str, Any]]) -> list[Finding]:
            return [Finding(**f) for f in items]

        cameras = [
            CameraCheck(
                **{
                    **c,
                    "findings": findings(c["findings"]),
                    "pictures": [PictureStats(**p) for p in c["pictures"]],
                }
            )
            for c in data["cameras"]
        ]
        disk = DiskCheck(**{**data["disk"], "findings": findings(data["disk"]["findings"])})
        clock = ClockCheck(**{**data["clock"], "findings": findings(data["clock"]["findings"])})
        return cls(**{**data, "cameras": cameras, "disk": disk, "clock": clock})

    def alarms(self) -> list[tuple[str, Finding]]:
        """(camera id or "" for the recorder, finding) of every warning and failure."""
        out = [(c.camera_id, f) for c in self.cameras for f in c.findings if f.severity != "ok"]
        out += [("", f) for f in self.disk.findings + self.clock.findings if f.severity != "ok"]
        return out


def worst(findings: Sequence[Finding]) -> Severity:
    verdict: Severity = "ok"
    for finding in findings:
        if _RANK[finding.severity] > _RANK[verdict]:
            verdict = finding.severity
    return verdict


# -- pure judging ------------------------------------------------------------------------------


def picture_stats(luma: np.ndarray, time_ns: int, previous: np.ndarray | None = None) -> PictureStats:
    """Statistics of one picture's luma plane (2-D uint8)."""
    pixels = luma.astype(np.int16)
    gradient = (np.abs(np.diff(pixels, axis=1)).mean() + np.abs(np.diff(pixels, axis=0)).mean()) / 2
    diff = None
    if previous is not None and previous.shape == luma.shape:
        diff = float(np.abs(pixels - previous.astype(np.int16)).mean())
    return PictureStats(
        time_ns=time_ns,
        mean_luma=round(float(pixels.mean()), 2),
        bright_luma=round(float(np.percentile(pixels, 99.9)), 2),
        detail=round(float(gradient), 3),
        diff_from_previous=None if diff is None else round(diff, 3),
    )


def judge_pictures(pictures: Sequence[PictureStats]) -> list[Finding]:
    """Black, low-detail and frozen findings for a camera's sampled pictures (oldest first)."""
    if not pictures:
        return [Finding("picture", "warning", "no recent footage could be decoded to check the picture")]
    findings: list[Finding] = []
    newest = pictures[-1]
    if all(p.mean_luma < BLACK_MEAN_LUMA and p.bright_luma < BLACK_BRIGHT_LUMA for p in pictures):
        findings.append(
            Finding("picture_black", "fail", f"picture is blank/black (mean luma {newest.mean_luma:.0f} of 255)")
        )
    elif all(p.detail < LOW_DETAIL for p in pictures):
        findings.append(
            Finding(
                "picture_low_detail",
                "warning",
                f"picture has almost no detail (gradient {newest.detail:.2f}): lens obscured or out of focus?",
            )
        )
    diffs = [p.diff_from_previous for p in pictures if p.diff_from_previous is not None]
    # A blank or featureless picture cannot show movement: frozen is only judged on a real picture.
    if not findings and diffs and max(diffs) < FROZEN_MEAN_DIFF:
        span_s = (pictures[-1].time_ns - pictures[0].time_ns) / NS_PER_S
        findings.append(
            Finding("picture_frozen", "fail", f"picture is frozen: {len(pictures)} samples over {span_s:.0f}s alike")
        )
    if not findings:
        findings.append(Finding("picture", "ok", f"{len(pictures)} picture(s) checked"))
    return findings


def judge_recording(
    status: CameraStatus,
    *,
    now_ns: int,
    observed_ns: int,
    frames: int,
    nbytes: int,
    usual_fps: float,
    usual_bitrate_bps: int,
) -> list[Finding]:
    """Findings about whether the camera records at its usual rate (given what was observed)."""
    if status.state is not CameraState.RECORDING:
        since_s = max(0, now_ns - status.state_since_ns) // NS_PER_S if status.state_since_ns else 0
        why = f": {status.last_error}" if status.last_error else ""
        return [Finding("recording", "fail", f"not recording: {status.state.value} for {since_s}s{why}")]
    if frames == 0:
        return [Finding("recording", "fail", f"no video received in {observed_ns / NS_PER_S:.0f}s")]
    findings = [Finding("recording", "ok", "recording")]
    fps = frames * NS_PER_S / observed_ns
    if usual_fps > 0 and fps < usual_fps * LOW_FPS_FRACTION:
        findings.append(Finding("frame_rate", "warning", f"frame rate {fps:.1f}/s, usually {usual_fps:.1f}/s"))
    bitrate = nbytes * 8 * NS_PER_S // observed_ns
    if usual_bitrate_bps > 0 and bitrate < usual_bitrate_bps * LOW_BITRATE_FRACTION:
        findings.append(
            Finding("bitrate", "warning", f"bitrate {bitrate // 1000} kbit/s, usually {usual_bitrate_bps // 1000}")
        )
    if status.last_keyframe_ns and now_ns - status.last_keyframe_ns > KEYFRAME_MAX_AGE_NS:
        age_s = (now_ns - status.last_keyframe_ns) // NS_PER_S
        findings.append(Finding("keyframe", "warning", f"no keyframe for {age_s}s"))
    if abs(status.camera_clock_ppm) >= CLOCK_RATE_WARN_PPM:
        findings.append(
            Finding("camera_clock", "warning", f"camera clock runs {status.camera_clock_ppm:+d} ppm off the recorder's")
        )
    if status.timestamp_jumps:
        findings.append(
            Finding("camera_clock", "warning", f"camera timestamps jumped {status.timestamp_jumps}x since start-up")
        )
    return findings


def usual_rates(stats: Sequence[tuple[int, int, int]]) -> tuple[float, int]:
    """(median frames per second, median bits per second) of (bytes, duration_ns, frames) rows."""
    if not stats:
        return 0.0, 0
    fps = statistics.median(frames * NS_PER_S / duration for _, duration, frames in stats)
    bitrate = statistics.median(nbytes * 8 * NS_PER_S // duration for nbytes, duration, _ in stats)
    return float(fps), int(bitrate)


def next_run_ns(now_ns: int, times: Sequence[str], tz: dt.tzinfo | None = None) -> int | None:
    """The next wall time (ns) at one of the local `times` ("HH:MM") strictly after `now_ns`."""
    if not times:
        return None
    now = dt.datetime.fromtimestamp(now_ns / NS_PER_S, tz=tz or dt.datetime.now().astimezone().tzinfo)
    candidates = []
    for day in (0, 1):
        date = (now + dt.timedelta(days=day)).date()
        for text in times:
            hour, minute = (int(x) for x in text.split(":"))
            at = dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=now.tzinfo)
            at_ns = int(at.timestamp()) * NS_PER_S
            if at_ns > now_ns:
                candidates.append(at_ns)
    return min(candidates)


def local_midnight_ns(now_ns: int, tz: dt.tzinfo | None = None) -> int:
    now = dt.datetime.fromtimestamp(now_ns / NS_PER_S, tz=tz or dt.datetime.now().astimezone().tzinfo)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp()) * NS_PER_S


# -- I/O -----------------------------------------------------------------------------------------


def sample_pictures(paths: Sequence[tuple[Path, int]], max_pictures: int = MAX_PICTURES) -> list[PictureStats]:
    """Decode the keyframes of recorded segment files ((path, start_ns), oldest first) and judge up
    to `max_pictures` of them, evenly spread, newest last. Blocking (PyAV). A file that cannot be
    read (e.g. the segment being written ends in a partial fragment) gives what it decoded."""
    lumas: list[tuple[int, np.ndarray]] = []
    for path, start_ns in paths:
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    continue
                stream = container.streams.video[0]
                stream.codec_context.skip_frame = "NONKEY"
                time_base = stream.time_base
                for frame in container.decode(stream):
                    width = min(SAMPLE_WIDTH, frame.width)
                    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
                    luma = frame.reformat(width=width, height=height, format="gray").to_ndarray()
                    offset_ns = 0
                    if frame.pts is not None and time_base is not None:
                        offset_ns = int(frame.pts * time_base.numerator * NS_PER_S // time_base.denominator)
                    lumas.append((start_ns + offset_ns, luma))
        except (av.FFmpegError, OSError) as error:
            log.debug("picture_sample_incomplete", path=str(path), error=str(error))
    if len(lumas) > max_pictures:
        step = (len(lumas) - 1) / (max_pictures - 1)
        lumas = [lumas[round(i * step)] for i in range(max_pictures)]
    pictures: list[PictureStats] = []
    previous: np.ndarray | None = None
    for time_ns, luma in lumas:
        pictures.append(picture_stats(luma, time_ns, previous))
        previous = luma
    return pictures


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
    ) -> None:
        self._config = config
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
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=max(0.01, wait_s))
                except TimeoutError:
                    pass
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
        gaps = [g for g in catalogue.gaps_in_range(target.camera_id, midnight_ns, now_ns) if g.reason != GAP_RESTART]
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
        report.id = self._storage.catalogue.add_function_check(
            started_ns=report.started_ns,
            finished_ns=report.finished_ns,
            trigger=report.trigger,
            requested_by=report.requested_by,
            verdict=report.verdict,
            report_json=report.to_json(),
        )
        failing = sorted({c.camera_id for c in report.cameras if c.verdict == "fail"})
        self._audit.append(
            AuditEntry(
                action="function_check",
                principal=report.requested_by,
                role=role,
                outcome="OK",
                detail={
                    "check_id": report.id,
                    "trigger": report.trigger,
                    "verdict": report.verdict,
                    "cameras": len(report.cameras),
                    "failing_cameras": failing,
                },
            )
        )
        for camera_id, finding in report.alarms():
            emit = log.error if finding.severity == "fail" else log.warning
            where = {"camera_id": camera_id} if camera_id else {}
            emit(
                "alarm",
                alarm=f"function_check.{finding.check}",
                severity=finding.severity,
                message=finding.message,
                check_id=report.id,
                **where,
            )
        log.info("function_check", check_id=report.id, verdict=report.verdict, cameras=len(report.cameras))
        self.latest = report
        self.runs += 1

    # -- stored reports ----------------------------------------------------------------------

    def stored(self, check_id: int | None = None) -> FunctionCheckReport | None:
        """A stored report (the newest when `check_id` is None). Blocking."""
        row = self._storage.catalogue.function_check(check_id)
        if row is None:
            return None
        report = FunctionCheckReport.from_json(row[1])
        report.id = row[0]
        return report

    def stored_list(self, limit: int, *, before_id: int = 0) -> list[FunctionCheckReport]:
        """Stored reports, newest first, older than check `before_id` (0: from the newest)."""
        out = []
        # One over the maximum: ListFunctionChecks asks for one more to learn whether a next page exists.
        for check_id, text in self._storage.catalogue.function_checks(min(limit, MAX_STORED_LIST + 1), before_id):
            report = FunctionCheckReport.from_json(text)
            report.id = check_id
            out.append(report)
        return out
