"""Reports kept: stored in the catalogue, written to the audit trail, alarms logged; and read back."""

from __future__ import annotations

from vmsd.audit import AuditEntry, AuditLog
from vmsd.function_checks.report import FunctionCheckReport
from vmsd.function_checks.thresholds import MAX_STORED_LIST
from vmsd.log import get_logger
from vmsd.storage.store import Storage

log = get_logger(component="health")


def record(storage: Storage, audit: AuditLog, report: FunctionCheckReport, role: str) -> None:
    """Store `report` (setting its id), audit it and log every warning and failure as an alarm. Blocking."""
    report.id = storage.catalogue.add_function_check(
        started_ns=report.started_ns,
        finished_ns=report.finished_ns,
        trigger=report.trigger,
        requested_by=report.requested_by,
        verdict=report.verdict,
        report_json=report.to_json(),
    )
    failing = sorted({c.camera_id for c in report.cameras if c.verdict == "fail"})
    audit.append(
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


def stored(storage: Storage, check_id: int | None = None) -> FunctionCheckReport | None:
    """A stored report (the newest when `check_id` is None). Blocking."""
    row = storage.catalogue.function_check(check_id)
    if row is None:
        return None
    report = FunctionCheckReport.from_json(row[1])
    report.id = row[0]
    return report


def stored_list(storage: Storage, limit: int, *, before_id: int = 0) -> list[FunctionCheckReport]:
    """Stored reports, newest first, older than check `before_id` (0: from the newest)."""
    out = []
    # One over the maximum: ListFunctionChecks asks for one more to learn whether a next page exists.
    for check_id, text in storage.catalogue.function_checks(min(limit, MAX_STORED_LIST + 1), before_id):
        report = FunctionCheckReport.from_json(text)
        report.id = check_id
        out.append(report)
    return out
