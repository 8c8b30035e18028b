"""Control-plane limits against the real daemon (a subprocess) recording a real camera (the
simulator, 8 Mbit/s so a client that stops reading fills its buffers quickly):

- a flood of streams without a token and from one principal beyond the server's 256 concurrent
  RPCs: the excess is refused with RESOURCE_EXHAUSTED naming the limit, and the police link can
  still list cameras and watch live while the flood holds its places;
- one connection opening more streams than [grpc] max_streams_per_connection;
- Relay, Play and Download clients that stop reading are cut off after [grpc] send_timeout
  (audited with the reason, and logged).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.v1 import (
    cameras_pb2,
    cameras_pb2_grpc,
    common_pb2,
    export_pb2,
    export_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    recordings_pb2,
    recordings_pb2_grpc,
)

pytestmark = pytest.mark.slow
S = 1_000_000_000
TOKENS = {"police": "police-link", "flooder": "viewer", "operator": "operator"}
SEND_TIMEOUT_S = 2
PER_CONNECTION = 20
# Defaults for everything else: 256 concurrent RPCs, 16 streams without a token, 32 per principal.
GRPC = f'send_timeout = "{SEND_TIMEOUT_S}s"\nmax_streams_per_connection = {PER_CONNECTION}'
# Each channel its own connection (grpc otherwise shares one between equal channels).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
# A client that does not read: no BDP probing, so its receive window stays small.
STALLED = [*OWN_CONNECTION, ("grpc.http2.bdp_probe", 0)]


def _token(name: str) -> str:
    return f"limits-test-token-{name}"


def _md(name: str | None) -> list[tuple[str, str]]:
    return [] if name is None else [("authorization", f"Bearer {_token(name)}")]


def _tokens_config() -> str:
    lines = []
    for name, role in TOKENS.items():
        digest = hashlib.sha256(_token(name).encode()).hexdigest()
        lines += [
            "[[auth.tokens]]",
            f'name = "{name}"',
            f'sha256 = "{digest}"',
            f'role = "{role}"',
            'cameras = ["cam"]',
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, str, Path]]:
    work = tmp_path_factory.mktemp("limits")
    big = make_clip("/tmp/vmsd-test-clips", codec="h264", width=1280, height=720, bitrate="8M", seconds=10)
    simulator = CameraSimulator([MountSpec("big", big)]).start()
    try:
        config = write_config(
            work / "vmsd.toml", work / "root", {"cam": simulator.url("big")}, extra=_tokens_config(), grpc=GRPC
        )
        process = DaemonProcess(config, work / "vmsd.log").start()
        try:
            process.wait_for_log('"state": "recording"')
            port = next(json.loads(line)["port"] for line in process.log().splitlines() if "grpc_listening" in line)
            yield process, f"127.0.0.1:{port}", work / "root"
            assert process.alive(), process.log()
        finally:
            process.terminate()
    finally:
        simulator.stop()


async def _open_watches(target: str, token: str | None, count: int, per_channel: int) -> tuple[list[Any], Counter[str]]:
    """Open `count` Health/Watch streams; returns the channels (keep them open: the streams hold
    their places) and the outcome of each stream's first answer ('OK' or 'CODE: message')."""
    channels, calls = [], []
    for start in range(0, count, per_channel):
        channel = grpc.aio.insecure_channel(target, options=OWN_CONNECTION)
        channels.append(channel)
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(min(per_channel, count - start)):
            calls.append(stub.Watch(health_pb2.HealthCheckRequest(service=""), metadata=_md(token)))
    outcomes: Counter[str] = Counter()
    for call in calls:
        try:
            await asyncio.wait_for(call.read(), timeout=30)
            outcomes["OK"] += 1
        except grpc.aio.AioRpcError as error:
            outcomes[f"{error.code().name}: {error.details()}"] += 1
    return channels, outcomes


async def _police_link(target: str) -> tuple[list[str], int]:
    """What the police link sees: the camera list, and video packets of a short live relay."""
    async with grpc.aio.insecure_channel(target, options=OWN_CONNECTION) as channel:
        listed = await cameras_pb2_grpc.CameraServiceStub(channel).ListCameras(
            cameras_pb2.ListCamerasRequest(), metadata=_md("police"), timeout=10
        )
        relay = live_pb2_grpc.LiveServiceStub(channel).Relay(
            live_pb2.RelayRequest(camera_id="cam", duration_ns=2 * S), metadata=_md("police"), timeout=30
        )
        packets = 0
        async for message in relay:
            packets += message.WhichOneof("kind") == "packet"
    return [c.id for c in listed.cameras], packets


def test_a_stream_flood_is_refused_by_name_and_the_police_link_still_lists_cameras_and_relays(
    daemon: tuple[DaemonProcess, str, Path],
) -> None:
    _process, target, _root = daemon

    async def scenario() -> tuple[Counter[str], Counter[str], list[str], int]:
        # 150 + 150 streams: more than the server's 256 concurrent RPCs in all.
        tokenless_channels, tokenless = await _open_watches(target, None, 150, per_channel=15)
        flood_channels, flooder = await _open_watches(target, "flooder", 150, per_channel=15)
        try:
            cameras, packets = await _police_link(target)  # while the flood holds its places
        finally:
            for channel in tokenless_channels + flood_channels:
                await channel.close()
        return tokenless, flooder, cameras, packets

    tokenless, flooder, cameras, packets = asyncio.run(scenario())
    assert cameras == ["cam"]
    assert packets > 0  # live video reached the police link
    refused_tokenless = (
        "RESOURCE_EXHAUSTED: at most 16 streams at once without a token ([grpc] max_tokenless_streams); "
        "try again when one has ended"
    )
    assert tokenless == {"OK": 16, refused_tokenless: 134}, tokenless
    refused_flooder = (
        "RESOURCE_EXHAUSTED: at most 32 streams at once per principal ([grpc] max_streams_per_principal); "
        "try again when one has ended"
    )
    assert flooder == {"OK": 32, refused_flooder: 118}, flooder


def test_one_connection_holds_at_most_max_streams_per_connection(daemon: tuple[DaemonProcess, str, Path]) -> None:
    _process, target, _root = daemon

    async def scenario() -> Counter[str]:
        channels, outcomes = await _open_watches(target, "operator", PER_CONNECTION + 5, per_channel=PER_CONNECTION + 5)
        for channel in channels:
            await channel.close()
        return outcomes

    outcomes = asyncio.run(scenario())
    refused = (
        f"RESOURCE_EXHAUSTED: at most {PER_CONNECTION} streams at once per connection "
        "([grpc] max_streams_per_connection); try again when one has ended"
    )
    assert outcomes == {"OK": PER_CONNECTION, refused: 5}, outcomes


def _audited(root: Path, action: str) -> list[tuple[str, dict[str, Any]]]:
    audit = sqlite3.connect(root / "audit.db")
    try:
        rows = audit.execute("SELECT outcome, detail_json FROM audit WHERE action=? ORDER BY seq", (action,)).fetchall()
    finally:
        audit.close()
    return [(outcome, json.loads(detail)) for outcome, detail in rows]


def _export(target: str, start_ns: int, end_ns: int) -> tuple[str, str]:
    """A finished export of [start_ns, end_ns): its id and its largest file."""
    with grpc.insecure_channel(target, options=OWN_CONNECTION) as channel:
        stub = export_pb2_grpc.ExportServiceStub(channel)
        request = export_pb2.CreateExportRequest(
            camera_id="cam",
            range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
            case_ref="LIMITS-1",
            reason="send timeout test",
            no_hold=True,
        )
        done = [m.done for m in stub.CreateExport(request, metadata=_md("operator"), timeout=120) if m.done.export_id]
    largest = max(done[0].files, key=lambda f: f.bytes)
    return done[0].export_id, largest.name


def test_clients_that_stop_reading_are_cut_off_after_the_send_timeout(daemon: tuple[DaemonProcess, str, Path]) -> None:
    process, target, root = daemon
    # Footage to play and export: wait for 20 s of it (the camera has recorded since the start).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(root / "catalogue.db") as db:
            first, last = db.execute(
                "SELECT min(start_ns), max(end_ns) FROM segments WHERE camera_id='cam' AND state='complete'"
            ).fetchone()
        db.close()
        if first and last - first >= 20 * S:
            break
        time.sleep(1)
    start_ns, end_ns = last - 20 * S, last
    export_id, file_name = _export(target, start_ns, end_ns)
    stall_s = 15

    async def stalled(open_call: Any) -> None:
        async with grpc.aio.insecure_channel(target, options=STALLED) as channel:
            call = open_call(channel)
            await asyncio.sleep(stall_s)  # never read: the server's sends stop completing
            call.cancel()

    async def scenario() -> None:
        await asyncio.gather(
            stalled(
                lambda ch: live_pb2_grpc.LiveServiceStub(ch).Relay(
                    live_pb2.RelayRequest(camera_id="cam"), metadata=_md("police")
                )
            ),
            stalled(
                lambda ch: recordings_pb2_grpc.RecordingServiceStub(ch).Play(
                    recordings_pb2.PlayRequest(
                        camera_id="cam",
                        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
                        reason="send timeout test",
                    ),
                    metadata=_md("operator"),
                )
            ),
            stalled(
                lambda ch: export_pb2_grpc.ExportServiceStub(ch).Download(
                    export_pb2.DownloadRequest(export_id=export_id, name=file_name), metadata=_md("operator")
                )
            ),
        )

    asyncio.run(scenario())
    time.sleep(1)  # the audit records of the calls' ends
    message = f"stream ended: the client read nothing for {SEND_TIMEOUT_S}s ([grpc] send_timeout)"
    for method in ("LiveService/Relay", "RecordingService/Play", "ExportService/Download"):
        ends = _audited(root, f"/vmsd.v1.{method}")
        print(f"\n{method}: a client that stopped reading was cut off after {ends[-1][1]['duration_ns'] / S:.1f} s")
        assert [(outcome, detail.get("message")) for outcome, detail in ends][-1:] == [
            ("RESOURCE_EXHAUSTED", message)
        ], (method, ends)
        # Cut off well before the client gave up (it would otherwise have ended CANCELLED).
        assert ends[-1][1]["duration_ns"] < (stall_s - 3) * S, (method, ends[-1])
    assert process.log().count('"stream_send_timeout"') >= 3
