"""Review playback over gRPC: decodable MPEG-TS cut at the right keyframe, a required reason, audited.

The footage (tests/support/rpc.py) is 25 fps with a keyframe every 2 s: session 1 has frames at
MID-5s + 40 ms·k and keyframes at MID-5s + 2 s·k; session 2 likewise from MID+13.96s.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import (
    FRAME_NS,
    MID,
    MS,
    RunningDaemon,
    S,
    make_config,
    metadata,
    playback_producers,
    release,
    stuck_playback_getters,
)
from vmsd.v1 import common_pb2, recordings_pb2

SESSION2 = MID + 13_960 * MS


def _play(
    server: RunningDaemon, start_ns: int, end_ns: int, reason: str = "incident 42 review", role: str = "viewer"
) -> list[recordings_pb2.PlayChunk]:
    request = recordings_pb2.PlayRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), reason=reason
    )
    return list(server.stubs.recordings.Play(request, metadata=metadata(role)))


def _probe_packets(path: Path) -> list[dict[str, str]]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["packets"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("start_ns", "end_ns", "first_ns", "last_ns", "frames"),
    [
        # Mid-GOP start: back to the keyframe at +3 s; the last frame before +5.5 s is +5.48 s.
        (MID + 3_500 * MS, MID + 5_500 * MS, MID + 3 * S, MID + 5_480 * MS, 63),
        # Across midnight and the segment boundary at +1 s: keyframe at -3 s.
        (MID - 1_500 * MS, MID + 1_500 * MS, MID - 3 * S, MID + 1_480 * MS, 113),
        # Across the offline gap: 5.00..6.96 of session 1, then 13.96..14.96 of session 2.
        (MID + 6 * S, MID + 15 * S, MID + 5 * S, SESSION2 + 1 * S, 50 + 26),
        # Starting exactly on a keyframe (the first of the second segment).
        (MID + 1 * S, MID + 2 * S, MID + 1 * S, MID + 1_960 * MS, 25),
    ],
    ids=["mid-gop", "midnight-and-segment-boundary", "across-gap", "on-keyframe"],
)
def test_playback_is_decodable_and_cut_at_the_keyframe_before_start(
    server: RunningDaemon, tmp_path: Path, start_ns: int, end_ns: int, first_ns: int, last_ns: int, frames: int
) -> None:
    before = server.daemon.audit.head()[0]
    chunks = _play(server, start_ns, end_ns)
    kinds = [c.WhichOneof("kind") for c in chunks]
    assert kinds[0] == "header" and kinds[-1] == "trailer" and set(kinds[1:-1]) == {"data"}
    header, trailer = chunks[0].header, chunks[-1].trailer
    data = b"".join(c.data for c in chunks[1:-1])
    assert header.container == "mpegts"
    assert (header.requested.start_ns, header.requested.end_ns) == (start_ns, end_ns)
    # Within a GOP of the request: the keyframe at or before start, and nothing at or after end.
    assert header.first_packet_ns == first_ns
    assert first_ns <= start_ns < first_ns + 2 * S
    assert trailer.last_packet_ns == last_ns < end_ns
    assert trailer.video_frames == frames
    assert trailer.bytes == len(data) > 0

    out = tmp_path / "out.ts"
    out.write_bytes(data)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stderr == ""
    packets = _probe_packets(out)
    assert len(packets) == frames
    assert "K" in packets[0]["flags"]
    pts = [float(p["pts_time"]) for p in packets]
    # Stream time keeps the recorded spacing (a gap is a jump): last - first is the wall span.
    assert abs((pts[-1] - pts[0]) - (last_ns - first_ns) / S) < 1 / 90_000 + 1e-9
    assert all(b - a >= FRAME_NS / S - 1e-6 for a, b in itertools.pairwise(pts))

    records = [r for r in server.daemon.audit.query(limit=50)[0] if r.seq > before]
    assert [(r.action, r.outcome, r.camera_id, r.start_ns, r.end_ns, r.reason) for r in records] == [
        ("/vmsd.v1.RecordingService/Play", "OK", "in-cam", start_ns, end_ns, "incident 42 review")
    ]
    detail = json.loads(records[0].detail_json)
    assert detail["bytes"] == len(data)
    assert detail["video_frames"] == frames


@pytest.mark.parametrize("reason", ["", "   ", "\t\n", "why\x00not"], ids=["empty", "spaces", "whitespace", "control"])
def test_play_needs_a_reason(server: RunningDaemon, reason: str) -> None:
    before = server.daemon.audit.head()[0]
    with pytest.raises(grpc.RpcError) as error:
        _play(server, MID, MID + S, reason=reason)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (error.value.details() or "")
    # The attempt itself is on the record.
    records = [r for r in server.daemon.audit.query(limit=50)[0] if r.seq > before]
    assert [(r.action, r.outcome, r.camera_id) for r in records] == [
        ("/vmsd.v1.RecordingService/Play", "INVALID_ARGUMENT", "in-cam")
    ]


def test_play_of_a_range_without_footage_is_not_found(server: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as error:
        _play(server, MID + 8 * S, MID + 13 * S)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_play_longer_than_a_day_names_the_range(server: RunningDaemon) -> None:
    with pytest.raises(grpc.RpcError) as error:
        _play(server, MID, MID + 86_400 * S + 1)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "range" in (error.value.details() or "")


def test_abandoned_playbacks_leak_no_threads_and_never_wedge_the_server(fresh_root: Path) -> None:
    """Clients that read the header and go away: every worker thread of theirs must end.

    Each leaked thread holds a slot of the event loop's default executor, which every
    `asyncio.to_thread` in the daemon shares (catalogue queries, audit appends); once the slots
    are gone every RPC hangs, and `asyncio.run()` never returns after SIGTERM.
    """
    running = RunningDaemon(make_config(fresh_root))
    request = recordings_pb2.PlayRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=MID - 5 * S, end_ns=MID + 22 * S), reason="abandon"
    )
    wedged_at: int | None = None
    stuck: list[object] = []
    try:
        for attempt in range(30):
            stream = running.stubs.recordings.Play(request, metadata=metadata("viewer"), timeout=5)
            try:
                assert next(stream).WhichOneof("kind") == "header"
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                wedged_at = attempt
                break
            stream.cancel()
        # Every abandoned call has ended on the server once its producer thread has.
        for thread in playback_producers():
            thread.join(10)
        assert not playback_producers()
        stuck = list(stuck_playback_getters())
    finally:
        release(stuck_playback_getters())
        running.stop()
    assert wedged_at is None, f"the server stopped answering after {wedged_at} abandoned playbacks"
    assert stuck == [], f"{len(stuck)} executor threads blocked forever in Play's chunk queue"
