"""Webhooks against a real daemon and a receiver on loopback: signed deliveries, and a receiver
that was down gets what it missed once it is back (issue #17)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.rpc import RunningDaemon, make_config
from tests.support.simulator import free_port
from vmsd.config import WebhookConfig
from vmsd.errors import VmsdError
from vmsd.events.kinds import EventKind

SECRET = b"webhook-secret-1"


class Receiver:
    """An HTTP server on 127.0.0.1:port recording each POST's body and signature header."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[bytes, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the http.server protocol
                data = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((data, self.headers.get("X-Vmsd-Signature", "")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(data) for data, _ in self.received]


def _config(tmp_path: Path, port: int) -> Any:
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_bytes(SECRET + b"\n")
    config = make_config(tmp_path / "root", cameras={})
    hook = WebhookConfig.model_validate(
        {"url": f"http://127.0.0.1:{port}/vmsd", "kinds": ["disk_low", "hold_added"], "secret_file": str(secret_file)}
    )
    return config.model_copy(update={"events": config.events.model_copy(update={"webhooks": [hook]})})


def _wait(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(free_port()).start()
    yield running
    running.stop()


def test_deliveries_are_signed_and_of_the_kinds_asked_for(tmp_path: Path, receiver: Receiver) -> None:
    running = RunningDaemon(_config(tmp_path, receiver.port))
    try:
        bus = running.daemon.events
        bus.publish(EventKind.CAMERA_CONNECTED, "cam", video_codec="h264")  # not a kind asked for
        bus.publish(EventKind.DISK_LOW, alarm="disk_pressure", state="raised")
        _wait(lambda: len(receiver.received) >= 1)
    finally:
        running.stop()
    ((data, signed),) = receiver.received
    assert signed == "sha256=" + hmac.new(SECRET, data, hashlib.sha256).hexdigest()
    event = json.loads(data)
    assert (event["kind"], event["recorder_id"], event["fields"]["alarm"]) == ("disk_low", "rpc-test", "disk_pressure")
    assert event["seq"] == 2


def test_a_receiver_that_was_down_gets_every_event_after_it_returns(tmp_path: Path) -> None:
    port = free_port()
    running = RunningDaemon(_config(tmp_path, port))
    receiver = Receiver(port)
    try:
        for i in range(3):
            running.daemon.events.publish(EventKind.DISK_LOW, alarm="disk_pressure", state=f"n{i}")
        (webhook,) = running.daemon.webhooks
        _wait(lambda: webhook.status.failures >= 2)  # nobody listening: retried with backoff
        receiver.start()
        _wait(lambda: len(receiver.received) >= 3)
        running.daemon.events.publish(EventKind.DISK_LOW, alarm="disk_pressure", state="n3")
        _wait(lambda: len(receiver.received) >= 4)
    finally:
        running.stop()
        receiver.stop()
    assert [e["fields"]["state"] for e in receiver.events()] == ["n0", "n1", "n2", "n3"]
    assert [e["seq"] for e in receiver.events()] == [1, 2, 3, 4]
    assert webhook.status.delivered == 4 and "refused" in webhook.status.last_error.lower()


def test_a_missing_secret_file_stops_the_start(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port())
    (tmp_path / "webhook.secret").unlink()
    with pytest.raises(VmsdError, match=r"secret_file .*webhook.secret.*cannot read it"):
        RunningDaemon(config)


def test_a_malformed_answer_is_a_failed_try_and_the_event_is_delivered_later(tmp_path: Path) -> None:
    """One answer that is not HTTP at all (http.client.BadStatusLine) must not end the webhook."""
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    running = RunningDaemon(_config(tmp_path, port))
    receiver = Receiver(port)
    try:
        running.daemon.events.publish(EventKind.DISK_LOW, alarm="disk_pressure", state="n0")
        connection, _ = listener.accept()  # the first try: answered with garbage
        connection.recv(65536)
        connection.sendall(b"garbage\r\n\r\n")
        connection.close()
        listener.close()
        (webhook,) = running.daemon.webhooks
        _wait(lambda: webhook.status.failures >= 1)
        receiver.start()
        _wait(lambda: len(receiver.received) >= 1)
    finally:
        running.stop()
        receiver.stop()
        listener.close()
    assert [e["fields"]["state"] for e in receiver.events()] == ["n0"]
    assert webhook.status.delivered == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:80a/", "http:///path", "http://127.0.0.1:99999/"])
def test_a_webhook_url_without_a_usable_host_and_port_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match=r"port|host"):
        WebhookConfig.model_validate({"url": url, "secret_file": str(tmp_path / "s")})
