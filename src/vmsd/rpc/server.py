"""The gRPC server: services, the call interceptor, health, reflection, limits, shutdown.

Listening rules: TLS (and mTLS when `client_ca` is set) from `[grpc] tls`; a non-loopback
address without TLS is refused by config validation unless `insecure = true`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpc_health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vmsd.audit import AuditLog
from vmsd.cameras import CameraManager
from vmsd.clock import Clock
from vmsd.config import Config
from vmsd.export.bundle import Exporter
from vmsd.ingest.recorder import CameraState
from vmsd.log import get_logger
from vmsd.ops.health import FunctionChecks
from vmsd.ops.metrics import Metrics
from vmsd.retention.holds import Holds
from vmsd.retention.task import RetentionTask
from vmsd.rpc.audit_service import AuditServicer
from vmsd.rpc.auth import Authenticator
from vmsd.rpc.calls import CallInterceptor
from vmsd.rpc.cameras import CameraServicer
from vmsd.rpc.export import ExportServicer
from vmsd.rpc.health import FunctionCheckServicer
from vmsd.rpc.holds import HoldServicer, RetentionServicer
from vmsd.rpc.live import LiveServicer
from vmsd.rpc.paging import MAX_MESSAGE_BYTES
from vmsd.rpc.recordings import RecordingServicer
from vmsd.storage.store import Storage
from vmsd.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    cameras_pb2,
    cameras_pb2_grpc,
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
)

log = get_logger(component="rpc")

MAX_CONCURRENT_RPCS = 256
SHUTDOWN_GRACE_S = 5.0
HEALTH_INTERVAL_S = 2.0


class ControlPlane:
    """Owns the grpc.aio server. `start()` binds; `aclose()` drains with a grace period."""

    def __init__(
        self,
        config: Config,
        cameras: CameraManager,
        storage: Storage,
        audit: AuditLog,
        clock: Clock,
        *,
        holds: Holds,
        retention: RetentionTask,
        exporter: Exporter,
        checks: FunctionChecks,
        metrics: Metrics | None = None,
    ) -> None:
        self._exporter = exporter
        self._checks = checks
        self._metrics = metrics
        self._holds = holds
        self._retention = retention
        self._config = config
        self._cameras = cameras
        self._storage = storage
        self._audit = audit
        self._clock = clock
        self._server: Any = None
        self._health = health.aio.HealthServicer()
        self._health_task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        server = grpc.aio.server(
            interceptors=[
                CallInterceptor(
                    Authenticator(self._config.auth.tokens),
                    self._audit,
                    self._metrics.observe_rpc if self._metrics is not None else None,
                )
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_concurrent_streams", 100),
                ("grpc.so_reuseport", 0),
            ],
        )
        # The generated registration functions are untyped.
        cameras_servicer = CameraServicer(self._cameras, lambda: self._retention.status.alarms)
        recordings_servicer = RecordingServicer(self._cameras, self._storage, self._clock)
        audit_servicer = AuditServicer(self._audit, self._storage.catalogue.camera_ids)
        cameras_pb2_grpc.add_CameraServiceServicer_to_server(cameras_servicer, server)  # type: ignore[no-untyped-call]
        recordings_pb2_grpc.add_RecordingServiceServicer_to_server(recordings_servicer, server)  # type: ignore[no-untyped-call]
        audit_pb2_grpc.add_AuditServiceServicer_to_server(audit_servicer, server)  # type: ignore[no-untyped-call]
        live_pb2_grpc.add_LiveServiceServicer_to_server(LiveServicer(self._cameras), server)  # type: ignore[no-untyped-call]
        export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(self._exporter), server)  # type: ignore[no-untyped-call]
        hold_servicer = HoldServicer(self._holds, self._clock)
        retention_servicer = RetentionServicer(
            self._retention, self._storage.catalogue, self._config.retention.max_age_ns
        )
        holds_pb2_grpc.add_HoldServiceServicer_to_server(hold_servicer, server)  # type: ignore[no-untyped-call]
        holds_pb2_grpc.add_RetentionServiceServicer_to_server(retention_servicer, server)  # type: ignore[no-untyped-call]
        checks_servicer = FunctionCheckServicer(self._checks, self._cameras.known_ids)
        health_pb2_grpc.add_FunctionCheckServiceServicer_to_server(checks_servicer, server)  # type: ignore[no-untyped-call]
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
        for managed in self._cameras.list():
            status = self._cameras.status(managed.config.id)
            recording = status is not None and status.state is CameraState.RECORDING
            await self._health.set(f"camera/{managed.config.id}", serving if recording else not_serving)

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        if self._server is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(SHUTDOWN_GRACE_S)
            self._server = None
