"""Authorisation matrix: every RPC × every role × in-scope/out-of-scope × existing/absent camera.

Every RPC means every method of every service in the generated descriptors (`service_methods()`):
an RPC added without an entry here fails `test_every_rpc_is_in_the_matrix` and its own cases.

The documented rules (docs/grpc.md, auth.py module docstring, cameras.proto):
  - no token, a malformed `authorization` or an unknown token  → UNAUTHENTICATED
  - the role lacks the RPC's permission                        → PERMISSION_DENIED
  - the camera id is outside the principal's globs             → PERMISSION_DENIED, existing or not
  - in scope but absent                                        → NOT_FOUND
  - ReleaseHold names a hold, not a camera: an absent hold id is NOT_FOUND (there is no camera to be
    out of scope); an existing hold is in scope only when all of its cameras are, and one that is not
    answers exactly like an absent id (NOT_FOUND, same message), so hold ids cannot be probed
  - GetExport and Download name an export: the same rule, with the export's camera
  - and then each RPC's own outcome (ALREADY_EXISTS for AddCamera of a used id, FAILED_PRECONDITION
    for changing a config-file camera, …).
Every denial is an audit record naming the principal, the method and the camera.

The expectations are derived from the tables written out below (the documentation's), not from
the code's ROLE_PERMISSIONS, and a separate test checks that the code's table is this one.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from tests.support.rpc import (
    MID,
    ROLES,
    SCOPES,
    UNKNOWN_TOKEN,
    RunningDaemon,
    S,
    make_config,
    metadata,
    method_path,
    record_footage,
    service_methods,
)
from vmsd.audit import AuditRecord
from vmsd.services.access import ROLE_PERMISSIONS
from vmsd.v1 import (
    audit_pb2,
    cameras_pb2,
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    export_pb2,
    export_pb2_grpc,
    health_pb2_grpc,
    holds_pb2,
    holds_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    recordings_pb2,
    report_pb2,
    report_pb2_grpc,
    site_pb2,
    site_pb2_grpc,
)
from vmsd.v1 import health_pb2 as health_v1

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED

# The roles as documented (docs/grpc.md "Roles"), as permission names.
_VIEWER = {"cameras.view", "recordings.search", "recordings.play", "live.relay"}
_OPERATOR = _VIEWER | {"holds.view", "holds.add", "export.create", "export.download", "events.watch"}
# Supervisors may dispose of footage (release holds), so they decide cameras' sources and retention.
_SUPERVISOR = _OPERATOR | {
    "holds.release",
    "audit.read",
    "reports.read",
    "cameras.manage",
    "cameras.source_retention",
}
_ALL = _SUPERVISOR
DOCUMENTED_ROLES: dict[str, set[str]] = {
    "viewer": _VIEWER,
    "operator": _OPERATOR,
    "supervisor": _SUPERVISOR,
    # Metadata, never pictures; told what happens (events) rather than polling.
    "integrator": {"cameras.view", "cameras.manage", "recordings.search", "events.watch"},
    "police-link": {"cameras.view", "live.relay"},  # live pictures only
    "admin": _ALL,
}

# Which permission each RPC needs, and whether it names a camera.
RPC_PERMISSION: dict[str, str] = {
    "ListCameras": "cameras.view",
    "GetCamera": "cameras.view",
    "Health/camera": "cameras.view",  # per-camera health: scope-checked status
    "AddCamera": "cameras.manage",
    "UpdateCamera": "cameras.manage",
    "RemoveCamera": "cameras.manage",
    "Search": "recordings.search",
    "Timeline": "recordings.search",
    "Play": "recordings.play",
    "ReviewSegments": "recordings.play",
    "ReadSegment": "recordings.play",  # of a review made by the same principal
    "QueryAudit": "audit.read",
    "VerifyAudit": "audit.read",
    "AddHold": "holds.add",  # every camera of the hold in scope
    "ListHolds": "holds.view",  # with a camera filter: that camera in scope
    "ReleaseHold": "holds.release",  # every camera of the hold in scope
    "GetRetentionStatus": "cameras.view",
    "ConfirmClock": "holds.release",
    "ErasureSummary": "holds.view",
    "RunFunctionCheck": "cameras.view",  # the cameras named (or all in scope) are checked
    "GetFunctionCheck": "cameras.view",  # shows only the cameras in scope
    "ListFunctionChecks": "cameras.view",
    "Relay": "live.relay",
    "CreateExport": "export.create",
    "ListExports": "export.download",  # with a camera filter: that camera in scope
    "GetExport": "export.download",  # the export's camera in scope
    "Download": "export.download",  # the export's camera in scope
    "FetchSegments": "export.create",  # and only for a principal a peer recorder forwards
    "GetReport": "reports.read",  # the cameras named in scope (none named: all in scope)
    "WatchEvents": "events.watch",  # a camera id in the filter must be in scope
    "GetSite": "cameras.view",  # owners shown only for cameras in scope
    "MoveCamera": "cameras.manage",
}
CAMERALESS = {
    "ListCameras",
    "VerifyAudit",
    "GetRetentionStatus",
    "ConfirmClock",
    "ErasureSummary",
    "GetFunctionCheck",
    "ListFunctionChecks",
    "GetSite",
    "ReadSegment",
}
# RPCs that name a segment review: the matrix asks for one that does not exist.
REVIEW_TARGETED = {"ReadSegment"}
# The matrix's recorder has no [site]: once authorised, site RPCs answer FAILED_PRECONDITION.
NO_SITE = {"GetSite", "MoveCamera"}
# Calls between the recorders of a site (a peer forwards the principal): refused to every user token.
SITE_CALLS = {"FetchSegments"}
# RPCs that name a hold or an export: the target is one on that camera (existing) or an id that
# does not exist.
HOLD_TARGETED = {"ReleaseHold"}
EXPORT_TARGETED = {"GetExport", "Download"}
ABSENT_HOLD_ID = 987_654_321
ABSENT_EXPORT_ID = "20260102T000000Z-in-absent-0badc0de"
# Every RPC of every service, from the descriptors, and the scope-checked per-camera health check.
RPCS = [m.name for m in service_methods()] + ["Health/camera"]
ACTION = {m.name: method_path(m) for m in service_methods()} | {"Health/camera": "/grpc.health.v1.Health/Check"}
# Cameras: (id, exists). "in-cam"/"out-cam" are config-file cameras with footage.
TARGETS = {"in-cam": True, "in-absent": False, "out-cam": True, "out-absent": False}


def _existing_outcome(rpc: str) -> grpc.StatusCode:
    """The outcome on an existing camera, for a role that may."""
    return {
        "AddCamera": grpc.StatusCode.ALREADY_EXISTS,
        "UpdateCamera": grpc.StatusCode.FAILED_PRECONDITION,  # config-file cameras are read-only
        "RemoveCamera": grpc.StatusCode.FAILED_PRECONDITION,
        "Relay": grpc.StatusCode.FAILED_PRECONDITION,  # the matrix's cameras are not being recorded
    }.get(rpc, OK)


def _absent_outcome(rpc: str) -> grpc.StatusCode:
    # AddCamera of an unused id creates it; the audit trail of an unknown camera is simply empty
    # (records of removed cameras stay queryable), and so is its list of holds.
    # Nor has an unknown camera any events.
    return OK if rpc in ("AddCamera", "QueryAudit", "ListHolds", "ListExports", "WatchEvents") else NOT_FOUND


def expected(rpc: str, role: str, target: str | None) -> grpc.StatusCode:
    if RPC_PERMISSION[rpc] not in DOCUMENTED_ROLES[role] or rpc in SITE_CALLS:
        return DENIED
    if target is None:
        if rpc in REVIEW_TARGETED:
            return NOT_FOUND
        return grpc.StatusCode.FAILED_PRECONDITION if rpc in NO_SITE else OK
    if rpc in HOLD_TARGETED | EXPORT_TARGETED and not TARGETS[target]:
        return NOT_FOUND
    if not any(fnmatch.fnmatchcase(target, glob) for glob in SCOPES[role]):
        return NOT_FOUND if rpc in HOLD_TARGETED | EXPORT_TARGETED else DENIED
    if rpc in NO_SITE:
        return grpc.StatusCode.FAILED_PRECONDITION
    return _existing_outcome(rpc) if TARGETS[target] else _absent_outcome(rpc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """The shared fixture's daemon and footage, with a 10-year max_age: ConfirmClock succeeds in this
    module, and the footage (2026-01-02) must not become due for erasure by age when it does."""
    root = tmp_path_factory.mktemp("rpc") / "root"
    record_footage(root, h264_ts)
    running = RunningDaemon(long_retention(make_config(root)))
    # A stored function check, so that GetFunctionCheck has one to show whatever runs first.
    running.run(running.daemon.checks.check(trigger="request", requested_by="matrix-setup"))
    # An export of each existing camera, for GetExport and Download.
    for camera in ("in-cam", "out-cam"):
        request = export_pb2.CreateExportRequest(camera_id=camera, range=EXPORT_RANGE, case_ref="MX-0", reason="setup")
        stream = _exports(running).CreateExport(request, metadata=metadata("admin"))
        _EXPORT_IDS[camera] = list(stream)[-1].done.export_id
    try:
        yield running
    finally:
        running.stop()


def long_retention(config: Any) -> Any:
    retention = config.retention.model_copy(update={"max_age_ns": 3650 * 86_400 * S})
    return config.model_copy(update={"retention": retention})


EXPORT_RANGE = common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S)
_EXPORT_IDS: dict[str, str] = {}  # camera → an export of it, made by the fixture


def _exports(server: RunningDaemon) -> export_pb2_grpc.ExportServiceStub:
    return export_pb2_grpc.ExportServiceStub(server.channel)  # type: ignore[no-untyped-call]


def _export_id_for(target: str) -> str:
    """The fixture's export of an existing target camera, or an export id that does not exist."""
    return _EXPORT_IDS[target] if TARGETS.get(target, True) else ABSENT_EXPORT_ID


def _holds(server: RunningDaemon) -> holds_pb2_grpc.HoldServiceStub:
    return holds_pb2_grpc.HoldServiceStub(server.channel)  # type: ignore[no-untyped-call]


def _retention(server: RunningDaemon) -> holds_pb2_grpc.RetentionServiceStub:
    return holds_pb2_grpc.RetentionServiceStub(server.channel)  # type: ignore[no-untyped-call]


HOLD_RANGE = common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 5 * S)


def _add_hold(server: RunningDaemon, cameras: list[str], md: list[tuple[str, str]] | None = None) -> holds_pb2.Hold:
    request = holds_pb2.AddHoldRequest(camera_ids=cameras, range=HOLD_RANGE, case_ref="MX-1", reason="matrix")
    hold: holds_pb2.Hold = _holds(server).AddHold(request, metadata=metadata("admin") if md is None else md)
    return hold


def _hold_id_for(server: RunningDaemon, target: str) -> int:
    """A fresh active hold (placed by admin) on an existing target camera, or an absent hold id."""
    return _add_hold(server, [target]).id if TARGETS.get(target, True) else ABSENT_HOLD_ID


def _spec(camera_id: str, name: str = "matrix") -> cameras_pb2.CameraSpec:
    return cameras_pb2.CameraSpec(id=camera_id, name=name, url="rtsp://mx:mx-secret@127.0.0.1:9/x", enabled=False)


def _invoke(server: RunningDaemon, rpc: str, camera: str, md: list[tuple[str, str]]) -> grpc.StatusCode:
    """Make the call; return its status code (streams are drained)."""
    s = server.stubs
    holds, retention = _holds(server), _retention(server)
    checks = health_pb2_grpc.FunctionCheckServiceStub(server.channel)  # type: ignore[no-untyped-call]
    live = live_pb2_grpc.LiveServiceStub(server.channel)  # type: ignore[no-untyped-call]
    reports = report_pb2_grpc.ReportServiceStub(server.channel)  # type: ignore[no-untyped-call]
    exports = _exports(server)
    site = site_pb2_grpc.SiteServiceStub(server.channel)  # type: ignore[no-untyped-call]
    day_range = common_pb2.TimeRange(start_ns=MID - 86_400 * S, end_ns=MID + 86_400 * S)
    calls: dict[str, Callable[[], Any]] = {
        "ListCameras": lambda: s.cameras.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=md),
        "GetCamera": lambda: s.cameras.GetCamera(cameras_pb2.GetCameraRequest(camera_id=camera), metadata=md),
        "Health/camera": lambda: s.health.Check(health_pb2.HealthCheckRequest(service=f"camera/{camera}"), metadata=md),
        "AddCamera": lambda: s.cameras.AddCamera(
            cameras_pb2.AddCameraRequest(camera=_spec(camera), reason="matrix"), metadata=md
        ),
        "UpdateCamera": lambda: s.cameras.UpdateCamera(
            cameras_pb2.UpdateCameraRequest(camera=_spec(camera), reason="matrix"), metadata=md
        ),
        "RemoveCamera": lambda: s.cameras.RemoveCamera(
            cameras_pb2.RemoveCameraRequest(camera_id=camera, reason="matrix"), metadata=md
        ),
        "Search": lambda: s.recordings.Search(
            recordings_pb2.SearchRequest(
                camera_id=camera, range=common_pb2.TimeRange(start_ns=MID - 10 * S, end_ns=MID + 30 * S)
            ),
            metadata=md,
        ),
        "Timeline": lambda: s.recordings.Timeline(
            recordings_pb2.TimelineRequest(camera_id=camera, day="2026-01-02"), metadata=md
        ),
        "Play": lambda: list(
            s.recordings.Play(
                recordings_pb2.PlayRequest(
                    camera_id=camera,
                    range=common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S),
                    reason="matrix",
                ),
                metadata=md,
            )
        ),
        "ReviewSegments": lambda: s.recordings.ReviewSegments(
            recordings_pb2.ReviewSegmentsRequest(
                camera_id=camera, range=common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S), reason="matrix"
            ),
            metadata=md,
        ),
        "ReadSegment": lambda: list(
            s.recordings.ReadSegment(recordings_pb2.ReadSegmentRequest(review_id="no-such-review"), metadata=md)
        ),
        "QueryAudit": lambda: s.audit.QueryAudit(audit_pb2.QueryAuditRequest(camera_id=camera, limit=5), metadata=md),
        "VerifyAudit": lambda: s.audit.VerifyAudit(audit_pb2.VerifyAuditRequest(), metadata=md),
        "AddHold": lambda: _add_hold(server, [camera], md),
        "ListHolds": lambda: holds.ListHolds(holds_pb2.ListHoldsRequest(camera_id=camera), metadata=md),
        "ReleaseHold": lambda: holds.ReleaseHold(
            holds_pb2.ReleaseHoldRequest(hold_id=_hold_id_for(server, camera), reason="matrix"), metadata=md
        ),
        "GetRetentionStatus": lambda: retention.GetRetentionStatus(holds_pb2.RetentionStatusRequest(), metadata=md),
        "ConfirmClock": lambda: retention.ConfirmClock(holds_pb2.ConfirmClockRequest(reason="matrix"), metadata=md),
        "ErasureSummary": lambda: retention.ErasureSummary(
            holds_pb2.ErasureSummaryRequest(range=day_range), metadata=md
        ),
        "RunFunctionCheck": lambda: checks.RunFunctionCheck(
            health_v1.RunFunctionCheckRequest(camera_ids=[camera]), metadata=md
        ),
        "GetFunctionCheck": lambda: checks.GetFunctionCheck(health_v1.GetFunctionCheckRequest(), metadata=md),
        "ListFunctionChecks": lambda: checks.ListFunctionChecks(
            health_v1.ListFunctionChecksRequest(limit=2), metadata=md
        ),
        "GetReport": lambda: reports.GetReport(
            report_pb2.GetReportRequest(camera_ids=[camera], range=day_range), metadata=md
        ),
        "Relay": lambda: list(live.Relay(live_pb2.RelayRequest(camera_id=camera), metadata=md, timeout=10)),
        "CreateExport": lambda: list(
            exports.CreateExport(
                export_pb2.CreateExportRequest(camera_id=camera, range=EXPORT_RANGE, case_ref="MX-1", reason="matrix"),
                metadata=md,
            )
        ),
        "ListExports": lambda: exports.ListExports(export_pb2.ListExportsRequest(camera_id=camera), metadata=md),
        "GetExport": lambda: exports.GetExport(
            export_pb2.GetExportRequest(export_id=_export_id_for(camera)), metadata=md
        ),
        "Download": lambda: list(
            exports.Download(
                export_pb2.DownloadRequest(export_id=_export_id_for(camera), name="manifest.json"), metadata=md
            )
        ),
        "FetchSegments": lambda: list(
            exports.FetchSegments(
                export_pb2.FetchSegmentsRequest(camera_id=camera, range=EXPORT_RANGE, case_ref="MX-1", reason="matrix"),
                metadata=md,
            )
        ),
        "GetSite": lambda: site.GetSite(site_pb2.GetSiteRequest(), metadata=md),
        "MoveCamera": lambda: site.MoveCamera(
            site_pb2.MoveCameraRequest(camera_id=camera, to="rec-b", reason="matrix"), metadata=md
        ),
        "WatchEvents": lambda: list(
            events_pb2_grpc.EventServiceStub(server.channel).WatchEvents(  # type: ignore[no-untyped-call]
                events_pb2.WatchEventsRequest(cameras=[camera]), metadata=md, timeout=10
            )
        ),
    }
    try:
        calls[rpc]()
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return OK


@pytest.fixture(autouse=True)
def _no_open_denial_burst(server: RunningDaemon) -> None:
    """Each case starts with no denial burst open, so its denial is written at once, exactly.

    (Cases repeat identical denials within the summary interval; how repeats are counted into
    summary records is tested in test_denials.py.)"""
    server.run(server.daemon.services.calls.flush())


def _new_records(server: RunningDaemon, after_seq: int) -> list[AuditRecord]:
    records, _ = server.daemon.audit.query(limit=100)
    return [r for r in records if r.seq > after_seq]


@dataclass(frozen=True)
class Case:
    rpc: str
    role: str
    target: str | None

    @property
    def camera(self) -> str:
        if self.target is None:
            return ""
        # AddCamera of an absent id creates it: a fresh id per role keeps the cases independent.
        if self.rpc == "AddCamera" and not TARGETS[self.target]:
            return f"{self.target}-{self.role}"
        return self.target


CASES = [
    Case(rpc, role, target)
    for rpc in RPCS
    for role in ROLES
    for target in ([None] if rpc in CAMERALESS else list(TARGETS))
]


def _id(case: Case) -> str:
    return f"{case.rpc}-{case.role}-{case.target or 'none'}"


def test_every_rpc_is_in_the_matrix() -> None:
    missing = [rpc for rpc in RPCS if rpc not in RPC_PERMISSION]
    assert not missing, f"RPCs with no documented permission in the matrix: {missing}"
    assert len(RPCS) >= 25  # the descriptors were found (24 RPCs of 8 services, and per-camera health)


def test_the_roles_table_is_the_documented_one() -> None:
    assert {role: {p.value for p in perms} for role, perms in ROLE_PERMISSIONS.items()} == DOCUMENTED_ROLES


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matrix(server: RunningDaemon, case: Case) -> None:
    assert case.rpc in RPC_PERMISSION, f"{case.rpc} has no entry in the authorisation matrix"
    want = expected(case.rpc, case.role, case.target)
    before = server.daemon.audit.head()[0]
    got = _invoke(server, case.rpc, case.camera, metadata(case.role))
    assert got == want, f"{case.rpc} as {case.role} on {case.target}: {got.name}, documented {want.name}"
    if got == DENIED:
        denials = [
            r
            for r in _new_records(server, before)
            if r.outcome == "PERMISSION_DENIED" and r.action == ACTION[case.rpc] and r.principal == f"{case.role}-1"
        ]
        assert len(denials) == 1, "every denial is one audit record"
        assert denials[0].role == case.role


# Denials name the camera in the audit record.
DENIAL_CASES = [
    pytest.param(case, id=_id(case))
    for case in CASES
    if case.target is not None and expected(case.rpc, case.role, case.target) == DENIED
]


def _audited_camera(case: Case) -> str:
    """The camera a denial's audit record names. ReleaseHold names a hold (GetExport and Download
    an export): its cameras are only looked up once the role may release holds (download exports)
    at all, so ids cannot be probed; before that the record names no camera."""
    if case.rpc in HOLD_TARGETED | EXPORT_TARGETED and RPC_PERMISSION[case.rpc] not in DOCUMENTED_ROLES[case.role]:
        return ""
    return case.camera


@pytest.mark.parametrize("case", DENIAL_CASES)
def test_denials_are_audited_with_the_camera_id(server: RunningDaemon, case: Case) -> None:
    before = server.daemon.audit.head()[0]
    assert _invoke(server, case.rpc, case.camera, metadata(case.role)) == DENIED
    records = [r for r in _new_records(server, before) if r.action == ACTION[case.rpc]]
    assert [(r.outcome, r.principal, r.camera_id) for r in records] == [
        ("PERMISSION_DENIED", f"{case.role}-1", _audited_camera(case))
    ]
    if case.rpc in HOLD_TARGETED:
        assert json.loads(records[0].detail_json)["hold_id"] > 0


UNAUTH_VARIANTS = {
    "no-token": [],
    "unknown-token": UNKNOWN_TOKEN,
    "basic-scheme": [("authorization", "Basic dXNlcjpwYXNz")],
    "empty-bearer": [("authorization", "Bearer ")],
}


@pytest.mark.parametrize("variant", list(UNAUTH_VARIANTS))
@pytest.mark.parametrize("rpc", RPCS)
def test_unauthenticated(server: RunningDaemon, rpc: str, variant: str) -> None:
    before = server.daemon.audit.head()[0]
    assert _invoke(server, rpc, "in-cam", UNAUTH_VARIANTS[variant]) == UNAUTHENTICATED
    records = [r for r in _new_records(server, before) if r.action == ACTION[rpc]]
    assert [(r.outcome, r.principal) for r in records] == [("UNAUTHENTICATED", "")]


def test_overall_health_is_open_but_a_bad_token_is_still_refused(server: RunningDaemon) -> None:
    request = health_pb2.HealthCheckRequest(service="")
    assert server.stubs.health.Check(request).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as error:
        server.stubs.health.Check(request, metadata=UNKNOWN_TOKEN)
    assert error.value.code() == UNAUTHENTICATED


@pytest.mark.parametrize("role", ROLES)
def test_list_cameras_shows_only_cameras_in_scope(server: RunningDaemon, role: str) -> None:
    reply = server.stubs.cameras.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=metadata(role))
    ids = {c.id for c in reply.cameras}
    assert "in-cam" in ids
    assert ("out-cam" in ids) == (role == "admin")
    assert all(any(fnmatch.fnmatchcase(i, g) for g in SCOPES[role]) for i in ids)


def test_play_denial_is_refused_before_any_footage_is_sent(server: RunningDaemon) -> None:
    """A streaming RPC: the denial is the first thing on the stream, with no header or data."""
    stream = server.stubs.recordings.Play(
        recordings_pb2.PlayRequest(
            camera_id="out-cam", range=common_pb2.TimeRange(start_ns=MID, end_ns=MID + S), reason="look"
        ),
        metadata=metadata("viewer"),
    )
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for chunk in stream:
            received.append(chunk)
    assert error.value.code() == DENIED
    assert received == []
    assert "out-cam" in (error.value.details() or "")


def test_scoped_audit_reader_sees_only_its_cameras(server: RunningDaemon) -> None:
    """A supervisor scoped to in-* reads in-* records and camera-less ones, never out-cam's."""
    # Make sure there is an out-cam record (admin's search of it is not audited; a denial is).
    _invoke(server, "GetCamera", "out-cam", metadata("viewer"))
    assert any(r.camera_id == "out-cam" for r in server.daemon.audit.query(limit=10_000)[0])
    reply = server.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(limit=10_000), metadata=metadata("supervisor"))
    cameras = {r.camera_id for r in reply.records}
    assert cameras and all(c == "" or c.startswith("in-") for c in cameras)


# Holds: scope is every camera of the hold.


def test_a_hold_needs_every_camera_in_scope(server: RunningDaemon) -> None:
    before = server.daemon.audit.head()[0]
    with pytest.raises(grpc.RpcError) as error:
        _add_hold(server, ["in-cam", "out-cam"], metadata("operator"))
    assert error.value.code() == DENIED
    assert "out-cam" in (error.value.details() or "")
    records = [r for r in _new_records(server, before) if r.action == ACTION["AddHold"]]
    assert [(r.outcome, r.principal, r.camera_id) for r in records] == [
        ("PERMISSION_DENIED", "operator-1", "in-cam,out-cam")
    ]
    listed = _holds(server).ListHolds(holds_pb2.ListHoldsRequest(include_released=True), metadata=metadata("admin"))
    assert not any(set(h.camera_ids) == {"in-cam", "out-cam"} and h.created_by == "operator-1" for h in listed.holds)


def _release_failure(server: RunningDaemon, hold_id: int, role: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        request = holds_pb2.ReleaseHoldRequest(hold_id=hold_id, reason="matrix")
        _holds(server).ReleaseHold(request, metadata=metadata(role))
    return error.value.code(), (error.value.details() or "").replace(str(hold_id), "ID")


def test_a_hold_partly_outside_scope_is_invisible_and_cannot_be_released(server: RunningDaemon) -> None:
    hold = _add_hold(server, ["in-cam", "out-cam"])
    for role in ("operator", "supervisor"):
        for camera in ("", "in-cam"):
            listed = _holds(server).ListHolds(holds_pb2.ListHoldsRequest(camera_id=camera), metadata=metadata(role))
            assert hold.id not in {h.id for h in listed.holds}
            assert all(all(c.startswith("in-") for c in h.camera_ids) for h in listed.holds)
    before = server.daemon.audit.head()[0]
    # Exactly the answer for a hold id that was never issued: nothing tells the caller it exists.
    hidden = _release_failure(server, hold.id, "supervisor")
    assert hidden == _release_failure(server, ABSENT_HOLD_ID, "supervisor")
    assert hidden[0] == NOT_FOUND and "out-cam" not in hidden[1]
    # The audit trail still says what was refused, and why.
    record = next(r for r in _new_records(server, before) if r.action == ACTION["ReleaseHold"])
    assert (record.outcome, record.principal) == ("NOT_FOUND", "supervisor-1")
    assert "out-cam" in record.camera_id and "outside" in json.loads(record.detail_json)["denied"]
    listed = _holds(server).ListHolds(holds_pb2.ListHoldsRequest(camera_id="out-cam"), metadata=metadata("admin"))
    assert [h.active for h in listed.holds if h.id == hold.id] == [True]
    released = _holds(server).ReleaseHold(
        holds_pb2.ReleaseHoldRequest(hold_id=hold.id, reason="matrix"), metadata=metadata("admin")
    )
    assert not released.active and released.released_by == "admin-1"
