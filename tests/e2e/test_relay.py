"""Live relay end to end: the real daemon, the real simulator, real gRPC clients, ffprobe."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from tests.support.clips import make_clip
from tests.support.daemon import DaemonProcess, write_config
from tests.support.simulator import CameraSimulator, MountSpec
from vmsd.v1 import live_pb2, live_pb2_grpc

pytestmark = pytest.mark.slow
S = 1_000_000_000
TOKEN = "relay-test-token"
TOKEN2 = "relay-test-token-2"
TOKENS = f"""
[[auth.tokens]]
name = "police"
sha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"
role = "police-link"
cameras = ["cam", "big"]

[[auth.tokens]]
name = "control-room"
sha256 = "{hashlib.sha256(TOKEN2.encode()).hexdigest()}"
role = "viewer"
cameras = ["cam"]
"""


@pytest.fixture(scope="module", params=["ffmpeg", "native"])
def daemon(simulator: CameraSimulator, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The relay's daemon, once per RTSP source (FFmpeg through PyAV, and vmsd's own client)."""
    work = tmp_path_factory.mktemp(f"relay-{request.param}")
    big = make_clip("/tmp/vmsd-test-clips", codec="h264", width=1280, height=720, bitrate="8M", seconds=10)
    heavy = CameraSimulator([MountSpec("big", big)]).start()
    cameras = {"cam": simulator.url("audio"), "big": heavy.url("big")}
    config = write_config(work / "vmsd.toml", work / "root", cameras, extra=TOKENS, source=request.param)
    process = DaemonProcess(config, work / "vmsd.log").start()
    try:
        process.wait_for_log('"state": "recording"', count=2)
        port = next(json.loads(line)["port"] for line in process.log().splitlines() if "grpc_listening" in line)
        yield process, port, work / "root"
        process.terminate()
    finally:
        heavy.stop()


def test_vmsctl_relay_writes_a_stream_that_decodes_from_its_first_frame(daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _process, port, _root = daemon
    output = tmp_path / "live.ts"
    vmsctl = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{port}", "--token", TOKEN]
    subprocess.run([*vmsctl, "relay", "cam", "--duration", "6", "-o", str(output)], check=True, timeout=60)
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(output)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
    assert float(probe["format"]["duration"]) > 3.5  # ≥ 6 s minus the wait for a keyframe on a cold hub
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(output), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decode.returncode == 0 and decode.stderr == ""
    # Playable while written: a pipe into ffprobe works.
    piped = subprocess.run(
        f"{' '.join(vmsctl)} relay cam --duration 3 -o - "
        "| ffprobe -v error -show_entries stream=codec_name -of csv=p=0 -",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "h264" in piped.stdout


async def _watch(
    port: int,
    seconds: float,
    *,
    read: bool,
    results: list[dict[str, object]],
    token: str = TOKEN,
    camera: str = "cam",
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        duration_ns = int(seconds * S) if read else 0
        call = stub.Relay(
            live_pb2.RelayRequest(camera_id=camera, duration_ns=duration_ns),
            metadata=[("authorization", f"Bearer {token}")],
        )
        began_ns = time.time_ns()
        record: dict[str, object] = {"dts": [], "latency_ns": [], "notices": 0, "first_frame_ns": None, "code": "OK"}
        try:
            if not read:
                # Never read. The server gives up on us (a full receive window blocks its sends);
                # its verdict is in the audit trail — its status cannot reach a client that does
                # not read, so the client finally hangs up.
                await asyncio.sleep(seconds)
                call.cancel()
            else:
                async for message in call:
                    kind = message.WhichOneof("kind")
                    if kind == "packet" and message.packet.kind == live_pb2.MediaPacket.KIND_VIDEO:
                        now_ns = time.time_ns()
                        if record["first_frame_ns"] is None:
                            record["first_frame_ns"] = now_ns - began_ns
                        record["dts"].append(message.packet.dts_ns)  # type: ignore[attr-defined]
                        record["latency_ns"].append(now_ns - message.packet.pts_ns)  # type: ignore[attr-defined]
                    elif kind == "notice":
                        record["notices"] = int(record["notices"]) + 1  # type: ignore[call-overload]
        except grpc.aio.AioRpcError as error:
            record["code"] = error.code().name
        results.append(record)


def test_twenty_viewers_one_stalled_do_not_disturb_each_other_or_recording(daemon) -> None:  # type: ignore[no-untyped-def]
    _process, port, root = daemon
    results: list[dict[str, object]] = []

    async def scenario() -> None:
        readers = [_watch(port, 15, read=True, results=results, token=(TOKEN, TOKEN2)[i % 2]) for i in range(19)]
        await asyncio.gather(*readers, _watch(port, 16, read=False, results=results, token=TOKEN2))
        await asyncio.sleep(1)  # let the server notice the stalled client's hang-up

    began_seq = _last_audit_seq(root)
    asyncio.run(scenario())
    readers = [r for r in results if r["dts"]]
    assert len(readers) == 19
    # The stalled viewer read nothing, and its relay ended: when it hung up (CANCELLED), or earlier
    # if the server gave up on it for not reading. The server's account (a status cannot reach a
    # client that does not read) is the relay's audit record.
    [stalled] = [r for r in results if not r["dts"]]
    assert stalled["first_frame_ns"] is None and stalled["notices"] == 0
    ended = _relay_records(root, after_seq=began_seq, principal="control-room")  # 9 readers + the stalled one
    outcomes = sorted(outcome for outcome, _ in ended)
    assert outcomes in (["CANCELLED"] + ["OK"] * 9, ["OK"] * 9 + ["RESOURCE_EXHAUSTED"]), ended
    [(outcome, detail)] = [(o, d) for o, d in ended if o != "OK"]
    if outcome == "CANCELLED":  # it ended when the client hung up (16 s), not later
        assert 15 * S <= int(detail["duration_ns"]) < 20 * S, detail  # type: ignore[call-overload]
    else:  # or the server gave up on it first, for not reading
        assert "read nothing" in str(detail["message"]), detail
    for record in readers:
        dts = record["dts"]
        assert record["notices"] == 0
        gaps = [b - a for a, b in itertools.pairwise(dts)]  # type: ignore[arg-type]
        assert max(gaps) < 100_000_000, "a reader missed frames"
        assert len(dts) > 15 * 25 * 0.8  # type: ignore[arg-type]
    # Recording went on without a gap while all of this happened.
    conn = sqlite3.connect(root / "catalogue.db")
    gaps = conn.execute("SELECT reason FROM gaps WHERE end_ns IS NOT NULL").fetchall()
    conn.close()
    assert gaps == []
    # Added latency of live frames (the first second is the GOP cache, by design older).
    latencies = sorted(ns for r in readers for ns in r["latency_ns"][50:])  # type: ignore[index]
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    first = sorted(int(r["first_frame_ns"]) for r in readers)  # type: ignore[call-overload]
    print(
        f"\nrelay: 19 readers + 1 stalled: latency p50 {p50 / 1e6:.1f} ms p99 {p99 / 1e6:.1f} ms; "
        f"first frame median {first[len(first) // 2] / 1e6:.1f} ms"
    )


def test_a_client_that_stops_reading_is_disconnected_and_the_limit_holds(daemon) -> None:  # type: ignore[no-untyped-def]
    _process, port, root = daemon
    results: list[dict[str, object]] = []

    async def scenario() -> None:
        # 15 short relays + 1 that never reads (on the 8 Mbit/s camera, whose data fills the
        # transport's buffers quickly) = 16, the principal's limit; a 17th is refused.
        short = [_watch(port, 4, read=True, results=results) for _ in range(15)]
        await asyncio.gather(
            *short, _watch(port, 45, read=False, results=results, camera="big"), _refused(port, results)
        )

    asyncio.run(scenario())
    assert [r["code"] for r in results if r.get("refused")] == ["RESOURCE_EXHAUSTED"]
    # The server's side of the story is in the audit trail (its status cannot reach a client that
    # does not read): the relay ended for not reading, 10 s after its sends stopped completing.
    audit = sqlite3.connect(root / "audit.db")
    relays = audit.execute(
        "SELECT outcome, camera_id, detail_json FROM audit WHERE action='/vmsd.v1.LiveService/Relay' ORDER BY seq"
    ).fetchall()
    audit.close()
    stalled = [json.loads(d) for _o, c, d in relays if c == "big"]
    assert len(stalled) == 1, relays
    assert "read nothing" in stalled[0]["message"]
    assert 10 * S <= stalled[0]["duration_ns"] < 30 * S
    print(f"\nrelay: a client that stopped reading was disconnected after {stalled[0]['duration_ns'] / 1e9:.1f} s")


async def _refused(port: int, results: list[dict[str, object]]) -> None:
    await asyncio.sleep(2)  # once the other 16 are running
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = live_pb2_grpc.LiveServiceStub(channel)
        call = stub.Relay(
            live_pb2.RelayRequest(camera_id="cam", duration_ns=S), metadata=[("authorization", f"Bearer {TOKEN}")]
        )
        try:
            async for _ in call:
                pass
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = error.code().name
    results.append({"dts": [], "code": code, "refused": True})


def _fds_and_rss(pid: int) -> tuple[int, int]:
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    rss_kib = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return fds, rss_kib


def test_subscribe_churn_returns_descriptors_and_memory_to_baseline(daemon) -> None:  # type: ignore[no-untyped-def]
    process, port, _root = daemon
    pid = process.proc.pid

    async def churn(count: int) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = live_pb2_grpc.LiveServiceStub(channel)
            done = 0
            while done < count:
                call = stub.Relay(
                    live_pb2.RelayRequest(camera_id="cam"), metadata=[("authorization", f"Bearer {TOKEN}")]
                )
                try:
                    async for message in call:
                        if message.WhichOneof("kind") == "packet":
                            break
                except grpc.aio.AioRpcError as error:
                    # The server still winding down earlier relays (stream and per-principal
                    # limits): back off and try again — this test is about leaks, not speed.
                    assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
                    await asyncio.sleep(0.2)
                    continue
                call.cancel()
                done += 1

    asyncio.run(churn(50))  # warm up: lazily created objects, allocator arenas
    time.sleep(1)
    fds_before, rss_before = _fds_and_rss(pid)
    asyncio.run(churn(1000))
    time.sleep(2)
    fds_after, rss_after = _fds_and_rss(pid)
    print(f"\nrelay churn x1000: fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB")
    assert fds_after <= fds_before + 2
    assert rss_after - rss_before < 20 * 1024  # no per-subscription leak (20 MiB would be 20 KiB each)


def test_a_relay_continues_across_a_camera_reconnect(daemon, simulator: CameraSimulator) -> None:  # type: ignore[no-untyped-def]
    _process, port, _root = daemon
    configs: list[int] = []
    packets_per_generation: dict[int, int] = {}

    async def watch() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = live_pb2_grpc.LiveServiceStub(channel)
            call = stub.Relay(
                live_pb2.RelayRequest(camera_id="cam", duration_ns=16 * S),
                metadata=[("authorization", f"Bearer {TOKEN}")],
            )
            async for message in call:
                kind = message.WhichOneof("kind")
                if kind == "config":
                    configs.append(message.config.generation)
                elif kind == "packet":
                    generation = message.packet.generation
                    packets_per_generation[generation] = packets_per_generation.get(generation, 0) + 1

    async def scenario() -> None:
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(3)
        await asyncio.to_thread(simulator.drop, "audio", 3)
        await watcher

    asyncio.run(scenario())
    # The subscriber was told the new session's parameters and kept receiving its packets.
    assert len(configs) >= 2 and configs == sorted(configs)
    assert packets_per_generation.get(configs[0], 0) > 0 and packets_per_generation.get(configs[-1], 0) > 25


def _last_audit_seq(root: Path) -> int:
    audit = sqlite3.connect(root / "audit.db")
    try:
        return int(audit.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0])
    finally:
        audit.close()


def _relay_records(root: Path, *, after_seq: int, principal: str) -> list[tuple[str, dict[str, object]]]:
    """(outcome, detail) of the relays a principal ended after an audit sequence number."""
    audit = sqlite3.connect(root / "audit.db")
    try:
        found = audit.execute(
            "SELECT outcome, detail_json FROM audit WHERE action='/vmsd.v1.LiveService/Relay' AND seq > ? "
            "AND principal = ? ORDER BY seq",
            (after_seq, principal),
        ).fetchall()
    finally:
        audit.close()
    return [(outcome, json.loads(detail)) for outcome, detail in found]
