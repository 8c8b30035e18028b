"""SIGHUP re-reads [auth] tokens for both transports and ends the browser sessions of the tokens
it removed or changed — against the real `vmsd run`, signalled as an operator would."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import aiohttp
import grpc

from tests.support.daemon import DaemonProcess, write_config
from tests.support.rpc import token
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc


def _tokens(*roles: str, cameras: str = '["*"]') -> str:
    return "".join(
        f'[[auth.tokens]]\nname = "{role}-1"\nsha256 = "{hashlib.sha256(token(role).encode()).hexdigest()}"\n'
        f'role = "{role}"\ncameras = {cameras}\n'
        for role in roles
    )


def _port(daemon: DaemonProcess, event: str) -> int:
    return int(next(json.loads(line)["port"] for line in daemon.log().splitlines() if f'"{event}"' in line))


def _grpc_status(port: int, role: str) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = cameras_pb2_grpc.CameraServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            stub.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=[("authorization", f"Bearer {token(role)}")])
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _browser() -> aiohttp.ClientSession:
    """A client with its own cookie jar (aiohttp's refuses IP hosts unless unsafe)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(client: aiohttp.ClientSession, url: str, role: str) -> None:
    async with client.post(f"{url}/api/v1/session", json={"token": token(role)}) as response:
        assert response.status == 200


async def _whoami(client: aiohttp.ClientSession, url: str) -> int:
    async with client.get(f"{url}/api/v1/session") as response:
        return response.status


async def test_sighup_revokes_tokens_on_both_transports_and_ends_their_sessions(tmp_path: Path) -> None:
    web = '[web]\nlisten = "127.0.0.1:0"\n'
    config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", {}, extra=web + _tokens("viewer", "operator"))
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"web_started"', timeout=60)
        url, grpc_port = f"http://127.0.0.1:{_port(daemon, 'web_started')}", _port(daemon, "grpc_listening")
        async with _browser() as viewer, _browser() as operator:
            await _login(viewer, url, "viewer")
            await _login(operator, url, "operator")
            assert _grpc_status(grpc_port, "viewer") == grpc.StatusCode.OK

            # A file that does not load changes nothing.
            config.write_text(config.read_text() + "\n[web.nonsense]\n")
            daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            daemon.wait_for_log('"reload_failed"')
            assert (await _whoami(viewer, url), await _whoami(operator, url)) == (200, 200)

            # The viewer's token removed; the operator's kept as it was.
            write_config(config, tmp_path / "root", {}, extra=web + _tokens("operator"))
            daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            daemon.wait_for_log('"tokens_reloaded"')
            assert await _whoami(viewer, url) == 401
            assert await _whoami(operator, url) == 200
            assert _grpc_status(grpc_port, "viewer") == grpc.StatusCode.UNAUTHENTICATED
            assert _grpc_status(grpc_port, "operator") == grpc.StatusCode.OK
            headers = {"Authorization": f"Bearer {token('viewer')}"}
            async with operator.get(f"{url}/api/v1/cameras", headers=headers) as response:
                assert response.status == 401

            # A token whose scope changed ends its sessions too (they carry the old scope).
            write_config(config, tmp_path / "root", {}, extra=web + _tokens("operator", cameras='["in-*"]'))
            daemon.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            daemon.wait_for_log('"tokens_reloaded"', count=2)
            assert await _whoami(operator, url) == 401
            await _login(operator, url, "operator")
            async with operator.get(f"{url}/api/v1/session") as response:
                assert (await response.json())["cameras"] == ["in-*"]
    finally:
        if daemon.alive():
            daemon.terminate()
    assert '"sessions_ended": 1' in daemon.log() or '"sessions_ended":1' in daemon.log()
