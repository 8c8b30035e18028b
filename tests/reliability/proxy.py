"""A TCP proxy on loopback that can turn into a black hole: the half-open camera.

`blackhole()` keeps every connection open but forwards nothing either way (what a client sees when
the camera or a NAT on the path died without a FIN or RST), and accepts new connections without
ever answering. `restore()` makes new connections work again; the black-holed ones stay silent
until the client gives up on them, as a dead peer's would. Threads only; stdlib only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class BlackholeProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._generation = 0  # connections accepted under an older generation stay silent
        self._holed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True, name="blackhole-accept").start()

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def blackhole(self) -> None:
        with self._lock:
            self._holed = True
            self._generation += 1

    def restore(self) -> int:
        """Serve new connections again; returns time.time_ns() of the moment it did."""
        with self._lock:
            self._holed = False
            self._generation += 1
        return time.time_ns()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                generation, holed = self._generation, self._holed
                self._sockets.append(client)
            if holed:
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, generation), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket, generation: int) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                with self._lock:
                    silent = self._generation != generation
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        if silent:  # a dead peer never says goodbye; keep the client's side open
                            pair.pop(s, None)
                            continue
                        return
                    if not silent:
                        pair[s].sendall(data)
                if silent and upstream in pair:
                    upstream.close()  # the camera side is gone; the client's socket stays open
                    pair.pop(upstream, None)
                if not pair:
                    return
        except OSError:
            return
