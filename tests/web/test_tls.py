"""The console over TLS with the same certificate files as gRPC: HTTPS only, Secure cookie."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import aiohttp
import pytest

from tests.support.daemon import DaemonProcess, write_config
from tests.support.pki import make_pki
from tests.support.rpc import make_config, token


async def test_https_with_the_grpc_certificate_and_a_secure_cookie(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    cert, key = pki / "server.pem", pki / "server.key"
    tokens = "".join(
        f'[[auth.tokens]]\nname = "{t.name}"\nsha256 = "{t.sha256}"\nrole = "{t.role}"\n'
        for t in make_config(tmp_path / "root").auth.tokens
    )
    tls = f'cert = "{cert}"\nkey = "{key}"\n'
    extra = f'[grpc.tls]\n{tls}[web]\nlisten = "127.0.0.1:0"\n[web.tls]\n{tls}{tokens}'
    config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", {}, extra=extra)
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"web_started"', timeout=60)
        started = next(json.loads(line) for line in daemon.log().splitlines() if '"web_started"' in line)
        assert started["tls"] is True and started["url"].startswith("https://127.0.0.1:")
        port = int(started["port"])
        trusted = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.post(
                f"https://127.0.0.1:{port}/api/v1/session", json={"token": token("viewer")}, ssl=trusted
            ) as response:
                assert response.status == 200
                cookie = response.headers["Set-Cookie"].lower()
            assert "; secure" in cookie and "httponly" in cookie
            with pytest.raises(aiohttp.ClientError):  # plaintext HTTP to the TLS port
                async with client.get(f"http://127.0.0.1:{port}/api/v1/session") as response:
                    await response.read()
                    assert response.status >= 400
                    raise aiohttp.ClientError("answered plaintext with an error")
    finally:
        if daemon.alive():
            daemon.terminate()
