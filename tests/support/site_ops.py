"""Recorders of a test site for the site-wide operations (tests/services/test_site.py,
tests/site/test_holds.py): footage written as after a failover, daemons with [site] on a real
etcd (tests/support/etcd.py), a wait for keys to appear in etcd, and a site that went through a
real failover of a simulated camera (`failover_site`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grpc import ChannelCredentials

from tests.support.clips import make_clip
from tests.support.etcd import EtcdCluster
from tests.support.feed import feed
from tests.support.rpc import RunningDaemon, S, make_config, metadata
from tests.support.simulator import CameraSimulator, MountSpec, free_port
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.catalogue import GapReason
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage
from vmsd.v1 import common_pb2, recordings_pb2

SITE = "test-site"
SITE_TOKEN = "site-token-of-the-test-site"


def record_in_cam(
    root: Path, clip: Path, *, start_ns: int, seconds: int, end_reason: str, failover_from_ns: int = 0
) -> None:
    """`seconds` of in-cam footage from `start_ns` (10 s segments), ended by `end_reason`; with
    `failover_from_ns`, a `failover` gap from then to `start_ns` first (this recorder took over)."""
    storage = Storage(root)
    storage.open()
    try:
        reconcile(storage)
        for camera_id in ("in-cam", "out-cam"):
            storage.catalogue.upsert_camera(camera_id, camera_id, "", 0)
        if failover_from_ns:
            storage.catalogue.insert_gap("in-cam", failover_from_ns, start_ns, GapReason.FAILOVER, "from rec-a")
        clock = FakeClock(wall_ns=start_ns)
        segmenter = Segmenter("in-cam", storage, clock, segment_duration_ns=10 * S)
        feed(segmenter, clock, clip, seconds=seconds, end_reason=end_reason)
    finally:
        storage.close()


def site_daemon(
    root: Path,
    recorder_id: str,
    etcd: EtcdCluster,
    token_file: Path,
    *,
    cameras: dict[str, str] | None = None,
    camera_fields: dict[str, Any] | None = None,
    web: dict[str, Any] | None = None,
    grpc: dict[str, Any] | None = None,
    site: dict[str, Any] | None = None,
    credentials: ChannelCredentials | None = None,
) -> RunningDaemon:
    """A daemon of the site on a free port (its advertised address is real); `cameras`,
    `camera_fields` and `web` as tests/support/rpc.py make_config's (disabled config cameras by
    default, no console); `grpc` and `site` add keys to those tables (TLS), `credentials` for the
    test's channel."""
    listen = f"127.0.0.1:{free_port()}"
    site = {"name": SITE, "etcd": etcd.endpoints, "lease_ttl": "2s", "token_file": str(token_file), **(site or {})}
    config = make_config(
        root,
        grpc={"listen": listen, **(grpc or {})},
        web=web,
        site=site,
        recorder_id=recorder_id,
        cameras=cameras,
        camera_fields=camera_fields,
    )
    return RunningDaemon(config, credentials=credentials)


def wait_for_keys(etcd: EtcdCluster, prefix: str, expected: set[str], timeout_s: float = 20) -> set[str]:
    """Until the last parts of the keys under /vmsd/<site>/<prefix> include `expected`."""
    deadline = time.monotonic() + timeout_s
    found: set[str] = set()
    while time.monotonic() < deadline:
        result = etcd.ctl("get", "--prefix", "--keys-only", f"/vmsd/{SITE}/{prefix}")
        found = {line.rsplit("/", 1)[-1] for line in result.stdout.split() if line}
        if found >= expected:
            return found
        time.sleep(0.1)
    raise AssertionError(f"keys under {prefix}: {sorted(found)}, expected {sorted(expected)}")


def in_cam_spans(running: RunningDaemon) -> list[recordings_pb2.RecordedSpan]:
    """The site-wide spans of in-cam over the last 10 minutes, asked of `running` as viewer-1."""
    now_ns = time.time_ns()
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=now_ns - 600 * S, end_ns=now_ns)
    )
    return list(running.stubs.recordings.Search(request, metadata=metadata("viewer"), timeout=10).spans)


def wait_for_footage(running: RunningDaemon, recorder: str, seconds: float, timeout_s: float = 60) -> None:
    """Until a search on `running` shows `seconds` of `recorder`'s footage of in-cam."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = sum(s.range.end_ns - s.range.start_ns for s in in_cam_spans(running) if s.recorder == recorder)
        if held >= seconds * S:
            return
        time.sleep(0.2)
    raise AssertionError(f"{recorder} has not recorded {seconds} s of in-cam")


@contextlib.contextmanager
def failover_site(base: Path) -> Iterator[tuple[RunningDaemon, RunningDaemon]]:
    """Two recorders with consoles and a simulated camera, in-cam, after a real failover: rec-a
    records it, stops (its lease revoked: rec-b takes it over and writes the `failover` gap),
    and comes back (failback manual: it records nothing, but serves its footage)."""
    clip = make_clip("/tmp/vmsd-test-clips", codec="h264", width=320, height=240, seconds=10)
    with CameraSimulator([MountSpec("in-cam", clip)]) as simulator:
        etcd = EtcdCluster(base / "etcd", members_count=1).start()
        token_file = base / "site.token"
        token_file.write_text(SITE_TOKEN)
        cameras = {"in-cam": simulator.url("in-cam")}
        started: list[RunningDaemon] = []

        def start(recorder_id: str) -> RunningDaemon:
            running = site_daemon(
                base / recorder_id, recorder_id, etcd, token_file, cameras=cameras,
                camera_fields={"enabled": True}, web={"listen": "127.0.0.1:0"},
            )  # fmt: skip
            started.append(running)
            return running

        try:
            rec_a = start("rec-a")  # alone: it claims in-cam
            wait_for_footage(rec_a, "rec-a", 3)
            rec_b = start("rec-b")
            wait_for_keys(etcd, "members/", {"rec-a", "rec-b"})
            rec_a.stop()  # a clean stop revokes its lease: rec-b takes in-cam over at once
            wait_for_footage(rec_b, "rec-b", 4)
            rec_a = start("rec-a")  # back, with its footage; failback is manual, so rec-b keeps the camera
            wait_for_keys(etcd, "members/", {"rec-a", "rec-b"})
            wait_for_keys(etcd, "footage/in-cam/", {"rec-a", "rec-b"})
            yield rec_a, rec_b
        finally:
            for running in reversed(started):
                running.stop()
            etcd.stop()
