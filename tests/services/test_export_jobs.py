"""ExportJobs: an export started in the background is refused up front or followed to its end."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import MID, RunningDaemon, S
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.activity import Activity
from vmsd.services.exports import ExportOrder


def _order(camera_id: str = "in-cam", start_ns: int = MID - 5 * S, end_ns: int = MID + S) -> ExportOrder:
    return ExportOrder(
        camera_id=camera_id, start_ns=start_ns, end_ns=end_ns, case_ref="CASE-7", reason="assault", no_hold=True
    )


def test_a_started_export_has_its_id_at_once_and_is_followed_to_its_bundle(running: RunningDaemon) -> None:
    jobs = running.daemon.services.export_jobs
    activity = Activity()
    job = running.run(jobs.start(principal("operator"), activity, _order()))
    assert job.export_id.endswith(tuple("0123456789abcdef")) and "-in-cam-" in job.export_id
    assert (job.state, job.camera_id, job.case_ref, job.requested_by) == ("running", "in-cam", "CASE-7", "operator-1")
    assert activity.audited and (activity.reason, activity.case_ref) == ("assault", "CASE-7")
    running.run(jobs.wait(job.export_id), timeout=120)
    ended = running.run(jobs.get(principal("operator"), Activity(), job.export_id))
    assert ended is not None
    assert (ended.state, ended.phase, ended.fraction, ended.error) == ("done", "done", 1.0, "")
    assert ended.done is not None and ended.done.manifest.export_id == job.export_id
    assert ended.ended_ns >= ended.requested_ns
    bundle = running.run(running.daemon.services.exports.get(principal("operator"), Activity(), job.export_id))
    assert bundle.manifest.case_ref == "CASE-7"
    assert [j.export_id for j in running.run(jobs.list(principal("operator"), state="done"))] == [job.export_id]


def test_an_export_that_fails_under_way_says_why(running: RunningDaemon) -> None:
    jobs = running.daemon.services.export_jobs
    # in-cam has no footage in [MID+8 s, MID+12 s) (camera_offline): accepted, then NOT_FOUND.
    job = running.run(jobs.start(principal("operator"), Activity(), _order(start_ns=MID + 8 * S, end_ns=MID + 12 * S)))
    running.run(jobs.wait(job.export_id), timeout=120)
    ended = running.run(jobs.get(principal("supervisor"), Activity(), job.export_id))
    assert ended is not None
    assert (ended.state, ended.error_kind, ended.error) == (
        "failed",
        "NOT_FOUND",
        "no footage of camera_id 'in-cam' in the requested range",
    )
    assert job.export_id in [j.export_id for j in running.run(jobs.list(principal("operator"), state="failed"))]


@pytest.mark.parametrize(
    ("role", "order", "kind"),
    [
        ("viewer", _order(), ErrorKind.PERMISSION_DENIED),
        ("operator", _order(camera_id="out-cam"), ErrorKind.PERMISSION_DENIED),
        ("operator", _order(end_ns=MID - 5 * S), ErrorKind.INVALID_ARGUMENT),
        ("operator", _order(camera_id="in-nothing"), ErrorKind.NOT_FOUND),
    ],
)
def test_what_can_be_refused_is_refused_to_the_caller_and_leaves_no_job(
    running: RunningDaemon, role: str, order: ExportOrder, kind: ErrorKind
) -> None:
    jobs = running.daemon.services.export_jobs
    before = running.run(jobs.list(principal("admin")))
    with pytest.raises(VmsdError) as caught:
        running.run(jobs.start(principal(role), Activity(), order))
    assert caught.value.kind is kind
    assert running.run(jobs.list(principal("admin"))) == before


def test_a_job_outside_the_scope_is_answered_as_an_absent_export(running: RunningDaemon) -> None:
    jobs = running.daemon.services.export_jobs
    job = running.run(jobs.start(principal("admin"), Activity(), _order(camera_id="out-cam")))
    running.run(jobs.wait(job.export_id), timeout=120)
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(jobs.get(principal("operator"), activity, job.export_id))
    assert (caught.value.kind, caught.value.message) == (
        ErrorKind.NOT_FOUND,
        f"export_id {job.export_id!r} does not exist",
    )
    assert activity.audited and activity.camera_id == "out-cam"  # the record says it was a denial
    assert job.export_id not in [j.export_id for j in running.run(jobs.list(principal("operator")))]
    assert job.export_id in [j.export_id for j in running.run(jobs.list(principal("admin")))]
    assert running.run(jobs.get(principal("admin"), Activity(), "20260102T000000Z-in-cam-00000000")) is None
