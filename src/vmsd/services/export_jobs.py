"""Exports that run in the background: start one, ask how far it got, list those under way.

gRPC's CreateExport streams progress to the one call that asked; an HTTP client (the console)
asks for an export, gets its id at once, and polls. `start` runs `ExportService.create` up to its
first step — everything that can be refused (permission, scope, fields, unknown camera, too many
exports) is refused there, to the caller — and then follows the rest in a task of its own. The
export is the exporter's (audited requested/completed/failed, with its hold) whether or not
anyone asks about it again.

What is kept (in memory, for this daemon's life): every job under way, and the most recent
MAX_ENDED ended ones (a finished one is also a bundle on disk; a failed one exists only here, so
the console can say why). A job is visible to the callers who may see the export: EXPORT_DOWNLOAD
in the camera's scope; others are answered as for an absent id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace

from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.serve import no_such_export
from vmsd.log import get_logger
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.exports import ExportInfo, ExportOrder, ExportService, ExportStep

log = get_logger(component="export")

MAX_ENDED = 200


@dataclass(frozen=True)
class ExportJob:
    export_id: str
    camera_id: str
    start_ns: int
    end_ns: int
    case_ref: str
    requested_by: str
    requested_ns: int
    state: str = "running"  # running | done | failed
    phase: str = "requested"  # the exporter's phases: requested | originals | hashing | remux | … | done
    fraction: float = 0.0
    ended_ns: int = 0
    error_kind: str = ""  # when failed: the error's kind (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, …)
    error: str = ""  # … and its message
    done: ExportInfo | None = None  # when done: the bundle


class ExportJobs:
    def __init__(self, exports: ExportService, clock: Clock) -> None:
        self._exports = exports
        self._clock = clock
        self._jobs: OrderedDict[str, ExportJob] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, principal: Principal, activity: Activity, order: ExportOrder) -> ExportJob:
        """Start an export; returns its job once the exporter has accepted it (its id is known)."""
        steps = self._exports.create(principal, activity, order)
        try:
            first = await anext(steps)
        except StopAsyncIteration:  # the exporter always yields "requested" first
            raise VmsdError(ErrorKind.INTERNAL, "the export ended before it started") from None
        except BaseException:
            await steps.aclose()  # cancelled while waiting: the generator is suspended, close it
            raise
        # The request's audit record is written when it ends, long before the export does.
        activity.touch(export_id=first.export_id)
        job = ExportJob(
            export_id=first.export_id,
            camera_id=order.camera_id,
            start_ns=order.start_ns,
            end_ns=order.end_ns,
            case_ref=order.case_ref.strip(),
            requested_by=principal.name,
            requested_ns=self._clock.wall_ns(),
            phase=first.phase,
            fraction=first.fraction,
        )
        self._jobs[job.export_id] = job
        task = asyncio.create_task(self._follow(job.export_id, steps), name=f"export-{job.export_id}")
        self._tasks[job.export_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.export_id, None))
        return job

    async def wait(self, export_id: str) -> None:
        """Return once the export has ended (at once when it is not under way): the hook tests
        wait on instead of polling."""
        task = self._tasks.get(export_id)
        if task is not None:
            await asyncio.shield(task)

    async def _follow(self, export_id: str, steps: AsyncGenerator[ExportStep, None]) -> None:
        try:
            async with contextlib.aclosing(steps):
                async for step in steps:
                    self._update(export_id, phase=step.phase, fraction=step.fraction, done=step.done)
            self._end(export_id, state="done")
        except VmsdError as error:
            self._end(export_id, state="failed", error_kind=error.kind.value, error=error.message)
        except asyncio.CancelledError:
            self._end(export_id, state="failed", error_kind="CANCELLED", error="the recorder stopped")
            raise
        except Exception as error:  # the exporter audited it; the job must still end, visibly
            log.exception("export_job_failed", export_id=export_id)
            self._end(export_id, state="failed", error_kind=ErrorKind.INTERNAL.value, error=type(error).__name__)

    def _update(self, export_id: str, **changes: object) -> None:
        self._jobs[export_id] = replace(self._jobs[export_id], **changes)  # type: ignore[arg-type]

    def _end(self, export_id: str, **changes: object) -> None:
        self._update(export_id, ended_ns=self._clock.wall_ns(), **changes)
        self._jobs.move_to_end(export_id)
        ended = [k for k, job in self._jobs.items() if job.state != "running"]
        for key in ended[: max(0, len(ended) - MAX_ENDED)]:
            del self._jobs[key]

    def _visible(self, principal: Principal, job: ExportJob) -> bool:
        return principal.can(Permission.EXPORT_DOWNLOAD) and principal.in_scope(job.camera_id)

    async def get(self, principal: Principal, activity: Activity, export_id: str) -> ExportJob | None:
        """The job of this export if this daemon ran it and still keeps it; None otherwise (a
        bundle made earlier is ExportService.get's)."""
        principal.require(Permission.EXPORT_DOWNLOAD)
        job = self._jobs.get(export_id)
        if job is None:
            return None
        if not self._visible(principal, job):
            denied = "the export's camera is outside this principal's scope"
            activity.touch(camera_id=job.camera_id, export_id=export_id, denied=denied)
            raise no_such_export(export_id)
        return job

    async def list(self, principal: Principal, *, camera_id: str = "", state: str = "") -> list[ExportJob]:
        """The jobs kept (under way and recently ended) that the caller may see, oldest first."""
        principal.require(Permission.EXPORT_DOWNLOAD)
        if camera_id:
            principal.require(Permission.EXPORT_DOWNLOAD, validate.camera_id(camera_id))
        if state not in ("", "running", "done", "failed"):
            raise validate.invalid(f"state {state[:40]!r} must be running, done or failed")
        return sorted(
            (
                job
                for job in self._jobs.values()
                if self._visible(principal, job)
                and (not camera_id or job.camera_id == camera_id)
                and (not state or job.state == state)
            ),
            key=lambda job: job.export_id,
        )

    async def aclose(self) -> None:
        """Stop following the exports under way (the daemon is stopping). Each export's worker
        runs to its end on its own (see ExportService.create)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
