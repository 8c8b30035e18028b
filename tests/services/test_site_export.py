"""An export across a failover: two real recorders (daemons with [site], gRPC on loopback) on a
real etcd, each holding part of one camera's footage, as after a failover and a partition.

  rec-a  in-cam  MID-5s .. MID+7s (two segments), then died (`crash`); back later, unfenced
                 during a partition: MID+18s .. MID+26s (two segments)
  rec-b  in-cam  `failover` gap MID+7s .. MID+10s (it took the camera over), footage
                 MID+10s .. MID+22s (two segments), then `camera_offline`

An export asked of either recorder is one bundle holding both recorders' footage: each
recorder's segment chain, a master per recorder, the failover gap once, and the time both
recorded (MID+18s .. MID+22s) stated as an overlap with both recorders' footage included. The
bundle verifies offline and names each recorder's part; a changed byte in a peer's segment is
caught (on the peer's disk: the export fails; in the bundle: verification fails); a peer that
is down fails the export, naming it and the time it may hold, unless a partial export is asked.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.etcd import EtcdCluster
from tests.support.rpc import MID, RunningDaemon, S, metadata
from tests.support.site_ops import SITE_TOKEN, record_in_cam, site_daemon, wait_for_keys
from vmsd.cli.vmsctl.export import cmd_export
from vmsd.export import manifest as mf
from vmsd.export.verify import verify_bundle
from vmsd.storage.catalogue import GapReason
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc

RANGE = (MID - 10 * S, MID + 30 * S)
FETCH = "/vmsd.v1.ExportService/FetchSegments"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, h264_ts: Path
) -> Iterator[tuple[EtcdCluster, RunningDaemon, RunningDaemon]]:
    base = tmp_path_factory.mktemp("site-export")
    etcd = EtcdCluster(base / "etcd", members_count=1).start()
    token_file = base / "site.token"
    token_file.write_text(SITE_TOKEN + "\n")
    record_in_cam(base / "a", h264_ts, start_ns=MID - 5 * S, seconds=12, end_reason=GapReason.CRASH)
    record_in_cam(base / "a", h264_ts, start_ns=MID + 18 * S, seconds=8, end_reason="camera_offline")
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
        rec_a = site_daemon(base / "a", "rec-a", etcd, token_file)
        rec_b = site_daemon(base / "b", "rec-b", etcd, token_file)
        wait_for_keys(etcd, "footage/in-cam/", {"rec-a", "rec-b"})
        yield etcd, rec_a, rec_b
    finally:
        for running in (rec_b, rec_a):
            if running is not None:
                running.stop()
        etcd.stop()


def _export(
    running: RunningDaemon, start_ns: int = RANGE[0], end_ns: int = RANGE[1], **fields: object
) -> export_pb2.ExportSummary:
    stub = export_pb2_grpc.ExportServiceStub(running.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.CreateExportRequest(
        camera_id="in-cam",
        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
        case_ref="CASE-15",
        reason="incident across the failover",
        **fields,  # type: ignore[arg-type]
    )
    steps = list(stub.CreateExport(request, metadata=metadata("operator"), timeout=60))
    return steps[-1].done


def _bundle(running: RunningDaemon, summary: export_pb2.ExportSummary) -> Path:
    return running.daemon.exporter.bundle_path(summary.export_id)


def _frames(path: Path) -> int:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264"
    return int(stream["nb_read_frames"])


@pytest.mark.parametrize("asked", ["rec-a", "rec-b"])
def test_an_export_on_either_recorder_holds_both_recorders_chains(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], asked: str
) -> None:
    _, rec_a, rec_b = site
    running, peer = (rec_a, rec_b) if asked == "rec-a" else (rec_b, rec_a)
    summary = _export(running)
    path = _bundle(running, summary)
    manifest = mf.Manifest.model_validate_json((path / mf.MANIFEST_NAME).read_bytes())
    assert manifest.format == "vmsd-export/2" and manifest.recorder.id == asked
    fingerprints = {"rec-a": rec_a.daemon.exporter.key.fingerprint, "rec-b": rec_b.daemon.exporter.key.fingerprint}
    assert [(p.id, p.segments, p.chain, p.key_fingerprint_sha256) for p in manifest.recorders] == [
        ("rec-a", 4, "linked", fingerprints["rec-a"]),
        ("rec-b", 2, "linked", fingerprints["rec-b"]),
    ]
    assert {p.id: p.source for p in manifest.recorders} == {asked: "local", peer.daemon.config.recorder_id: "peer"}
    assert [(s.start_ns - MID, s.recorder) for s in manifest.segments] == [
        (-5 * S, "rec-a"), (1 * S, "rec-a"), (10 * S, "rec-b"), (18 * S, "rec-a"), (20 * S, "rec-a"), (20 * S, "rec-b"),
    ]  # fmt: skip
    # Each original is in the bundle under its recorder's folder, and is what that recorder hashed.
    assert all(s.file is not None and s.file.startswith(f"segments/{s.recorder}/") for s in manifest.segments)
    assert manifest.chain_breaks == []
    # The failover hole exactly once; the time both recorded stated, both recorders' footage kept.
    assert [(g.start_ns - MID, g.end_ns - MID, g.reason) for g in manifest.gaps] == [
        (-10 * S, -5 * S, "not_recorded"),
        (7 * S, 10 * S, "failover"),
        (26 * S, 30 * S, "camera_offline"),
    ]
    assert [(o.start_ns - MID, o.end_ns - MID, o.recorders) for o in manifest.overlaps] == [
        (18 * S, 22 * S, ["rec-a", "rec-b"])
    ]
    assert [(m.file, m.recorder) for m in manifest.masters] == [
        ("master-rec-a.mp4", "rec-a"),
        ("master-rec-b.mp4", "rec-b"),
    ]
    for master in manifest.masters:
        assert _frames(path / master.file) == master.video_frames > 0
    # rec-a: 12 s + 8 s, rec-b: 12 s, at 25 fps.
    assert [m.video_frames for m in manifest.masters] == [20 * 25, 12 * 25]
    report = verify_bundle(path, expected_fingerprint=fingerprints[asked])
    assert report.verdict == "verified", report.problems
    assert any(c.startswith("part of recorder rec-a") for c in report.checks)
    assert any(c.startswith("part of recorder rec-b") for c in report.checks)
    assert [p["id"] for p in report.to_dict()["parts"]] == ["rec-a", "rec-b"]
    assert any("was recorded by rec-a and rec-b" in w for w in report.warnings)
    # Audited on both: here the export names its contributors; the peer audits the fetch "via".
    mine, _ = running.daemon.audit.query(action_prefix="export.completed")
    assert json.loads(mine[-1].detail_json)["recorders"] == ["rec-a", "rec-b"]
    requested, _ = running.daemon.audit.query(action_prefix="export.requested")
    assert json.loads(requested[-1].detail_json)["site_parts"] == [peer.daemon.config.recorder_id]
    theirs, _ = peer.daemon.audit.query(principal="operator-1", action_prefix=FETCH)
    detail = json.loads(theirs[-1].detail_json)
    assert (detail["via"], detail["export_id"], theirs[-1].case_ref, theirs[-1].outcome) == (
        asked,
        summary.export_id,
        "CASE-15",
        "OK",
    )
    assert detail["segments"] == {"rec-a": 4, "rec-b": 2}[peer.daemon.config.recorder_id]


def test_vmsctl_export_downloads_a_bundle_of_both_recorders_and_names_each_part(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, rec_b = site

    class Client:
        channel = rec_b.channel
        metadata = metadata("operator")

    args = argparse.Namespace(
        camera="in-cam", case="CASE-15", reason="handover", recipient="", redact=False, no_originals=False,
        no_hold=True, allow_partial=False, output=str(tmp_path / "out"), json=True,
    )  # fmt: skip
    assert cmd_export(Client(), args, *RANGE) == 0
    out = capsys.readouterr().out  # the daemons' log lines share stdout in this process
    document = json.loads(out[out.index("\n{\n") + 1 :] if not out.startswith("{") else out)
    assert document["verdict"] == "verified" and document["recorder_id"] == "rec-b"
    assert [(p["id"], p["source"], p["segments"]) for p in document["parts"]] == [
        ("rec-a", "peer", 4),
        ("rec-b", "local", 2),
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "segments").iterdir()) == ["rec-a", "rec-b"]


def test_the_exports_hold_reaches_the_peer_at_once(site: tuple[EtcdCluster, RunningDaemon, RunningDaemon]) -> None:
    """The export's evidence hold is published to the site when it is placed (not at the next
    30 s sync), so the peer protects its part of the footage too."""
    _, rec_a, rec_b = site
    export_id = _export(rec_a, MID, MID + 15 * S).export_id
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(h.reason.startswith(f"export {export_id}:") for h in rec_b.daemon.holds.list(include_released=False)):
            return
        time.sleep(0.1)
    raise AssertionError("rec-b did not apply the export's hold within 10 s")


def _resigned(running: RunningDaemon, source: Path, target: Path, change: dict[str, Any]) -> Path:
    """A copy of the bundle whose manifest has `change`, signed again with the recorder's key (as
    a recorder with a bug would sign it): what the verifier checks beyond the signature."""
    shutil.copytree(source, target)
    manifest = json.loads((target / mf.MANIFEST_NAME).read_bytes())
    manifest.update(change)
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    (target / mf.MANIFEST_NAME).write_bytes(data)
    (target / mf.SIGNATURE_NAME).write_bytes(running.daemon.exporter.key.sign(data))
    return target


def test_the_verifier_checks_each_recorders_chain_and_the_stated_overlaps(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    _, rec_a, _ = site
    path = _bundle(rec_a, _export(rec_a))
    fingerprint = rec_a.daemon.exporter.key.fingerprint
    manifest = json.loads((path / mf.MANIFEST_NAME).read_bytes())
    # An overlap left out: two recorders' footage of the same time would look like one.
    hidden = _resigned(rec_a, path, tmp_path / "hidden", {"overlaps": []})
    report = verify_bundle(hidden, expected_fingerprint=fingerprint)
    assert "overlaps does not state exactly the time two recorders' segments both cover" in report.first_problem
    # A rec-b segment that does not link to rec-b's previous one (it links to rec-a's instead).
    segments = manifest["segments"]
    second_b = [i for i, s in enumerate(segments) if s["recorder"] == "rec-b"][1]
    segments[second_b]["prev_sha256"] = segments[second_b - 1]["sha256"]
    broken = _resigned(rec_a, path, tmp_path / "broken", {"segments": segments})
    problems = verify_bundle(broken, expected_fingerprint=fingerprint).problems
    assert any(p.startswith("chain: ") and p.endswith("(recorder rec-b)") for p in problems), problems
    # A segment credited to a recorder the manifest does not list.
    segments[second_b]["recorder"] = "rec-z"
    unknown = _resigned(rec_a, path, tmp_path / "unknown", {"segments": segments})
    problems = verify_bundle(unknown, expected_fingerprint=fingerprint).problems
    assert any("names recorder 'rec-z', not one of recorders" in p for p in problems), problems
    # Called a v1 bundle, with its segments still naming recorders: each "chain" would be checked
    # on its own, so one recorder's chain could be split to hide a break.
    called_v1 = _resigned(rec_a, path, tmp_path / "v1", {"format": "vmsd-export/1", "recorders": [], "overlaps": []})
    problems = verify_bundle(called_v1, expected_fingerprint=fingerprint).problems
    assert any("belong to a vmsd-export/2 manifest with recorders, not to a vmsd-export/1 one" in p for p in problems)


def test_a_range_only_this_recorder_holds_is_a_single_recorder_bundle_as_before(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, _, rec_b = site
    path = _bundle(rec_b, _export(rec_b, MID + 11 * S, MID + 16 * S))
    manifest = json.loads((path / mf.MANIFEST_NAME).read_bytes())
    assert manifest["format"] == "vmsd-export/1"
    assert not {"recorders", "overlaps", "missing"} & set(manifest)
    assert all("recorder" not in s for s in manifest["segments"])
    assert [m["file"] for m in manifest["masters"]] == ["master.mp4"]
    assert verify_bundle(path, expected_fingerprint=rec_b.daemon.exporter.key.fingerprint).verdict == "verified"


def test_a_range_only_the_peer_holds_is_fetched_from_it(site: tuple[EtcdCluster, RunningDaemon, RunningDaemon]) -> None:
    _, rec_a, _ = site
    path = _bundle(rec_a, _export(rec_a, MID + 11 * S, MID + 16 * S))
    manifest = mf.Manifest.model_validate_json((path / mf.MANIFEST_NAME).read_bytes())
    assert [(p.id, p.source) for p in manifest.recorders] == [("rec-b", "peer")]
    assert manifest.recorder.id == "rec-a"  # rec-a signed it: it checked rec-b's bytes as they came
    assert _frames(path / "master-rec-b.mp4") == manifest.masters[0].video_frames
    assert verify_bundle(path, expected_fingerprint=rec_a.daemon.exporter.key.fingerprint).verdict == "verified"


def test_a_changed_byte_in_a_peers_segment_is_caught_in_the_bundle(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon], tmp_path: Path
) -> None:
    _, rec_a, _ = site
    copy = tmp_path / "bundle"
    shutil.copytree(_bundle(rec_a, _export(rec_a)), copy)
    manifest = mf.Manifest.model_validate_json((copy / mf.MANIFEST_NAME).read_bytes())
    target = next(s.file for s in manifest.segments if s.recorder == "rec-b" and s.file)
    data = bytearray((copy / target).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / target).write_bytes(bytes(data))
    report = verify_bundle(copy, expected_fingerprint=rec_a.daemon.exporter.key.fingerprint)
    assert report.verdict == "failed"
    assert report.first_problem.startswith(f"{target}: SHA-256")
    assert "(footage of recorder rec-b)" in report.first_problem


def test_a_peers_segment_changed_on_its_disk_fails_the_export(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, rec_a, rec_b = site
    storage = rec_b.daemon.storage
    row = storage.catalogue.segments_in_range("in-cam", MID + 10 * S, MID + 11 * S)[0]
    source = storage.segment_path(row)
    original = source.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0xFF
    source.write_bytes(bytes(changed))
    try:
        with pytest.raises(grpc.RpcError) as caught:
            _export(rec_a)
    finally:
        source.write_bytes(original)
    assert caught.value.code() is grpc.StatusCode.DATA_LOSS
    assert f"recorder rec-b: recorded segment {row.path} does not match its catalogue hash" in str(
        caught.value.details()
    )
    failed, _ = rec_a.daemon.audit.query(action_prefix="export.failed")
    assert failed[-1].outcome == "DATA_LOSS" and "rec-b" in json.loads(failed[-1].detail_json)["error"]


def test_fetch_segments_is_only_for_recorders_of_the_site(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    _, rec_a, _ = site
    stub = export_pb2_grpc.ExportServiceStub(rec_a.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.FetchSegmentsRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=RANGE[0], end_ns=RANGE[1]), case_ref="C", reason="r"
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.FetchSegments(request, metadata=metadata("operator"), timeout=10))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "between the recorders of a site" in str(caught.value.details())


def test_a_peer_that_is_down_fails_the_export_naming_it_unless_partial_is_accepted(
    site: tuple[EtcdCluster, RunningDaemon, RunningDaemon],
) -> None:
    """Last in the module: it stops rec-b (its lease is revoked, its member key goes)."""
    _, rec_a, rec_b = site
    rec_b.stop()
    with pytest.raises(grpc.RpcError) as caught:
        _export(rec_a)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    details = str(caught.value.details())
    assert "recorder rec-b (UNAVAILABLE: not a live member of the site" in details
    # The time rec-a does not cover, where rec-b's footage may be.
    assert "2026-01-02T00:00:07Z..2026-01-02T00:00:18Z" in details and "allow_partial" in details
    path = _bundle(rec_a, _export(rec_a, allow_partial=True))
    manifest = mf.Manifest.model_validate_json((path / mf.MANIFEST_NAME).read_bytes())
    assert [p.id for p in manifest.recorders] == ["rec-a"]
    assert [(m.recorder, [(s.start_ns - MID, s.end_ns - MID) for s in m.spans]) for m in manifest.missing] == [
        ("rec-b", [(-10 * S, -5 * S), (7 * S, 18 * S), (26 * S, 30 * S)])
    ]
    report = verify_bundle(path, expected_fingerprint=rec_a.daemon.exporter.key.fingerprint)
    assert report.verdict == "verified", report.problems
    assert any(w.startswith("PARTIAL EXPORT: the part of recorder rec-b is missing") for w in report.warnings)
