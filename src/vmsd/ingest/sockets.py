"""Finding and shutting down a camera session's TCP connection from another thread.

Why: FFmpeg's RTSP demuxer can block inside one read for as long as a camera keeps the session
alive (RTCP, keep-alives) without sending media, and PyAV offers no public way to interrupt a
blocked read (its timeout is not reliable in that state — measured with the simulator). Shutting
the socket down makes the blocked read return at once with an error; the session then ends
with a `stall` gap and the recorder reconnects.

The sockets are found through /proc (Linux): those of this process whose peer is the camera's
address and that appeared while the session was being opened.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path


def _peer_hex(host: str, port: int) -> set[str]:
    """The camera's address as /proc/net/tcp{,6} writes remote addresses."""
    forms: set[str] = set()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return forms
    for family, _type, _proto, _name, sockaddr in infos:
        packed = socket.inet_pton(family, str(sockaddr[0]))
        if family == socket.AF_INET:
            forms.add(f"{struct.unpack('<I', packed)[0]:08X}:{port:04X}")
            mapped = b"\0" * 10 + b"\xff\xff" + packed  # an IPv4 peer of an IPv6 socket
            forms.add("".join(f"{w:08X}" for w in struct.unpack("<4I", mapped)) + f":{port:04X}")
        else:
            forms.add("".join(f"{w:08X}" for w in struct.unpack("<4I", packed)) + f":{port:04X}")
    return forms


def _socket_inodes_to(peers: set[str]) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[2] in peers:
                inodes.add(fields[9])
    return inodes


def process_sockets() -> dict[str, int]:
    """socket inode → fd, for this process."""
    found: dict[str, int] = {}
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for entry in entries:
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found[target[8:-1]] = int(entry)
    return found


def new_sockets_to(host: str, port: int, before: set[str]) -> set[str]:
    """Inodes of this process's TCP sockets to host:port that were not in `before`."""
    mine = process_sockets()
    return {inode for inode in _socket_inodes_to(_peer_hex(host, port)) if inode in mine and inode not in before}


# struct tcp_info (linux/tcp.h): tcpi_last_data_recv, milliseconds since data last arrived.
_TCP_INFO_BYTES = 104
_LAST_DATA_RECV_OFFSET = 52


def quiet_sockets(inodes: set[str], quiet_ms: int) -> set[str]:
    """Those of these sockets that have received no data for at least `quiet_ms`.

    Sessions opened at the same moment to the same host:port (cameras of one encoder, or every
    camera of a recorder starting up) cannot tell their sockets apart by address; a stalled
    session's connection is quiet, a recording camera's receives every frame."""
    quiet: set[str] = set()
    for inode, fd in process_sockets().items():
        if inode not in inodes:
            continue
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_BYTES)
        except OSError:
            continue  # not TCP, or gone
        finally:
            sock.close()
        if struct.unpack_from("I", info, _LAST_DATA_RECV_OFFSET)[0] >= quiet_ms:
            quiet.add(inode)
    return quiet


def shutdown_sockets(inodes: set[str]) -> int:
    """Shut down (not close: the fd stays FFmpeg's) the sockets with these inodes; returns how many."""
    done = 0
    for inode, fd in process_sockets().items():
        if inode not in inodes:
            continue
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            sock.shutdown(socket.SHUT_RDWR)
            done += 1
        except OSError:
            pass  # already gone
        finally:
            sock.close()
    return done
