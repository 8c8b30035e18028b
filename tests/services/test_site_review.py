"""Review across a real failover: two recorders of a site on a real etcd and a simulated camera.

rec-a records in-cam, then stops (its lease revoked: rec-b takes the camera over and writes the
`failover` gap), then comes back (failback manual: it records nothing, but serves its footage).
A review asked of rec-b plays rec-a's part (fetched from rec-a for the same principal, audited
there with `via`) then its own, in one stream, the hole stated once; the web console of rec-b
serves rec-a's segment through rec-b.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.rpc import RunningDaemon, S, metadata
from tests.support.site_ops import failover_site, in_cam_spans
from tests.support.web import login
from vmsd.v1 import common_pb2, recordings_pb2


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, RunningDaemon]]:
    with failover_site(tmp_path_factory.mktemp("review-site")) as recorders:
        yield recorders


def test_a_review_across_a_real_failover_plays_both_recorders_with_the_gap_once(
    site: tuple[RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    rec_a, rec_b = site
    spans = in_cam_spans(rec_b)
    assert [s.recorder for s in spans] == ["rec-a", "rec-b"]
    start_ns, end_ns = spans[0].range.start_ns, spans[-1].range.end_ns
    request = recordings_pb2.PlayRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), reason="incident 9"
    )
    chunks = list(rec_b.stubs.recordings.Play(request, metadata=metadata("viewer"), timeout=60))
    header, trailer = chunks[0].header, chunks[-1].trailer
    assert [(p.recorder, p.state) for p in header.parts] == [("rec-a", "played"), ("rec-b", "played")]
    assert [(p.recorder, p.state) for p in trailer.parts] == [("rec-a", "played"), ("rec-b", "played")]
    rec_a_part, rec_b_part = header.parts
    # Between the two parts: one gap, the failover, stated once.
    between = [
        g
        for g in header.gaps
        if g.range.start_ns >= rec_a_part.range.end_ns and g.range.end_ns <= rec_b_part.range.start_ns
    ]
    assert [(g.range.start_ns, g.range.end_ns, g.reason) for g in between] == [
        (rec_a_part.range.end_ns, rec_b_part.range.start_ns, "failover")
    ]
    clip = tmp_path / "review.ts"
    clip.write_bytes(b"".join(c.data for c in chunks if c.WhichOneof("kind") == "data"))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "json",
         str(clip)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall_ns = [header.first_packet_ns + round(float(p["pts_time"]) * S) for p in json.loads(probe.stdout)["packets"]]
    assert len(wall_ns) == trailer.video_frames
    gap = between[0].range
    from_a = [t for t in wall_ns if t < gap.start_ns]
    from_b = [t for t in wall_ns if t >= gap.end_ns - S // 1000]  # stream time is in 90 kHz ticks
    assert from_a and from_b and len(from_a) + len(from_b) == len(wall_ns)  # nothing inside the hole
    # Audited on both: rec-b played from rec-a; rec-a made its own review of its part for viewer-1.
    mine, _ = rec_b.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Play")
    assert json.loads(mine[-1].detail_json)["played_from"] == ["rec-a"]
    theirs, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReviewSegments")
    assert (theirs[-1].reason, json.loads(theirs[-1].detail_json)["via"]) == ("incident 9", "rec-b")


async def test_the_console_of_the_new_owner_serves_the_old_owners_segments(
    site: tuple[RunningDaemon, RunningDaemon],
) -> None:
    rec_a, rec_b = site
    assert rec_b.daemon.web is not None
    url = f"http://127.0.0.1:{rec_b.daemon.web.port}"
    spans = in_cam_spans(rec_b)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        csrf = (await login(client, url, "viewer"))["csrf"]
        body = {"from": str(spans[0].range.start_ns), "to": str(spans[-1].range.end_ns), "reason": "incident 9"}
        async with client.post(
            f"{url}/api/v1/cameras/in-cam/reviews", json=body, headers={"X-CSRF-Token": csrf}
        ) as response:
            assert response.status == 201, await response.text()
            review = await response.json()
        theirs = [s for s in review["segments"] if s["recorder"] == "rec-a"]
        assert theirs, review
        stored = rec_a.daemon.storage.catalogue.segments_in_range(
            "in-cam", int(theirs[0]["start_ns"]), int(theirs[0]["start_ns"]) + 1
        )
        whole = rec_a.daemon.storage.segment_path(stored[0]).read_bytes()
        async with client.get(url + theirs[0]["url"], headers={"Range": "bytes=0-999"}) as response:
            assert response.status == 206
            assert await response.read() == whole[:1000]
    reads, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/ReadSegment")
    assert reads and json.loads(reads[-1].detail_json)["via"] == "rec-b"
