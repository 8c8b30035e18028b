"""An in-process vmsd with recorded footage, for control-plane tests.

The daemon runs on its own event loop in a background thread, so tests (including hypothesis
tests, which cannot be coroutines) talk to it with ordinary blocking gRPC stubs over a real
loopback port. Footage is recorded *before* the daemon starts, by feeding an ffmpeg-made clip
through the real Segmenter under a FakeClock: exact, known timestamps and no network.

Recorded layout (S = 1 s, MID = 2026-01-02T00:00:00Z, segment_duration 10 s, GOP 2 s, 25 fps):
  in-cam   session 1: MID-5s .. MID+7s   two segments [-5s, +1s) [+1s, +7s) (rotation at the first
                                          keyframe at/after the 10 s wall boundary MID+0)
           gap camera_offline [+7s, +13.96s)
           session 2: MID+13.96s .. MID+21.96s   one segment
           gap camera_offline from +21.96s, still open
  out-cam  one session MID-5s .. MID+7s (same clip), then an open camera_offline gap
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib
import pkgutil
import queue
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

import vmsd.v1
from tests.support.feed import feed
from vmsd.app import Daemon
from vmsd.clock import Clock, FakeClock
from vmsd.config import Config, parse_config
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.v1 import audit_pb2_grpc, cameras_pb2_grpc, recordings_pb2_grpc

S = 1_000_000_000
MS = 1_000_000
FRAME_NS = 40 * MS
MID = 1_767_312_000 * S  # 2026-01-02T00:00:00Z
SEGMENT_DURATION = "10s"

ROLES = ("viewer", "operator", "supervisor", "integrator", "police-link", "admin")
# Every role but admin is scoped to the "in-*" cameras.
SCOPES = {role: (["*"] if role == "admin" else ["in-*"]) for role in ROLES}
CONFIG_SECRET = "cfg-Pa55word"
# Config-file cameras (disabled: no recorder, so nothing touches the network or the footage).
CONFIG_CAMERAS = {
    "in-cam": f"rtsp://cfguser:{CONFIG_SECRET}@127.0.0.1:9/in",
    "out-cam": f"rtsp://cfguser:{CONFIG_SECRET}@127.0.0.1:9/out",
}

T = TypeVar("T")


def service_methods() -> list[MethodDescriptor]:
    """Every RPC of every service in `vmsd.v1`, read from the generated descriptors: a test that
    iterates these covers an RPC added tomorrow without being edited."""
    found = []
    for info in pkgutil.iter_modules(vmsd.v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"vmsd.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                found += list(service.methods)
    return sorted(found, key=lambda m: m.full_name)


def method_path(method: MethodDescriptor) -> str:
    """The HTTP/2 path of an RPC, e.g. `/vmsd.v1.CameraService/GetCamera`."""
    return f"/{method.containing_service.full_name}/{method.name}"


def token(role: str) -> str:
    return f"test-token-for-{role}"


def metadata(role: str | None) -> list[tuple[str, str]]:
    """Call metadata for a role; None means no authorization at all."""
    return [] if role is None else [("authorization", f"Bearer {token(role)}")]


UNKNOWN_TOKEN = [("authorization", "Bearer not-a-configured-token")]


def make_config(
    root: Path,
    *,
    cameras: dict[str, str] | None = None,
    grpc: dict[str, Any] | None = None,
    web: dict[str, Any] | None = None,
    recording: tuple[str, ...] = (),
    site: dict[str, Any] | None = None,
    live: dict[str, Any] | None = None,
    recorder_id: str = "rpc-test",
    camera_fields: dict[str, Any] | None = None,
) -> Config:
    """The test daemon's config; `grpc` adds [grpc] keys (limits, timeouts); `web` gives a [web]
    section (the console, off without it); `recording` names the cameras that are enabled (the
    others are configured but never connected to); `site` a [site] section; `live` a [live]
    section (relay limits); `camera_fields` are added to every camera (e.g. enabled, recorders)."""
    tokens = [
        {
            "name": f"{role}-1",
            "sha256": hashlib.sha256(token(role).encode()).hexdigest(),
            "role": role,
            "cameras": SCOPES[role],
        }
        for role in ROLES
    ]
    cams = CONFIG_CAMERAS if cameras is None else cameras
    return parse_config(
        {
            "recorder_id": recorder_id,
            "storage": {"root": str(root), "segment_duration": SEGMENT_DURATION, "min_free": "1MiB"},
            "grpc": {"listen": "127.0.0.1:0", **(grpc or {})},
            # No scheduled function checks in the middle of a test; on-demand ones watch for 1 s.
            "health": {"times": [], "observe": "1s"},
            "auth": {"tokens": tokens},
            "cameras": [
                {"id": cid, "url": url, "enabled": cid in recording, "name": cid, **(camera_fields or {})}
                for cid, url in cams.items()
            ],
            **({"web": web} if web is not None else {}),
            **({"site": site} if site is not None else {}),
            **({"live": live} if live is not None else {}),
        }
    )


def record_footage(root: Path, clip: Path) -> None:
    """Write the footage described in the module docstring into a fresh storage root."""
    storage = Storage(root)
    storage.open()
    try:
        reconcile(storage)
        for camera_id in ("in-cam", "out-cam"):
            storage.catalogue.upsert_camera(camera_id, camera_id, "", 0)
        clock = FakeClock(wall_ns=MID - 5 * S)
        segmenter = Segmenter("in-cam", storage, clock, segment_duration_ns=10 * S)
        feed(segmenter, clock, clip, seconds=12)
        clock.advance(7 * S)
        feed(segmenter, clock, clip, seconds=8)
        clock = FakeClock(wall_ns=MID - 5 * S)
        feed(Segmenter("out-cam", storage, clock, segment_duration_ns=10 * S), clock, clip, seconds=12)
    finally:
        storage.close()


@dataclass
class Stubs:
    channel: grpc.Channel
    cameras: cameras_pb2_grpc.CameraServiceStub
    recordings: recordings_pb2_grpc.RecordingServiceStub
    audit: audit_pb2_grpc.AuditServiceStub
    health: health_pb2_grpc.HealthStub

    def alive(self) -> bool:
        """The overall health check answers SERVING (no token needed)."""
        reply = self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class RunningDaemon:
    """A Daemon started on an event loop in a background thread; `stop()` shuts both down.
    `credentials`: the test's channel is TLS (a daemon with [grpc] tls)."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.config = config
        self._clock = clock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vmsd-test-loop", daemon=True)
        self._thread.start()
        self.daemon: Daemon = self.run(self._start())
        target = f"127.0.0.1:{self.daemon.control_plane.port}"
        self.channel = (
            grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
        )
        self.stubs = Stubs(
            self.channel,
            cameras_pb2_grpc.CameraServiceStub(self.channel),  # type: ignore[no-untyped-call]
            recordings_pb2_grpc.RecordingServiceStub(self.channel),  # type: ignore[no-untyped-call]
            audit_pb2_grpc.AuditServiceStub(self.channel),  # type: ignore[no-untyped-call]
            health_pb2_grpc.HealthStub(self.channel),
        )

    async def _start(self) -> Daemon:
        daemon = Daemon(self.config, clock=self._clock)
        await daemon.start()
        return daemon

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def port(self) -> int:
        return self.daemon.control_plane.port

    def stop(self) -> None:
        """Stop the daemon (a second call does nothing)."""
        if self._loop.is_closed():
            return
        self.channel.close()
        try:
            self.run(self.daemon.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


def playback_producers() -> list[threading.Thread]:
    """The worker threads remuxing footage for Play calls (vmsd.threads.iterate_in_thread's; no
    other call runs one in these tests)."""
    return [
        t
        for t in threading.enumerate()
        if getattr(getattr(t, "_target", None), "__qualname__", "") == "iterate_in_thread.<locals>.run"
    ]


def stuck_playback_getters() -> list[queue.Queue[object]]:
    """Play's chunk queues (maxsize 8) that are empty yet have a thread blocked in get().

    Once every producer has exited, such a getter can never return: it is a leaked executor thread.
    """
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, queue.Queue) and obj.maxsize == 8:
            with obj.mutex:
                if not obj.queue and obj.not_empty._waiters:  # type: ignore[attr-defined]
                    found.append(obj)
    return found


def release(queues: list[queue.Queue[object]]) -> None:
    """Unblock leaked getters (so the test process can exit); the item goes nowhere."""
    for q in queues:
        while True:
            with q.mutex:
                waiting = bool(q.not_empty._waiters)  # type: ignore[attr-defined]
            if not waiting:
                break
            q.put(None)
