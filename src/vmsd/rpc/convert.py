"""Protobuf ⇄ domain translation (no logic beyond field mapping)."""

from __future__ import annotations

from vmsd.audit import AuditRecord
from vmsd.cameras import ManagedCamera
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.log import redact_url
from vmsd.recordings.search import Gap, Span, Unavailable
from vmsd.v1 import audit_pb2, cameras_pb2, common_pb2, recordings_pb2

_STATES = {
    CameraState.CONNECTING: cameras_pb2.CAMERA_STATE_CONNECTING,
    CameraState.RECORDING: cameras_pb2.CAMERA_STATE_RECORDING,
    CameraState.RECONNECTING: cameras_pb2.CAMERA_STATE_RECONNECTING,
    CameraState.OFFLINE: cameras_pb2.CAMERA_STATE_OFFLINE,
    CameraState.STOPPED: cameras_pb2.CAMERA_STATE_STOPPED,
}


def time_range(start_ns: int, end_ns: int) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns)


def camera(managed: ManagedCamera, status: CameraStatus | None) -> cameras_pb2.Camera:
    config = managed.config
    message = cameras_pb2.Camera(
        id=config.id,
        name=config.name,
        location=config.location,
        url_redacted=redact_url(config.url),
        transport=config.transport,
        enabled=config.enabled,
        retention_max_age_ns=config.retention_max_age_ns or 0,
        source=managed.source,
        rtsp_source=config.source,
    )
    if status is None:
        message.status.state = cameras_pb2.CAMERA_STATE_STOPPED
    else:
        message.status.CopyFrom(
            cameras_pb2.CameraStatus(
                state=_STATES[status.state],
                state_since_ns=status.state_since_ns,
                last_packet_ns=status.last_packet_ns,
                reconnects=status.reconnects,
                bytes=status.bytes,
                segments_written=status.segments_written,
                last_error=status.last_error,
                alarms=status.alarms,
                camera_clock_status=status.camera_clock_status,
                camera_clock_offset_ns=status.camera_clock_offset_ns or 0,
                camera_clock_reason=status.camera_clock_reason,
            )
        )
    return message


def span(value: Span) -> recordings_pb2.RecordedSpan:
    return recordings_pb2.RecordedSpan(
        range=time_range(value.start_ns, value.end_ns),
        segments=value.segments,
        bytes=value.bytes,
        video_codec=value.video_codec,
        width=value.width,
        height=value.height,
        has_audio=value.has_audio,
        recorder=value.recorder,
    )


def unavailable(value: Unavailable) -> common_pb2.UnavailableRecorder:
    return common_pb2.UnavailableRecorder(recorder=value.recorder, reason=value.reason)


def gap(value: Gap) -> recordings_pb2.Gap:
    return recordings_pb2.Gap(
        range=time_range(value.start_ns, value.end_ns), reason=value.reason, detail=value.detail, open=value.open
    )


def audit_record(record: AuditRecord) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        seq=record.seq,
        time_ns=record.time_ns,
        principal=record.principal,
        role=record.role,
        peer=record.peer,
        action=record.action,
        camera_id=record.camera_id,
        range=time_range(record.start_ns, record.end_ns),
        reason=record.reason,
        case_ref=record.case_ref,
        outcome=record.outcome,
        detail_json=record.detail_json,
        prev_hash=record.prev_hash,
        hash=record.hash,
    )
