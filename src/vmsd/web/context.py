"""Per-request context: who is calling, what the request touched, errors, audit and headers.

Every request under /api/ passes through `api_middleware`:
- the principal comes from `Authorization: Bearer TOKEN` (integrators; no CSRF then) or from the
  `vmsd_session` cookie (browsers; every mutation must carry `X-CSRF-Token`, web/sessions.py);
- the handler gets a `RequestContext` (an `Activity`, like gRPC's `Call`) from `context(request)`
  and calls the same services with the same principal;
- a `VmsdError` becomes `{"error": {"kind", "message"}}` with the HTTP status of its kind;
  anything else is logged with its traceback and answered 500 with a generic message;
- when the request ends its audit record is written by the transport-neutral `CallAudit`
  (services/calls.py): audited requests and every denial, with action `METHOD /route`;
- API answers get `Cache-Control: no-store`; every answer gets the security headers (CSP,
  X-Frame-Options, nosniff, Referrer-Policy).
Credentials (tokens, session ids) never reach logs, errors or answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vmsd.config import Config
from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.authn import Authenticator
from vmsd.services.registry import Services
from vmsd.times import parse_time
from vmsd.web.sessions import COOKIE, Session, SessionStore, csrf_matches

log = get_logger(component="web")

API_PREFIX = "/api/"
MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Logging in needs no CSRF token: there is no session yet (and a stale cookie must not block it).
_LOGIN = ("POST", "/api/v1/session")

STATUS_FOR_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.DATA_LOSS: 500,
    ErrorKind.INTERNAL: 500,
}
# aiohttp's own refusals (no such route, wrong method, body too large) in the API's words.
_KIND_FOR_STATUS = {404: ErrorKind.NOT_FOUND, 405: ErrorKind.INVALID_ARGUMENT, 413: ErrorKind.INVALID_ARGUMENT}

# The console loads only its own files; MSE plays from blob: URLs and stills may be data: URLs;
# the live WebSocket is same-origin ('self' covers ws:/wss: of this host in current browsers).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; media-src 'self' blob: data:; img-src 'self' blob: data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Deps:
    """What the API modules need, built once by the WebServer."""

    config: Config
    services: Services
    sessions: SessionStore
    authenticator: Authenticator
    tls: bool


@dataclass
class RequestContext(Activity):
    """One API request: its action (`METHOD /route`), peer and principal, and what it touched."""

    action: str = ""
    peer: str = ""
    principal: Principal | None = None
    # The session the request came with, and its id (None: bearer token or no credentials).
    session: Session | None = None
    session_id: str | None = None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise VmsdError(
                ErrorKind.UNAUTHENTICATED,
                "log in first (POST /api/v1/session) or send 'Authorization: Bearer <token>'",
            )
        return self.principal


_CONTEXT = web.RequestKey("vmsd_context", RequestContext)
DEPS = web.AppKey("vmsd_deps", Deps)


def context(request: web.Request) -> RequestContext:
    """The request's context (set by api_middleware for every /api/ request)."""
    return request[_CONTEXT]


def peer_of(request: web.Request) -> str:
    """The client address as gRPC writes it ('ipv4:10.0.0.7:51234', 'ipv6:[::1]:5'), so audit
    records and denial bursts read alike for both transports."""
    peername = request.transport.get_extra_info("peername") if request.transport is not None else None
    if not peername:
        return ""
    host, port = peername[0], peername[1]
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def error_response(kind: ErrorKind, message: str, status: int | None = None) -> web.Response:
    return web.json_response(
        {"error": {"kind": kind.value, "message": message}}, status=status or STATUS_FOR_KIND[kind]
    )


def _action(request: web.Request) -> str:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    return f"{request.method} {route}"


def _authenticate(request: web.Request, deps: Deps, ctx: RequestContext) -> None:
    """Set ctx.principal from the bearer token or the session cookie; refuse a cookie mutation
    without the session's CSRF token."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        ctx.principal = deps.authenticator.authenticate(authorization, ctx.peer)
        return
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return
    session = deps.sessions.lookup(session_id)
    if session is None:
        return  # expired or logged out: handlers that need a principal answer 401
    ctx.principal = dataclasses.replace(session.principal, peer=ctx.peer)
    ctx.session, ctx.session_id = session, session_id
    mutation = request.method in MUTATIONS and (request.method, request.path) != _LOGIN
    if mutation and not csrf_matches(session, request.headers.get("X-CSRF-Token", "")):
        raise VmsdError(
            ErrorKind.PERMISSION_DENIED, "this change needs the session's CSRF token in the X-CSRF-Token header"
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        try:
            response = await handler(request)
        except web.HTTPException as error:  # a missing page or file: aiohttp's own answer
            error.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response
    deps = request.app[DEPS]
    started_ns = time.monotonic_ns()
    ctx = RequestContext(action=_action(request), peer=peer_of(request))
    request[_CONTEXT] = ctx
    outcome, message = "OK", ""
    try:
        try:
            _authenticate(request, deps, ctx)
            response = await handler(request)
        except VmsdError as error:
            outcome, message = error.kind.value, error.message
            response = error_response(error.kind, error.message)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            kind = _KIND_FOR_STATUS.get(error.status, ErrorKind.INVALID_ARGUMENT)
            outcome, message = kind.value, f"{error.reason}: {request.method} {request.path}"
            response = error_response(kind, message, error.status)
        except asyncio.CancelledError:
            outcome = "CANCELLED"
            raise
        except ConnectionError:
            # The client went away mid-answer (a live tile closed during the WebSocket handshake, a
            # download cancelled): nothing to answer and nothing broken on our side; aiohttp drops
            # the connection quietly. Audited as cancelled, not logged as an internal error.
            outcome, message = "CANCELLED", "the client went away"
            raise
        except Exception:
            log.exception("web_request_failed", action=ctx.action)
            outcome, message = ErrorKind.INTERNAL.value, "internal error"
            response = error_response(ErrorKind.INTERNAL, "internal error (logged by the recorder)")
    finally:
        await deps.services.calls.finish(
            ctx.action, ctx.principal, ctx.peer, ctx, outcome, time.monotonic_ns() - started_ns, message
        )
    if not response.prepared:
        response.headers["Cache-Control"] = "no-store"
        response.headers.update(SECURITY_HEADERS)
    return response


# -- helpers for handlers -------------------------------------------------------------------


def ns(value: int) -> str:
    """int64 nanoseconds travel as decimal strings (a JS number loses precision past 2**53)."""
    return str(value)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; INVALID_ARGUMENT saying what is wrong with it.

    The body must be sent as application/json: a cross-site HTML form cannot send that type
    without a CORS preflight, which this server never grants."""
    if request.content_type != "application/json":
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, "the body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError) as error:
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, "the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    """A string field of a JSON body ("" when absent and not required)."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"field {name!r} is required")
        return ""
    if not isinstance(value, str):
        raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"field {name!r} must be a string")
    return value


def time_field(body: dict[str, Any], name: str, now_ns: int) -> int:
    """A required time field: every form vmsd.times.parse_time takes (strings), or an integer of ns."""
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value:
        raise VmsdError(
            ErrorKind.INVALID_ARGUMENT, f"field {name!r} is required: a time such as '2026-11-24T10:00:00Z' or '-5m'"
        )
    return parse_time(value, now_ns, name=f"field {name!r}")


def query_time(request: web.Request, name: str, now_ns: int, default: str | None = None) -> int:
    """A time from the query string (`?from=-1h`); required unless a default is given."""
    value = request.query.get(name, default)
    if not value:
        raise VmsdError(
            ErrorKind.INVALID_ARGUMENT, f"query parameter {name!r} is required: a time such as '-1h' or ISO-8601"
        )
    return parse_time(value, now_ns, name=f"query parameter {name!r}")
