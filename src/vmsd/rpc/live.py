"""LiveService: protobuf ⇄ vmsd.services.live (relay a camera's hub to one client).

Each packet's RelayMessage is serialized once, by the first viewer that sends it, and the same
bytes go to every viewer (`encoded_once`): the method is registered with a response serializer
that passes bytes through (`add_to_server`), so N viewers cost one serialization per packet.
"""

from __future__ import annotations

import contextlib
from typing import Any

import grpc

from vmsd.ingest.hub import VIDEO, RelayPacket, StreamConfig, encoded_once
from vmsd.rpc.calls import current_call
from vmsd.services.live import LiveService, RelayItem
from vmsd.units import NS_PER_S
from vmsd.v1 import live_pb2, live_pb2_grpc


def _config(config: StreamConfig) -> live_pb2.StreamConfig:
    return live_pb2.StreamConfig(
        generation=config.generation,
        video_codec=config.video_codec,
        width=config.width,
        height=config.height,
        video_extradata=config.video_extradata,
        audio_codec=config.audio_codec,
        audio_sample_rate=config.audio_sample_rate,
        audio_channels=config.audio_channels,
        audio_extradata=config.audio_extradata,
        init_segment=config.init_segment,
        time_base_den=NS_PER_S,
    )


def _packet(packet: RelayPacket) -> live_pb2.MediaPacket:
    kind = live_pb2.MediaPacket.KIND_VIDEO if packet.kind == VIDEO else live_pb2.MediaPacket.KIND_AUDIO
    return live_pb2.MediaPacket(
        kind=kind,
        data=packet.data,
        pts_ns=packet.pts_ns,
        dts_ns=packet.dts_ns,
        keyframe=packet.keyframe,
        generation=packet.generation,
    )


def _serialized(item: RelayItem) -> bytes:
    """The item's RelayMessage bytes; a packet's and a configuration's are built once for all viewers."""
    if isinstance(item, RelayPacket):
        return encoded_once(item, "grpc", lambda: _encode(live_pb2.RelayMessage(packet=_packet(item))))
    if isinstance(item, StreamConfig):
        return encoded_once(item, "grpc", lambda: _encode(live_pb2.RelayMessage(config=_config(item))))
    notice = live_pb2.RelayNotice(missed_frames=item.frames, missed_frames_total=item.total)
    return _encode(live_pb2.RelayMessage(notice=notice))


def _encode(message: live_pb2.RelayMessage) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def _pass_through(message: bytes | live_pb2.RelayMessage) -> bytes:
    return message if isinstance(message, bytes) else _encode(message)


def add_to_server(servicer: LiveServicer, server: grpc.aio.Server) -> None:
    """What `live_pb2_grpc.add_LiveServiceServicer_to_server` does, with responses that are
    already serialized (the interceptor keeps the handler's serializer)."""
    handlers = {
        "Relay": grpc.unary_stream_rpc_method_handler(
            servicer.Relay,
            request_deserializer=live_pb2.RelayRequest.FromString,
            response_serializer=_pass_through,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("vmsd.v1.LiveService", handlers),))
    server.add_registered_method_handlers("vmsd.v1.LiveService", handlers)


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    def __init__(self, live: LiveService) -> None:
        self._live = live

    async def Relay(self, request: live_pb2.RelayRequest, context: Any) -> None:
        # Sent with the interceptor's context: it gives up on a client whose receive window stays
        # full for [grpc] send_timeout (rpc/limits.py); the hub has long since stopped queueing
        # for it by then (it drops whole GOPs, then the subscriber).
        call = current_call()
        principal = call.require_principal()
        items = await self._live.relay(principal, call, request.camera_id, request.duration_ns, transport="grpc")
        async with contextlib.aclosing(items) as relay:
            async for item in relay:
                await context.write(_serialized(item))
