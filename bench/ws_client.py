"""A live-video WebSocket viewer for the benchmarks: what a browser tile receives, without the
browser (the client process must stay light next to 100 of them).

    await watch_websocket("ws://127.0.0.1:8080/api/v1/cameras/cam/live", token, seconds=20)

It reads the codec message, the init segment and then one fragment per frame; the first
fragment's arrival is the first keyframe (the server starts every viewer on one). With
``record_frames`` each fragment's last ``KEY_BYTES`` (the access unit's last bytes, as
rtsp_client keys frames) and arrival time are kept, so latency can be matched against a
reference viewer on the camera itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import aiohttp

from bench.rtsp_client import KEY_BYTES, Watched


async def watch_websocket(
    url: str,
    token: str,
    seconds: float,
    *,
    record_frames: bool = True,
    stop: Callable[[], bool] | None = None,
) -> Watched:
    """Watch for ``seconds`` (or until ``stop()``); raises on a refused or broken socket."""
    out = Watched(connect_ns=time.time_ns())
    deadline = time.monotonic() + seconds
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}, compress=0, max_msg_size=0) as ws,
    ):
        init_seen = False
        while time.monotonic() < deadline and not (stop is not None and stop()):
            try:
                message = await ws.receive(timeout=1)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                if not init_seen:  # ftyp+moov
                    init_seen = True
                    continue
                now_ns = time.time_ns()
                if out.first_keyframe_ns is None:
                    out.first_keyframe_ns = now_ns
                if record_frames:
                    out.frames.append((message.data[-KEY_BYTES:], now_ns))
            elif message.type == aiohttp.WSMsgType.TEXT:
                if json.loads(message.data)["type"] == "config":
                    init_seen = False  # its init segment comes next
            else:
                raise RuntimeError(f"the live WebSocket ended: {message.type.name} {message.data!r}")
    return out
