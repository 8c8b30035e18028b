"""H.264 RTP payload (RFC 6184, packetization-mode 0 and 1) into access units (access_unit.py).

Single NAL unit packets (types 1–23), STAP-A (24) and FU-A (28). STAP-B, MTAP and FU-B (25–27,
29) exist only in interleaved mode (packetization-mode 2, refused at SETUP) and are counted and
ignored, like types 0, 30 and 31. A FU-A with both start and end set (forbidden, but sent) is a
whole NAL unit; an FU-A with no payload bytes is a no-op.
"""

from __future__ import annotations

from vmsd.ingest.rtsp.access_unit import MAX_ACCESS_UNIT_BYTES, AccessUnit, VideoDepacketizer, _NalClass

IDR = 5
SPS, PPS = 7, 8
STAP_A, FU_A = 24, 28

_CLASSES = [_NalClass(vcl=1 <= k <= 5, key=k == IDR, parameter_set=k in (SPS, PPS)) for k in range(32)]

__all__ = ["AccessUnit", "H264Depacketizer"]


class H264Depacketizer(VideoDepacketizer):
    header_bytes = 1

    def _nal_type(self, nal: bytes | memoryview) -> int:
        return nal[0] & 0x1F

    def _classify(self, kind: int) -> _NalClass:
        return _CLASSES[kind]

    def fragment_buffer(self, timestamp: int) -> bytearray | None:
        """The unit's buffer, while a middle FU-A fragment (no S or E bit, no marker, next in
        sequence, not empty) of ``timestamp`` is exactly its payload after the two FU bytes
        appended to it (what ``push_next`` does), as long as the unit stays within
        ``MAX_ACCESS_UNIT_BYTES``; else None. Valid until the next call of ``push``."""
        if timestamp == self._ts and self._fu_at is not None and self._closed_ts is None:
            return self._au
        return None

    def push_next(self, p: memoryview, timestamp: int, marker: bool) -> None:
        """``push(p, timestamp, marker)`` of a packet with none lost before it. Most packets of
        a frame are middle FU-A fragments of the NAL unit in progress: those are appended here
        at once (what push → _payload → _fu_append would do), the rest go through ``push``."""
        if (
            not marker
            and timestamp == self._ts
            and self._fu_at is not None
            and self._closed_ts is None
            and len(p) > 2
            and p[0] & 0x1F == FU_A
            and not p[1] & 0xC0
        ):
            au = self._au
            au += p[2:]
            if len(au) > MAX_ACCESS_UNIT_BYTES:
                self._damaged = True
                au.clear()
                self._fu_at = None
            return
        self.push(p, timestamp, marker)

    def _payload(self, p: memoryview) -> None:
        kind = p[0] & 0x1F
        if 1 <= kind <= 23:
            self._add_nal(p)
        elif kind == FU_A:
            if len(p) < 2:
                self.counters.malformed_payloads += 1
                self._damaged = True
                return
            fu = p[1]
            if fu & 0x80:
                self._fu_start(bytes(((p[0] & 0xE0) | (fu & 0x1F),)))
            self._fu_append(p[2:], fu & 0x40)
        elif kind == STAP_A:
            self._add_aggregated(p, 1)
        else:
            self.counters.ignored_nal_units += 1
