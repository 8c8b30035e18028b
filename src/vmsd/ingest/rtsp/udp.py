"""RTP and RTCP over UDP for the client: client port pairs and their datagram endpoints.

RFC 3550 §11: RTP on an even port, RTCP on the next one. The pair is bound before SETUP (the
ports go into the Transport header) on the address the RTSP connection uses, and only datagrams
from the camera's address are taken (anyone on the network can send to an open UDP port).
Python has no ``recvmmsg``: every datagram is one ``recvfrom`` and one callback, ~400 per second
for a 4 Mbit/s camera against ~50 reads over TCP (docs/design/native-ingest.md), which is why
the client asks for TCP unless told otherwise.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable

RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # a 4K keyframe arrives as one burst of datagrams
_ATTEMPTS = 50

DatagramSink = Callable[[bool, bytes], None]  # (is_rtcp, datagram)


def bind_port_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Two non-blocking UDP sockets bound to ``host`` on ports ``p`` (even) and ``p + 1``.
    Raises OSError when no pair is free after a number of tries."""
    for _ in range(_ATTEMPTS):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2 or port == 65535:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        for s in (rtp, rtcp):
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        return rtp, rtcp
    raise OSError(f"no free pair of UDP ports on {host} after {_ATTEMPTS} tries")


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, pair: PortPair, rtcp: bool) -> None:
        self.pair = pair
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] != self.pair.camera_host:
            self.pair.foreign += 1
            return
        self.pair.sink(self.rtcp, data)

    def error_received(self, exc: Exception) -> None:
        self.pair.errors += 1  # ICMP unreachable for a receiver report: nothing to do


class PortPair:
    """One track's RTP/RTCP sockets on the loop; ``sink(is_rtcp, datagram)`` gets what the
    camera sends. No I/O in the constructor: ``open`` binds, ``close`` closes."""

    def __init__(self, camera_host: str, sink: DatagramSink) -> None:
        self.camera_host = camera_host
        self.sink = sink
        self.ports: tuple[int, int] | None = None
        self.foreign = 0  # datagrams from other addresses, dropped
        self.errors = 0
        self._rtcp: asyncio.DatagramTransport | None = None
        self._transports: list[asyncio.BaseTransport] = []

    async def open(self, local_host: str) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = bind_port_pair(local_host)
        self.ports = (rtp_sock.getsockname()[1], rtcp_sock.getsockname()[1])
        for sock, is_rtcp in ((rtp_sock, False), (rtcp_sock, True)):
            transport, _ = await loop.create_datagram_endpoint(functools.partial(_Endpoint, self, is_rtcp), sock=sock)
            self._transports.append(transport)
            if is_rtcp:
                self._rtcp = transport
        return self.ports

    def send_rtcp(self, data: bytes, port: int) -> None:
        if self._rtcp is not None and not self._rtcp.is_closing():
            self._rtcp.sendto(data, (self.camera_host, port))

    def close(self) -> None:
        for t in self._transports:
            t.close()
        self._transports.clear()
        self._rtcp = None
