"""The web server in the real daemon: pages with security headers, static files, API errors."""

from __future__ import annotations

import aiohttp

from tests.support.web import Console, bearer


async def test_the_console_page_has_the_security_headers(console: Console, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{console.url}/") as response:
        assert response.status == 200
        assert "<html" in await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "media-src 'self' blob:" in csp and "connect-src 'self'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    async with client.get(f"{console.url}/static/index.html") as response:
        assert response.status == 200
        assert response.headers["X-Frame-Options"] == "DENY"
    async with client.get(f"{console.url}/static/../../config.py") as response:
        assert response.status in (403, 404)


async def test_an_unknown_api_path_is_a_json_404(console: Console, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{console.url}/api/v1/nothing-here", headers=bearer("admin")) as response:
        assert response.status == 404
        assert response.headers["Cache-Control"] == "no-store"
        assert (await response.json())["error"]["kind"] == "NOT_FOUND"
    async with client.put(f"{console.url}/api/v1/cameras", headers=bearer("admin")) as response:
        assert response.status == 405
        assert (await response.json())["error"]["kind"] == "INVALID_ARGUMENT"


async def test_a_missing_page_has_the_security_headers_too(console: Console, client: aiohttp.ClientSession) -> None:
    for path in ("/static/no-such-file.js", "/no-such-page"):
        async with client.get(f"{console.url}{path}") as response:
            assert response.status == 404
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
