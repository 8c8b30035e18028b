"""Malformed requests to every RPC, as every role: never INTERNAL/UNKNOWN, INVALID_ARGUMENT names
the field, messages stay short (no 10 kB echo), and the server keeps serving.

Cameras added by the fuzzer are always disabled, so no recorder goes looking for a random host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.rpc.test_authz_matrix import DOCUMENTED_ROLES, RPC_PERMISSION
from tests.support.rpc import (
    MID,
    ROLES,
    RunningDaemon,
    S,
    make_config,
    metadata,
    method_path,
    record_footage,
    service_methods,
)
from vmsd.v1 import (
    audit_pb2,
    cameras_pb2,
    common_pb2,
    events_pb2,
    export_pb2,
    holds_pb2,
    holds_pb2_grpc,
    live_pb2,
    recordings_pb2,
    report_pb2,
    report_pb2_grpc,
    site_pb2,
)
from vmsd.v1 import health_pb2 as checks_pb2

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# What a role without the RPC's permission may get: PERMISSION_DENIED, or INVALID_ARGUMENT for a
# request refused as malformed before the role is looked at (which reveals nothing). Never OK,
# NOT_FOUND, ALREADY_EXISTS or FAILED_PRECONDITION: those answer the question it may not ask.
REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT}
# RPCs that name an export, not a camera: out of scope is NOT_FOUND, like an id never issued.
HIDDEN_WHEN_OUT_OF_SCOPE = {"GetExport", "Download"}


def may_call(role: str, rpc: str) -> bool:
    """The documented roles table (tests/rpc/test_authz_matrix.py), by RPC name."""
    return RPC_PERMISSION[rpc] in DOCUMENTED_ROLES[role]


URL_SECRET = "pw-XYZ123"
MAX_MESSAGE = 1200  # names the problem; echoes at most a short (repr-escaped) excerpt, never 10 kB

NASTY_STRINGS = [
    "",
    " ",
    "../x",
    "..",
    ".",
    "/",
    "in-cam/../out-cam",
    "in-cam\x00",
    "\x00",
    "in-\u00e9",
    "in-cam ",
    " in-cam",
    "in-cam\n",
    "a" * 65,
    "in-" + "a" * 10_000,
    "\u202e",
    "%2e%2e",
    "*",
    "in-*",
    "in-cam",
    "out-cam",
    "in-fuzz",
    "\U0001f4f9",
    "in-cam\r\nX-Injected: 1",
    "'; DROP TABLE audit; --",
]
texts = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=80),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1, 10_240)),
)
camera_ids = st.one_of(st.sampled_from(["in-cam", "out-cam", "in-fuzz", "in-absent"]), texts)
INT64 = (-(2**63), 2**63 - 1)
ints64 = st.one_of(
    st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), MID, MID + S, 946_684_800 * S - 1, 4_102_444_800 * S + 1]),
    st.integers(*INT64),
)
ranges = st.one_of(
    st.builds(common_pb2.TimeRange, start_ns=ints64, end_ns=ints64),
    st.sampled_from(
        [
            common_pb2.TimeRange(start_ns=MID + S, end_ns=MID),  # reversed
            common_pb2.TimeRange(start_ns=MID, end_ns=MID),  # empty
            common_pb2.TimeRange(start_ns=MID, end_ns=MID + 400 * 86_400 * S),  # enormous
            common_pb2.TimeRange(start_ns=-(2**63), end_ns=2**63 - 1),
            common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 22 * S),  # valid, with footage
            common_pb2.TimeRange(),
        ]
    ),
)
days = st.one_of(
    st.sampled_from(
        [
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "0000-01-01",
            "0001-01-01",
            "9999-12-31",
            "1969-12-31",
            "2026-1-1",
            " 2026-01-02",
            "2026-01-02 ",
            "2026/01/02",
            "20260102",
            "2026-01-02T00:00:00Z",
            "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0662",
            "2026-01-02",
            "",
            "-2026-01-02",
        ]
    ),
    texts,
)
built_urls = st.builds(
    lambda scheme, user, host, port, path: f"{scheme}://{user}{host}{port}{path}",
    st.sampled_from(["rtsp", "rtsps", "RTSP", "http", "", "rtsp:"]),
    st.sampled_from(["", f"u:{URL_SECRET}@", "u@", ":@", f"u:{URL_SECRET}@@", f"{URL_SECRET}@"]),
    st.sampled_from(["127.0.0.1", "", "[::1]", "[::1", "h ost", "exampl\u00e9.test", "host", "../..", "%00"]),
    st.sampled_from(["", ":554", ":0", ":65535", ":abc", ":99999", ":-1"]),
    st.sampled_from(["", "/", "/x", "/../../etc/passwd", "?a=b", "#f", "/\x00", "/ space"]),
)
transports = st.one_of(st.sampled_from(["tcp", "udp", "", "TCP", "sctp", "tcp "]), texts)
# Specs with one nasty field (or none) and the rest valid, with fresh ids, so that the fuzzing gets
# past the first check to the later ones (and to successful adds, whose responses are checked too).
NASTY_FIELD = {
    "id": camera_ids,
    "name": texts,
    "location": texts,
    "url": texts,
    "transport": transports,
    "retention_max_age_ns": ints64,
}


def _spec_with(field: str | None) -> st.SearchStrategy[cameras_pb2.CameraSpec]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "id": st.from_regex(r"in-[a-z0-9]{1,12}", fullmatch=True),
        "name": st.just("Quay"),
        "location": st.just(""),
        "url": built_urls,
        "transport": st.sampled_from(["tcp", "udp", ""]),
        "retention_max_age_ns": st.sampled_from([0, 86_400 * S]),
        "enabled": st.just(False),
    }
    if field is not None:
        fields[field] = NASTY_FIELD[field]
    return st.builds(cameras_pb2.CameraSpec, **fields)


specs = st.sampled_from([None, *NASTY_FIELD]).flatmap(_spec_with)
reasons = st.one_of(st.just("fuzzing"), texts)
# Every role, and no token at all; admin gets furthest: weight it.
roles: st.SearchStrategy[str | None] = st.sampled_from([*ROLES, "admin", "admin", None])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    """The shared fixture's daemon and footage, with a 10-year max_age: ConfirmClock is fuzzed (and
    succeeds as admin), and the footage (2026-01-02) must not become due for erasure by age then."""
    root = tmp_path_factory.mktemp("rpc") / "root"
    record_footage(root, h264_ts)
    config = make_config(root)
    retention = config.retention.model_copy(update={"max_age_ns": 3650 * 86_400 * S})
    running = RunningDaemon(config.model_copy(update={"retention": retention}))
    # An export of each camera, for GetExport and Download to find.
    for camera in ("in-cam", "out-cam"):
        request = export_pb2.CreateExportRequest(camera_id=camera, range=_EXPORT_RANGE, case_ref="F-0", reason="setup")
        _EXPORT_IDS[camera] = _invoke(running, "CreateExport", request, "admin")[-1].done.export_id
    try:
        yield running
    finally:
        running.stop()


def _holds(server: RunningDaemon) -> holds_pb2_grpc.HoldServiceStub:
    return holds_pb2_grpc.HoldServiceStub(server.channel)  # type: ignore[no-untyped-call]


def _retention(server: RunningDaemon) -> holds_pb2_grpc.RetentionServiceStub:
    return holds_pb2_grpc.RetentionServiceStub(server.channel)  # type: ignore[no-untyped-call]


METHODS = {m.name: m for m in service_methods()}
_EXPORT_RANGE = common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S)
_EXPORT_IDS: dict[str, str] = {}  # camera → an export of it, made by the fixture


def _invoke(server: RunningDaemon, rpc: str, request: Any, role: str | None) -> Any:
    """Call any RPC by name (streams drained); raises grpc.RpcError."""
    method = METHODS[rpc]
    reply_class = message_factory.GetMessageClass(method.output_type)
    path, md = method_path(method), metadata(role)
    codec: dict[str, Any] = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": reply_class.FromString,
    }
    if method.server_streaming:
        return list(server.channel.unary_stream(path, **codec)(request, metadata=md, timeout=30))
    return server.channel.unary_unary(path, **codec)(request, metadata=md, timeout=30)


def _check(
    server: RunningDaemon,
    rpc: str,
    role: str | None,
    request: Any,
    fields: tuple[str, ...],
    cameras: tuple[str, ...] = (),
) -> grpc.StatusCode:
    """Call, and check the answer: never INTERNAL/UNKNOWN nor a call left to run into its deadline;
    INVALID_ARGUMENT names a field; no secret and no 10 kB echo; no token is UNAUTHENTICATED; a
    role that may not call the RPC, or names a camera outside its scope, is refused."""
    try:
        reply = _invoke(server, rpc, request, role)
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
        assert code not in BAD_CODES | {grpc.StatusCode.DEADLINE_EXCEEDED}, f"{code.name}: {details}"
        assert len(details) <= MAX_MESSAGE, f"{len(details)}-character message"
        assert URL_SECRET not in details
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert any(field in details for field in fields), f"no field named in {details!r}"
    else:
        code, details = grpc.StatusCode.OK, ""
        raw = b"".join(m.SerializeToString() for m in reply) if isinstance(reply, list) else reply.SerializeToString()
        assert URL_SECRET.encode() not in raw
    if role is None:
        assert code == grpc.StatusCode.UNAUTHENTICATED, f"{rpc} without a token: {code.name} {details}"
    elif not may_call(role, rpc):
        assert code in REFUSED, f"{rpc} as {role}: {code.name} {details}"
    elif role != "admin" and "out-cam" in cameras:
        # An export of a camera outside the scope answers exactly like an absent id (item 9b).
        refused = REFUSED | {grpc.StatusCode.NOT_FOUND} if rpc in HIDDEN_WHEN_OUT_OF_SCOPE else REFUSED
        assert code in refused, f"{rpc} as {role} on {cameras}: {code.name} {details}"
    assert server.stubs.alive()
    return code


CAMERA_FIELDS = (
    "camera.id",
    "camera.name",
    "camera.location",
    "camera.url",
    "camera.transport",
    "camera.retention_max_age_ns",
    "reason",
)


@FUZZ
@given(role=roles, camera_id=camera_ids)
def test_get_camera(server: RunningDaemon, role: str | None, camera_id: str) -> None:
    request = cameras_pb2.GetCameraRequest(camera_id=camera_id)
    _check(server, "GetCamera", role, request, ("camera_id",), (camera_id,))


@FUZZ
@given(role=roles, spec=specs, reason=reasons)
def test_add_camera(server: RunningDaemon, role: str | None, spec: cameras_pb2.CameraSpec, reason: str) -> None:
    request = cameras_pb2.AddCameraRequest(camera=spec, reason=reason)
    _check(server, "AddCamera", role, request, CAMERA_FIELDS, (spec.id,))


@FUZZ
@given(role=roles, spec=specs, reason=reasons)
def test_update_camera(server: RunningDaemon, role: str | None, spec: cameras_pb2.CameraSpec, reason: str) -> None:
    request = cameras_pb2.UpdateCameraRequest(camera=spec, reason=reason)
    _check(server, "UpdateCamera", role, request, CAMERA_FIELDS, (spec.id,))


@FUZZ
@given(role=roles, camera_id=camera_ids, reason=texts)
def test_remove_camera(server: RunningDaemon, role: str | None, camera_id: str, reason: str) -> None:
    request = cameras_pb2.RemoveCameraRequest(camera_id=camera_id, reason=reason)
    _check(server, "RemoveCamera", role, request, ("camera_id", "reason"), (camera_id,))


@FUZZ
@given(role=roles, camera_id=camera_ids, time_range=ranges)
def test_search(server: RunningDaemon, role: str | None, camera_id: str, time_range: common_pb2.TimeRange) -> None:
    request = recordings_pb2.SearchRequest(camera_id=camera_id, range=time_range)
    _check(server, "Search", role, request, ("camera_id", "range"), (camera_id,))


@FUZZ
@given(role=roles, camera_id=camera_ids, day=days, bucket_ns=ints64)
def test_timeline(server: RunningDaemon, role: str | None, camera_id: str, day: str, bucket_ns: int) -> None:
    request = recordings_pb2.TimelineRequest(camera_id=camera_id, day=day, bucket_ns=bucket_ns)
    fields = ("camera_id", "day", "bucket_ns")
    _check(server, "Timeline", role, request, fields, (camera_id,))


@FUZZ
@given(role=roles, camera_id=camera_ids, time_range=ranges, reason=texts)
def test_play(
    server: RunningDaemon, role: str | None, camera_id: str, time_range: common_pb2.TimeRange, reason: str
) -> None:
    request = recordings_pb2.PlayRequest(camera_id=camera_id, range=time_range, reason=reason)
    fields = ("camera_id", "range", "reason")
    _check(server, "Play", role, request, fields, (camera_id,))


@FUZZ
@given(role=roles, camera_id=camera_ids, time_range=ranges, reason=texts)
def test_review_segments(
    server: RunningDaemon, role: str | None, camera_id: str, time_range: common_pb2.TimeRange, reason: str
) -> None:
    request = recordings_pb2.ReviewSegmentsRequest(camera_id=camera_id, range=time_range, reason=reason)
    _check(server, "ReviewSegments", role, request, ("camera_id", "range", "reason"), (camera_id,))


@FUZZ
@given(role=roles, review_id=texts, index=st.integers(-(2**31), 2**31 - 1))
def test_read_segment(server: RunningDaemon, role: str | None, review_id: str, index: int) -> None:
    request = recordings_pb2.ReadSegmentRequest(review_id=review_id, index=index)
    _check(server, "ReadSegment", role, request, ())


@FUZZ
@given(
    role=roles,
    camera_id=st.one_of(st.just(""), camera_ids),
    since_ns=ints64,
    until_ns=ints64,
    principal=st.one_of(st.just(""), texts),
    limit=st.one_of(st.sampled_from([0, -1, 1, 10_000, 10_001, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1)),
)
def test_query_audit(
    server: RunningDaemon, role: str | None, camera_id: str, since_ns: int, until_ns: int, principal: str, limit: int
) -> None:
    request = audit_pb2.QueryAuditRequest(
        camera_id=camera_id, since_ns=since_ns, until_ns=until_ns, principal=principal, limit=limit
    )
    fields = ("camera_id", "since_ns", "until_ns", "limit", "principal")
    _check(server, "QueryAudit", role, request, fields, (camera_id,))


hold_camera_lists = st.one_of(
    st.lists(camera_ids, max_size=4),
    st.sampled_from([["in-cam"], ["in-cam", "out-cam"], ["in-cam", "in-cam"], ["in-cam"] * 257, [""]]),
)
hold_ids = st.one_of(st.sampled_from([0, -1, 1, 2, 3, 10**12, 2**63 - 1, -(2**63)]), st.integers(*INT64))


# Like camera specs: one nasty field (or none) and the rest valid, so that the later checks and
# successful adds (and their responses) are reached too.
NASTY_HOLD_FIELD: dict[str, st.SearchStrategy[Any]] = {
    "camera_ids": hold_camera_lists,
    "range": ranges,
    "case_ref": texts,
    "reason": texts,
    "until_ns": ints64,
}


def _hold_request_with(field: str | None) -> st.SearchStrategy[holds_pb2.AddHoldRequest]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "camera_ids": st.sampled_from([["in-cam"], ["in-cam", "out-cam"], ["out-cam"], ["in-absent"]]),
        "range": st.just(common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 22 * S)),
        "case_ref": st.just("CASE-1"),
        "reason": st.just("fuzzing"),
        "until_ns": st.sampled_from([0, 4_000_000_000 * S]),  # until released, or 2096
    }
    if field is not None:
        fields[field] = NASTY_HOLD_FIELD[field]
    return st.builds(holds_pb2.AddHoldRequest, **fields)


hold_requests = st.sampled_from([None, *NASTY_HOLD_FIELD]).flatmap(_hold_request_with)


@FUZZ
@given(role=roles, request=hold_requests)
def test_add_hold(server: RunningDaemon, role: str | None, request: holds_pb2.AddHoldRequest) -> None:
    fields = ("camera_ids", "range", "case_ref", "reason", "until")
    _check(server, "AddHold", role, request, fields, tuple(request.camera_ids))


@FUZZ
@given(role=roles, camera_id=st.one_of(st.just(""), camera_ids), include_released=st.booleans())
def test_list_holds(server: RunningDaemon, role: str | None, camera_id: str, include_released: bool) -> None:
    request = holds_pb2.ListHoldsRequest(camera_id=camera_id, include_released=include_released)
    _check(server, "ListHolds", role, request, ("camera_id",), (camera_id,))


@FUZZ
@given(role=roles, hold_id=hold_ids, reason=reasons)
def test_release_hold(server: RunningDaemon, role: str | None, hold_id: int, reason: str) -> None:
    request = holds_pb2.ReleaseHoldRequest(hold_id=hold_id, reason=reason)
    _check(server, "ReleaseHold", role, request, ("hold_id", "reason"))


@FUZZ
@given(role=roles, reason=reasons)
def test_confirm_clock(server: RunningDaemon, role: str | None, reason: str) -> None:
    request = holds_pb2.ConfirmClockRequest(reason=reason)
    _check(server, "ConfirmClock", role, request, ("reason",))


@FUZZ
@given(role=roles, time_range=ranges)
def test_erasure_summary(server: RunningDaemon, role: str | None, time_range: common_pb2.TimeRange) -> None:
    request = holds_pb2.ErasureSummaryRequest(range=time_range)
    _check(server, "ErasureSummary", role, request, ("range",))


# Exports, live relay, function checks.
export_ids = st.one_of(st.sampled_from(["in-cam", "out-cam"]).map(lambda c: _EXPORT_IDS[c]), texts)
EXPORT_FIELDS = ("camera_id", "range", "case_ref", "reason", "recipient", "until")


@FUZZ
@given(
    role=roles,
    camera_id=st.one_of(st.sampled_from(["in-cam", "out-cam", "in-absent"]), camera_ids),
    time_range=st.one_of(st.just(_EXPORT_RANGE), ranges),
    case_ref=st.one_of(st.just("CASE-1"), texts),
    reason=reasons,
    recipient=st.one_of(st.just(""), texts),
    hold_until_ns=st.one_of(st.just(0), ints64),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_create_export(
    server: RunningDaemon,
    role: str | None,
    camera_id: str,
    time_range: common_pb2.TimeRange,
    case_ref: str,
    reason: str,
    recipient: str,
    hold_until_ns: int,
    flags: tuple[bool, bool, bool],
) -> None:
    no_hold, exclude_originals, redact = flags
    request = export_pb2.CreateExportRequest(
        camera_id=camera_id,
        range=time_range,
        case_ref=case_ref,
        reason=reason,
        recipient=recipient,
        hold_until_ns=hold_until_ns,
        no_hold=no_hold,
        exclude_originals=exclude_originals,
        redact=redact,
    )
    _check(server, "CreateExport", role, request, EXPORT_FIELDS, (camera_id,))


@FUZZ
@given(
    role=roles,
    camera_id=st.one_of(st.sampled_from(["in-cam", "out-cam", "in-absent"]), camera_ids),
    time_range=st.one_of(st.just(_EXPORT_RANGE), ranges),
    case_ref=st.one_of(st.just("CASE-1"), texts),
    reason=reasons,
    export_id=texts,
)
def test_fetch_segments(
    server: RunningDaemon,
    role: str | None,
    camera_id: str,
    time_range: common_pb2.TimeRange,
    case_ref: str,
    reason: str,
    export_id: str,
) -> None:
    """A call between recorders of a site: a user token is refused whatever it asks."""
    request = export_pb2.FetchSegmentsRequest(
        camera_id=camera_id, range=time_range, case_ref=case_ref, reason=reason, export_id=export_id
    )
    code = _check(server, "FetchSegments", role, request, ("camera_id",), (camera_id,))
    assert code in REFUSED | {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED}


@FUZZ
@given(role=roles, camera_id=st.one_of(st.just(""), camera_ids))
def test_list_exports(server: RunningDaemon, role: str | None, camera_id: str) -> None:
    _check(
        server, "ListExports", role, export_pb2.ListExportsRequest(camera_id=camera_id), ("camera_id",), (camera_id,)
    )


def _export_camera(export_id: str) -> tuple[str, ...]:
    return tuple(camera for camera, known in _EXPORT_IDS.items() if known == export_id)


@FUZZ
@given(role=roles, export_id=export_ids)
def test_get_export(server: RunningDaemon, role: str | None, export_id: str) -> None:
    request = export_pb2.GetExportRequest(export_id=export_id)
    _check(server, "GetExport", role, request, ("export_id",), _export_camera(export_id))


@FUZZ
@given(
    role=roles,
    export_id=export_ids,
    name=st.one_of(st.sampled_from(["manifest.json", "manifest.sig", "master.mp4", "../catalogue.db"]), texts),
    offset=st.one_of(st.sampled_from([0, 1, -1, 2**40]), ints64),
)
def test_download(server: RunningDaemon, role: str | None, export_id: str, name: str, offset: int) -> None:
    request = export_pb2.DownloadRequest(export_id=export_id, name=name, offset=offset)
    _check(server, "Download", role, request, ("export_id", "name", "offset"), _export_camera(export_id))


@pytest.mark.parametrize("offset", [10**9, 2**62, 2**63 - 1])
def test_download_from_far_past_the_end_is_empty(server: RunningDaemon, offset: int) -> None:
    """Found by test_download: an offset past what a file can hold was INTERNAL (EINVAL from seek)."""
    request = export_pb2.DownloadRequest(export_id=_EXPORT_IDS["in-cam"], name="manifest.json", offset=offset)
    assert _invoke(server, "Download", request, "admin") == []


@FUZZ
@given(
    role=roles, camera_id=st.one_of(st.sampled_from(["in-cam", "out-cam", "in-absent"]), camera_ids), duration_ns=ints64
)
def test_relay(server: RunningDaemon, role: str | None, camera_id: str, duration_ns: int) -> None:
    """The cameras here are not recorded: no relay ever streams, so every call ends at once."""
    request = live_pb2.RelayRequest(camera_id=camera_id, duration_ns=duration_ns)
    _check(server, "Relay", role, request, ("camera_id", "duration_ns"), (camera_id,))


@FUZZ
@given(
    role=roles,
    kinds=st.lists(st.one_of(st.sampled_from(["camera_connected", "gap_opened", "review_started"]), texts), max_size=3),
    cameras=st.lists(st.one_of(camera_ids, st.sampled_from(["in-*", "*", "out-*", "[", "in-[a-"])), max_size=3),
    after_seq=st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)),
    from_now=st.booleans(),
)
def test_watch_events(
    server: RunningDaemon, role: str | None, kinds: list[str], cameras: list[str], after_seq: int, from_now: bool
) -> None:
    """Not following (a following stream is open until the client leaves, by design)."""
    request = events_pb2.WatchEventsRequest(kinds=kinds, cameras=cameras, after_seq=after_seq, from_now=from_now)
    _check(server, "WatchEvents", role, request, ("kinds", "cameras", "after_seq"), tuple(cameras))


# Each function check watches the cameras for [health] observe (1 s here): fewer examples.
@settings(FUZZ, max_examples=25)
@given(role=roles, cameras=hold_camera_lists)
@example(role="viewer", cameras=["in-fuzz", "out-cam"])  # found once: an absent camera answered before the scope
def test_run_function_check(server: RunningDaemon, role: str | None, cameras: list[str]) -> None:
    request = checks_pb2.RunFunctionCheckRequest(camera_ids=cameras)
    _check(server, "RunFunctionCheck", role, request, ("camera_ids",), tuple(cameras))


@FUZZ
@given(role=roles, check_id=hold_ids)
def test_get_function_check(server: RunningDaemon, role: str | None, check_id: int) -> None:
    _check(server, "GetFunctionCheck", role, checks_pb2.GetFunctionCheckRequest(id=check_id), ("id",))


@FUZZ
@given(role=roles, limit=st.one_of(st.sampled_from([0, 1, 10_000, 2**32 - 1]), st.integers(0, 2**32 - 1)))
def test_list_function_checks(server: RunningDaemon, role: str | None, limit: int) -> None:
    _check(server, "ListFunctionChecks", role, checks_pb2.ListFunctionChecksRequest(limit=limit), ("limit",))


@settings(FUZZ, max_examples=60)
@given(role=roles, cameras=hold_camera_lists, time_range=ranges)
def test_get_report(
    server: RunningDaemon, role: str | None, cameras: list[str], time_range: common_pb2.TimeRange
) -> None:
    request = report_pb2.GetReportRequest(camera_ids=cameras, range=time_range)
    _check(server, "GetReport", role, request, ("camera_ids", "range"), tuple(cameras))


@FUZZ
@given(role=roles, camera_id=camera_ids, to=st.one_of(st.sampled_from(["rec-b", ""]), texts), reason=texts)
def test_move_camera(server: RunningDaemon, role: str | None, camera_id: str, to: str, reason: str) -> None:
    """The fuzzed recorder has no [site]: FAILED_PRECONDITION once the request is valid and allowed."""
    request = site_pb2.MoveCameraRequest(camera_id=camera_id, to=to, reason=reason)
    _check(server, "MoveCamera", role, request, ("camera_id", "to", "reason"), (camera_id,))


# RPCs whose request has no field to fuzz: every role, and no token.
EMPTY_REQUESTS = ["ListCameras", "VerifyAudit", "GetRetentionStatus", "GetSite"]


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize("rpc", EMPTY_REQUESTS)
def test_requests_without_fields(server: RunningDaemon, rpc: str, role: str | None) -> None:
    request = message_factory.GetMessageClass(METHODS[rpc].input_type)()
    _check(server, rpc, role, request, ())


def test_every_rpc_is_fuzzed() -> None:
    """A new RPC fails here until it has a fuzz test above (the raw-bytes tests cover it already)."""
    fuzzed = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    snake = {rpc: "".join(f"_{c.lower()}" if c.isupper() else c for c in rpc).lstrip("_") for rpc in METHODS}
    missing = [rpc for rpc, name in snake.items() if name not in fuzzed and rpc not in EMPTY_REQUESTS]
    assert not missing, f"RPCs without a fuzz test: {missing}"


# One bad field, everything else valid: the message names exactly that field.
_GOOD_RANGE = common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 22 * S)
_GOOD_HOLD: dict[str, Any] = {"camera_ids": ["in-cam"], "range": _GOOD_RANGE, "case_ref": "C-1", "reason": "r"}
_GOOD_SPEC = {"id": "in-named", "name": "n", "url": "rtsp://127.0.0.1:9/x", "transport": "tcp", "enabled": False}
ONE_BAD_FIELD: list[tuple[str, Any, str]] = [
    ("GetCamera", cameras_pb2.GetCameraRequest(camera_id="../x"), "camera_id"),
    ("Search", recordings_pb2.SearchRequest(camera_id="in/../cam", range=_GOOD_RANGE), "camera_id"),
    (
        "Search",
        recordings_pb2.SearchRequest(camera_id="in-cam", range=common_pb2.TimeRange(start_ns=-1, end_ns=MID)),
        "range.start_ns",
    ),
    (
        "Search",
        recordings_pb2.SearchRequest(camera_id="in-cam", range=common_pb2.TimeRange(start_ns=MID, end_ns=2**63 - 1)),
        "range.end_ns",
    ),
    (
        "Search",
        recordings_pb2.SearchRequest(camera_id="in-cam", range=common_pb2.TimeRange(start_ns=MID, end_ns=MID - 1)),
        "range.end_ns",
    ),
    (
        "Search",
        recordings_pb2.SearchRequest(
            camera_id="in-cam", range=common_pb2.TimeRange(start_ns=MID, end_ns=MID + 32 * 86_400 * S)
        ),
        "range",
    ),
    ("Timeline", recordings_pb2.TimelineRequest(camera_id="in-cam", day="2026-02-30"), "day"),
    ("Timeline", recordings_pb2.TimelineRequest(camera_id="in-cam", day="1969-12-31"), "day"),
    ("Timeline", recordings_pb2.TimelineRequest(camera_id="in-cam", day="2026-01-02", bucket_ns=-1), "bucket_ns"),
    (
        "Timeline",
        recordings_pb2.TimelineRequest(camera_id="in-cam", day="2026-01-02", bucket_ns=999_999_999),
        "bucket_ns",
    ),
    ("Play", recordings_pb2.PlayRequest(camera_id="in-cam", range=_GOOD_RANGE, reason=" "), "reason"),
    (
        "Play",
        recordings_pb2.PlayRequest(camera_id="in-cam", range=common_pb2.TimeRange(), reason="r"),
        "range.start_ns",
    ),
    ("Play", recordings_pb2.PlayRequest(camera_id="", range=_GOOD_RANGE, reason="r"), "camera_id"),
    ("QueryAudit", audit_pb2.QueryAuditRequest(limit=10_001), "limit"),
    ("QueryAudit", audit_pb2.QueryAuditRequest(since_ns=-5), "since_ns"),
    ("QueryAudit", audit_pb2.QueryAuditRequest(since_ns=MID, until_ns=MID), "until_ns"),
    ("QueryAudit", audit_pb2.QueryAuditRequest(principal="x" * 129), "principal"),
    ("QueryAudit", audit_pb2.QueryAuditRequest(camera_id="a/b"), "camera_id"),
    ("RemoveCamera", cameras_pb2.RemoveCameraRequest(camera_id="..", reason="r"), "camera_id"),
    *[
        ("AddHold", holds_pb2.AddHoldRequest(**{**_GOOD_HOLD, **bad}), field)
        for bad, field in [
            ({"camera_ids": []}, "camera_ids"),
            ({"camera_ids": ["in-cam", "../x"]}, "camera_ids[1]"),
            ({"camera_ids": ["in-cam"] * 257}, "camera_ids"),
            ({"range": common_pb2.TimeRange(start_ns=MID, end_ns=MID)}, "range.end_ns"),
            ({"range": common_pb2.TimeRange(start_ns=MID, end_ns=MID + 367 * 86_400 * S)}, "range"),
            ({"range": common_pb2.TimeRange()}, "range.start_ns"),
            ({"case_ref": " "}, "case_ref"),
            ({"case_ref": "x" * 201}, "case_ref"),
            ({"reason": ""}, "reason"),
            ({"reason": "a\x07b"}, "reason"),
            ({"until_ns": MID}, "until"),  # in the past
            ({"until_ns": -1}, "until"),
        ]
    ],
    ("ListHolds", holds_pb2.ListHoldsRequest(camera_id="in/../cam"), "camera_id"),
    ("ReleaseHold", holds_pb2.ReleaseHoldRequest(hold_id=0, reason="r"), "hold_id"),
    ("ReleaseHold", holds_pb2.ReleaseHoldRequest(hold_id=-5, reason="r"), "hold_id"),
    ("ReleaseHold", holds_pb2.ReleaseHoldRequest(hold_id=1, reason="\n"), "reason"),
    ("ConfirmClock", holds_pb2.ConfirmClockRequest(reason=""), "reason"),
    ("ErasureSummary", holds_pb2.ErasureSummaryRequest(), "range.start_ns"),
    (
        "ErasureSummary",
        holds_pb2.ErasureSummaryRequest(range=common_pb2.TimeRange(start_ns=MID, end_ns=MID - S)),
        "range.end_ns",
    ),
    ("RemoveCamera", cameras_pb2.RemoveCameraRequest(camera_id="in-cam", reason=""), "reason"),
    ("AddCamera", cameras_pb2.AddCameraRequest(camera=cameras_pb2.CameraSpec(**_GOOD_SPEC), reason=""), "reason"),
    *[
        (
            "AddCamera",
            cameras_pb2.AddCameraRequest(camera=cameras_pb2.CameraSpec(**{**_GOOD_SPEC, **bad}), reason="r"),
            field,
        )
        for bad, field in [
            ({"id": "../etc"}, "camera.id"),
            ({"id": ""}, "camera.id"),
            ({"name": "x" * 201}, "camera.name"),
            ({"name": "a\x07b"}, "camera.name"),
            ({"location": "x" * 10_000}, "camera.location"),
            ({"url": "file:///etc/passwd"}, "camera.url"),
            ({"url": "rtsp://"}, "camera.url"),
            ({"transport": "sctp"}, "camera.transport"),
            ({"retention_max_age_ns": -1}, "camera.retention_max_age_ns"),
        ]
    ],
    ("GetReport", report_pb2.GetReportRequest(camera_ids=["in-cam", "../x"], range=_GOOD_RANGE), "camera_ids[1]"),
    (
        "GetReport",
        report_pb2.GetReportRequest(range=common_pb2.TimeRange(start_ns=MID, end_ns=MID + 401 * 86_400 * S)),
        "range",
    ),
]


@pytest.mark.parametrize(
    ("rpc", "request_", "field"), ONE_BAD_FIELD, ids=[f"{r}-{f}-{i}" for i, (r, _, f) in enumerate(ONE_BAD_FIELD)]
)
def test_one_bad_field_is_named(server: RunningDaemon, rpc: str, request_: Any, field: str) -> None:
    stubs = server.stubs
    method = {
        "GetCamera": stubs.cameras.GetCamera,
        "AddCamera": stubs.cameras.AddCamera,
        "RemoveCamera": stubs.cameras.RemoveCamera,
        "Search": stubs.recordings.Search,
        "Timeline": stubs.recordings.Timeline,
        "Play": lambda r, metadata: list(stubs.recordings.Play(r, metadata=metadata)),
        "QueryAudit": stubs.audit.QueryAudit,
        "AddHold": _holds(server).AddHold,
        "ListHolds": _holds(server).ListHolds,
        "ReleaseHold": _holds(server).ReleaseHold,
        "ConfirmClock": _retention(server).ConfirmClock,
        "ErasureSummary": _retention(server).ErasureSummary,
        "GetReport": report_pb2_grpc.ReportServiceStub(server.channel).GetReport,  # type: ignore[no-untyped-call]
    }[rpc]
    with pytest.raises(grpc.RpcError) as error:
        method(request_, metadata=metadata("admin"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.value.details() or ""), error.value.details()


# -- bytes that are not a request -----------------------------------------------------------------
# Every RPC of every service (read from the descriptors, so a new RPC is covered without an edit),
# and the open health check. Such bytes are INVALID_ARGUMENT naming the method, for unary and
# streaming calls alike, and audited like a denial (never grpc's UNKNOWN "Unexpected DecodeError").
HEALTH_CHECK = grpc_health_pb2.DESCRIPTOR.services_by_name["Health"].methods_by_name["Check"]
RAW_METHODS = [*service_methods(), HEALTH_CHECK]


def _request_class(method: MethodDescriptor) -> type[Any]:
    return message_factory.GetMessageClass(method.input_type)


def _parses(method: MethodDescriptor, payload: bytes) -> bool:
    try:
        _request_class(method).FromString(payload)
    except DecodeError:
        return False
    return True


def _filled(method: MethodDescriptor) -> bytes:
    """A valid request with every scalar field set, serialised (for truncation and mutation)."""
    request = _request_class(method)()
    for field in method.input_type.fields:
        if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE:
            continue
        value: Any = {FieldDescriptor.TYPE_STRING: "in-cam", FieldDescriptor.TYPE_BYTES: b"x"}.get(field.type)
        if field.type == FieldDescriptor.TYPE_BOOL:
            value = True
        elif value is None:
            value = 1
        setattr(request, field.name, value)
    return bytes(request.SerializeToString())


def undecodable_payloads(method: MethodDescriptor) -> dict[str, bytes]:
    filled = _filled(method)
    return {
        "random": b"\xff\xfe\x00garbage\x9c",
        # A valid request cut short (an empty request: an unknown length-delimited field cut short).
        "truncated": filled[:-1] if filled else b"\xfa\x3e\x32abc",
        # Field 1 with wire type 7 (no such wire type), and an end-group that closes nothing.
        "wire-type-7": b"\x0f\x01",
        "stray-end-group": filled + b"\x0c",
    }


def _endless(method: MethodDescriptor, payload: bytes) -> bool:
    """Bytes that parse as a request for a stream that stays open until the client leaves (a
    following WatchEvents): such a stream is read for a moment, and its deadline is its end."""
    if method.name != "WatchEvents" or not _parses(method, payload):
        return False
    return bool(_request_class(method).FromString(payload).follow)


def _raw_call(server: RunningDaemon, method: MethodDescriptor, payload: bytes, md: list[tuple[str, str]]) -> Any:
    """Send bytes as they are (no serializer) and drain any stream; raises grpc.RpcError."""
    path = method_path(method)
    if method.server_streaming:
        timeout = 2 if _endless(method, payload) else 10
        return list(server.channel.unary_stream(path)(payload, metadata=md, timeout=timeout))
    return server.channel.unary_unary(path)(payload, metadata=md, timeout=10)


RAW_CASES = [
    pytest.param(method, kind, caller, id=f"{method.name}-{kind}-{caller or 'no-token'}")
    for method in RAW_METHODS
    for kind in undecodable_payloads(method)
    for caller in ("admin", "viewer", None)
]


@pytest.mark.parametrize(("method", "kind", "caller"), RAW_CASES)
def test_undecodable_bytes_are_invalid_argument_naming_the_method(
    server: RunningDaemon, method: MethodDescriptor, kind: str, caller: str | None
) -> None:
    payload = undecodable_payloads(method)[kind]
    assert not _parses(method, payload), "the payload must not be a valid request"
    # Earlier cases repeat the same tokenless denial: close that burst so this one is written at once.
    server.run(server.daemon.services.calls.flush())
    before = server.daemon.audit.head()[0]
    with pytest.raises(grpc.RpcError) as error:
        _raw_call(server, method, payload, metadata(caller))
    code, details = error.value.code(), error.value.details() or ""
    records = [r for r in server.daemon.audit.query(limit=100)[0] if r.seq > before]
    if caller is None and method is not HEALTH_CHECK:
        # Who is calling is settled before the bytes are looked at.
        assert (code, [(r.action, r.outcome) for r in records]) == (
            grpc.StatusCode.UNAUTHENTICATED,
            [(method_path(method), "UNAUTHENTICATED")],
        ), details
        return
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{code.name}: {details}"
    assert method_path(method) in details and method.input_type.full_name in details, details
    assert [(r.action, r.outcome, r.principal) for r in records] == [
        (method_path(method), "INVALID_ARGUMENT", f"{caller}-1" if caller else "")
    ]
    assert server.stubs.alive()


def _mutated(method: MethodDescriptor, data: st.DataObject) -> bytes:
    """Random bytes, a valid request cut short or with bytes changed, or known fields sent with
    the wrong wire type (which protobuf accepts as unknown fields)."""
    filled = _filled(method)
    tag = st.integers(1, 20).flatmap(lambda f: st.integers(0, 7).map(lambda w: bytes([(f << 3) | w])))
    choice: bytes = data.draw(
        st.one_of(
            st.binary(max_size=2048),
            st.integers(0, max(0, len(filled) - 1)).map(lambda n: filled[:n]),
            st.tuples(st.integers(0, max(0, len(filled) - 1)), st.binary(min_size=1, max_size=4)).map(
                lambda t: filled[: t[0]] + t[1] + filled[t[0] + len(t[1]) :]
            ),
            st.lists(st.tuples(tag, st.binary(max_size=6)), max_size=4).map(
                lambda parts: filled + b"".join(t + v for t, v in parts)
            ),
        )
    )
    return choice


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(RAW_METHODS), caller=st.sampled_from([*ROLES, None]), data=st.data())
def test_raw_bytes(server: RunningDaemon, method: MethodDescriptor, caller: str | None, data: st.DataObject) -> None:
    """Whatever the bytes: bytes that do not parse are INVALID_ARGUMENT naming the method; bytes
    that parse are ours to validate (never INTERNAL/UNKNOWN, never left to run into the deadline),
    and a role that may not call the method is refused whatever the request says."""
    payload = _mutated(method, data)
    try:
        _raw_call(server, method, payload, metadata(caller))
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    following = _endless(method, payload) and caller is not None and may_call(caller, method.name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and following:
        code = grpc.StatusCode.OK  # a following event stream, open as asked
    assert code not in BAD_CODES | {grpc.StatusCode.DEADLINE_EXCEEDED}, f"{code.name}: {details}"
    if caller is None and method is not HEALTH_CHECK:
        assert code == grpc.StatusCode.UNAUTHENTICATED, f"{code.name}: {details}"
    elif not _parses(method, payload):
        assert code == grpc.StatusCode.INVALID_ARGUMENT and method_path(method) in details, f"{code.name}: {details}"
    elif caller is not None and method is not HEALTH_CHECK and not may_call(caller, method.name):
        assert code in REFUSED, f"{method.name} as {caller}: {code.name} {details}"
    assert server.stubs.alive()


def test_the_server_still_answers_real_work_after_fuzzing(server: RunningDaemon) -> None:
    reply = server.stubs.recordings.Search(
        recordings_pb2.SearchRequest(camera_id="in-cam", range=_GOOD_RANGE), metadata=metadata("viewer")
    )
    assert reply.recorded_ns == 20 * S
    assert server.stubs.audit.VerifyAudit(audit_pb2.VerifyAuditRequest(), metadata=metadata("admin")).ok
    # Holds placed by the fuzzer are listed whole and well-formed; retention still answers.
    listed = _holds(server).ListHolds(holds_pb2.ListHoldsRequest(include_released=True), metadata=metadata("admin"))
    for hold in listed.holds:
        assert hold.id > 0 and hold.camera_ids and hold.case_ref.strip() and hold.reason.strip()
        assert hold.range.start_ns < hold.range.end_ns
    status = _retention(server).GetRetentionStatus(holds_pb2.RetentionStatusRequest(), metadata=metadata("viewer"))
    assert status.max_age_ns == 3650 * 86_400 * S
