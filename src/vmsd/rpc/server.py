"""The gRPC server: services, the call interceptor, health, reflection, limits, shutdown.

Listening rules: TLS (and mTLS when `client_ca` is set) from `[grpc] tls`; a non-loopback
address without TLS is refused by config validation unless `insecure = true`.

Limits (all from `[grpc]`, see docs/grpc.md "Limits"): concurrent RPCs and HTTP/2 streams per
connection, keepalive and connection idle/age in grpc core's channel arguments; stream places and
send timeouts in the interceptor (rpc/limits.py); audit records and denial bursts: services/calls.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpc_health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vmsd.config import HTTP2_STREAMS_PER_CONNECTION, Config, GrpcConfig
from vmsd.log import get_logger
from vmsd.ops.metrics import Metrics
from vmsd.rpc.audit_service import AuditServicer
from vmsd.rpc.calls import CallInterceptor
from vmsd.rpc.cameras import CameraServicer
from vmsd.rpc.events import EventServicer
from vmsd.rpc.export import ExportServicer
from vmsd.rpc.health import FunctionCheckServicer
from vmsd.rpc.holds import HoldServicer, RetentionServicer
from vmsd.rpc.limits import StreamLimits
from vmsd.rpc.live import LiveServicer
from vmsd.rpc.paging import MAX_MESSAGE_BYTES
from vmsd.rpc.recordings import RecordingServicer
from vmsd.rpc.report import ReportServicer
from vmsd.rpc.site import SiteServicer
from vmsd.services.authn import Authenticator
from vmsd.services.registry import Services
from vmsd.units import NS_PER_MS
from vmsd.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    cameras_pb2,
    cameras_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    export_pb2,
    export_pb2_grpc,
    health_pb2,
    health_pb2_grpc,
    holds_pb2,
    holds_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    recordings_pb2,
    recordings_pb2_grpc,
    report_pb2,
    report_pb2_grpc,
    site_pb2,
    site_pb2_grpc,
)

log = get_logger(component="rpc")

SHUTDOWN_GRACE_S = 5.0
HEALTH_INTERVAL_S = 2.0


def server_options(grpc_config: GrpcConfig) -> list[tuple[str, int]]:
    """grpc core channel arguments for the server (names: grpc's doc/keepalive.md and grpc_types.h)."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", HTTP2_STREAMS_PER_CONNECTION),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", grpc_config.keepalive_time_ns // NS_PER_MS),
        ("grpc.keepalive_timeout_ms", grpc_config.keepalive_timeout_ns // NS_PER_MS),
        # Our pings also reach connections without calls (found dead, they are closed).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", grpc_config.min_client_ping_interval_ns // NS_PER_MS),
        ("grpc.max_connection_idle_ms", grpc_config.max_connection_idle_ns // NS_PER_MS),
    ]
    if grpc_config.max_connection_age_ns is not None:
        options.append(("grpc.max_connection_age_ms", grpc_config.max_connection_age_ns // NS_PER_MS))
    if grpc_config.max_connection_age_grace_ns is not None:
        options.append(("grpc.max_connection_age_grace_ms", grpc_config.max_connection_age_grace_ns // NS_PER_MS))
    return options


class ControlPlane:
    """Owns the grpc.aio server. `start()` binds; `aclose()` drains with a grace period."""

    def __init__(
        self, config: Config, services: Services, authenticator: Authenticator, *, metrics: Metrics | None = None
    ) -> None:
        self._config = config
        self._services = services
        self._authenticator = authenticator
        self._metrics = metrics
        self._server: Any = None
        self._health = health.aio.HealthServicer()
        self._health_task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        limits = self._config.grpc
        interceptor = CallInterceptor(
            self._authenticator,
            self._services.calls,
            self._metrics.observe_rpc if self._metrics is not None else None,
            limits=StreamLimits(
                per_principal=limits.max_streams_per_principal,
                per_connection=limits.max_streams_per_connection,
                tokenless=limits.max_tokenless_streams,
            ),
            send_timeout_ns=limits.send_timeout_ns,
        )
        server = grpc.aio.server(
            interceptors=[interceptor],
            maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
            options=server_options(limits),
        )
        services = self._services
        # The generated registration functions are untyped.
        cameras_pb2_grpc.add_CameraServiceServicer_to_server(CameraServicer(services.cameras), server)  # type: ignore[no-untyped-call]
        recordings_pb2_grpc.add_RecordingServiceServicer_to_server(RecordingServicer(services.recordings), server)  # type: ignore[no-untyped-call]
        audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(services.audit), server)  # type: ignore[no-untyped-call]
        live_pb2_grpc.add_LiveServiceServicer_to_server(LiveServicer(services.live), server)  # type: ignore[no-untyped-call]
        export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(services.exports), server)  # type: ignore[no-untyped-call]
        holds_pb2_grpc.add_HoldServiceServicer_to_server(HoldServicer(services.holds), server)  # type: ignore[no-untyped-call]
        holds_pb2_grpc.add_RetentionServiceServicer_to_server(RetentionServicer(services.retention), server)  # type: ignore[no-untyped-call]
        events_servicer = EventServicer(services.events, self._config.recorder_id)
        events_pb2_grpc.add_EventServiceServicer_to_server(events_servicer, server)  # type: ignore[no-untyped-call]
        checks_servicer = FunctionCheckServicer(services.function_checks)
        health_pb2_grpc.add_FunctionCheckServiceServicer_to_server(checks_servicer, server)  # type: ignore[no-untyped-call]
        report_pb2_grpc.add_ReportServiceServicer_to_server(ReportServicer(services.reports), server)  # type: ignore[no-untyped-call]
        site_pb2_grpc.add_SiteServiceServicer_to_server(SiteServicer(services.site), server)  # type: ignore[no-untyped-call]
        grpc_health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [
            cameras_pb2.DESCRIPTOR.services_by_name["CameraService"].full_name,
            recordings_pb2.DESCRIPTOR.services_by_name["RecordingService"].full_name,
            audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
            holds_pb2.DESCRIPTOR.services_by_name["HoldService"].full_name,
            export_pb2.DESCRIPTOR.services_by_name["ExportService"].full_name,
            live_pb2.DESCRIPTOR.services_by_name["LiveService"].full_name,
            holds_pb2.DESCRIPTOR.services_by_name["RetentionService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["FunctionCheckService"].full_name,
            report_pb2.DESCRIPTOR.services_by_name["ReportService"].full_name,
            events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
            site_pb2.DESCRIPTOR.services_by_name["SiteService"].full_name,
            grpc_health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
        listen = self._config.grpc.listen
        tls = self._config.grpc.tls
        if tls is None:
            self.port = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.key.read_bytes(), tls.cert.read_bytes())],
                root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
                require_client_auth=tls.client_ca is not None,
            )
            self.port = server.add_secure_port(listen, credentials)
        await server.start()
        self._server = server
        await self._update_health()
        self._health_task = asyncio.create_task(self._health_loop(), name="health")
        log.info("grpc_listening", listen=listen, port=self.port, tls=tls is not None)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self._update_health()

    async def _update_health(self) -> None:
        serving = grpc_health_pb2.HealthCheckResponse.SERVING
        not_serving = grpc_health_pb2.HealthCheckResponse.NOT_SERVING
        await self._health.set("", serving)
        for camera_id, recording in self._services.cameras.recording().items():
            await self._health.set(f"camera/{camera_id}", serving if recording else not_serving)

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(SHUTDOWN_GRACE_S)
            self._server = None
