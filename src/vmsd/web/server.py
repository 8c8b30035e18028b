"""The web server: aiohttp on the daemon's event loop, serving the console and the JSON API.

Off unless `[web] listen` is set. TLS from `[web] tls` (the same certificate files as gRPC may be
used); a client certificate is required when `client_ca` is set. aiohttp's access log is off:
the audit trail records what matters, and URLs or headers must not carry credentials into logs.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web

from vmsd.config import Config, TlsConfig
from vmsd.log import get_logger
from vmsd.services.authn import Authenticator
from vmsd.services.registry import Services
from vmsd.web.context import DEPS, Deps, api_middleware
from vmsd.web.routes import add_all_routes
from vmsd.web.sessions import SessionStore

log = get_logger(component="web")

SHUTDOWN_GRACE_S = 5.0
# How often expired browser sessions are ended (and their live streams closed) without a request.
SWEEP_INTERVAL_S = 1.0
# Request bodies are small JSON documents (tokens, reasons, mask polygons).
MAX_BODY_BYTES = 1 << 20


def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """A server TLS context from [web] tls (reads the files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    if tls.client_ca is not None:
        context.load_verify_locations(tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class WebServer:
    """Owns the aiohttp app. `start()` binds (port 0: any free port, then in `port`); `aclose()` stops."""

    def __init__(self, config: Config, services: Services, authenticator: Authenticator) -> None:
        self._config = config
        web_config = config.web
        self.sessions = SessionStore(services.clock, web_config.session_idle_ns, web_config.session_max_ns)
        self.deps = Deps(
            config=config,
            services=services,
            sessions=self.sessions,
            authenticator=authenticator,
            tls=web_config.tls is not None,
        )
        self.app = web.Application(middlewares=[api_middleware], client_max_size=MAX_BODY_BYTES)
        self.app[DEPS] = self.deps
        add_all_routes(self.app, self.deps)
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        address = self._config.web.address
        if address is None:
            raise ValueError("[web] listen is not set")
        host, port = address
        tls = self._config.web.tls
        context = ssl_context(tls) if tls is not None else None
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._sweeper = asyncio.create_task(self._sweep(), name="web-session-sweep")
        bound = runner.addresses[0]
        self.port = int(bound[1])
        scheme = "https" if tls is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "web_started",
            listen=self._config.web.listen,
            port=self.port,
            tls=tls is not None,
            url=f"{scheme}://{shown}:{self.port}/",
        )

    async def _sweep(self) -> None:
        # Expiry is otherwise noticed only when the session is next used: a grid left open on a
        # session that expired would keep its live streams.
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            self.sessions.sweep()

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        self.sessions.end_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
