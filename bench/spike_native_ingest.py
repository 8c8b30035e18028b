#!/usr/bin/env python3
"""Spike of issue #16 — native RTSP ingest: receive + depacketise + discard, against ffmpeg.

    python bench/spike_native_ingest.py --cameras 64 --seconds 60 [--warmup 10] [--loops 1]
        [--tick-ms 15] [--uvloop] [--json OUT.json]

The question (issue #16): does receiving RTP over TCP interleaved, depacketising H.264 into
access units and discarding them cost at most 0.35× of what one ``ffmpeg -c copy -f segment``
per camera costs to record the same cameras?  Only if it does is writing vmsd's own RTSP client
worth it (writing fMP4, hashing and the catalogue still have to fit in the remaining 0.25× of
the 0.6× goal).

What is compared, against one simulator process (``tests/support/simulator.py``, the stream of
``bench/common.py``: 1080p25 H.264 4 Mbit/s, GOP 2 s; every mount serves the same cached clip):

* the spike: one process (this file with ``--client``) holding N RTSP sessions.  Each session is
  opened with OPTIONS / DESCRIBE / SETUP (RTP/AVP/TCP interleaved=0-1) / PLAY on an asyncio loop;
  then the media sockets are drained in bulk: every ``--tick-ms`` a timer on the loop asks an
  epoll set which sockets are readable (one ``epoll_wait(0)``) and does one ``recv_into`` per
  readable socket into that camera's preallocated 1 MiB buffer (again only if it filled the
  buffer).  The interleaved framing is split in place, RTP headers parsed, and H.264 single NAL
  units, STAP-A and FU-A (RFC 6184) reassembled into access units (copying the NAL bytes, as a
  writer would need them), closed by the marker bit or a timestamp change, then discarded.
  ``--loops K`` spreads the cameras over K event loops, each in its own thread.  A keep-alive
  GET_PARAMETER goes out every 30 s per session.
* ffmpeg: N × ``ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60`` — the
  whole recording cost, exactly as ``recording_cost.py`` measures it (``record_ffmpeg``).

Method: for each system, start it, wait until every mount has a client, wait ``--warmup`` s,
then take CPU (utime+stime+cutime+cstime of the process and its descendants, ``/proc``) at the
start and end of a ``--seconds`` window.  CPU-seconds per camera-second = ΔCPU / window / N.
The spike also reports, for the same window, its own counters (asked over a pipe at the window's
edges): ``recv_into`` and ``epoll_wait`` calls, timer ticks, bytes, RTP packets, access units,
keyframes and sequence gaps, so the syscalls per camera-second it needs are measured, not
estimated.  Access units received / 25 × N × window shows it kept up.

Standard library only (plus ``uvloop`` with ``--uvloop``, and ``tests.support``).  Every
process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    CLK_TCK,
    VENV_PYTHON,
    Stream,
    cpu_seconds,
    memory_kib,
    mib,
    ratio,
    wait_all_connected,
)
from bench.recording_cost import record_ffmpeg
from bench.rtsp_client import video_control
from tests.support.simulator import CameraSimulator, MountSpec

# The threshold: receive + depacketise alone, against ffmpeg's whole recording cost.
GOAL_RATIO = 0.35
BUFFER_BYTES = 1 << 20  # per camera; ~2 s of a 4 Mbit/s stream, far more than one tick brings
KEEPALIVE_S = 30.0  # GStreamer's rtsp-server times sessions out after 60 s

# -- RFC 2326 §10.12 interleaved framing, RFC 3550 RTP, RFC 6184 H.264 payload ------------------

RTP_HEADER = struct.Struct(">BBHI")  # V/P/X/CC, M/PT, sequence number, timestamp
INTERLEAVED_HEADER = struct.Struct(">BH")  # after the '$': channel, length
DOLLAR = 0x24  # '$': an interleaved binary frame follows (channel, 16-bit length)
NAL_IDR, NAL_STAP_A, NAL_FU_A = 5, 24, 28


class H264Depacketizer:
    """RTP packets of one H.264 stream in, access units (lists of NAL units, no start codes) out.

    ``sink(rtp_timestamp, nal_units, keyframe)`` is called once per complete access unit: when a
    packet has the marker bit or when the RTP timestamp changes (a camera that forgets markers).
    A sequence-number gap drops the fragment in progress and marks the unit as damaged (counted in
    ``damaged``, not delivered) — the production client drops to the next keyframe instead.
    """

    __slots__ = ("damaged", "damaged_au", "fu", "keyframes", "lost", "nals", "packets", "seq", "sink", "ts", "units")

    def __init__(self, sink: Callable[[int, list[bytes], bool], None]) -> None:
        self.sink = sink
        self.nals: list[bytes] = []
        self.fu: bytearray | None = None
        self.ts: int | None = None
        self.seq: int | None = None
        self.damaged_au = False
        self.packets = self.units = self.keyframes = self.lost = self.damaged = 0

    def push(self, pkt: memoryview) -> None:
        """One RTP packet (the bytes after the interleaved header)."""
        n = len(pkt)
        if n < 12:
            return
        b0, b1, seq, ts = RTP_HEADER.unpack_from(pkt)
        off = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            off += 4 + 4 * ((pkt[off + 2] << 8) | pkt[off + 3])
        end = n - pkt[n - 1] if b0 & 0x20 else n  # padding
        self.packets += 1
        was_open = bool(self.nals) or self.fu is not None
        gap = self.seq is not None and seq != (self.seq + 1) & 0xFFFF
        if gap:
            self.lost += (seq - (self.seq or 0) - 1) & 0xFFFF
            self.fu = None
            self.damaged_au = True
        self.seq = seq
        if ts != self.ts:
            if was_open:
                self._finish()
                # Lost packets between two units may have been either's: drop both.
                self.damaged_au = gap
            self.ts = ts
        if off < end:
            self._payload(pkt[off:end])
        if b1 & 0x80:
            self._finish()

    def _payload(self, p: memoryview) -> None:
        kind = p[0] & 0x1F
        if kind == NAL_FU_A:
            if len(p) < 2:
                return
            fu = p[1]
            if fu & 0x80:  # start
                self.fu = bytearray(((p[0] & 0xE0) | (fu & 0x1F),))
            if self.fu is None:
                self.damaged_au = True  # a middle or end without its start
                return
            self.fu += p[2:]
            if fu & 0x40:  # end
                self.nals.append(bytes(self.fu))
                self.fu = None
        elif kind == NAL_STAP_A:
            i, n = 1, len(p)
            while i + 2 <= n:
                size = (p[i] << 8) | p[i + 1]
                if size == 0 or i + 2 + size > n:
                    self.damaged_au = True
                    break
                self.nals.append(bytes(p[i + 2 : i + 2 + size]))
                i += 2 + size
        elif 1 <= kind <= 23:
            self.nals.append(bytes(p))
        # 0 and 25..31 (STAP-B, MTAP, FU-B): not sent in non-interleaved mode; ignored.

    def _finish(self) -> None:
        nals, self.nals = self.nals, []
        if self.fu is not None:  # a fragment left open when the unit ended
            self.fu = None
            self.damaged_au = True
        if self.damaged_au:
            self.damaged_au = False
            self.damaged += 1
            return
        if not nals:
            return
        key = any(nal[0] & 0x1F == NAL_IDR for nal in nals)
        self.units += 1
        self.keyframes += key
        self.sink(self.ts or 0, nals, key)


def split_interleaved(
    buf: bytearray | memoryview, start: int, end: int, on_frame: Callable[[int, memoryview], None]
) -> tuple[int, int]:
    """Hand every complete interleaved frame in ``buf[start:end]`` to ``on_frame(channel, data)``.

    Returns ``(consumed_up_to, skipped_bytes)``: the caller keeps ``buf[consumed_up_to:end]`` for
    the next read.  RTSP messages from the server (answers to keep-alives) are skipped whole; any
    other byte that is not a ``$`` is skipped up to the next ``$`` (resync after garbage)."""
    view = memoryview(buf)
    pos = start
    skipped = 0
    while end - pos >= 4:
        if buf[pos] != DOLLAR:
            if bytes(view[pos : pos + 5]) == b"RTSP/":
                head_end = bytes(view[pos:end]).find(b"\r\n\r\n")
                if head_end < 0:
                    break  # the rest of the message comes with the next read
                nxt = pos + head_end + 4
            else:
                found = bytes(view[pos + 1 : end]).find(b"$")
                nxt = end if found < 0 else pos + 1 + found
            skipped += nxt - pos
            pos = nxt
            continue
        channel, size = INTERLEAVED_HEADER.unpack_from(buf, pos + 1)
        if end - pos - 4 < size:
            break
        on_frame(channel, view[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return pos, skipped


# -- the client (runs in its own process: ``--client``) -----------------------------------------


class Counters:
    """Per event loop; read by the main thread between ticks (ints: no torn values under the GIL)."""

    __slots__ = ("bytes", "epoll_calls", "recv_calls", "skipped", "ticks")

    def __init__(self) -> None:
        self.recv_calls = self.epoll_calls = self.ticks = self.bytes = self.skipped = 0


class FrameBuffer:
    """A preallocated read buffer for one connection: bytes go in at ``view[fill:]``, complete
    interleaved frames go out to ``on_frame``, and a partial frame is kept for the next read."""

    __slots__ = ("buf", "fill", "on_frame", "view")

    def __init__(self, on_frame: Callable[[int, memoryview], None], size: int = BUFFER_BYTES) -> None:
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.fill = 0
        self.on_frame = on_frame

    def consume(self) -> int:
        """Parse what has arrived; returns the bytes skipped (garbage, RTSP answers)."""
        pos, skipped = split_interleaved(self.buf, 0, self.fill, self.on_frame)
        rest = self.fill - pos
        if rest and pos:
            # Copy out first: the source and the destination overlap.
            self.buf[:rest] = bytes(self.view[pos : self.fill])
        self.fill = rest
        return skipped


class Session:
    """One camera: its socket, read buffer and depacketiser."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.depay = H264Depacketizer(self._discard)
        self.rx = FrameBuffer(self._on_frame)
        self.cseq = 0
        self.session_id = ""
        self.base = url

    @staticmethod
    def _discard(_ts: int, _nals: list[bytes], _key: bool) -> None:
        pass

    def _on_frame(self, channel: int, data: memoryview) -> None:
        if channel == 0:
            self.depay.push(data)
        # channel 1: RTCP; the spike ignores it (the client will parse SRs).

    async def request(
        self, loop: asyncio.AbstractEventLoop, method: str, url: str, headers: str = ""
    ) -> dict[str, str]:
        """Send one request; read until its answer (interleaved data before it is skipped)."""
        self.cseq += 1
        session = f"Session: {self.session_id}\r\n" if self.session_id else ""
        msg = f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\nUser-Agent: vmsd-spike\r\n{session}{headers}\r\n"
        await loop.sock_sendall(self.sock, msg.encode())
        rx = self.rx
        while True:
            head_end = rx.buf.find(b"\r\n\r\n", 0, rx.fill)
            if head_end >= 0 and rx.buf.startswith(b"RTSP/"):
                lines = bytes(rx.view[:head_end]).decode(errors="replace").split("\r\n")
                fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
                total = head_end + 4 + int(fields.get("content-length", "0"))
                if rx.fill >= total:
                    fields["body"] = bytes(rx.view[head_end + 4 : total]).decode(errors="replace")
                    rx.buf[: rx.fill - total] = bytes(rx.view[total : rx.fill])
                    rx.fill -= total
                    status = lines[0].split(" ", 2)
                    if len(status) < 2 or status[1] != "200":
                        raise RuntimeError(f"{method} {url}: {lines[0]}")
                    return fields
            elif rx.fill and rx.buf[0] == DOLLAR:
                before = rx.fill
                rx.consume()
                if rx.fill != before:
                    continue
            n = await loop.sock_recv_into(self.sock, rx.view[rx.fill :])
            if n == 0:
                raise RuntimeError(f"{method} {url}: the server closed the connection")
            rx.fill += n

    async def open(self, loop: asyncio.AbstractEventLoop) -> None:
        host, _, port = urllib.parse.urlsplit(self.url).netloc.rpartition(":")
        await loop.sock_connect(self.sock, (host, int(port)))
        await self.request(loop, "OPTIONS", self.url)
        answer = await self.request(loop, "DESCRIBE", self.url, "Accept: application/sdp\r\n")
        self.base = answer.get("content-base", self.url)
        track = video_control(answer["body"], self.base)
        answer = await self.request(loop, "SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        self.session_id = answer["session"].split(";")[0]
        await self.request(loop, "PLAY", self.base, "Range: npt=0-\r\n")

    def send_keepalive(self) -> None:
        self.cseq += 1
        msg = f"GET_PARAMETER {self.base} RTSP/1.0\r\nCSeq: {self.cseq}\r\nSession: {self.session_id}\r\n\r\n"
        self.sock.send(msg.encode())  # tiny; the socket's send buffer is empty


class IngestLoop:
    """One event loop in its own thread draining its sessions every ``tick_s``."""

    def __init__(self, urls: list[str], tick_s: float, use_uvloop: bool) -> None:
        self.sessions = [Session(u) for u in urls]
        self.tick_s = tick_s
        self.use_uvloop = use_uvloop
        self.counters = Counters()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ingest-loop", daemon=True)

    def _run(self) -> None:
        try:
            if self.use_uvloop:
                import uvloop

                runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
            else:
                runner = asyncio.Runner()
            with runner:
                runner.run(self._main())
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(s.open(loop) for s in self.sessions))
        ep = select.epoll()
        by_fd = {s.sock.fileno(): s for s in self.sessions}
        for fd in by_fd:
            ep.register(fd, select.EPOLLIN)
        # What PLAY's answer brought along is parsed before the first tick.
        for s in self.sessions:
            self.counters.skipped += s.rx.consume()
        self.ready.set()
        # The tick is a plain timer callback on an absolute schedule, not ``await asyncio.sleep``:
        # a sleep costs two loop iterations (timer, then the task's wake-up), and on these VMs each
        # wake-up costs ~60 us of CPU before Python runs at all.
        self._by_fd, self._epoll = by_fd, ep
        self._next_keepalive = time.monotonic() + KEEPALIVE_S
        self._done: asyncio.Future[None] = loop.create_future()
        self._next_tick = loop.time() + self.tick_s
        loop.call_at(self._next_tick, self._tick, loop)
        try:
            await self._done
        finally:
            ep.close()
            for s in self.sessions:
                s.sock.close()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._drain()
        except Exception as exc:
            self._done.set_exception(exc)
            return
        if self.stop.is_set():
            self._done.set_result(None)
            return
        # Keep the schedule; after a late tick, skip ahead rather than run ticks back to back.
        self._next_tick = max(self._next_tick + self.tick_s, loop.time())
        loop.call_at(self._next_tick, self._tick, loop)

    def _drain(self) -> None:
        c = self.counters
        c.ticks += 1
        c.epoll_calls += 1
        for fd, _ev in self._epoll.poll(0):
            s = self._by_fd[fd]
            rx = s.rx
            while True:
                space = BUFFER_BYTES - rx.fill
                n = s.sock.recv_into(rx.view[rx.fill :], space)
                c.recv_calls += 1
                if n == 0:
                    raise RuntimeError(f"{s.url}: the server closed the connection")
                c.bytes += n
                rx.fill += n
                c.skipped += rx.consume()
                if n < space:
                    break
        if time.monotonic() >= self._next_keepalive:
            self._next_keepalive += KEEPALIVE_S
            for s in self.sessions:
                s.send_keepalive()

    def snapshot(self) -> dict[str, int]:
        c = self.counters
        d = [s.depay for s in self.sessions]
        return {
            "recv_calls": c.recv_calls,
            "epoll_calls": c.epoll_calls,
            "ticks": c.ticks,
            "bytes": c.bytes,
            "skipped_bytes": c.skipped,
            "rtp_packets": sum(x.packets for x in d),
            "access_units": sum(x.units for x in d),
            "keyframes": sum(x.keyframes for x in d),
            "packets_lost": sum(x.lost for x in d),
            "units_damaged": sum(x.damaged for x in d),
        }


def client_main(urls: list[str], loops: int, tick_ms: float, use_uvloop: bool) -> int:
    """``--client``: open every session, print READY, then answer each stdin line with the
    counters (JSON, summed over loops); exit at end of input."""
    groups = [urls[i::loops] for i in range(loops)]
    workers = [IngestLoop(g, tick_ms / 1000, use_uvloop) for g in groups if g]
    for w in workers:
        w.thread.start()
    for w in workers:
        w.ready.wait()
        if w.error is not None:
            print(f"ERROR {type(w.error).__name__}: {w.error}", flush=True)
            return 1
    print("READY", flush=True)
    for _line in sys.stdin:
        snaps = [w.snapshot() for w in workers]
        errors = [repr(w.error) for w in workers if w.error is not None]
        total = {k: sum(s[k] for s in snaps) for k in snaps[0]}
        print(json.dumps({**total, "errors": errors}), flush=True)
    for w in workers:
        w.stop.set()
    for w in workers:
        w.thread.join(5)
    return 0


# -- the driver ---------------------------------------------------------------------------------


def _ask(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("snap\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the spike client exited ({proc.poll()})")
    return json.loads(line)


@dataclass
class ClientWindow:
    """What ``measure_client`` saw at the edges of its window."""

    t0: float
    t1: float
    cpu0: float
    cpu1: float
    sim0: float
    sim1: float
    counters0: dict[str, Any]
    counters1: dict[str, Any]
    memory: dict[str, int]
    load0: float
    load1: float


def measure_client(
    cmd: list[str], sim: CameraSimulator, n: int, seconds: float, warmup: float, env: dict[str, str] | None = None
) -> ClientWindow:
    """Run a client process (prints READY, answers each stdin line with its counters as JSON):
    wait until every mount has a client and ``warmup`` s, then take CPU, the simulator's CPU and
    the counters at both edges of a ``seconds`` window. The process is stopped in a ``finally``."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "READY":
            raise RuntimeError(f"client {Path(cmd[1]).name}: {line or 'exited before READY'}")
        wait_all_connected(sim, [proc], timeout=60 + n)
        time.sleep(warmup)
        load0 = os.getloadavg()[0]
        t0, c0, sim0, k0 = time.monotonic(), cpu_seconds(proc.pid), cpu_seconds(sim.pid or 0), _ask(proc)
        time.sleep(seconds)
        t1, c1, sim1, k1 = time.monotonic(), cpu_seconds(proc.pid), cpu_seconds(sim.pid or 0), _ask(proc)
        mem = memory_kib(proc.pid)
        load1 = os.getloadavg()[0]
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ClientWindow(t0, t1, c0, c1, sim0, sim1, k0, k1, mem, load0, load1)


def record_spike(
    sim: CameraSimulator, names: list[str], seconds: float, warmup: float, fps: int, loops: int, tick_ms: float,
    use_uvloop: bool,
) -> dict[str, Any]:  # fmt: skip
    """The spike client on every mount: CPU over the window and its counters."""
    n = len(names)
    cmd = [str(VENV_PYTHON), str(Path(__file__).resolve()), "--client", "--loops", str(loops)]
    cmd += ["--tick-ms", str(tick_ms), *(["--uvloop"] if use_uvloop else []), *[sim.url(x) for x in names]]
    w = measure_client(cmd, sim, n, seconds, warmup)
    t0, t1, c0, c1, sim0, sim1, k0, k1 = w.t0, w.t1, w.cpu0, w.cpu1, w.sim0, w.sim1, w.counters0, w.counters1
    mem, load0, load1 = w.memory, w.load0, w.load1
    wall = t1 - t0
    cam_s = n * wall
    d = {k: k1[k] - k0[k] for k in k0 if k != "errors"}
    cpu = (c1 - c0) / wall
    return {
        "loops": loops,
        "tick_ms": tick_ms,
        "event_loop": "uvloop" if use_uvloop else "asyncio",
        "window_s": round(wall, 3),
        "load_average_1min_window_start_end": [round(load0, 2), round(load1, 2)],
        "cpu_cores": round(cpu, 5),
        "cpu_cores_per_camera": round(cpu / n, 6),
        "simulator_cpu_cores": round((sim1 - sim0) / wall, 4),
        "rss_mib": mib(mem["VmRSS"]),
        "counters_in_window": d,
        "errors": k1["errors"],
        "per_camera_second": {
            "recv_calls": round(d["recv_calls"] / cam_s, 1),
            "syscalls": round((d["recv_calls"] + 2 * d["epoll_calls"]) / cam_s, 1),
            "rtp_packets": round(d["rtp_packets"] / cam_s, 1),
            "bytes": round(d["bytes"] / cam_s),
        },
        "access_units_expected": round(fps * cam_s),
        "us_per_packet": round(1e6 * (c1 - c0) / d["rtp_packets"], 2) if d["rtp_packets"] else None,
    }


def run(
    cameras: int, seconds: float, warmup: float, work: Path, stream: Stream | None = None, *, loops: int = 1,
    tick_ms: float = 15, use_uvloop: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The spike and N × ffmpeg against one simulator, one after the other."""
    stream = stream or Stream()
    clip = stream.clip()
    work.mkdir(parents=True, exist_ok=True)
    names = [f"cam{i + 1}" for i in range(cameras)]
    result: dict[str, Any] = {
        "scenario": "ingest_spike",
        "cameras": cameras,
        "seconds": seconds,
        "warmup_s": warmup,
        "stream": stream.describe(),
        "machine": {"cpus": os.cpu_count(), "clk_tck": CLK_TCK},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with CameraSimulator([MountSpec(name, clip) for name in names]) as sim:
        print(f"ingest_spike: spike client, {cameras} cameras ...", file=sys.stderr)
        s = record_spike(sim, names, seconds, warmup, stream.fps, loops, tick_ms, use_uvloop)
        print(f"ingest_spike: ffmpeg, {cameras} cameras ...", file=sys.stderr)
        f = record_ffmpeg(sim, names, seconds, warmup, stream.fps, work)
        # record_ffmpeg samples no load average; the 1-minute figure at its end covers its window.
        f["load_average_1min_window_end"] = round(os.getloadavg()[0], 2)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["spike"] = s
    keep = ("command", "cpu_cores", "cpu_cores_per_camera", "simulator_cpu_cores", "window_s", "recorded",
            "load_average_1min_window_end")  # fmt: skip
    result["ffmpeg"] = {k: f[k] for k in keep}
    r = ratio(s["cpu_cores_per_camera"], f["cpu_cores_per_camera"])
    result["ratio_spike_over_ffmpeg"] = r
    result["goal_ratio"] = GOAL_RATIO
    result["verdict"] = None if r is None else ("go" if r <= GOAL_RATIO else "no-go")
    return result


def markdown(r: dict[str, Any]) -> str:
    s, f = r["spike"], r["ffmpeg"]
    pcs = s["per_camera_second"]
    k = s["counters_in_window"]
    return "\n".join(
        [
            f"{r['cameras']} cameras, {r['stream']}; {r['seconds']} s window after {r['warmup_s']} s warm-up; "
            f"1-minute load average: spike window {s['load_average_1min_window_start_end']}, "
            f"end of ffmpeg's window {f['load_average_1min_window_end']}",
            "",
            "| | spike (receive + depacketise + discard) | ffmpeg × N (whole recording) | spike / ffmpeg |",
            "|---|---:|---:|---:|",
            f"| CPU-seconds per camera-second | {s['cpu_cores_per_camera']:.6f} | {f['cpu_cores_per_camera']:.6f} | "
            f"{r['ratio_spike_over_ffmpeg']} |",
            f"| syscalls per camera-second (recv_into + epoll) | {pcs['syscalls']} | | |",
            f"| access units in window / expected | {k['access_units']} / {s['access_units_expected']} | | |",
            f"| simulator CPU (cores) | {s['simulator_cpu_cores']} | {f['simulator_cpu_cores']} | |",
            "",
            f"Verdict against ≤ {r['goal_ratio']}×: {r['verdict']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", action="store_true", help="internal: be the spike client for URLS")
    ap.add_argument("urls", nargs="*", help="with --client: the RTSP URLs")
    ap.add_argument("--cameras", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60, help="measurement window (s)")
    ap.add_argument("--warmup", type=float, default=10, help="after all cameras connect (s)")
    ap.add_argument("--loops", type=int, default=1, help="event loops (threads) for the spike client")
    ap.add_argument("--tick-ms", type=float, default=15, help="how often the client drains its sockets")
    ap.add_argument("--uvloop", action="store_true", help="run the client's loops on uvloop")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args(argv)
    if args.client:
        return client_main(args.urls, max(1, args.loops), args.tick_ms, args.uvloop)
    work = Path(tempfile.mkdtemp(prefix="vmsd-bench-spike-", dir="/tmp"))
    try:
        result = run(args.cameras, args.seconds, args.warmup, work, loops=args.loops, tick_ms=args.tick_ms,
                     use_uvloop=args.uvloop)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
