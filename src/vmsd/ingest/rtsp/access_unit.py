"""Assembling H.264/H.265 RTP payloads into access units: what RFC 6184 and RFC 7798 share.

A codec module (h264.py, h265.py) parses its payload formats and calls ``_add_nal`` /
``_fu_start`` / ``_fu_append``; this base decides where access units begin and end,
what is dropped, and what goes out.

Output: ``AccessUnit.data`` holds the unit's NAL units each behind a 4-byte big-endian length
(the AVCC/HVCC sample format an MP4 writer stores as is), built in one buffer per unit (a
fragmented NAL is appended in place, its length written when it ends: one copy per byte).

Boundaries: a unit ends at a packet with the marker bit, or when the RTP timestamp changes (a
camera that never sets the marker). A camera that sets the marker too early (a packet with the
same timestamp follows a marked one) is noticed once (``misplaced_markers``); from then on
only timestamp changes end its units, and the unit cut short is not trusted (the stream waits
for the next keyframe).

Loss: a sequence gap damages the unit in progress and the one the packet belongs to; damaged
units are dropped, and so is everything after them until the next keyframe (a decoder cannot
use frames that reference a lost one). The stream also starts at its first keyframe.

Units with no picture (parameter sets or SEI sent with their own timestamp, as some cameras do)
are carried into the next unit rather than sent alone.

Invariant: ``push`` never raises for any payload bytes; what cannot be parsed is counted and
damages the unit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

MAX_ACCESS_UNIT_BYTES = 16 * 1024 * 1024  # as the segmenter: no CCTV frame is larger
_LENGTH = struct.Struct(">I")


@dataclass(slots=True)
class AccessUnit:
    timestamp: int  # the RTP timestamp as the caller passed it (unwrapped: see rtp.py)
    data: bytes | bytearray  # NAL units, each behind a 4-byte big-endian length; never changed
    keyframe: bool
    # The in-band parameter sets of this unit differ from those before (a new resolution or
    # profile: the segmenter starts a new segment).
    parameter_sets_changed: bool = False


@dataclass
class DepacketizerCounters:
    access_units: int = 0
    keyframes: int = 0
    dropped_damaged: int = 0  # units with lost or unparseable parts
    dropped_before_keyframe: int = 0  # intact units not decodable without a lost/unseen keyframe
    malformed_payloads: int = 0
    ignored_nal_units: int = 0  # NAL/payload types not used in non-interleaved mode
    empty_fragments: int = 0
    misplaced_markers: int = 0
    carried_non_vcl: int = 0


@dataclass
class _NalClass:
    vcl: bool
    key: bool
    parameter_set: bool


class VideoDepacketizer:
    """Base: see the module docstring. Not thread-safe; one per RTP stream."""

    header_bytes = 1  # NAL header size of the codec

    def __init__(self, sink: Callable[[AccessUnit], None], parameter_sets: list[bytes] | None = None) -> None:
        self.sink = sink
        self.counters = DepacketizerCounters()
        # The current parameter sets by NAL type (SDP's, then in-band ones as they come).
        self.parameter_sets: dict[int, bytes] = {}
        for nal in parameter_sets or ():
            kind = self._nal_type(nal)
            if nal and self._classify(kind).parameter_set:
                self.parameter_sets[kind] = bytes(nal)
        self.markers_reliable = True
        self._au = bytearray()
        self._ts: int | None = None
        self._fu_at: int | None = None  # offset of the open fragmented NAL's length prefix
        self._damaged = False
        self._key = False
        self._vcl = False
        self._ps_changed = False
        self._need_key = True
        self._closed_ts: int | None = None  # timestamp of the unit the last marker closed

    # -- codec hooks ---------------------------------------------------------------------

    def _nal_type(self, nal: bytes | memoryview) -> int:
        raise NotImplementedError

    def _classify(self, kind: int) -> _NalClass:
        raise NotImplementedError

    def _payload(self, p: memoryview) -> None:
        raise NotImplementedError

    # -- packets in ----------------------------------------------------------------------

    def push(self, payload: memoryview, timestamp: int, marker: bool, lost: int = 0) -> None:
        """One RTP packet's payload. ``lost``: packets missing just before it (rtp.py)."""
        if self._ts is not None and timestamp != self._ts:
            self._finish()
        if self._closed_ts is not None:
            if timestamp == self._closed_ts:
                # A packet of a unit already closed by its marker: the marker came too early, and
                # the unit sent was cut short. Trust timestamps only from now on.
                self.counters.misplaced_markers += 1
                self.markers_reliable = False
                self._damaged = True
            self._closed_ts = None
        if lost:
            self._damaged = True
            self._need_key = True
        self._ts = timestamp
        if len(payload) < self.header_bytes:
            self.counters.malformed_payloads += 1
            self._damaged = True
        else:
            try:
                self._payload(payload)
            except (IndexError, struct.error):
                self.counters.malformed_payloads += 1
                self._damaged = True
        if len(self._au) > MAX_ACCESS_UNIT_BYTES:
            self._damaged = True
            self._au.clear()
            self._fu_at = None
        if marker and self.markers_reliable:
            self._finish()
            self._closed_ts = timestamp

    def flush(self) -> None:
        """End the unit in progress (the stream ended or paused)."""
        self._finish()

    # -- NAL units (for the codec modules) ----------------------------------------------

    def _add_nal(self, nal: memoryview) -> None:
        if len(nal) <= self.header_bytes:
            self.counters.empty_fragments += len(nal) == self.header_bytes
            return
        if self._fu_at is not None:
            self._abandon_fragment()
        at = len(self._au)
        self._au += _LENGTH.pack(len(nal))
        self._au += nal
        self._note(at + 4, len(self._au))

    def _add_aggregated(self, p: memoryview, pos: int, first_skip: int = 0, next_skip: int = 0) -> None:
        """The NAL units of an aggregation packet (STAP-A, AP) from ``pos``: each behind a 16-bit
        size, after ``first_skip`` bytes for the first unit and ``next_skip`` for the others (the
        DONL/DOND fields of RFC 7798). A zero size ends the list (padding)."""
        n, skip = len(p), first_skip
        while pos + skip + 2 <= n:
            pos += skip
            skip = next_skip
            size = (p[pos] << 8) | p[pos + 1]
            if size == 0:
                return
            if pos + 2 + size > n:
                self.counters.malformed_payloads += 1
                self._damaged = True
                return
            self._add_nal(p[pos + 2 : pos + 2 + size])
            pos += 2 + size

    def _fu_start(self, header: bytes) -> None:
        if self._fu_at is not None:
            self._abandon_fragment()  # the previous fragmented NAL never ended
        self._fu_at = len(self._au)
        self._au += b"\x00\x00\x00\x00"
        self._au += header

    def _fu_append(self, fragment: memoryview, end: int) -> None:
        """A fragment (after ``_fu_start`` for the first); ``end`` as the FU header's E bit. A
        fragment with both S and E set (forbidden, but sent) is a whole NAL unit."""
        at = self._fu_at
        if at is None:
            self._damaged = True  # a continuation without its start: the start was lost
            return
        if not fragment:
            self.counters.empty_fragments += 1
        self._au += fragment
        if end:
            self._fu_at = None
            size = len(self._au) - at - 4
            if size <= self.header_bytes:
                del self._au[at:]  # a NAL unit with no payload at all
                self.counters.empty_fragments += 1
                return
            _LENGTH.pack_into(self._au, at, size)
            self._note(at + 4, len(self._au))

    def _abandon_fragment(self) -> None:
        assert self._fu_at is not None
        del self._au[self._fu_at :]
        self._fu_at = None
        self._damaged = True

    def _note(self, start: int, end: int) -> None:
        kind = self._nal_type(memoryview(self._au)[start : start + self.header_bytes])
        c = self._classify(kind)
        self._vcl |= c.vcl
        self._key |= c.key
        if c.parameter_set:
            nal = bytes(self._au[start:end])
            if self.parameter_sets.get(kind) != nal:
                self._ps_changed |= kind in self.parameter_sets
                self.parameter_sets[kind] = nal

    # -- units out -----------------------------------------------------------------------

    def _finish(self) -> None:
        if self._fu_at is not None:
            self._abandon_fragment()
        ts, key, damaged, vcl = self._ts, self._key, self._damaged, self._vcl
        self._ts = None
        self._damaged = self._key = self._vcl = False
        if damaged:
            self._au.clear()
            self._ps_changed = False
            self.counters.dropped_damaged += 1
            self._need_key = True
            return
        if not self._au or ts is None:
            return
        if not vcl:
            # Parameter sets / SEI with a timestamp of their own: they belong to the next unit.
            self.counters.carried_non_vcl += 1
            return
        if self._need_key and not key:
            self._au.clear()
            self._ps_changed = False
            self.counters.dropped_before_keyframe += 1
            return
        self._need_key = False
        # The buffer itself goes out (nothing here touches it again): a copy of every unit cost
        # a pass over all the video and an allocation of its size.
        unit = AccessUnit(ts, self._au, key, self._ps_changed)
        self._au = bytearray()
        self._ps_changed = False
        self.counters.access_units += 1
        self.counters.keyframes += key
        self.sink(unit)
