"""ExportService: authorisation before anything is built; unknown ids are NOT_FOUND."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.services.conftest import principal
from tests.support.rpc import MID, RunningDaemon, S
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.verify import verify_bundle
from vmsd.services.activity import Activity
from vmsd.services.exports import ExportOrder


def test_an_export_outside_the_scope_is_denied_and_audited_before_any_work(running: RunningDaemon) -> None:
    activity = Activity()
    order = ExportOrder(camera_id="out-cam", start_ns=MID - 5 * S, end_ns=MID, case_ref="C", reason="r")

    async def create() -> None:
        async for _ in running.daemon.services.exports.create(principal("operator"), activity, order):
            pass

    with pytest.raises(VmsdError) as caught:
        running.run(create())
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert activity.audited and activity.camera_id == "out-cam"
    assert running.run(running.daemon.services.exports.list(principal("admin"), Activity())).items == []


def test_an_export_id_that_is_not_one_is_invalid(running: RunningDaemon) -> None:
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.exports.get(principal("operator"), Activity(), "no-such-export"))
    assert (caught.value.kind, caught.value.message) == (
        ErrorKind.INVALID_ARGUMENT,
        "export_id 'no-such-export' is not an export id",
    )


def _export(running: RunningDaemon, camera_id: str = "in-cam") -> str:
    """A finished export of camera_id's first 6 s (no hold); its id."""
    order = ExportOrder(
        camera_id=camera_id, start_ns=MID - 5 * S, end_ns=MID + S, case_ref="C-1", reason="r", no_hold=True
    )
    jobs = running.daemon.services.export_jobs
    job = running.run(jobs.start(principal("admin"), Activity(), order))
    running.run(jobs.wait(job.export_id), timeout=120)
    return job.export_id


def test_the_archive_is_the_whole_bundle_as_one_tar_that_verifies_once_unpacked(
    running: RunningDaemon, tmp_path: Path
) -> None:
    export_id = _export(running)
    exports = running.daemon.services.exports
    activity = Activity()

    async def download() -> tuple[int, bytes]:
        archive = await exports.download_archive(principal("operator"), activity, export_id)
        assert archive.name == f"{export_id}.tar"
        return archive.size, b"".join([chunk async for chunk in archive.chunks])

    size, data = running.run(download())
    assert len(data) == size and size % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path, filter="data")
    info = running.run(exports.get(principal("operator"), Activity(), export_id))
    assert sorted(names) == sorted(f"{export_id}/{f.name}" for f in info.files)
    report = verify_bundle(tmp_path / export_id, expected_fingerprint=running.daemon.exporter.key.fingerprint)
    assert report.verdict == "verified", report.problems
    assert activity.audited
    assert (activity.camera_id, activity.case_ref, activity.reason) == (
        "in-cam",
        "C-1",
        f"download of export {export_id}",
    )
    assert (activity.detail["file"], activity.detail["bytes"]) == (f"{export_id}.tar", size)


def test_an_archive_outside_the_scope_is_an_absent_export(running: RunningDaemon) -> None:
    export_id = _export(running, "out-cam")
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.exports.download_archive(principal("operator"), activity, export_id))
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert activity.detail["denied"] == "the export's camera is outside this principal's scope"


def test_verification_checks_the_bundle_now_and_names_a_changed_file_without_the_recorder_s_paths(
    running: RunningDaemon,
) -> None:
    export_id = _export(running)
    exports = running.daemon.services.exports
    assert exports.last_verification(export_id) is None
    first = running.run(exports.verify(principal("operator"), Activity(), export_id))
    assert (first.verdict, first.problems) == ("verified", [])
    assert exports.last_verification(export_id) == first
    bundle = running.daemon.exporter.bundle_path(export_id)
    readme = bundle / "README.txt"
    readme.write_bytes(readme.read_bytes() + b"tampered")
    second = running.run(exports.verify(principal("operator"), Activity(), export_id))
    assert second.verdict == "failed"
    assert any(p.startswith("README.txt") for p in second.problems), second.problems
    assert not any(str(bundle) in p for p in second.problems + second.warnings)
    assert exports.last_verification(export_id) == second
