"""UDP port pairs for RTP/RTCP: even/odd ports, only the camera's datagrams taken (udp.py)."""

from __future__ import annotations

import asyncio
import socket

from vmsd.ingest.rtsp.udp import PortPair, bind_port_pair


def test_port_pairs_are_even_and_odd_and_distinct() -> None:
    pairs = [bind_port_pair("127.0.0.1") for _ in range(5)]
    try:
        ports = [(a.getsockname()[1], b.getsockname()[1]) for a, b in pairs]
        assert all(rtp % 2 == 0 and rtcp == rtp + 1 for rtp, rtcp in ports)
        assert len({p for pair in ports for p in pair}) == 10
    finally:
        for a, b in pairs:
            a.close()
            b.close()


async def test_datagrams_from_the_camera_are_taken_and_others_dropped() -> None:
    got: list[tuple[bool, bytes]] = []
    camera = PortPair("127.0.0.1", lambda rtcp, data: got.append((rtcp, data)))
    stranger = PortPair("127.0.0.2", lambda rtcp, data: got.append((rtcp, data)))
    rtp_port, rtcp_port = await camera.open("127.0.0.1")
    other_ports = await stranger.open("127.0.0.1")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"rtp", ("127.0.0.1", rtp_port))
            s.sendto(b"rtcp", ("127.0.0.1", rtcp_port))
            s.sendto(b"not from the camera", ("127.0.0.1", other_ports[0]))
            for _ in range(500):  # up to 5 s on a loaded machine; loopback takes microseconds
                if len(got) == 2 and stranger.foreign == 1:
                    break
                await asyncio.sleep(0.01)
        assert got == [(False, b"rtp"), (True, b"rtcp")]
        assert (camera.foreign, stranger.foreign) == (0, 1)
    finally:
        camera.close()
        stranger.close()
