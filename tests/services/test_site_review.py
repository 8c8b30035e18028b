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
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.clips import make_clip
from tests.support.etcd import EtcdCluster
from tests.support.rpc import RunningDaemon, S, metadata
from tests.support.simulator import CameraSimulator, MountSpec
from tests.support.site_ops import SITE_TOKEN, site_daemon, wait_for_keys
from tests.support.web import login
from vmsd.v1 import common_pb2, recordings_pb2

WEB = {"listen": "127.0.0.1:0"}


def _spans(running: RunningDaemon) -> list[recordings_pb2.RecordedSpan]:
    now_ns = time.time_ns()
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=now_ns - 600 * S, end_ns=now_ns)
    )
    return list(running.stubs.recordings.Search(request, metadata=metadata("viewer"), timeout=10).spans)


def _wait_for_footage(running: RunningDaemon, recorder: str, seconds: float, timeout_s: float = 60) -> None:
    """Until a search on `running` shows `seconds` of `recorder`'s footage of in-cam."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = sum(s.range.end_ns - s.range.start_ns for s in _spans(running) if s.recorder == recorder)
        if held >= seconds * S:
            return
        time.sleep(0.2)
    raise AssertionError(f"{recorder} has not recorded {seconds} s of in-cam")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, RunningDaemon]]:
    base = tmp_path_factory.mktemp("review-site")
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", width=320, height=240, seconds=10)
    with CameraSimulator([MountSpec("in-cam", clip)]) as simulator:
        etcd = EtcdCluster(base / "etcd", members_count=1).start()
        token_file = base / "site.token"
        token_file.write_text(SITE_TOKEN)
        cameras = {"in-cam": simulator.url("in-cam")}
        fields = {"enabled": True}
        started: list[RunningDaemon] = []

        def start(recorder_id: str) -> RunningDaemon:
            running = site_daemon(
                base / recorder_id, recorder_id, etcd, token_file, cameras=cameras, camera_fields=fields, web=WEB
            )
            started.append(running)
            return running

        try:
            rec_a = start("rec-a")  # alone: it claims in-cam
            _wait_for_footage(rec_a, "rec-a", 3)
            rec_b = start("rec-b")
            wait_for_keys(etcd, "members/", {"rec-a", "rec-b"})
            rec_a.stop()  # a clean stop revokes its lease: rec-b takes in-cam over at once
            _wait_for_footage(rec_b, "rec-b", 4)
            rec_a = start("rec-a")  # back, with its footage; failback is manual, so rec-b keeps the camera
            wait_for_keys(etcd, "members/", {"rec-a", "rec-b"})
            wait_for_keys(etcd, "footage/in-cam/", {"rec-a", "rec-b"})
            yield rec_a, rec_b
        finally:
            for running in reversed(started):
                running.stop()
            etcd.stop()


def test_a_review_across_a_real_failover_plays_both_recorders_with_the_gap_once(
    site: tuple[RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    rec_a, rec_b = site
    spans = _spans(rec_b)
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
    spans = _spans(rec_b)
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
