"""H.265 RTP payload (RFC 7798) into access units (access_unit.py).

Single NAL unit packets, aggregation packets (AP, type 48) and fragmentation units (FU, 49);
PACI (50) and reserved types are counted and ignored. With ``sprop-max-don-diff`` > 0 in the SDP
the payloads carry DONL/DOND fields (``donl=True``), which are skipped: units are assembled in
transmission order, which is decoding order for the cameras this records (no B-frames or
ordered within a unit).
"""

from __future__ import annotations

from collections.abc import Callable

from vmsd.ingest.rtsp.access_unit import AccessUnit, VideoDepacketizer, _NalClass

VPS, SPS, PPS = 32, 33, 34
AP, FU, PACI = 48, 49, 50

_CLASSES = [_NalClass(vcl=k < 32, key=16 <= k <= 23, parameter_set=k in (VPS, SPS, PPS)) for k in range(64)]

__all__ = ["AccessUnit", "H265Depacketizer"]


class H265Depacketizer(VideoDepacketizer):
    header_bytes = 2

    def __init__(
        self, sink: Callable[[AccessUnit], None], parameter_sets: list[bytes] | None = None, *, donl: bool = False
    ) -> None:
        super().__init__(sink, parameter_sets)
        self.donl = donl

    def _nal_type(self, nal: bytes | memoryview) -> int:
        return (nal[0] >> 1) & 0x3F

    def _classify(self, kind: int) -> _NalClass:
        return _CLASSES[kind]

    def _payload(self, p: memoryview) -> None:
        if len(p) < 2:
            raise IndexError("H.265 payload shorter than its header")
        kind = (p[0] >> 1) & 0x3F
        d = 2 if self.donl else 0
        if kind < 48:
            if d:
                self._add_nal(memoryview(bytes(p[:2]) + bytes(p[2 + d :])))
            else:
                self._add_nal(p)
        elif kind == FU:
            if len(p) < 3 + d:
                raise IndexError("H.265 FU shorter than its headers")
            fu = p[2]
            if fu & 0x80:
                self._fu_start(bytes(((p[0] & 0x81) | ((fu & 0x3F) << 1), p[1])))
                self._fu_append(p[3 + d :], fu & 0x40)  # DONL only in the first fragment
            else:
                self._fu_append(p[3:], fu & 0x40)
        elif kind == AP:
            self._add_aggregated(p, 2, d, 1 if self.donl else 0)  # DONL first, then a DOND per unit
        else:
            self.counters.ignored_nal_units += 1
