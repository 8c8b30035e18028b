"""LiveService: protobuf ⇄ vmsd.services.live (relay a camera's hub to one client)."""

from __future__ import annotations

import contextlib
from typing import Any

from vmsd.ingest.hub import VIDEO, RelayPacket, StreamConfig
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


def _message(item: RelayItem) -> live_pb2.RelayMessage:
    if isinstance(item, RelayPacket):
        return live_pb2.RelayMessage(packet=_packet(item))
    if isinstance(item, StreamConfig):
        return live_pb2.RelayMessage(config=_config(item))
    return live_pb2.RelayMessage(notice=live_pb2.RelayNotice(missed_frames=item.frames, missed_frames_total=item.total))


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    def __init__(self, live: LiveService) -> None:
        self._live = live

    async def Relay(self, request: live_pb2.RelayRequest, context: Any) -> None:
        # Sent with the interceptor's context: it gives up on a client whose receive window stays
        # full for [grpc] send_timeout (rpc/limits.py); the hub has long since stopped queueing
        # for it by then (it drops whole GOPs, then the subscriber).
        call = current_call()
        items = self._live.relay(call.require_principal(), call, request.camera_id, request.duration_ns)
        async with contextlib.aclosing(items) as relay:
            async for item in relay:
                await context.write(_message(item))
