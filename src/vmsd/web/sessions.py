"""Browser sessions: server-side, in memory, ended by idle time, age, logout or revocation.

A login (POST /api/v1/session with a token: web/api/session.py) creates a `Session` holding the
token's principal; the browser gets only a random session id in the `vmsd_session` cookie
(HttpOnly, SameSite=Lax, Secure under TLS) and a CSRF token in the login answer, which it must
send as `X-CSRF-Token` with every mutation. Ids and CSRF tokens come from `secrets`; the store
keys sessions by the SHA-256 of the id, and neither ever reaches a log or an audit record.

A session ends after `session_idle` without a request, after `session_max` in any case, at
logout, when its token is no longer configured as it was (`end_revoked`, on reload) and at restart (the
store is memory only). Whoever holds a session's end callbacks (a live WebSocket) is told.
An open live stream is use of its session (a control-room grid that only watches makes no
requests for hours and must not be logged out for it), so the idle time counts from the last
stream's end; `session_max` still ends it. `sweep()` (every second, from the WebServer) ends
expired sessions even when no request comes, so their streams do not outlive them.

Also here: `check_websocket_origin`, the Origin rule for the live WebSocket (a cookie goes with
any WebSocket a page on another site opens; only the browser's Origin header tells them apart).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from vmsd.clock import Clock
from vmsd.config import TokenConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.services.access import Principal

log = get_logger(component="web")

COOKIE = "vmsd_session"


@dataclass
class Session:
    principal: Principal
    # The configured token the login used: a reload that removes or changes it ends the session.
    token: TokenConfig
    csrf: str
    created_mono_ns: int
    last_used_mono_ns: int
    # Called once when the session ends (logout, expiry, revocation): live streams close.
    on_end: list[Callable[[], None]] = field(default_factory=list)
    # Live streams open now: while any is, the session is in use (never idle).
    watching: int = 0


def csrf_matches(session: Session, presented: str) -> bool:
    """Constant-time comparison of the X-CSRF-Token header with the session's token."""
    return hmac.compare_digest(session.csrf.encode(), presented.encode())


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class SessionStore:
    """The live sessions. No I/O; event loop only."""

    def __init__(self, clock: Clock, idle_ns: int, max_ns: int) -> None:
        self._clock = clock
        self.idle_ns = idle_ns
        self.max_ns = max_ns
        self._sessions: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, principal: Principal, token: TokenConfig) -> tuple[str, Session]:
        """A new session for `principal` (logged in with `token`): (the id for the cookie, the session)."""
        now_ns = self._clock.mono_ns()
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, token, secrets.token_urlsafe(32), now_ns, now_ns)
        self._sessions[_key(session_id)] = session
        return session_id, session

    def lookup(self, session_id: str) -> Session | None:
        """The live session with this id (its idle timer restarted), or None: unknown, logged out
        or expired (an expired one is ended now)."""
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        now_ns = self._clock.mono_ns()
        if self._expired(session, now_ns):
            self._end(key, "expired")
            return None
        session.last_used_mono_ns = now_ns
        return session

    def _expired(self, session: Session, now_ns: int) -> bool:
        idle = session.watching == 0 and now_ns - session.last_used_mono_ns >= self.idle_ns
        return idle or now_ns - session.created_mono_ns >= self.max_ns

    def sweep(self) -> int:
        """End every expired session now (their live streams close); the number ended."""
        now_ns = self._clock.mono_ns()
        expired = [key for key, session in self._sessions.items() if self._expired(session, now_ns)]
        for key in expired:
            self._end(key, "expired")
        return len(expired)

    def stream_opened(self, session: Session) -> None:
        session.watching += 1

    def stream_closed(self, session: Session) -> None:
        """A live stream of the session ended: its idle time starts now (if it was the last)."""
        session.watching = max(0, session.watching - 1)
        session.last_used_mono_ns = self._clock.mono_ns()

    def end(self, session_id: str) -> Session | None:
        """Log out: the session ends now (None when there was none)."""
        return self._end(_key(session_id), "logged_out")

    def end_revoked(self, tokens: list[TokenConfig]) -> int:
        """End every session whose token is not among `tokens` exactly (a reload removed it, or
        changed its digest, role or cameras); the number ended."""
        revoked = [key for key, s in self._sessions.items() if s.token not in tokens]
        for key in revoked:
            self._end(key, "token_revoked")
        return len(revoked)

    def end_all(self) -> None:
        for key in list(self._sessions):
            self._end(key, "shutdown")

    def _end(self, key: bytes, why: str) -> Session | None:
        session = self._sessions.pop(key, None)
        if session is None:
            return None
        log.info("web_session_ended", principal=session.principal.name, why=why)
        for callback in session.on_end:
            try:
                callback()
            except Exception:
                log.exception("web_session_end_callback_failed", principal=session.principal.name)
        return session


def check_websocket_origin(request: web.Request) -> None:
    """PERMISSION_DENIED unless the WebSocket's Origin is this server's own scheme://host[:port].

    Browsers always send Origin on a WebSocket handshake, and send the session cookie whatever
    page opened it, so a foreign Origin is another site using the viewer's session. A client
    without Origin is not a browser; it is let through only with a bearer token (no cookie to
    ride on)."""
    origin = request.headers.get("Origin")
    if origin is None:
        if request.headers.get("Authorization") is None:
            raise VmsdError(ErrorKind.PERMISSION_DENIED, "a WebSocket without an Origin header needs a bearer token")
        return
    expected = f"{request.scheme}://{request.host}"
    if origin.rstrip("/").lower() != expected.lower():
        raise VmsdError(
            ErrorKind.PERMISSION_DENIED, f"cross-origin WebSocket refused: Origin {origin!r} is not {expected!r}"
        )
