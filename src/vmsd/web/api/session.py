"""Log in, who am I, log out: /api/v1/session (docs/http.md, "Sessions").

POST {"token"} authenticates the token exactly as gRPC does and answers the principal, its role,
its permissions, whether its role sees privacy masks, and the session's CSRF token; the session
id goes only into the cookie. Logins and logouts are audited; failed logins are denials (audited
through the denial aggregation, like a bad token on gRPC).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import ROLE_PERMISSIONS, Principal
from vmsd.web.context import Deps, context, json_body, text_field
from vmsd.web.sessions import COOKIE

PATH = "/api/v1/session"


def _who(deps: Deps, principal: Principal, csrf: str | None) -> dict[str, Any]:
    return {
        "principal": principal.name,
        "role": principal.role,
        "cameras": list(principal.camera_globs),
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS.get(principal.role, frozenset())),
        "masked": principal.role in deps.config.web.masked_roles,
        "csrf": csrf,
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    async def login(request: web.Request) -> web.Response:
        ctx = context(request)
        token = text_field(await json_body(request), "token", required=True)
        if not token.strip():
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "field 'token' is required")
        principal, configured = deps.authenticator.identify(f"Bearer {token}", ctx.peer)
        ctx.principal = principal
        ctx.touch()
        session_id, session = deps.sessions.create(principal, configured)
        response = web.json_response(_who(deps, principal, session.csrf))
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", path="/", secure=deps.tls)
        return response

    async def whoami(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        return web.json_response(_who(deps, principal, ctx.session.csrf if ctx.session else None))

    async def logout(request: web.Request) -> web.Response:
        ctx = context(request)
        ctx.require_principal()
        if ctx.session_id is None:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "no session to log out of (a bearer token has none)")
        deps.sessions.end(ctx.session_id)
        ctx.touch()
        response = web.json_response({})
        response.del_cookie(COOKIE, path="/")
        return response

    app.router.add_post(PATH, login)
    app.router.add_get(PATH, whoami)
    app.router.add_delete(PATH, logout)
