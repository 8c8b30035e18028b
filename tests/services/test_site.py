"""Site-wide search and timeline: two real recorders (daemons with [site], gRPC on loopback) on
a real etcd, each holding part of one camera's footage as after a failover.

  rec-a  in-cam  MID-5s .. MID+7s (two segments), then died: an open `crash` gap from MID+7s
  rec-b  in-cam  `failover` gap MID+7s .. MID+10s (it took the camera over), footage
                 MID+10s .. MID+22s, then an open `camera_offline` gap

A search on either recorder lists both recorders' spans, each naming its recorder, and the
failover hole exactly once; a recorder that is down is an explicit `unavailable` part; the call
is audited on both recorders (`site_peers` on the one asked, `via` on the peer).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from tests.support.etcd import EtcdCluster
from tests.support.rpc import MID, RunningDaemon, S, metadata
from tests.support.site_ops import SITE_TOKEN, record_in_cam, site_daemon, wait_for_keys
from tests.support.web import login
from vmsd.errors import ErrorKind, VmsdError
from vmsd.reports.build import Report
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.forwarding import Forwarded
from vmsd.services.peer_segments import PeerSegmentCopies
from vmsd.site.footage import PeerRecorder
from vmsd.site.peers import PeerClient
from vmsd.storage.catalogue import GapReason
from vmsd.v1 import audit_pb2, common_pb2, recordings_pb2

RANGE = (MID - 10 * S, MID + 30 * S)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, h264_ts: Path
) -> Iterator[tuple[EtcdCluster, RunningDaemon, RunningDaemon]]:
    base = tmp_path_factory.mktemp("site")
    etcd = EtcdCluster(base / "etcd", members_count=1).start()
    token_file = base / "site.token"
    token_file.write_text(SITE_TOKEN + "\n")
    record_in_cam(base / "a", h264_ts, start_ns=MID - 5 * S, seconds=12, end_reason=GapReason.CRASH)
    record_in_cam(
        base / "b",
        h264_ts,
        start_ns=MID + 10 * S,
        seconds=12,
        end_reason="camera_offline",
        failover_from_ns=MID + 7 * S,
    )
    rec_a = rec_b = None
    try:
        rec_a = site_daemon(base / "a", "rec-a", etcd, token_file, web={"listen": "127.0.0.1:0"})
        rec_b = site_daemon(base / "b", "rec-b", etcd, token_file)
        wait_for_keys(etcd, "footage/in-cam/", {"rec-a", "rec-b"})
        yield etcd, rec_a, rec_b
    finally:
        for running in (rec_b, rec_a):
            if running is not None:
                running.stop()
        etcd.stop()


def _search(running: RunningDaemon, role: str = "integrator") -> recordings_pb2.SearchResponse:
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=RANGE[0], end_ns=RANGE[1])
    )
    return running.stubs.recordings.Search(request, metadata=metadata(role), timeout=10)  # type: ignore[no-any-return]


def _spans(reply: recordings_pb2.SearchResponse) -> list[tuple[int, int, int, str]]:
    return [(s.range.start_ns, s.range.end_ns, s.segments, s.recorder) for s in reply.spans]


def _gaps(reply: recordings_pb2.SearchResponse) -> list[tuple[int, int, str]]:
    return [(g.range.start_ns, g.range.end_ns, g.reason) for g in reply.gaps]


SPANS = [(MID - 5 * S, MID + 7 * S, 2, "rec-a"), (MID + 10 * S, MID + 22 * S, 2, "rec-b")]
GAPS = [
    (RANGE[0], MID - 5 * S, "not_recorded"),
    (MID + 7 * S, MID + 10 * S, "failover"),
    (MID + 22 * S, RANGE[1], "camera_offline"),
]


@pytest.mark.parametrize("asked", ["rec-a", "rec-b"])
def test_a_search_on_either_recorder_merges_both_with_the_failover_gap_once(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], asked: str
) -> None:
    _, rec_a, rec_b = site
    reply = _search(rec_a if asked == "rec-a" else rec_b)
    assert _spans(reply) == SPANS
    assert _gaps(reply) == GAPS
    assert list(reply.unavailable) == []
    assert reply.recorded_ns == 24 * S


def test_a_site_search_is_audited_on_both_recorders(site: tuple[EtcdCluster, RunningDaemon, RunningDaemon]) -> None:
    _, rec_a, rec_b = site
    _search(rec_a, role="viewer")
    mine, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Search")
    theirs, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Search")
    assert json.loads(mine[-1].detail_json)["site_peers"] == ["rec-b"]
    assert json.loads(theirs[-1].detail_json)["via"] == "rec-a"
    assert (mine[-1].camera_id, theirs[-1].camera_id) == ("in-cam", "in-cam")


def test_the_timeline_covers_both_recorders(site: tuple[EtcdCluster, RunningDaemon, RunningDaemon]) -> None:
    _, rec_a, _ = site
    request = recordings_pb2.TimelineRequest(camera_id="in-cam", day="2026-01-02", bucket_ns=10 * S)
    reply = rec_a.stubs.recordings.Timeline(request, metadata=metadata("viewer"), timeout=10)
    # Buckets of 10 s from midnight: [0,10) rec-a until 7 s; [10,20) rec-b whole; [20,30) rec-b 2 s.
    assert list(reply.coverage_per_mille[:4]) == [700, 1000, 200, 0]
    assert {s.recorder for s in reply.spans} == {"rec-a", "rec-b"}


def test_a_principal_the_peer_does_not_know_gets_an_unavailable_part_not_silence(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    """police-link may not search at all; admin-1 exists on both: here the peer refuses a scope."""
    _, rec_a, _ = site
    with pytest.raises(grpc.RpcError) as caught:
        _search(rec_a, role="police-link")
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED  # refused here before any peer is asked


def _audit(running: RunningDaemon, page_size: int = 0, page_token: str = "") -> audit_pb2.QueryAuditResponse:
    request = audit_pb2.QueryAuditRequest(page_size=page_size, page_token=page_token)
    return running.stubs.audit.QueryAudit(request, metadata=metadata("supervisor"), timeout=10)  # type: ignore[no-any-return]


def test_a_site_audit_query_merges_both_trails_each_chain_intact(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, rec_a, rec_b = site
    _search(rec_a, role="viewer")  # audited on both recorders
    # The query itself is audited on both recorders once answered: the trails as they were before it.
    heads = {"rec-a": rec_a.daemon.audit.head()[0], "rec-b": rec_b.daemon.audit.head()[0]}
    reply = _audit(rec_a)
    assert list(reply.unavailable) == [] and not reply.truncated
    by_recorder: dict[str, list[int]] = {}
    for record in reply.records:
        by_recorder.setdefault(record.recorder, []).append(record.seq)
    assert set(by_recorder) == {"rec-a", "rec-b"}
    # Each recorder's records are its whole trail, in its own seq order, and its chain verifies.
    for recorder, running in (("rec-a", rec_a), ("rec-b", rec_b)):
        assert by_recorder[recorder] == list(range(1, heads[recorder] + 1))
        verified = running.stubs.audit.VerifyAudit(audit_pb2.VerifyAuditRequest(), metadata=metadata("admin"))
        assert verified.ok
    assert [r.time_ns for r in reply.records] == sorted(r.time_ns for r in reply.records)
    forwarded = [r for r in reply.records if r.recorder == "rec-b" and "via" in json.loads(r.detail_json or "{}")]
    assert forwarded and json.loads(forwarded[-1].detail_json)["via"] == "rec-a"


def test_site_audit_pages_add_up_to_the_whole_merged_trail(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, rec_a, _ = site
    whole = [(r.recorder, r.seq) for r in _audit(rec_a).records]
    # Each page's own call is audited on rec-a too: count only what existed before paging.
    paged: list[tuple[str, int]] = []
    token = ""
    while True:
        reply = _audit(rec_a, page_size=2, page_token=token)
        assert len(reply.records) <= 2
        paged[:0] = [(r.recorder, r.seq) for r in reply.records]
        token = reply.next_page_token
        if not token:
            break
    assert [item for item in paged if item in whole] == whole
    assert len(set(paged)) == len(paged)


def _play(running: RunningDaemon, start_ns: int, end_ns: int) -> list[recordings_pb2.PlayChunk]:
    request = recordings_pb2.PlayRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), reason="incident 7 review"
    )
    return list(running.stubs.recordings.Play(request, metadata=metadata("viewer"), timeout=30))


def _video_pts_s(chunks: list[recordings_pb2.PlayChunk], tmp_path: Path) -> tuple[str, list[float]]:
    """The codec and the video frames' presentation times (s) of a review's MPEG-TS stream."""
    clip = tmp_path / "review.ts"
    clip.write_bytes(b"".join(c.data for c in chunks if c.WhichOneof("kind") == "data"))
    assert chunks[-1].trailer.bytes == clip.stat().st_size > 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name:packet=pts_time",
         "-of", "json", str(clip)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    document = json.loads(probe.stdout)
    return document["streams"][0]["codec_name"], sorted(float(p["pts_time"]) for p in document["packets"])


def _parts(parts: Iterable[recordings_pb2.PlayPart]) -> list[tuple[int, int, str, str]]:
    return [(p.range.start_ns, p.range.end_ns, p.recorder, p.state) for p in parts]


def test_a_review_of_footage_held_by_the_peer_is_played_from_it(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    _, rec_a, rec_b = site
    chunks = _play(rec_a, MID + 11 * S, MID + 15 * S)
    header, trailer = chunks[0].header, chunks[-1].trailer
    assert [s.recorder for s in header.spans] == ["rec-b"]
    assert _parts(header.parts) == [(MID + 11 * S, MID + 15 * S, "rec-b", "played")]
    assert header.first_packet_ns == MID + 10 * S  # rec-b's keyframe at or before the start
    codec, pts_s = _video_pts_s(chunks, tmp_path)
    assert (codec, len(pts_s)) == ("h264", trailer.video_frames)
    assert trailer.video_frames == 5 * 25  # 10 s .. 15 s at 25 fps
    # Audited on both: rec-a says where it played from; rec-b made its own review of its part,
    # with the reason and `via`, and audited every segment rec-a read of it.
    mine, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Play")
    assert json.loads(mine[-1].detail_json)["played_from"] == ["rec-b"]
    theirs, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReviewSegments")
    assert (theirs[-1].reason, json.loads(theirs[-1].detail_json)["via"]) == ("incident 7 review", "rec-a")
    reads, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReadSegment")
    assert reads and {json.loads(r.detail_json)["via"] for r in reads} == {"rec-a"}


@pytest.mark.parametrize("asked", ["rec-a", "rec-b"])
def test_a_review_across_the_failover_plays_both_recorders_parts_with_the_gap_once(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path, asked: str
) -> None:
    _, rec_a, rec_b = site
    chunks = _play(rec_a if asked == "rec-a" else rec_b, MID, MID + 15 * S)
    header, trailer = chunks[0].header, chunks[-1].trailer
    expected = [(MID, MID + 7 * S, "rec-a", "played"), (MID + 10 * S, MID + 15 * S, "rec-b", "played")]
    assert _parts(header.parts) == _parts(trailer.parts) == expected
    assert [(g.range.start_ns, g.range.end_ns, g.reason) for g in header.gaps] == [
        (MID + 7 * S, MID + 10 * S, "failover")
    ]
    assert header.first_packet_ns == MID - 1 * S  # rec-a's keyframe at or before the start (GOP 2 s from MID-5s)
    codec, pts_s = _video_pts_s(chunks, tmp_path)
    assert (codec, len(pts_s)) == ("h264", trailer.video_frames)
    # rec-a's frames from MID-1s to MID+7s, then the failover hole as one jump in stream time,
    # then rec-b's frames from MID+10s to MID+15s.
    jumps = [(a, b) for a, b in itertools.pairwise(pts_s) if b - a > 0.5]
    assert len(jumps) == 1
    before = [t for t in pts_s if t <= jumps[0][0]]
    after = [t for t in pts_s if t >= jumps[0][1]]
    assert (len(before), len(after)) == (8 * 25, 5 * 25)
    assert jumps[0][1] - before[0] == pytest.approx(11.0, abs=0.05)  # rec-b's first frame at MID+10s
    assert trailer.last_packet_ns == MID + 15 * S - S // 25
    mine, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Play")
    if asked == "rec-a":
        assert json.loads(mine[-1].detail_json)["played_from"] == ["rec-b"]


async def test_a_console_review_across_the_failover_serves_the_peers_segments_through_this_recorder(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    """The web console of rec-a: one review over both recorders; rec-b's segment is fetched from
    rec-b for the viewer (its ReviewSegments and ReadSegment audited there with `via`) and served
    with byte ranges exactly as stored there."""
    _, rec_a, rec_b = site
    assert rec_a.daemon.web is not None
    url = f"http://127.0.0.1:{rec_a.daemon.web.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        csrf = (await login(client, url, "viewer"))["csrf"]
        body = {"from": str(MID), "to": str(MID + 15 * S), "reason": "incident 8 console review"}
        async with client.post(
            f"{url}/api/v1/cameras/in-cam/reviews", json=body, headers={"X-CSRF-Token": csrf}
        ) as response:
            assert response.status == 201, await response.text()
            review = await response.json()
        segments = review["segments"]
        rows_a = rec_a.daemon.storage.catalogue.segments_in_range("in-cam", MID, MID + 15 * S)
        assert len(rows_a) == 2  # rec-a's two segments, then rec-b's first
        assert [(s["start_ns"], s["recorder"]) for s in segments] == [
            (str(rows_a[0].start_ns), "rec-a"), (str(rows_a[1].start_ns), "rec-a"), (str(MID + 10 * S), "rec-b")
        ]  # fmt: skip
        assert [(p["recorder"], p["state"]) for p in review["parts"]] == [("rec-a", "played"), ("rec-b", "played")]
        assert segments[2]["play_from_ns"] == str(MID + 10 * S)
        stored = rec_b.daemon.storage.catalogue.segments_in_range("in-cam", MID + 10 * S, MID + 11 * S)
        whole = rec_b.daemon.storage.segment_path(stored[0]).read_bytes()
        async with client.get(url + segments[2]["url"], headers={"Range": "bytes=100-1099"}) as response:
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
            assert await response.read() == whole[100:1100]
        async with client.get(url + segments[2]["url"]) as response:
            assert response.status == 200 and await response.read() == whole
    theirs, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReviewSegments")
    assert (theirs[-1].reason, json.loads(theirs[-1].detail_json)["via"]) == ("incident 8 console review", "rec-a")
    reads, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReadSegment")
    assert reads and json.loads(reads[-1].detail_json)["via"] == "rec-a"
    mine, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="GET /api/v1/reviews/")
    assert mine and json.loads(mine[-1].detail_json)["from_recorder"] == "rec-b"


def test_the_peers_management_report_lists_its_part_of_a_review_asked_elsewhere(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, rec_a, rec_b = site
    _play(rec_a, MID + 11 * S, MID + 15 * S)
    now_ns = time.time_ns()

    async def report() -> Report:
        return await rec_b.daemon.services.reports.build(
            Principal("admin-1", "admin", ("*",)), Activity(), now_ns - 3600 * S, now_ns + 3600 * S, []
        )

    reviews = [r for r in rec_b.run(report()).reviews if r.reason == "incident 7 review"]
    assert reviews and {(r.principal, r.camera_id) for r in reviews} == {("viewer-1", "in-cam")}
    assert (reviews[-1].start_ns, reviews[-1].end_ns) == (MID + 11 * S, MID + 15 * S)


async def test_copies_of_a_peers_segments_are_checked_and_bounded(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    """services/peer_segments.py against rec-b itself (a real peer, the real PeerClient): a copy
    is the file rec-b holds; one whose bytes are not what rec-b stated is refused and not kept;
    past the bound the least recently used copy goes."""
    _, _, rec_b = site
    peer = PeerRecorder("rec-b", f"127.0.0.1:{rec_b.daemon.control_plane.port}")
    headers = Forwarded("viewer-1", "viewer", "rec-a").headers()
    client = PeerClient(SITE_TOKEN)
    try:
        review_id, segments = await client.review_segments(
            "rec-b", peer.address, headers, "in-cam", MID + 10 * S, MID + 22 * S, "copies test"
        )
        assert [s.recorder for s in segments] == ["rec-b", "rec-b"]
        copies = PeerSegmentCopies(tmp_path / "copies", client, max_bytes=segments[0].bytes)
        first = await copies.fetch(peer, headers, review_id, 0, segments[0])
        rows = rec_b.daemon.storage.catalogue.segments_in_range("in-cam", MID + 10 * S, MID + 22 * S)
        assert first.read_bytes() == rec_b.daemon.storage.segment_path(rows[0]).read_bytes()
        assert await copies.fetch(peer, headers, review_id, 0, segments[0]) == first  # kept, not fetched again
        # Another principal never gets this one's copy: the peer is asked, and refuses (not its review).
        with pytest.raises(VmsdError) as refused:
            await copies.fetch(peer, Forwarded("admin-1", "admin", "rec-a").headers(), review_id, 0, segments[0])
        assert refused.value.kind is ErrorKind.PERMISSION_DENIED
        lying = dataclasses.replace(segments[1], sha256="0" * 64)
        with pytest.raises(VmsdError) as caught:
            await copies.fetch(peer, headers, review_id, 1, lying)
        assert caught.value.kind is ErrorKind.DATA_LOSS and "recorder rec-b sent segment 1" in caught.value.message
        second = await copies.fetch(peer, headers, review_id, 1, segments[1])
        assert sorted(p.name for p in (tmp_path / "copies").iterdir()) == [second.name]  # the bound: one copy
    finally:
        await client.aclose()


def test_a_recorder_that_is_down_is_reported_unavailable(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    """Last in the module: it stops rec-b (its lease is revoked, its member key goes)."""
    _, rec_a, rec_b = site
    rec_b.stop()
    reply = _search(rec_a)
    assert _spans(reply) == SPANS[:1]
    assert [(u.recorder, u.reason.split(":")[0]) for u in reply.unavailable] == [("rec-b", "UNAVAILABLE")]
    # A review plays what it can have and says what it cannot; one of only rec-b's time is refused
    # naming rec-b, never an empty stream.
    header = _play(rec_a, MID, MID + 15 * S)[0].header
    assert _parts(header.parts) == [(MID, MID + 7 * S, "rec-a", "played")]
    assert [u.recorder for u in header.unavailable] == ["rec-b"]
    with pytest.raises(grpc.RpcError) as caught:
        _play(rec_a, MID + 11 * S, MID + 15 * S)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "recorder rec-b: UNAVAILABLE" in str(caught.value.details())
    assert "not a live member of the site" in reply.unavailable[0].reason
    # Without rec-b's part, the time after rec-a's footage is rec-a's open crash gap.
    assert _gaps(reply) == [(RANGE[0], MID - 5 * S, "not_recorded"), (MID + 7 * S, RANGE[1], "crash")]
    audit = _audit(rec_a)
    assert [u.recorder for u in audit.unavailable] == ["rec-b"]
    assert {r.recorder for r in audit.records} == {"rec-a"} and not audit.next_page_token


def test_without_etcd_a_search_answers_its_own_part_and_says_the_site_is_unavailable(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    """Last but one thing to stop: etcd itself (rec-a keeps answering)."""
    etcd, rec_a, _ = site
    etcd.stop()
    reply = _search(rec_a)
    assert _spans(reply) == SPANS[:1]
    assert [u.recorder for u in reply.unavailable] == ["site"]
    assert reply.unavailable[0].reason.startswith("UNAVAILABLE: the site's etcd cannot be reached")
