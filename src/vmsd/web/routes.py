"""The one route table: the console's pages and static files, and every API area's routes."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from vmsd.web.api import cameras, live, recordings, session
from vmsd.web.context import Deps

STATIC_DIR = Path(__file__).parent / "static"


def add_all_routes(app: web.Application, deps: Deps) -> None:
    session.add_routes(app, deps)
    cameras.add_routes(app, deps)
    recordings.add_routes(app, deps)
    live.add_routes(app, deps)
    add_static_routes(app)


def add_static_routes(app: web.Application) -> None:
    """The console: index.html at / and the package's static files under /static/."""

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
