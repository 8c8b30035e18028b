"""`vmsctl site` and `vmsctl site move` against two real `vmsd run` recorders of a site on a real etcd."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.vmsctl.test_main import ADMIN, TOKENS, vmsctl
from tests.support.daemon import DaemonProcess
from tests.support.etcd import EtcdCluster
from tests.support.simulator import free_port

CAMERAS = ["gate-1", "gate-2", "gate-3"]


def _config(work: Path, recorder: str, etcd: EtcdCluster, port: int) -> Path:
    lines = [
        f'recorder_id = "{recorder}"',
        "[grpc]",
        f'listen = "127.0.0.1:{port}"',
        "[storage]",
        f'root = "{work / recorder}"',
        'min_free = "1MiB"',
        "[ingest]",
        TOKENS,
        "[site]",
        'name = "cli"',
        f"etcd = {json.dumps(etcd.endpoints)}",
        'lease_ttl = "2s"',
    ]
    for camera in CAMERAS:
        lines += ["[[cameras]]", f'id = "{camera}"', f'url = "rtsp://127.0.0.1:{free_port()}/none"']
    # TOKENS starts with an [ingest] key and then [[auth.tokens]]: keep [site] after it.
    path = work / f"{recorder}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, int]]:
    etcd = EtcdCluster(tmp_path / "etcd", 1).start()
    ports = {"rec-a": free_port(), "rec-b": free_port()}
    daemons = [DaemonProcess(_config(tmp_path, r, etcd, p), tmp_path / f"{r}.log").start() for r, p in ports.items()]
    try:
        for daemon in daemons:
            daemon.wait_for_log('"site_joined"')
        yield ports
    finally:
        for daemon in daemons:
            daemon.terminate()
        etcd.stop()


def _site(port: int) -> dict[str, object]:
    result = vmsctl(port, "site", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _wait_owned(port: int) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        site = _site(port)
        owners = site.get("owners", [])
        if len(owners) == len(CAMERAS) and all(o.get("owner") for o in owners):  # type: ignore[union-attr]
            return site
        assert time.monotonic() < deadline, site
        time.sleep(0.2)


def test_site_shows_members_and_owners_and_a_move_is_audited(site: dict[str, int]) -> None:
    status = _wait_owned(site["rec-a"])
    members = {m["recorder_id"]: m for m in status["members"]}  # type: ignore[union-attr,index]
    assert set(members) == {"rec-a", "rec-b"} and all(m["alive"] for m in members.values())
    assert members["rec-a"]["address"] == f"127.0.0.1:{site['rec-a']}"  # advertise defaults to grpc.listen
    owners = {o["camera_id"]: o for o in status["owners"]}  # type: ignore[union-attr,index]
    assert sorted(owners) == CAMERAS and all(int(o["epoch"]) > 0 for o in owners.values())
    assert sum(m.get("cameras_owned", 0) for m in members.values()) == len(CAMERAS)

    camera = CAMERAS[0]
    old = owners[camera]
    target = "rec-b" if old["owner"] == "rec-a" else "rec-a"
    moved = vmsctl(site["rec-a"], "site", "move", camera, "--to", target, "--reason", "maintenance")
    assert moved.returncode == 0, moved.stderr
    assert f"{camera}: {target} takes it over now" in moved.stdout
    deadline = time.monotonic() + 30
    while True:
        now = {o["camera_id"]: o for o in _site(site["rec-b"])["owners"]}  # type: ignore[union-attr,index]
        if now[camera]["owner"] == target:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    assert int(now[camera]["epoch"]) > int(old["epoch"])

    audit = vmsctl(site["rec-a"], "audit", "--json")
    assert audit.returncode == 0, audit.stderr
    records = [r for r in json.loads(audit.stdout)["records"] if r["action"].endswith("SiteService/MoveCamera")]
    assert records and records[-1]["camera_id"] == camera and records[-1]["reason"] == "maintenance"
    detail = json.loads(records[-1]["detail_json"])
    assert detail["to"] == target and detail["previous_owner"] == old["owner"]

    table = vmsctl(site["rec-b"], "site")
    assert table.returncode == 0 and "camera owners" in table.stdout and "rec-a" in table.stdout

    refused = vmsctl(site["rec-a"], "site", "move", camera, "--to", "rec-z", "--reason", "x")
    assert refused.returncode != 0 and "'rec-z' is not a live member" in refused.stderr


def test_site_on_a_lone_recorder_says_it_has_no_site(tmp_path: Path) -> None:
    from tests.cli.vmsctl.test_main import running_daemon

    with running_daemon(tmp_path, {"cam": f"rtsp://127.0.0.1:{free_port()}/x"}, "reconnecting") as port:
        result = vmsctl(port, "site")
        assert result.returncode != 0
        assert "FAILED_PRECONDITION" in result.stderr and "not a member of a site" in result.stderr
        assert ADMIN not in result.stderr
