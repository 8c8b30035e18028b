"""AAC in RTP, RFC 3640 ``mpeg4-generic`` (AAC-hbr and AAC-lbr), into raw AAC frames.

Each packet: a 16-bit AU-headers-length (in bits), the AU headers (``sizelength`` bits of size,
then ``indexlength`` bits of index for the first and ``indexdeltalength`` for the rest), then
the AUs back to back. Several frames per packet are the common case (cameras pack 2–8); the
frame ``i`` of a packet is at ``timestamp + i × frame_samples`` (index deltas counted too, so an
interleaving sender's frames land where they belong). A frame larger than a packet comes as
fragments (one AU header naming the whole size, the rest in the next packets up to the marker);
a loss drops the frame being reassembled. No I/O; ``push`` never raises for any bytes.

Output frames are raw (no ADTS header): the MP4 sample format; the AudioSpecificConfig comes
from the SDP (sdp.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AacParameters:
    sizelength: int = 13
    indexlength: int = 3
    indexdeltalength: int = 3
    frame_samples: int = 1024  # ``constantduration``, else 1024 (960 for some AAC-LD)


@dataclass(slots=True)
class AacFrame:
    timestamp: int  # RTP timestamp (the caller's unwrapped value) at the audio clock rate
    data: bytes


@dataclass
class AacCounters:
    frames: int = 0
    malformed_payloads: int = 0
    dropped_fragments: int = 0


class AacDepacketizer:
    def __init__(self, sink: Callable[[AacFrame], None], params: AacParameters | None = None) -> None:
        self.sink = sink
        self.params = params or AacParameters()
        if self.params.sizelength <= 0 or self.params.sizelength > 32:
            raise ValueError(f"AAC sizelength {self.params.sizelength} out of range (1 to 32)")
        self.counters = AacCounters()
        self._fragment = bytearray()
        self._fragment_size = 0
        self._fragment_ts = 0

    def push(self, payload: memoryview, timestamp: int, marker: bool, lost: int = 0) -> None:
        if lost and self._fragment_size:
            self._drop_fragment()
        try:
            self._parse(payload, timestamp, marker)
        except IndexError:
            self.counters.malformed_payloads += 1
            if self._fragment_size:
                self._drop_fragment()

    def _drop_fragment(self) -> None:
        self._fragment.clear()
        self._fragment_size = 0
        self.counters.dropped_fragments += 1

    def _parse(self, p: memoryview, ts: int, marker: bool) -> None:
        if len(p) < 2:
            raise IndexError("AAC payload shorter than its AU-headers-length")
        bits = (p[0] << 8) | p[1]
        header_bytes = (bits + 7) // 8
        data = 2 + header_bytes
        if data > len(p):
            raise IndexError("AU headers run past the packet")
        headers = int.from_bytes(p[2:data], "big") if header_bytes else 0
        sizes: list[tuple[int, int]] = []  # (size, index delta)
        used = 0
        size_bits, params = self.params.sizelength, self.params
        while used + size_bits <= bits:
            index_bits = params.indexlength if not sizes else params.indexdeltalength
            if used + size_bits + index_bits > bits:
                break
            shift = header_bytes * 8 - used - size_bits
            size = (headers >> shift) & ((1 << size_bits) - 1)
            index = (headers >> (shift - index_bits)) & ((1 << index_bits) - 1) if index_bits else 0
            sizes.append((size, index if sizes else 0))
            used += size_bits + index_bits
        if not sizes:
            raise IndexError("no AU header")
        if self._fragment_size:
            self._continue_fragment(p[data:], marker)
            return
        if len(sizes) == 1 and sizes[0][0] > len(p) - data:
            # The first fragment of a frame larger than the packet.
            self._fragment_size = sizes[0][0]
            self._fragment_ts = ts
            self._fragment += p[data:]
            return
        pos, slot = data, 0
        for i, (size, delta) in enumerate(sizes):
            slot += delta + (1 if i else 0)
            if pos + size > len(p):
                raise IndexError("AU runs past the packet")
            self._emit(ts + slot * params.frame_samples, bytes(p[pos : pos + size]))
            pos += size

    def _continue_fragment(self, rest: memoryview, marker: bool) -> None:
        self._fragment += rest
        if len(self._fragment) > self._fragment_size or (marker and len(self._fragment) != self._fragment_size):
            self._drop_fragment()
        elif len(self._fragment) == self._fragment_size:
            frame = bytes(self._fragment)
            self._fragment.clear()
            self._fragment_size = 0
            self._emit(self._fragment_ts, frame)

    def _emit(self, ts: int, frame: bytes) -> None:
        if not frame:
            return
        self.counters.frames += 1
        self.sink(AacFrame(ts, frame))
