"""Recorders of a test site for the site-wide operations (tests/services/test_site.py,
tests/site/test_holds.py): footage written as after a failover, daemons with [site] on a real
etcd (tests/support/etcd.py), and a wait for keys to appear in etcd."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from grpc import ChannelCredentials

from tests.support.etcd import EtcdCluster
from tests.support.feed import feed
from tests.support.rpc import RunningDaemon, S, make_config
from tests.support.simulator import free_port
from vmsd.clock import FakeClock
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.catalogue import GapReason
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

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
    grpc: dict[str, Any] | None = None,
    site: dict[str, Any] | None = None,
    credentials: ChannelCredentials | None = None,
) -> RunningDaemon:
    """A daemon of the site on a free port (its advertised address is real); `cameras` and
    `camera_fields` as tests/support/rpc.py make_config's (disabled config cameras by default);
    `grpc` and `site` add keys to those tables (TLS), `credentials` for the test's channel."""
    listen = f"127.0.0.1:{free_port()}"
    site = {"name": SITE, "etcd": etcd.endpoints, "lease_ttl": "2s", "token_file": str(token_file), **(site or {})}
    config = make_config(
        root,
        grpc={"listen": listen, **(grpc or {})},
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
