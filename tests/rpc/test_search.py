"""Search and Timeline over gRPC return exactly the catalogue's spans and gaps.

Footage (tests/support/rpc.py): in-cam records MID-5s..MID+7s (two segments, rotating at +1s, so
the first crosses midnight), is offline for 6.96 s, records MID+13.96s..MID+21.96s, then is offline
(an open gap). Times are exact integers: the clip is 25 fps and the clock is a FakeClock.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.rpc import MID, MS, RunningDaemon, S, make_config, metadata, token
from vmsd.rpc.server import MAX_MESSAGE_BYTES
from vmsd.v1 import common_pb2, recordings_pb2

SEG1 = (MID - 5 * S, MID + 1 * S)
SEG2 = (MID + 1 * S, MID + 7 * S)
SEG3 = (MID + 13_960 * MS, MID + 21_960 * MS)
OFFLINE = (MID + 7 * S, MID + 13_960 * MS)
OPEN_FROM = MID + 21_960 * MS


def _search(
    server: RunningDaemon, start_ns: int, end_ns: int, camera_id: str = "in-cam"
) -> recordings_pb2.SearchResponse:
    request = recordings_pb2.SearchRequest(
        camera_id=camera_id, range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns)
    )
    return server.stubs.recordings.Search(request, metadata=metadata("integrator"))  # type: ignore[no-any-return]


def _spans(reply: recordings_pb2.SearchResponse) -> list[tuple[int, int, int]]:
    return [(s.range.start_ns, s.range.end_ns, s.segments) for s in reply.spans]


def _gaps(reply: recordings_pb2.SearchResponse) -> list[tuple[int, int, str, bool]]:
    return [(g.range.start_ns, g.range.end_ns, g.reason, g.open) for g in reply.gaps]


def test_the_catalogue_holds_the_footage_the_tests_assume(server: RunningDaemon) -> None:
    catalogue = server.daemon.storage.catalogue
    rows = catalogue.segments("in-cam")
    assert [(r.start_ns, r.end_ns, r.state) for r in rows] == [
        (*SEG1, "complete"),
        (*SEG2, "complete"),
        (*SEG3, "complete"),
    ]
    gaps = catalogue.gaps("in-cam")
    assert [(g.start_ns, g.end_ns, g.reason) for g in gaps] == [
        (*OFFLINE, "camera_offline"),
        (OPEN_FROM, None, "camera_offline"),
    ]


def test_range_across_midnight_segments_and_a_gap(server: RunningDaemon) -> None:
    reply = _search(server, MID - 10 * S, MID + 30 * S)
    assert _spans(reply) == [(SEG1[0], SEG2[1], 2), (*SEG3, 1)]
    assert _gaps(reply) == [
        (MID - 10 * S, SEG1[0], "not_recorded", False),  # before the camera's first footage
        (*OFFLINE, "camera_offline", False),
        (OPEN_FROM, MID + 30 * S, "camera_offline", True),  # still offline: clipped to the request
    ]
    assert reply.recorded_ns == 12 * S + 8 * S
    assert reply.spans[0].bytes == sum(r.bytes or 0 for r in server.daemon.storage.catalogue.segments("in-cam")[:2])
    assert (reply.spans[0].video_codec, reply.spans[0].width, reply.spans[0].height) == ("h264", 320, 240)


@pytest.mark.parametrize(
    ("start_ns", "end_ns", "spans", "gaps"),
    [
        # Inside one span, across the segment boundary at +1s and midnight.
        (MID - 1, MID + S + 1, [(MID - 1, MID + S + 1, 2)], []),
        # Exactly the recorded session: no gap at all.
        (SEG1[0], SEG2[1], [(SEG1[0], SEG2[1], 2)], []),
        # Exactly the offline gap: no span.
        (*OFFLINE, [], [(*OFFLINE, "camera_offline", False)]),
        # One nanosecond either side of the session's end.
        (SEG2[1] - 1, SEG2[1] + 1, [(SEG2[1] - 1, SEG2[1], 1)], [(SEG2[1], SEG2[1] + 1, "camera_offline", False)]),
        # One nanosecond either side of the first footage.
        (SEG1[0] - 1, SEG1[0] + 1, [(SEG1[0], SEG1[0] + 1, 1)], [(SEG1[0] - 1, SEG1[0], "not_recorded", False)]),
        # Entirely before the first footage.
        (MID - 60 * S, SEG1[0], [], [(MID - 60 * S, SEG1[0], "not_recorded", False)]),
        # The last nanosecond of 2026-01-01 and the first of 2026-01-02.
        (MID - 1, MID + 1, [(MID - 1, MID + 1, 1)], []),
        # Entirely inside the open gap, long after.
        (MID + 3600 * S, MID + 7200 * S, [], [(MID + 3600 * S, MID + 7200 * S, "camera_offline", True)]),
    ],
    ids=[
        "cross-boundary",
        "exact-session",
        "exact-gap",
        "session-end-1ns",
        "first-footage-1ns",
        "before",
        "midnight",
        "open-gap",
    ],
)
def test_exact_boundaries(
    server: RunningDaemon,
    start_ns: int,
    end_ns: int,
    spans: list[tuple[int, int, int]],
    gaps: list[tuple[int, int, str, bool]],
) -> None:
    reply = _search(server, start_ns, end_ns)
    assert _spans(reply) == spans
    assert _gaps(reply) == gaps
    assert reply.recorded_ns == sum(e - s for s, e, _ in spans)


def _reference(start_ns: int, end_ns: int) -> list[tuple[int, int, str]]:
    """What the catalogue says, tile by tile, computed independently of vmsd.recordings.search."""
    pieces = [
        (SEG1[0], SEG2[1], "span"),
        (*SEG3, "span"),
        (*OFFLINE, "camera_offline"),
        (OPEN_FROM, 2**62, "camera_offline"),
    ]
    tiles = []
    cursor = start_ns
    for lo, hi, kind in sorted(pieces):
        lo, hi = max(lo, start_ns), min(hi, end_ns)
        if hi <= lo:
            continue
        if lo > cursor:
            tiles.append((cursor, lo, "not_recorded"))
        tiles.append((lo, hi, kind))
        cursor = hi
    if cursor < end_ns:
        tiles.append((cursor, end_ns, "not_recorded"))
    return tiles


_instants = st.integers(MID - 20 * S, MID + 40 * S)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=_instants, b=_instants)
def test_any_range_tiles_exactly_like_the_catalogue(server: RunningDaemon, a: int, b: int) -> None:
    if a == b:
        b += 1
    start_ns, end_ns = min(a, b), max(a, b)
    reply = _search(server, start_ns, end_ns)
    got = sorted(
        [(s.range.start_ns, s.range.end_ns, "span") for s in reply.spans]
        + [(g.range.start_ns, g.range.end_ns, g.reason) for g in reply.gaps]
    )
    assert got == _reference(start_ns, end_ns)
    assert reply.recorded_ns == sum(hi - lo for lo, hi, kind in got if kind == "span")


def _timeline(server: RunningDaemon, day: str, bucket_ns: int = 0) -> recordings_pb2.TimelineResponse:
    request = recordings_pb2.TimelineRequest(camera_id="in-cam", day=day, bucket_ns=bucket_ns)
    return server.stubs.recordings.Timeline(request, metadata=metadata("viewer"))  # type: ignore[no-any-return]


def test_timeline_of_the_day_after_midnight(server: RunningDaemon) -> None:
    reply = _timeline(server, "2026-01-02")
    assert (reply.day_start_ns, reply.bucket_ns) == (MID, 60 * S)
    assert len(reply.coverage_per_mille) == 1440
    # The first minute holds 7 s + 8 s of footage: 15/60 = 250 per mille; nothing after.
    assert reply.coverage_per_mille[0] == 250
    assert set(reply.coverage_per_mille[1:]) == {0}
    assert [(s.range.start_ns, s.range.end_ns) for s in reply.spans] == [(MID, SEG2[1]), SEG3]
    assert [(g.range.start_ns, g.range.end_ns, g.reason) for g in reply.gaps] == [
        (*OFFLINE, "camera_offline"),
        (OPEN_FROM, MID + 86_400 * S, "camera_offline"),
    ]


def test_timeline_of_the_day_before_midnight(server: RunningDaemon) -> None:
    reply = _timeline(server, "2026-01-01")
    assert reply.day_start_ns == MID - 86_400 * S
    # The last minute holds the 5 s before midnight: 5/60 → 83 per mille (rounded down).
    assert reply.coverage_per_mille[-1] == 83
    assert set(reply.coverage_per_mille[:-1]) == {0}
    assert [(s.range.start_ns, s.range.end_ns) for s in reply.spans] == [(SEG1[0], MID)]
    assert [(g.range.start_ns, g.range.end_ns, g.reason) for g in reply.gaps] == [
        (MID - 86_400 * S, SEG1[0], "not_recorded")
    ]


def test_timeline_with_one_second_buckets(server: RunningDaemon) -> None:
    coverage = _timeline(server, "2026-01-02", bucket_ns=S).coverage_per_mille
    assert len(coverage) == 86_400
    expected = [1000] * 7 + [0] * 6 + [40] + [1000] * 7 + [960]  # seconds 0..21
    assert list(coverage[:22]) == expected
    assert set(coverage[22:]) == {0}


def test_timeline_buckets_that_do_not_divide_the_day(server: RunningDaemon) -> None:
    reply = _timeline(server, "2026-01-02", bucket_ns=7 * S)
    assert len(reply.coverage_per_mille) == -(-86_400 // 7)  # the last bucket is partial
    # [0,7) full; [7,14) holds 13.96..14; [14,21) full; [21,28) holds 21..21.96.
    assert list(reply.coverage_per_mille[:4]) == [1000, 1000 * 40 // 7_000, 1000, 1000 * 960 // 7_000]
    assert set(reply.coverage_per_mille[4:]) == {0}


def test_a_day_that_does_not_exist_names_the_field(server: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as error:
        _timeline(server, "2026-02-30")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "day" in (error.value.details() or "")


def _search_pages(
    running: RunningDaemon, start_ns: int, end_ns: int, page_size: int
) -> list[recordings_pb2.SearchResponse]:
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), page_size=page_size
    )
    pages = []
    while True:
        reply = running.stubs.recordings.Search(request, metadata=metadata("integrator"))
        pages.append(reply)
        if not reply.next_page_token:
            return pages
        request.page_token = reply.next_page_token


def test_pages_tile_the_range_exactly_like_one_reply(server: RunningDaemon) -> None:
    start_ns, end_ns = MID - 10 * S, MID + 30 * S
    whole = _search(server, start_ns, end_ns)
    pages = _search_pages(server, start_ns, end_ns, page_size=2)
    assert len(pages) >= 3 and all(len(p.spans) + len(p.gaps) <= 2 for p in pages)
    assert [s for p in pages for s in _spans(p)] == _spans(whole)
    assert [g for p in pages for g in _gaps(p)] == _gaps(whole)
    assert sum(p.recorded_ns for p in pages) == whole.recorded_ns


def test_a_flapping_month_comes_back_across_pages_under_the_cap(fresh_root: Path) -> None:
    """A camera whose every gap carries a long error: more than one message's worth of gaps."""
    running = RunningDaemon(make_config(fresh_root))
    try:
        first_ns, count = MID + 3600 * S, 1200
        for index in range(count):
            at_ns = first_ns + index * 10 * S
            running.daemon.storage.catalogue.insert_gap("in-cam", at_ns, at_ns + 5 * S, "stream_error", "e" * 4000)
        # A client that knows nothing of pages gets the first one instead of RESOURCE_EXHAUSTED.
        range_ = common_pb2.TimeRange(start_ns=MID - 10 * S, end_ns=first_ns + count * 10 * S)
        old = running.stubs.recordings.Search(
            recordings_pb2.SearchRequest(camera_id="in-cam", range=range_), metadata=metadata("integrator")
        )
        assert old.ByteSize() <= MAX_MESSAGE_BYTES and old.spans
        pages = _search_pages(running, range_.start_ns, range_.end_ns, page_size=0)
        assert len(pages) >= 2 and all(p.ByteSize() <= MAX_MESSAGE_BYTES for p in pages)
        stream_errors = [g for p in pages for g in p.gaps if g.reason == "stream_error"]
        assert len(stream_errors) == count
        starts = [g.range.start_ns for p in pages for g in p.gaps]
        assert starts == sorted(starts)
        # vmsctl search follows the pages.
        iso = [dt.datetime.fromtimestamp(ns / S, dt.UTC).isoformat() for ns in (range_.start_ns, range_.end_ns)]
        argv = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{running.port}", "--json"]
        argv += ["--token", token("integrator"), "search", "in-cam", "--from", iso[0], "--to", iso[1]]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count('"reason": "stream_error"') == count
    finally:
        running.stop()
