"""GET /api/v1/cameras/{id}/live against the real daemon recording the real simulator: the message
sequence, a stream ffprobe decodes from its first frame, refusals before the upgrade, the audit."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.clips import make_clip
from tests.support.rpc import RunningDaemon, make_config
from tests.support.simulator import CameraSimulator, MountSpec
from tests.support.web import bearer
from vmsd.audit import AuditRecord
from vmsd.ingest.fmp4 import boxes

pytestmark = pytest.mark.slow
ACTION = "GET /api/v1/cameras/{camera_id}/live"
FIRST_MESSAGE_S = 30  # the camera must connect and send its first keyframe
LIMIT = 4  # [live] max_relays_per_principal of this module's daemon


class Live:
    def __init__(self, running: RunningDaemon, simulator: CameraSimulator) -> None:
        self.running = running
        self.simulator = simulator
        web = running.daemon.web
        assert web is not None
        self.url = f"http://127.0.0.1:{web.port}"

    def ws(self, camera_id: str) -> str:
        return f"{self.url}/api/v1/cameras/{camera_id}/live"

    def audit(self) -> list[AuditRecord]:
        async def query() -> list[AuditRecord]:
            records, _ = self.running.daemon.audit.query(actions=[ACTION], limit=1000)
            return records

        return sorted(self.running.run(query()), key=lambda r: r.seq)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", width=320, height=240, seconds=10, gop_s=1)
    # 8 Mbit/s: fills a reader's socket buffers in seconds, for the test of a browser that stops reading.
    big = make_clip("/tmp/vmsd-test-clips", codec="h264", width=1280, height=720, bitrate="8M", seconds=10)
    with CameraSimulator([MountSpec("in-cam", clip), MountSpec("in-big", big), MountSpec("in-switch", clip)]) as sim:
        cameras = {name: sim.url(name) for name in ("in-cam", "in-big", "in-switch")}
        config = make_config(
            tmp_path_factory.mktemp("live") / "root",
            cameras={**cameras, "out-cam": "rtsp://127.0.0.1:9/never"},
            recording=tuple(cameras),
            web={"listen": "127.0.0.1:0", "send_timeout": "2s"},
            live={"max_relays_per_principal": LIMIT},
        )
        running = RunningDaemon(config)
        try:
            yield Live(running, sim)
        finally:
            running.stop()


def sample_flags(fragment: bytes) -> int:
    """The first sample's flags in a one-sample moof (trun with per-sample flags, our layout)."""
    (_, moof_start, moof_end), _mdat = list(boxes(fragment))
    for kind, start, end in boxes(fragment, moof_start, moof_end):
        if kind == b"traf":
            for inner, trun, _ in boxes(fragment, start, end):
                if inner == b"trun":
                    # version+flags, count, data offset, duration, size, flags
                    return int(struct.unpack_from(">6I", fragment, trun)[5])
    raise AssertionError("no trun in the fragment")


async def test_codec_then_init_then_fragments_from_a_keyframe_that_ffprobe_decodes(live: Live, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as client, client.ws_connect(live.ws("in-cam"), headers=bearer("viewer")) as ws:
        first = await ws.receive(timeout=FIRST_MESSAGE_S)
        assert first.type == aiohttp.WSMsgType.TEXT
        config = json.loads(first.data)
        assert config["type"] == "config" and config["codec"].startswith("avc1.")
        assert config["mime"] == f'video/mp4; codecs="{config["codec"]}"'
        assert (config["width"], config["height"]) == (320, 240)
        init = await ws.receive(timeout=5)
        assert init.type == aiohttp.WSMsgType.BINARY
        assert [kind for kind, _, _ in boxes(init.data)] == [b"ftyp", b"moov"]
        fragments = []
        while len(fragments) < 60:  # a bit more than two GOPs
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.BINARY, message
            fragments.append(message.data)
    assert all([kind for kind, _, _ in boxes(f)] == [b"moof", b"mdat"] for f in fragments)
    flags = [sample_flags(f) for f in fragments]
    assert flags[0] == 0x02000000  # starts on a sync sample
    assert 0x01010000 in flags  # and the others are marked as depending on it

    path = tmp_path / "live.mp4"
    path.write_bytes(init.data + b"".join(fragments))
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert [s["codec_name"] for s in probe["streams"]] == ["h264"]
    packets = probe["packets"]
    assert len(packets) == 60 and packets[0]["flags"].startswith("K")
    dts = [int(p["dts"]) for p in packets]
    assert dts == sorted(set(dts))  # strictly increasing
    # Wall-clock time in 90 kHz ticks: the frames are from the last few seconds.
    assert abs(dts[-1] / 90_000 - time.time()) < 30
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decode.returncode == 0 and decode.stderr == ""


async def test_a_principal_past_its_relay_limit_is_refused_by_name_and_a_closed_stream_frees_a_place(
    live: Live,
) -> None:
    async with aiohttp.ClientSession(headers=bearer("supervisor")) as client:
        sockets = [await client.ws_connect(live.ws("in-cam")) for _ in range(LIMIT)]
        try:
            for ws in sockets:
                assert (await ws.receive(timeout=FIRST_MESSAGE_S)).type == aiohttp.WSMsgType.TEXT  # codec
            async with client.get(live.ws("in-cam")) as response:
                assert response.status == 429
                assert (await response.json())["error"] == {
                    "kind": "RESOURCE_EXHAUSTED",
                    "message": f"at most {LIMIT} relays at once per principal ([live] max_relays_per_principal)",
                }
            await sockets.pop().close()
            deadline = time.monotonic() + 10
            while True:  # the server counts the stream out once it has seen the close
                try:
                    sockets.append(await client.ws_connect(live.ws("in-cam")))
                    break
                except aiohttp.WSServerHandshakeError as refused:
                    assert refused.status == 429 and time.monotonic() < deadline, "the closed stream still counts"
                    await asyncio.sleep(0.05)
            assert (await sockets[-1].receive(timeout=FIRST_MESSAGE_S)).type == aiohttp.WSMsgType.TEXT
        finally:
            for ws in sockets:
                await ws.close()


async def test_the_relay_is_audited_when_the_socket_closes(live: Live) -> None:
    before = len(live.audit())
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(live.ws("in-cam"), headers=bearer("operator")) as ws,
    ):
        received = 0
        while received < 30:
            message = await ws.receive(timeout=FIRST_MESSAGE_S)
            received += message.type == aiohttp.WSMsgType.BINARY
    deadline = time.monotonic() + 10
    while len(live.audit()) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # the record is written when the server has seen the close
    record = live.audit()[-1]
    assert (record.principal, record.role, record.camera_id, record.outcome) == (
        "operator-1",
        "operator",
        "in-cam",
        "OK",
    )
    detail = json.loads(record.detail_json)
    assert detail["video_frames"] >= 29 and detail["bytes"] > 0 and detail["missed_frames"] == 0
    assert detail["ended"] == "browser closed the socket"
    assert 0 < record.start_ns < record.end_ns <= time.time_ns()


async def test_a_browser_on_the_console_is_let_in_and_a_cross_origin_page_is_refused(live: Live) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(f"{live.url}/api/v1/session", json={"token": "test-token-for-viewer"}) as response:
            assert response.status == 200
        async with client.ws_connect(live.ws("in-cam"), origin=live.url) as ws:  # the console's own page
            message = await ws.receive(timeout=FIRST_MESSAGE_S)
            assert json.loads(message.data)["type"] == "config"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(live.ws("in-cam"), origin="https://evil.example")
        assert refused.value.status == 403
    denial = live.audit()[-1]
    assert (denial.principal, denial.camera_id, denial.outcome) == ("viewer-1", "in-cam", "PERMISSION_DENIED")
    assert "cross-origin" in json.loads(denial.detail_json)["message"]


async def test_a_camera_outside_the_scope_is_403_and_an_unknown_one_404(live: Live) -> None:
    async with aiohttp.ClientSession() as client:
        for camera_id, status in (("out-cam", 403), ("in-nowhere", 404)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(live.ws(camera_id), headers=bearer("viewer"))
            assert refused.value.status == status
        denials = live.audit()[-2:]
        assert [(d.camera_id, d.outcome) for d in denials] == [
            ("out-cam", "PERMISSION_DENIED"),
            ("in-nowhere", "NOT_FOUND"),
        ]
        # Not a WebSocket: still refused for the camera first.
        async with client.get(live.ws("out-cam"), headers=bearer("viewer")) as response:
            assert response.status == 403
            assert (await response.json())["error"]["kind"] == "PERMISSION_DENIED"
        async with client.get(live.ws("in-cam"), headers=bearer("viewer")) as response:
            assert response.status == 400
            assert "WebSocket" in (await response.json())["error"]["message"]


async def test_a_browser_that_stops_reading_is_cut_off_and_recording_never_waits(live: Live) -> None:
    before = len(live.audit())
    port = int(live.url.rsplit(":", 1)[1])
    # A client that does the handshake and then never reads, with a tiny receive window.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(
            b"GET /api/v1/cameras/in-big/live HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer test-token-for-supervisor\r\n\r\n"
        )
        assert sock.recv(12) == b"HTTP/1.1 101"
        recorder = live.running.daemon.cameras.recorders()["in-big"]
        frames_then = recorder.status.video_packets
        deadline = time.monotonic() + 60
        while len(live.audit()) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        frames_now = recorder.status.video_packets
    finally:
        sock.close()
    record = live.audit()[-1]
    assert record.principal == "supervisor-1" and record.camera_id == "in-big"
    detail = json.loads(record.detail_json)
    assert detail["ended"] == "browser read nothing for 2s ([web] send_timeout)", detail
    # Recording went on at the camera's rate meanwhile (25 fps; nothing waited for the viewer).
    elapsed_s = (record.end_ns - record.start_ns) / 1e9
    assert frames_now - frames_then >= 20 * (elapsed_s - 1)
    assert recorder.status.state.value == "recording"


async def test_a_new_stream_configuration_brings_a_new_codec_message_and_init_segment(live: Live) -> None:
    bigger = make_clip("/tmp/vmsd-test-clips", codec="h264", width=480, height=272, seconds=10, gop_s=1)
    url = live.ws("in-switch")
    async with aiohttp.ClientSession() as client, client.ws_connect(url, headers=bearer("viewer")) as ws:
        first = json.loads((await ws.receive(timeout=FIRST_MESSAGE_S)).data)
        assert (first["width"], first["height"]) == (320, 240)
        live.simulator.switch("in-switch", bigger)  # new SPS in-band from its next keyframe
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = await ws.receive(timeout=5)
            if message.type == aiohttp.WSMsgType.TEXT:
                break
        else:
            raise AssertionError("no new configuration within 20 s of the switch")
        second = json.loads(message.data)
        assert second["type"] == "config" and (second["width"], second["height"]) == (480, 272)
        assert second["generation"] > first["generation"]
        init = await ws.receive(timeout=5)
        assert [kind for kind, _, _ in boxes(init.data)] == [b"ftyp", b"moov"]
        fragment = await ws.receive(timeout=5)
        assert sample_flags(fragment.data) == 0x02000000  # the new configuration starts on a keyframe


async def test_logging_out_ends_the_live_stream_of_that_session(live: Live) -> None:
    before = len(live.audit())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(f"{live.url}/api/v1/session", json={"token": "test-token-for-viewer"}) as response:
            csrf = (await response.json())["csrf"]
        async with client.ws_connect(live.ws("in-cam"), origin=live.url) as ws:
            assert json.loads((await ws.receive(timeout=FIRST_MESSAGE_S)).data)["type"] == "config"
            async with client.delete(f"{live.url}/api/v1/session", headers={"X-CSRF-Token": csrf}) as response:
                assert response.status == 200
            message = await ws.receive(timeout=5)
            deadline = time.monotonic() + 5
            while message.type == aiohttp.WSMsgType.BINARY and time.monotonic() < deadline:
                message = await ws.receive(timeout=5)  # fragments already on their way
            assert json.loads(message.data) == {
                "type": "error",
                "kind": "UNAUTHENTICATED",
                "message": "the session ended: log in again",
            }
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
    deadline = time.monotonic() + 10
    while len(live.audit()) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert json.loads(live.audit()[-1].detail_json)["ended"] == "the session ended (logout, expiry or a revoked token)"


PLAY_LIVE = """async ([url, token]) => {
  await fetch("/api/v1/session", {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify({token})});
  const video = document.createElement("video");
  video.muted = true;
  document.body.appendChild(video);
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise(resolve => source.addEventListener("sourceopen", resolve, {once: true}));
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const pending = [];
  let buffer = null, codec = null;
  const feed = () => {
    if (buffer && !buffer.updating && pending.length) buffer.appendBuffer(pending.shift());
  };
  socket.onmessage = event => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.type === "config") {
        codec = message.mime;
        if (!MediaSource.isTypeSupported(codec)) throw new Error("unsupported " + codec);
        buffer = source.addSourceBuffer(codec);
        buffer.addEventListener("updateend", feed);
      }
      return;
    }
    pending.push(event.data);
    feed();
  };
  const deadline = Date.now() + 20000;
  while (!buffer || buffer.buffered.length === 0) {
    if (Date.now() > deadline || video.error) {
      return {codec, error: "nothing buffered: " + (video.error && video.error.message)};
    }
    await new Promise(r => setTimeout(r, 50));
  }
  video.currentTime = buffer.buffered.start(0);
  await video.play();
  const started = video.currentTime;
  await new Promise(r => setTimeout(r, 3000));
  socket.close();
  return {codec, started, now: video.currentTime, frames: video.getVideoPlaybackQuality().totalVideoFrames,
          ranges: buffer.buffered.length, error: video.error && video.error.message};
}"""


async def test_chromium_plays_the_live_websocket_through_media_source_extensions(live: Live) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(live.url + "/")  # the console's origin: the socket's Origin matches
            ws_url = live.ws("in-cam").replace("http://", "ws://")
            played = await page.evaluate(PLAY_LIVE, [ws_url, "test-token-for-viewer"])
        finally:
            await browser.close()
    assert errors == [] and played["error"] is None, (errors, played)
    assert played["codec"].startswith('video/mp4; codecs="avc1.')
    assert played["now"] - played["started"] > 2  # it played on for 3 s of wall time
    assert played["frames"] >= 50 and played["ranges"] == 1  # 25 fps, one contiguous buffered range
    # tfdt is wall-clock time: the picture shown is from the last few seconds.
    assert abs(played["now"] - time.time()) < 10
