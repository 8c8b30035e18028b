"""GET /api/v1/cameras/{camera_id}/live — live video over a WebSocket, as fMP4 for Media Source
Extensions (docs/http.md "Live video", docs/design/live.md).

Server → browser, in order (the browser sends nothing; what it sends is ignored):
- text `{"type": "config", "codec": "avc1.64001f", "mime": "video/mp4; codecs=\\"avc1.64001f\\"",
  "width": 1920, "height": 1080, "generation": 3}`, then the init segment (binary, `ftyp`+`moov`);
  again whenever the camera's stream configuration changes (new parameter sets, a reconnect);
- binary media fragments (`moof`+`mdat`), one video frame each, the first after an init segment a
  keyframe; `tfdt` is wall-clock time (90 kHz), so a gap in time is a gap in the footage;
- text `{"type": "missed", "frames": n, "total": t}` when this browser fell behind and the hub
  dropped whole GOPs for it (it then jumps ahead to a later keyframe);
- text `{"type": "error", "kind": …, "message": …}` just before the server closes: a stream
  browsers cannot be given (neither H.264 nor H.265), the relay ended (recorder stopped), or the
  session the socket was opened with ended (logout, expiry, revoked token). A browser that
  reads nothing for [web] send_timeout is cut off without one.

The same checks, limits and audit record as the gRPC relay (`LiveService.relay`): the request's
Activity records who, which camera, when, how long, bytes, frames and missed frames, and the
middleware writes it when the socket has closed. Refusals (cross-origin, out of scope, unknown
camera, limits) are HTTP answers before the upgrade, audited like any denial. Every fragment
is built once per frame for all viewers (`live_fragment`), and sent uncompressed: a
per-message deflate would be a per-viewer encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncGenerator

from aiohttp import WSMsgType, web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.ingest.fmp4 import LiveFormatError, LiveTrack, live_fragment, live_track
from vmsd.ingest.hub import VIDEO, RelayPacket, StreamConfig, encoded_once
from vmsd.log import get_logger
from vmsd.services.live import RelayItem
from vmsd.units import NS_PER_S
from vmsd.web.context import Deps, context
from vmsd.web.sessions import Session, SessionStore, check_websocket_origin

log = get_logger(component="web")

HEARTBEAT_S = 30.0  # ping an idle socket (a camera may be offline for long), to notice dead peers
CLOSE_WAIT_S = 2.0  # how long a closing handshake may take before the connection is cut
MAX_CLIENT_MESSAGE_BYTES = 4096  # the browser has nothing to say


def config_message(track: LiveTrack) -> str:
    return json.dumps(
        {
            "type": "config",
            "codec": track.codec,
            "mime": f'video/mp4; codecs="{track.codec}"',
            "width": track.width,
            "height": track.height,
            "generation": track.generation,
        }
    )


def error_message(kind: ErrorKind, message: str) -> str:
    return json.dumps({"type": "error", "kind": kind.value, "message": message})


class _Sender:
    """Sends one viewer's messages, and tells whether a send has been waiting too long."""

    def __init__(self, ws: web.WebSocketResponse, timeout_ns: int) -> None:
        self.ws = ws
        self.timeout_ns = timeout_ns
        # When the send under way began (0: none). The handler looks at it once a second rather
        # than arming a timer per frame: frames × viewers timers would cost more than the sends.
        self.sending_since_ns = 0

    async def send(self, data: bytes | str) -> None:
        self.sending_since_ns = time.monotonic_ns()
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)
        self.sending_since_ns = 0

    def stuck(self) -> bool:
        since = self.sending_since_ns
        return since != 0 and time.monotonic_ns() - since > self.timeout_ns


Ending = tuple[ErrorKind, str] | None  # why the relay ended on the server's side (None: it did not)


async def _pump(sender: _Sender, items: AsyncGenerator[RelayItem, None]) -> Ending:
    """Relay items → messages until the relay ends or the socket fails."""
    track: LiveTrack | None = None
    async with contextlib.aclosing(items) as relay:
        try:
            async for item in relay:
                if isinstance(item, RelayPacket):
                    if item.kind == VIDEO and track is not None and item.generation == track.generation:
                        await sender.send(live_fragment(track, item))
                elif isinstance(item, StreamConfig):
                    try:
                        track = live_track(item)
                    except LiveFormatError as error:
                        return ErrorKind.FAILED_PRECONDITION, str(error)
                    await sender.send(encoded_once(item, "websocket", functools.partial(config_message, track)))
                    await sender.send(track.init_segment)
                else:
                    await sender.send(json.dumps({"type": "missed", "frames": item.frames, "total": item.total}))
        except VmsdError as error:  # the hub ended the relay (recorder stopped, fell too far behind)
            return error.kind, error.message
        except ConnectionError:
            return None  # the browser went away while a message was being sent
    return ErrorKind.UNAVAILABLE, "relay ended"


def add_routes(app: web.Application, deps: Deps) -> None:
    live = deps.services.live
    send_timeout_ns = deps.config.web.send_timeout_ns

    async def live_video(request: web.Request) -> web.StreamResponse:
        ctx = context(request)
        camera_id = request.match_info["camera_id"]
        ctx.about(camera_id=camera_id)
        check_websocket_origin(request)
        principal = ctx.require_principal()
        ws = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S, compress=False, max_msg_size=MAX_CLIENT_MESSAGE_BYTES, timeout=CLOSE_WAIT_S
        )
        # Refusals answer before the upgrade; the viewer is counted once the stream is read.
        items = await live.relay(principal, ctx, camera_id, transport="websocket")
        if not ws.can_prepare(request).ok:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "this is a WebSocket endpoint: open it with new WebSocket(url)")
        await ws.prepare(request)
        ended = await _serve(request, ws, _Sender(ws, send_timeout_ns), items, ctx.session, deps.sessions)
        if ended.startswith("browser read nothing"):
            log.warning("live_send_timeout", camera_id=camera_id, principal=principal.name)
        ctx.touch(ended=ended)
        return ws

    app.router.add_get("/api/v1/cameras/{camera_id}/live", live_video)


async def _serve(
    request: web.Request,
    ws: web.WebSocketResponse,
    sender: _Sender,
    items: AsyncGenerator[RelayItem, None],
    session: Session | None,
    sessions: SessionStore,
) -> str:
    """Stream until the browser closes, stops reading, its session ends, or the relay ends; close
    the socket; return why it ended (for the audit record)."""
    pump = asyncio.create_task(_pump(sender, items))
    session_ended = False

    def end_with_session() -> None:  # logout, expiry or a revoked token ends the stream too
        nonlocal session_ended
        session_ended = True
        pump.cancel()

    if session is not None:
        session.on_end.append(end_with_session)
        sessions.stream_opened(session)  # watching is using the session (never idle)
    ended = "browser closed the socket"
    last_word: str | None = None
    try:
        while not pump.done():
            if sender.stuck():
                ended = f"browser read nothing for {sender.timeout_ns / NS_PER_S:g}s ([web] send_timeout)"
                break
            try:
                message = await ws.receive(timeout=1.0)  # nothing is expected: this notices a close
            except TimeoutError:
                continue
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
    finally:
        if session is not None:
            sessions.stream_closed(session)
            if end_with_session in session.on_end:
                session.on_end.remove(end_with_session)
        if not pump.done():
            pump.cancel()
        try:
            outcome = await pump
        except asyncio.CancelledError:
            if _cancelled_itself():
                raise
            outcome = None  # the pump was cancelled (above, or by the session's end)
        if outcome is not None:
            ended = f"{outcome[0].value}: {outcome[1]}"
            last_word = error_message(*outcome)
        if session_ended:
            ended = "the session ended (logout, expiry or a revoked token)"
            last_word = error_message(ErrorKind.UNAUTHENTICATED, "the session ended: log in again")
        if sender.stuck():
            _cut(request)  # it reads nothing: a closing handshake would wait for it too
        elif not ws.closed:
            await _close(request, ws, last_word)
    return ended


async def _close(request: web.Request, ws: web.WebSocketResponse, last_word: str | None) -> None:
    """Close, after a last text message if any; bounded, since the browser may not be reading."""
    try:
        async with asyncio.timeout(CLOSE_WAIT_S):
            if last_word is not None:
                await ws.send_str(last_word)
            await ws.close(code=1000 if last_word is None else 1011)
    except (TimeoutError, ConnectionError):
        _cut(request)
    except asyncio.CancelledError:
        # The pump, cancelled while it waited for the socket to drain, cancels the drain waiter it
        # shares with this close; only a cancellation of this handler itself is passed on.
        if _cancelled_itself():
            raise
        _cut(request)


def _cancelled_itself() -> bool:
    """Whether the running task (the handler) is being cancelled, e.g. at shutdown."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _cut(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
