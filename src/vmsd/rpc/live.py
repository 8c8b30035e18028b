"""LiveService: relay a camera's hub to one client, within per-principal and overall limits."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from vmsd.cameras import CameraManager
from vmsd.errors import ErrorKind, VmsdError
from vmsd.ingest.hub import VIDEO, Missed, RelayPacket, StreamConfig, SubscriberGone
from vmsd.rpc import validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import current_call
from vmsd.v1 import live_pb2, live_pb2_grpc

NS_PER_S = 1_000_000_000
MAX_RELAYS_PER_PRINCIPAL = 16
MAX_RELAYS = 256
MAX_DURATION_NS = 7 * validate.DAY_NS


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


async def _send(context: Any, message: live_pb2.RelayMessage) -> None:
    """Send one message to the viewer.

    The interceptor's context gives up on a client whose receive window stays full for [grpc]
    send_timeout (rpc/limits.py); the hub has long since stopped queueing for it by then (it
    drops whole GOPs, then the subscriber).
    """
    await context.write(message)


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    def __init__(self, cameras: CameraManager) -> None:
        self._cameras = cameras
        self._active: Counter[str] = Counter()

    @property
    def active_relays(self) -> int:
        return sum(self._active.values())

    async def Relay(self, request: live_pb2.RelayRequest, context: Any) -> None:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.touch(camera_id=camera_id)
        principal.require(Permission.LIVE_RELAY, camera_id)
        if request.duration_ns < 0 or request.duration_ns > MAX_DURATION_NS:
            raise validate.invalid(f"duration_ns must be between 0 (no limit) and {MAX_DURATION_NS // NS_PER_S} s")
        self._cameras.get(camera_id)  # NOT_FOUND for an unknown camera
        recorder = self._cameras.recorders().get(camera_id)
        if recorder is None:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"camera_id {camera_id!r} is not being recorded")
        if self._active[principal.name] >= MAX_RELAYS_PER_PRINCIPAL:
            raise VmsdError(
                ErrorKind.RESOURCE_EXHAUSTED, f"at most {MAX_RELAYS_PER_PRINCIPAL} relays at once per principal"
            )
        if self.active_relays >= MAX_RELAYS:
            raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, f"at most {MAX_RELAYS} relays at once on this recorder")
        started_ns = time.time_ns()
        deadline_mono_ns = time.monotonic_ns() + request.duration_ns if request.duration_ns else None
        self._active[principal.name] += 1
        subscriber = recorder.hub.subscribe(asyncio.get_running_loop())
        sent_bytes = frames = missed = 0
        try:
            while True:
                if deadline_mono_ns is not None:
                    remaining_s = (deadline_mono_ns - time.monotonic_ns()) / NS_PER_S
                    if remaining_s <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(subscriber.next(), timeout=remaining_s)
                    except TimeoutError:
                        break
                else:
                    item = await subscriber.next()
                if isinstance(item, RelayPacket):
                    sent_bytes += len(item.data)
                    frames += item.kind == VIDEO
                    await _send(context, live_pb2.RelayMessage(packet=_packet(item)))
                elif isinstance(item, StreamConfig):
                    await _send(context, live_pb2.RelayMessage(config=_config(item)))
                elif isinstance(item, Missed):
                    missed += item.frames
                    notice = live_pb2.RelayNotice(missed_frames=item.frames, missed_frames_total=missed)
                    await _send(context, live_pb2.RelayMessage(notice=notice))
        except SubscriberGone as gone:
            raise VmsdError(ErrorKind.RESOURCE_EXHAUSTED, f"relay ended: {gone}") from None
        finally:
            subscriber.close()
            self._active[principal.name] -= 1
            call.touch(
                start_ns=started_ns,
                end_ns=time.time_ns(),
                bytes=sent_bytes,
                video_frames=frames,
                missed_frames=missed,
            )
