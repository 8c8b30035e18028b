"""A minimal RTSP client (asyncio, RTP interleaved over TCP) for the relay benchmark's viewers.

Only what the benchmark needs: DESCRIBE, SETUP of the first video track, PLAY, then read
interleaved RTP and note, for every complete H.264 access unit (the RTP packet with the marker
bit), its arrival time and a key made of the unit's last bytes.  The last bytes of an access
unit are the same whatever relays it and however it is fragmented (an RTP payload carries the
NAL unit's own bytes; vmsd's relay carries the access unit in Annex-B), so the key matches the
same frame across the camera, vmsd's relay and the GStreamer relay.

Contract: ``watch()`` returns when ``seconds`` have passed since PLAY was answered or the server
closes; raises ``RuntimeError`` for an RTSP error status.  No keep-alives are sent (the runs
here are far shorter than the servers' 60 s session timeout).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import urllib.parse
from collections.abc import Callable

KEY_BYTES = 16
# H.264 NAL unit types: 5 = IDR slice, 7 = SPS; 24 = STAP-A, 28 = FU-A (RFC 6184).
_IDR, _SPS, _STAP_A, _FU_A = 5, 7, 24, 28


@dataclasses.dataclass
class Watched:
    """What one viewer saw.  Times are ``time.time_ns()`` (wall clock, shared by all processes)."""

    connect_ns: int = 0
    first_keyframe_ns: int | None = None  # the first complete keyframe access unit
    frames: list[tuple[bytes, int]] = dataclasses.field(default_factory=list)  # (key, arrival_ns)


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, url: str, cseq: int, headers: str = ""
) -> tuple[dict[str, str], bytes]:
    writer.write(f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\nUser-Agent: vmsd-bench\r\n{headers}\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise RuntimeError(f"{method} {url}: {lines[0]}")
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key:
            fields[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(fields.get("content-length", "0")))
    return fields, body


def video_control(sdp: str, base: str) -> str:
    """The absolute control URL of the first video media in ``sdp``."""
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=control:"):
            control = line[len("a=control:") :].strip()
            if re.match(r"^rtsp://", control):
                return control
            return urllib.parse.urljoin(base if base.endswith("/") else base + "/", control)
    raise RuntimeError("no video track in the SDP")


def _is_keyframe_start(payload: bytes) -> bool:
    nal = payload[0] & 0x1F
    if nal in (_IDR, _SPS):
        return True
    if nal == _FU_A and len(payload) > 1:
        return (payload[1] & 0x1F) == _IDR
    return nal == _STAP_A


async def watch(
    url: str, seconds: float, *, record_frames: bool = True, stop: Callable[[], bool] | None = None
) -> Watched:
    """One viewer: connect to ``url``, play for ``seconds`` (or until ``stop()`` is true, checked
    about every 100 ms), return what arrived when.  Without ``record_frames`` only the first
    keyframe's arrival is noted; the rest of the stream is read and discarded."""
    out = Watched(connect_ns=time.time_ns())
    reader, writer = await asyncio.open_connection(*urllib.parse.urlsplit(url)[1].rsplit(":", 1))
    try:
        fields, sdp = await _request(reader, writer, "DESCRIBE", url, 1, "Accept: application/sdp\r\n")
        base = fields.get("content-base", url)
        track = video_control(sdp.decode(errors="replace"), base)
        fields, _ = await _request(
            reader, writer, "SETUP", track, 2, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
        )
        session = fields["session"].split(";")[0]
        await _request(reader, writer, "PLAY", base, 3, f"Session: {session}\r\nRange: npt=0-\r\n")
        deadline = time.monotonic() + seconds

        async def hang_up() -> None:
            # Ending the read loop from outside keeps a timeout off every packet read.
            while time.monotonic() < deadline and not (stop is not None and stop()):
                await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            writer.transport.abort()

        watchdog = asyncio.create_task(hang_up())
        try:
            await _read_frames(reader, out, record_frames)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # hung up by the watchdog, or by the server
        finally:
            watchdog.cancel()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return out


async def _read_frames(reader: asyncio.StreamReader, out: Watched, record_frames: bool) -> None:
    keyframe_pending = False
    while True:
        marker = await reader.readexactly(4)
        if marker[0] != 0x24:  # '$': anything else is an RTSP message from the server
            await reader.readuntil(b"\r\n\r\n")
            continue
        data = await reader.readexactly(int.from_bytes(marker[2:4], "big"))
        if marker[1] != 0 or len(data) < 12:
            continue  # RTCP (channel 1)
        header_len = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:  # header extension
            header_len += 4 + 4 * int.from_bytes(data[header_len + 2 : header_len + 4], "big")
        payload = data[header_len:]
        if not payload:
            continue
        if out.first_keyframe_ns is None and _is_keyframe_start(payload):
            keyframe_pending = True
        if data[1] & 0x80:  # marker bit: the last packet of an access unit
            now_ns = time.time_ns()
            if keyframe_pending and out.first_keyframe_ns is None:
                out.first_keyframe_ns = now_ns
            if record_frames:
                out.frames.append((payload[-KEY_BYTES:], now_ns))
            elif out.first_keyframe_ns is not None:
                # Nothing more to note: keep reading (the server must still send everything)
                # but without parsing, so that a hundred viewers cost the client process little.
                while await reader.read(1 << 16):
                    pass
                return
