"""Telling a stalled session's TCP connection from a live one's when both go to one host:port."""

from __future__ import annotations

import os
import socket
import threading
import time

from vmsd.ingest.sockets import process_sockets, quiet_sockets, shutdown_sockets


def _inode(sock: socket.socket) -> str:
    return str(os.fstat(sock.fileno()).st_ino)


def test_only_the_quiet_connection_to_a_shared_address_is_picked_and_shut_down() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    live_client = socket.create_connection(("127.0.0.1", port))
    live_peer, _ = server.accept()
    quiet_client = socket.create_connection(("127.0.0.1", port))
    quiet_peer, _ = server.accept()
    stop = threading.Event()

    def camera_sending_frames() -> None:
        while not stop.is_set():
            try:
                live_peer.sendall(b"x" * 1000)
            except OSError:
                return  # the test has closed the sockets
            time.sleep(0.04)  # 25 fps

    sender = threading.Thread(target=camera_sending_frames, daemon=True)
    sender.start()
    try:
        quiet_peer.sendall(b"rtsp reply")  # the quiet one got data once, then nothing
        quiet_client.recv(100)
        time.sleep(0.8)
        both = {_inode(live_client), _inode(quiet_client)}
        assert both <= set(process_sockets())
        assert quiet_sockets(both, 500) == {_inode(quiet_client)}
        assert shutdown_sockets(quiet_sockets(both, 500)) == 1
        assert quiet_client.recv(100) == b""  # shut down: a blocked read returns at once
        live_client.settimeout(2)
        assert live_client.recv(65536)  # the live camera's connection is untouched
        stop.set()
        sender.join(5)
    finally:
        stop.set()
        sender.join(5)
        for sock in (live_client, live_peer, quiet_client, quiet_peer, server):
            sock.close()
