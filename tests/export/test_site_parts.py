"""A peer's part of a site export as received (collect_part), and the pure rules of a bundle of
several recorders: overlaps, per-recorder chains, time still being recorded. The whole protocol
between real recorders: tests/services/test_site_export.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.gaps import carve_in_progress
from vmsd.export.site_parts import PartHeader, PartItem, PartSegment, collect_part

S = 1_000_000_000
ZERO = "0" * 64


def _segment(data: bytes, start_s: int, *, prev: str = ZERO, sha: str | None = None) -> PartSegment:
    return PartSegment(
        start_ns=start_s * S, end_ns=(start_s + 10) * S, bytes=len(data),
        sha256=sha or hashlib.sha256(data).hexdigest(), prev_sha256=prev,
        recorded_path=f"recordings/in-cam/2026-01-02/{start_s:06d}.000000000Z.mp4", epoch=7, unfenced=False,
        video_codec="h264", width=320, height=240, has_audio=False,
    )  # fmt: skip


def _header(segments: int) -> PartHeader:
    return PartHeader("rec-b", "", [], [], segments, 0, None)


def _collect(items: list[PartItem], staging: Path, *, originals: bool = True) -> mf.Segment:
    steps = list(collect_part(iter(items), "rec-b", "in-cam", staging, include_originals=originals))
    return steps[-1][0].segments[-1]


def test_a_segment_is_written_under_its_recorder_with_its_catalogue_row(tmp_path: Path) -> None:
    data = b"x" * 3000
    first = _segment(data, 10)
    segment = _collect([_header(1), first, data[:1000], data[1000:]], tmp_path)
    assert segment.file == "segments/rec-b/2026-01-02T000010.000000000Z.mp4"
    assert (tmp_path / segment.file).read_bytes() == data
    assert (segment.recorder, segment.epoch, segment.sha256) == ("rec-b", 7, first.sha256)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (lambda d: [_header(1), _segment(d, 10, sha="f" * 64), d], "does not match its catalogue hash"),
        (lambda d: [_header(1), _segment(d, 10), d[:-1]], "does not match its catalogue hash"),
        (lambda d: [_header(2), _segment(d, 10), d], "sent 1 of the 2 segments it listed"),
        (lambda d: [_header(1), d, _segment(d, 10)], "sent its part out of order"),
        (lambda d: [_segment(d, 10), d], "did not answer with its part"),
        (lambda d: [_header(1), replace(_segment(d, 10), recorded_path=".."), d], "not a recording's"),
    ],
    ids=["wrong-hash", "short", "missing-segment", "bytes-first", "no-header", "bad-path"],
)
def test_a_part_that_is_not_what_its_recorder_listed_is_refused(tmp_path: Path, items: object, message: str) -> None:
    data = b"y" * 2000
    with pytest.raises(VmsdError) as caught:
        _collect(items(data), tmp_path)  # type: ignore[operator]
    assert caught.value.kind is ErrorKind.DATA_LOSS
    assert message in caught.value.message and "rec-b" in caught.value.message


def _listed(recorder: str, start_s: int, end_s: int, sha: str, prev: str = ZERO) -> mf.Segment:
    return mf.Segment(
        start_ns=start_s * S, end_ns=end_s * S, bytes=1, sha256=sha, prev_sha256=prev,
        recorded_path="r", file=None, recorder=recorder,
    )  # fmt: skip


def test_overlaps_are_the_time_two_recorders_both_cover_and_touching_is_not_overlapping() -> None:
    segments = [
        _listed("rec-a", 0, 10, "1" * 64),
        _listed("rec-b", 10, 20, "2" * 64),  # touches rec-a's: no overlap
        _listed("rec-a", 15, 25, "3" * 64),
        _listed("rec-c", 18, 30, "4" * 64),
    ]
    assert [(o.start_ns // S, o.end_ns // S, o.recorders) for o in mf.overlaps(segments)] == [
        (15, 18, ["rec-a", "rec-b"]),
        (18, 20, ["rec-a", "rec-b", "rec-c"]),
        (20, 25, ["rec-a", "rec-c"]),
    ]
    assert mf.overlaps([_listed("", 0, 10, "1" * 64), _listed("", 10, 20, "2" * 64)]) == []


def test_the_chain_rule_holds_per_recorder() -> None:
    a1, b1 = "a" * 64, "b" * 64
    linked = [_listed("rec-a", 0, 10, a1), _listed("rec-b", 5, 15, b1), _listed("rec-a", 10, 20, "c" * 64, prev=a1)]
    assert mf.chain_breaks(linked, []) == []
    # Linking to the other recorder's segment listed just before is a break of rec-a's chain.
    crossed = [_listed("rec-a", 0, 10, a1), _listed("rec-b", 5, 15, b1), _listed("rec-a", 10, 20, "c" * 64, prev=b1)]
    breaks = mf.chain_breaks(crossed, [])
    assert [b.index for b in breaks] == [2] and breaks[0].detail.endswith("(recorder rec-a)")


def test_time_a_recorder_was_still_recording_is_in_progress_not_another_recorders_gap() -> None:
    gaps = [mf.Gap(start_ns=10 * S, end_ns=40 * S, reason="failover", detail="recorded by rec-b from epoch 9")]
    carved = carve_in_progress(gaps, 20 * S, 30 * S)
    assert [(g.start_ns // S, g.end_ns // S, g.reason) for g in carved] == [
        (10, 20, "failover"),
        (20, 30, mf.GAP_RECORDING_IN_PROGRESS),
        (30, 40, "failover"),
    ]
    assert carve_in_progress(gaps, None, 30 * S) == gaps


def test_the_generator_stops_at_the_end(tmp_path: Path) -> None:
    """The part so far is yielded after each segment, then once more complete."""
    data = b"z" * 10
    steps: Iterator[tuple[object, int]] = collect_part(
        iter([_header(2), _segment(data, 10), data, _segment(data, 20), data]),
        "rec-b", "in-cam", tmp_path, include_originals=False,
    )  # fmt: skip
    received = [got for _, got in steps]
    assert received == [10, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peer-rec-b-0.mp4", "peer-rec-b-1.mp4"]
