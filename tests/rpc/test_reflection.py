"""A generic client discovers the API by reflection and calls it without the .proto files."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from vmsd.app import Daemon
from vmsd.config import parse_config

TOKEN = "reflection-token"


async def test_reflection_lists_services_and_a_dynamic_call_works(tmp_path: Path) -> None:
    config = parse_config(
        {
            "recorder_id": "r",
            "storage": {"root": str(tmp_path / "root")},
            "grpc": {"listen": "127.0.0.1:0"},
            "auth": {"tokens": [{"name": "a", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "role": "admin"}]},
        }
    )
    daemon = Daemon(config)
    await daemon.start()
    try:
        # A synchronous client, as a generic tool would be: off the loop that serves it.
        services, verdict = await asyncio.to_thread(_generic_client, daemon.control_plane.port)
    finally:
        await daemon.stop()
    assert {"vmsd.v1.CameraService", "vmsd.v1.RecordingService", "vmsd.v1.AuditService"} <= services
    assert "grpc.health.v1.Health" in services
    assert verdict["ok"] is True


def _generic_client(port: int) -> tuple[set[str], dict[str, object]]:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("vmsd.v1.AuditService").methods_by_name["VerifyAudit"]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/vmsd.v1.AuditService/VerifyAudit",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = call(request_class(), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10)
        return services, json_format.MessageToDict(response)
