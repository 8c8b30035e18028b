"""RTP/RTCP over the RTSP TCP connection (RFC 2326 §10.12): ``$`` framing from a bulk buffer.

One ``InterleavedReader`` per connection. The I/O side does ``sock.recv_into(reader.writable())``
then ``reader.commit(n)`` and ``reader.process(on_frame, on_message)``: every complete
interleaved frame goes to ``on_frame(channel, payload)`` and every complete RTSP message
(answers to keep-alives, requests some cameras send) to ``on_message(message)``, in stream order.
A partial frame or message stays in the buffer for the next read; one read of a 4 Mbit/s camera
brings ~50 kB per 100 ms tick (a keyframe's burst more: the drain reads again while reads fill
the buffer), so ``DEFAULT_BUFFER_BYTES`` holds a few ticks; it is resident per camera, so no
bigger than that.

Resync: a byte that starts neither a frame nor a message is garbage (a broken camera, the tail of
a frame cut off by a reconnecting proxy). It is skipped up to the next candidate start and
counted in ``skipped_bytes``. A ``$`` is a frame start only when its channel is one the session
set up (when known) and the payload's first byte says RTP/RTCP version 2, so a ``$`` inside
garbage rarely swallows real data.

Invariant: the ``payload`` memoryview handed to ``on_frame`` is valid only during the call (the
buffer is compacted and refilled afterwards); whoever keeps bytes copies them.

Optional ``take_run(buf, view, pos, fill)``: called at each frame start before ``on_frame``, it
may take any number of complete frames from ``pos`` straight out of the buffer (the client's fast
path: one call per run of a camera's ordinary video packets instead of one per packet) and
returns the position after the last one it took; the frame there, if any, goes on as usual.
``frames`` counts only the frames handed to ``on_frame``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from vmsd.ingest.rtsp.messages import (
    REQUEST_METHODS,
    MessageError,
    Request,
    Response,
    looks_like_message_start,
    parse_message,
)

DEFAULT_BUFFER_BYTES = 128 * 1024
DOLLAR = 0x24
_HEADER = struct.Struct(">BH")  # after the '$': channel, length
_CANDIDATE = re.compile(b"\\$|RTSP/|" + b"|".join(re.escape(m + b" ") for m in REQUEST_METHODS))

FrameSink = Callable[[int, memoryview], None]
MessageSink = Callable[[Response | Request], None]
RunSink = Callable[[bytearray, memoryview, int, int], int]


class InterleavedReader:
    """The receive buffer of one RTSP connection and its framing. No I/O, not thread-safe."""

    __slots__ = ("_buf", "_fill", "_view", "channels", "frames", "messages", "skipped_bytes")

    def __init__(self, size: int = DEFAULT_BUFFER_BYTES, channels: set[int] | None = None) -> None:
        if size < 70 * 1024:
            raise ValueError("an interleaved buffer must hold a whole 64 KiB frame and its header")
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._fill = 0
        # The channels set up (None: any). Narrowing this makes resync after garbage safer.
        self.channels = channels
        self.frames = 0
        self.messages = 0
        self.skipped_bytes = 0

    @property
    def buffered(self) -> int:
        return self._fill

    def writable(self) -> memoryview:
        """The free tail of the buffer, for ``recv_into``."""
        return self._view[self._fill :]

    def commit(self, n: int) -> None:
        """``n`` bytes were written into ``writable()``."""
        if not 0 <= n <= len(self._buf) - self._fill:
            raise ValueError(f"commit of {n} bytes with {len(self._buf) - self._fill} free")
        self._fill += n

    def feed(self, data: bytes) -> None:
        """Copy ``data`` in (tests, and a first read taken elsewhere)."""
        self.writable()[: len(data)] = data
        self.commit(len(data))

    def process(self, on_frame: FrameSink, on_message: MessageSink, take_run: RunSink | None = None) -> None:
        """Hand out every complete frame and message; keep the partial rest."""
        buf, view, fill = self._buf, self._view, self._fill
        pos = 0
        while pos < fill:
            if buf[pos] == DOLLAR:
                if take_run is not None:
                    pos = take_run(buf, view, pos, fill)
                    if pos >= fill or buf[pos] != DOLLAR:
                        continue
                if fill - pos < 5:
                    break
                channel, size = _HEADER.unpack_from(buf, pos + 1)
                known = self.channels is None or channel in self.channels
                if not known or (size and buf[pos + 4] >> 6 != 2):
                    pos = self._skip_garbage(pos, fill, 1)
                    continue
                if fill - pos - 4 < size:
                    break
                self.frames += 1
                on_frame(channel, view[pos + 4 : pos + 4 + size])
                pos += 4 + size
                continue
            start = looks_like_message_start(buf, pos, fill)
            if start is None:
                break
            if not start:
                pos = self._skip_garbage(pos, fill, 0)
                continue
            try:
                message, nxt, skipped = parse_message(buf, pos, fill)
            except MessageError:
                pos = self._skip_garbage(pos, fill, 1)
                continue
            if message is None:
                break
            self.skipped_bytes += skipped
            self.messages += 1
            on_message(message)
            pos = nxt
        if pos == 0 and fill == len(buf):
            # Full, and nothing in it can complete (a message longer than the buffer): drop a
            # byte so the reader cannot wedge; the resync finds the next start.
            pos = self._skip_garbage(0, fill, 1)
        rest = fill - pos
        if rest and pos:
            # Copied out first: source and destination overlap (bytearray uses memcpy).
            buf[:rest] = bytes(view[pos:fill])
        self._fill = rest

    def _skip_garbage(self, pos: int, fill: int, at_least: int) -> int:
        """Skip from ``pos`` to the next candidate start (at least ``at_least`` bytes)."""
        match = _CANDIDATE.search(self._buf, pos + max(at_least, 1), fill)
        if match is not None:
            nxt = match.start()
        else:
            # Keep a tail that could still become a message start.
            nxt = fill
            for k in range(min(15, fill - pos - 1), 0, -1):
                if looks_like_message_start(self._buf, fill - k, fill) is None:
                    nxt = fill - k
                    break
        self.skipped_bytes += nxt - pos
        return nxt
