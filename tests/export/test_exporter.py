"""Export bundles: master, manifest, signature, hold, audit, chunked reads; and what verify catches."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest

from tests.export.conftest import END_NS, START_NS, Env
from tests.support.rpc import MID, S
from vmsd.cli.vmsctl.verify import cmd_verify
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.exporter import Exporter
from vmsd.export.manifest import manifest_json
from vmsd.export.model import ACTION_COMPLETED, ACTION_FAILED, ACTION_REQUESTED, ExportResult
from vmsd.export.verify import verify_bundle

GOP_NS = 2 * S


def ffprobe(path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def covered_footage_ns(env: Env, start_ns: int, end_ns: int) -> int:
    """Recorded footage in the range according to the catalogue (clipped segment overlaps)."""
    total = 0
    for row in env.storage.catalogue.segments_in_range("in-cam", start_ns, end_ns):
        assert row.end_ns is not None
        total += max(0, min(row.end_ns, end_ns) - max(row.start_ns, start_ns))
    return total


# -- the bundle --------------------------------------------------------------------------------


def test_master_is_a_continuous_remux_of_the_covered_footage(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    manifest = result.manifest
    master = result.path / "master.mp4"
    assert [m.file for m in manifest.masters] == ["master.mp4"]
    probe = ffprobe(master, "-show_format", "-show_streams")
    duration_ns = round(float(probe["format"]["duration"]) * S)  # type: ignore[index]
    covered_ns = covered_footage_ns(env, START_NS, END_NS)
    # Starts at the keyframe at/before the request, so it may hold up to one GOP more.
    assert covered_ns <= duration_ns <= covered_ns + GOP_NS
    assert manifest.masters[0].duration_ns == pytest.approx(duration_ns, abs=50_000_000)
    # Decodes without a single error, from the very first frame.
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(master), "-f", "null", "-"], capture_output=True)
    assert decode.returncode == 0 and decode.stderr == b""
    with av.open(str(master)) as container:
        first = next(container.decode(video=0))
        assert first.key_frame and first.pts == 0
    # Not re-encoded: the same number of frames as the recorded packets in the covered span.
    stream = probe["streams"][0]  # type: ignore[index]
    assert stream["codec_name"] == "h264" and int(stream["nb_frames"]) == manifest.masters[0].video_frames == 401


def test_master_start_time_and_timeline(exported: tuple[Env, ExportResult]) -> None:
    _, result = exported
    master = result.manifest.masters[0]
    assert master.start_ns == MID - 3 * S  # the keyframe before the requested MID-2.5s
    assert master.creation_time == "2026-01-01T23:59:57.000000Z"
    tags = ffprobe(result.path / "master.mp4", "-show_format")["format"]["tags"]  # type: ignore[index]
    assert tags["creation_time"] == "2026-01-01T23:59:57.000000Z"
    # Gap cut out: the footage after it follows on at master time 10 s.
    assert [(p.master_offset_ns, p.start_ns - MID, p.end_ns - MID) for p in master.timeline] == [
        (0, -3 * S, 7 * S),
        (10 * S, 13_960_000_000, 20 * S),
    ]
    assert [(c.start_ns - MID, c.end_ns - MID) for c in result.manifest.covered] == [
        (-3 * S, 7 * S),
        (13_960_000_000, 20 * S),
    ]


def test_master_is_faststart(exported: tuple[Env, ExportResult]) -> None:
    _, result = exported
    data = (result.path / "master.mp4").read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_manifest_lists_gap_segments_and_context(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    manifest = result.manifest
    assert [(g.start_ns - MID, g.end_ns - MID, g.reason) for g in manifest.gaps] == [
        (7 * S, 13_960_000_000, "camera_offline")
    ]
    rows = env.storage.catalogue.segments("in-cam")
    assert [(s.sha256, s.prev_sha256, s.recorded_path) for s in manifest.segments] == [
        (r.sha256, r.prev_sha256, r.path) for r in rows
    ]
    assert len(manifest.segments) == 3
    assert manifest.chain_breaks == [] and manifest.erased_segments == []
    assert manifest.recorder.id == "dover-test-01"
    assert manifest.recorder.key_fingerprint_sha256 == env.exporter.key.fingerprint
    assert (manifest.camera.name, manifest.camera.location) == ("Market Square", "Market Square, Dover")
    assert (manifest.requested.start_ns, manifest.requested.end_ns) == (START_NS, END_NS)
    assert manifest.operator.principal == "operator-1" and manifest.case_ref == "CR-2026-0042"
    assert manifest.recipient == "DC Smith, Kent Police" and manifest.exported_at_ns == env.clock.wall_ns()
    assert manifest.clock.synchronized == "yes"
    roles = {f.name: f.role for f in manifest.files}
    assert roles["master.mp4"] == "master" and roles["working-copy-redacted.mp4"] == "redacted_working_copy"
    assert sorted(n for n, r in roles.items() if r == "original_segment") == [
        "segments/2026-01-01T235955.000000000Z.mp4",
        "segments/2026-01-02T000001.000000000Z.mp4",
        "segments/2026-01-02T000013.960000000Z.mp4",
    ]
    for entry in manifest.files:
        assert hashlib.sha256((result.path / entry.name).read_bytes()).hexdigest() == entry.sha256
    # The originals are the recorded files, bit for bit.
    for segment in manifest.segments:
        assert segment.file is not None
        recorded = env.storage.layout.abspath(segment.recorded_path).read_bytes()
        assert (result.path / segment.file).read_bytes() == recorded
    # The manifest on disk is exactly what was signed and returned.
    assert (result.path / mf.MANIFEST_NAME).read_bytes() == manifest_json(manifest)
    assert "vmsctl verify" in (result.path / "README.txt").read_text()


def test_export_places_a_hold_and_is_audited(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    hold = env.holds.get(result.manifest.hold_id or 0)
    assert hold.camera_ids == ("in-cam",) and (hold.start_ns, hold.end_ns) == (START_NS, END_NS)
    assert hold.case_ref == "CR-2026-0042" and hold.created_by == "operator-1" and hold.active(env.clock.wall_ns())
    records, _ = env.audit.query(actions=[ACTION_REQUESTED, ACTION_COMPLETED])
    assert [r.action for r in records] == [ACTION_REQUESTED, ACTION_COMPLETED]
    for record in records:
        assert (record.case_ref, record.camera_id, record.principal) == ("CR-2026-0042", "in-cam", "operator-1")
        assert json.loads(record.detail_json)["export_id"] == result.export_id
    assert json.loads(records[1].detail_json)["hold_id"] == hold.id
    assert env.audit.verify().ok


def test_progress_is_monotonic_and_ends_with_the_result(env: Env) -> None:
    steps = list(env.exporter.run(env.request(place_hold=False)))
    fractions = [s.fraction for s in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert {"requested", "originals", "remux", "sealing", "done"} <= {s.phase for s in steps}
    assert steps[-1].result is not None and all(s.result is None for s in steps[:-1])


def test_without_originals_or_hold(env: Env) -> None:
    result = env.exporter.export(env.request(include_originals=False, place_hold=False))
    assert not (result.path / "segments").exists()
    assert all(s.file is None for s in result.manifest.segments) and result.manifest.hold_id is None
    assert env.holds.list(include_released=True) == []
    assert verify_bundle(result.path).ok


def test_the_manifest_states_the_camera_clock_over_the_range(env: Env) -> None:
    """Readings kept by the recorder (native source): the one in force at the range's start and
    every one inside it; none after it. Signed with the rest: verify passes."""
    catalogue = env.storage.catalogue
    catalogue.add_camera_clock("in-cam", START_NS - 90 * S, "ok", 4_000_000, "within 2.000 s of the recorder's clock")
    catalogue.add_camera_clock("in-cam", START_NS + 3 * S, "offset", 30 * S, "the camera's clock is 30.000 s ahead")
    catalogue.add_camera_clock("in-cam", END_NS + S, "ok", 0, "after the range")
    catalogue.add_camera_clock("other-cam", START_NS + 4 * S, "unknown", None, "another camera")
    result = env.exporter.export(env.request(include_originals=False, place_hold=False))
    readings = [(r.time_ns - START_NS, r.status, r.offset_ns) for r in result.manifest.camera_clock]
    assert readings == [(-90 * S, "ok", 4_000_000), (3 * S, "offset", 30 * S)]
    written = json.loads((result.path / mf.MANIFEST_NAME).read_bytes())
    assert written["camera_clock"][1]["reason"] == "the camera's clock is 30.000 s ahead"
    assert verify_bundle(result.path).ok


def test_without_camera_clock_readings_the_manifest_has_no_camera_clock(exported: tuple[Env, ExportResult]) -> None:
    assert "camera_clock" not in json.loads((exported[1].path / mf.MANIFEST_NAME).read_bytes())


def test_every_file_of_a_bundle_is_fsynced_before_it_is_renamed_into_place(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power lost after the rename must not leave a finished-looking bundle with a torn master."""
    synced: set[str] = set()
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    result = env.exporter.export(env.request(redact=True, place_hold=False))
    staging = f"{result.path}.partial"
    names = [f.name for f in result.manifest.files] + [mf.MANIFEST_NAME, mf.SIGNATURE_NAME]
    assert any(f.role == mf.ROLE_MASTER for f in result.manifest.files)
    assert any(f.role == mf.ROLE_REDACTED for f in result.manifest.files)
    assert [name for name in names if f"{staging}/{name}" not in synced] == []


def test_read_chunk_resumes_and_stays_inside_the_bundle(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    exporter = env.exporter
    names = [f.name for f in exporter.files(result.export_id)]
    assert names[-2:] == [mf.MANIFEST_NAME, mf.SIGNATURE_NAME] and "master.mp4" in names
    expected = (result.path / "master.mp4").read_bytes()
    received = bytearray()
    while chunk := exporter.read_chunk(result.export_id, "master.mp4", len(received), 300_000):
        received += chunk  # a download interrupted anywhere resumes from len(received)
    assert bytes(received) == expected
    assert exporter.read_chunk(result.export_id, "master.mp4", len(expected) + 10, 10) == b""
    for bad in ("../../keys/recorder-ed25519.pem", "/etc/passwd", "segments/../../x", ""):
        with pytest.raises(VmsdError) as caught:
            exporter.read_chunk(result.export_id, bad, 0, 10)
        assert caught.value.kind in (ErrorKind.INVALID_ARGUMENT, ErrorKind.NOT_FOUND)
    with pytest.raises(VmsdError) as caught:
        exporter.read_chunk("../keys", "x", 0, 10)
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert [m.export_id for m in exporter.list_exports()] == [result.export_id]


def test_an_export_id_with_a_trailing_newline_is_not_an_export_id(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    with pytest.raises(VmsdError) as caught:
        env.exporter.bundle_path(result.export_id + "\n")
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT


def test_no_footage_is_not_found_and_audited(env: Env) -> None:
    with pytest.raises(VmsdError) as caught:
        env.exporter.export(env.request(start_ns=MID + 100 * S, end_ns=MID + 200 * S))
    assert caught.value.kind is ErrorKind.NOT_FOUND
    records, _ = env.audit.query(actions=[ACTION_FAILED])
    assert records[-1].outcome == "NOT_FOUND" and records[-1].case_ref == "CR-2026-0042"
    assert list(env.exporter.root.iterdir()) == []


def test_redaction_needs_masks(env: Env) -> None:
    env.storage.catalogue.upsert_camera("out-cam", "out-cam", "", 0)
    with pytest.raises(VmsdError) as caught:
        env.exporter.export(env.request(camera_id="out-cam", redact=True))
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION


def test_altered_recording_is_refused(env: Env) -> None:
    row = env.storage.catalogue.segments("in-cam")[1]
    path = env.storage.segment_path(row)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(VmsdError) as caught:
        env.exporter.export(env.request())
    assert caught.value.kind is ErrorKind.DATA_LOSS and row.path in caught.value.message
    assert [p for p in env.exporter.root.iterdir()] == []  # no partial bundle left behind


def test_erased_segment_inside_the_range_keeps_the_chain(env: Env) -> None:
    middle = env.storage.catalogue.segments("in-cam")[1]
    env.storage.delete_segment(middle, erased_ns=env.clock.wall_ns(), reason="file_lost")
    result = env.exporter.export(env.request(place_hold=False))
    manifest = result.manifest
    assert len(manifest.segments) == 2 and [e.sha256 for e in manifest.erased_segments] == [middle.sha256]
    assert manifest.chain_breaks == []
    assert (manifest.gaps[0].start_ns - MID, manifest.gaps[0].end_ns - MID) == (S, 7 * S)
    report = verify_bundle(result.path)
    assert report.ok, report.problems


def test_stream_change_starts_a_second_master(tmp_path: Path, h264_ts: Path, h264_ts_small: Path) -> None:
    from tests.export.conftest import close_env, open_env
    from tests.support.feed import feed
    from vmsd.clock import FakeClock
    from vmsd.ingest.segmenter import Segmenter
    from vmsd.storage.recovery import reconcile
    from vmsd.storage.store import Storage

    root = tmp_path / "root"
    storage = Storage(root)
    storage.open()
    reconcile(storage)
    storage.catalogue.upsert_camera("in-cam", "in-cam", "", 0)
    clock = FakeClock(wall_ns=MID)
    segmenter = Segmenter("in-cam", storage, clock, segment_duration_ns=10 * S)
    feed(segmenter, clock, h264_ts, seconds=4)
    clock.advance(3 * S)
    feed(segmenter, clock, h264_ts_small, seconds=4)
    storage.close()
    env = open_env(root)
    try:
        result = env.exporter.export(env.request(start_ns=MID, end_ns=MID + 20 * S, place_hold=False))
        assert [(m.file, m.width) for m in result.manifest.masters] == [("master.mp4", 320), ("master-2.mp4", 160)]
        for master in result.manifest.masters:
            decode = subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(result.path / master.file), "-f", "null", "-"], capture_output=True
            )
            assert decode.returncode == 0 and decode.stderr == b""
        assert verify_bundle(result.path).ok
    finally:
        close_env(env)


# -- verify ------------------------------------------------------------------------------------


def test_verify_passes(exported: tuple[Env, ExportResult], capsys: pytest.CaptureFixture[str]) -> None:
    env, result = exported
    report = verify_bundle(result.path, expected_fingerprint=env.exporter.key.fingerprint)
    assert report.ok and report.problems == [] and report.warnings == []
    fingerprint = env.exporter.key.fingerprint
    assert cmd_verify(str(result.path), False, fingerprint) == 0
    assert capsys.readouterr().out.startswith("VERIFIED")
    assert cmd_verify(str(result.path), True, fingerprint) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["export_id"] == result.export_id


def test_verify_into_a_closed_pipe_ends_quietly_and_not_as_verified(exported: tuple[Env, ExportResult]) -> None:
    """`vmsctl verify DIR | true`: no traceback, and not exit 0 (the report was not read). The
    reader is gone before vmsctl has imported its modules, so the first write meets a closed pipe."""
    env, result = exported
    fingerprint = env.exporter.key.fingerprint
    command = f"{sys.executable} -m vmsd.cli.vmsctl verify {result.path} --key-fingerprint {fingerprint}"
    done = subprocess.run(
        ["bash", "-c", f"{command} | true; exit ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1


def test_verify_by_hand_with_openssl_and_sha256sum(exported: tuple[Env, ExportResult]) -> None:
    env, result = exported
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    signature = subprocess.run(
        "openssl pkeyutl -verify -pubin -inkey recorder-public-key.pem -rawin -in manifest.json -sigfile manifest.sig",
        shell=True,
        cwd=result.path,
        capture_output=True,
        text=True,
    )
    assert signature.returncode == 0 and "Signature Verified Successfully" in signature.stdout
    fp = subprocess.run(
        "openssl pkey -pubin -in recorder-public-key.pem -outform DER | tail -c 32 | sha256sum",
        shell=True,
        cwd=result.path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert fp.stdout.split()[0] == env.exporter.key.fingerprint
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=result.path, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout


@pytest.mark.parametrize("name", ["master.mp4", "segments/2026-01-02T000001.000000000Z.mp4", "README.txt"])
def test_verify_names_an_altered_file(bundle_copy: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = bundle_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify_bundle(bundle_copy)
    assert not report.ok and report.first_problem.startswith(f"{name}: SHA-256")
    assert cmd_verify(str(bundle_copy), False) == 1
    assert capsys.readouterr().out.startswith(f"VERIFICATION FAILED: {name}: SHA-256")


def test_verify_catches_an_edited_manifest_field(bundle_copy: Path) -> None:
    path = bundle_copy / mf.MANIFEST_NAME
    text = path.read_text()
    assert '"case_ref": "CR-2026-0042"' in text
    path.write_text(text.replace('"case_ref": "CR-2026-0042"', '"case_ref": "CR-2026-0043"'))
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert report.first_problem.startswith("manifest.json: the signature in manifest.sig does not match")


def test_verify_catches_a_missing_or_extra_file(bundle_copy: Path) -> None:
    (bundle_copy / "segments" / "2026-01-01T235955.000000000Z.mp4").unlink()
    (bundle_copy / "notes.txt").write_text("added later")
    problems = verify_bundle(bundle_copy).problems
    assert problems == [
        "segments/2026-01-01T235955.000000000Z.mp4: missing from the bundle",
        "notes.txt: in the bundle but not listed in manifest.json",
    ]


def _resign(env: Env, bundle: Path, document: dict[str, object]) -> None:
    """Rewrite and re-sign the manifest with the recorder's own key (an insider, or a bug)."""
    data = (json.dumps(document, indent=2) + "\n").encode()
    (bundle / mf.MANIFEST_NAME).write_bytes(data)
    (bundle / mf.SIGNATURE_NAME).write_bytes(env.exporter.key.sign(data))


def test_verify_catches_a_segment_removed_from_the_chain(exported: tuple[Env, ExportResult], bundle_copy: Path) -> None:
    env, _ = exported
    document = json.loads((bundle_copy / mf.MANIFEST_NAME).read_text())
    removed = document["segments"].pop(1)
    # Cover the tracks: drop its file, its listing and its checksum line too.
    (bundle_copy / removed["file"]).unlink()
    document["files"] = [f for f in document["files"] if f["name"] != removed["file"]]
    sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in document["files"] if f["name"] != "SHA256SUMS")
    (bundle_copy / "SHA256SUMS").write_text(sums)
    for entry in document["files"]:
        if entry["name"] == "SHA256SUMS":
            entry["sha256"] = hashlib.sha256(sums.encode()).hexdigest()
            entry["bytes"] = len(sums)
    _resign(env, bundle_copy, document)
    report = verify_bundle(bundle_copy)
    assert not report.ok and report.problems[0].startswith("chain: segments[1].prev_sha256")


def test_verify_checks_the_schema(exported: tuple[Env, ExportResult], bundle_copy: Path) -> None:
    env, _ = exported
    document = json.loads((bundle_copy / mf.MANIFEST_NAME).read_text())
    document["segments"][2]["sha256"] = "not-a-hash"
    _resign(env, bundle_copy, document)
    assert verify_bundle(bundle_copy).first_problem.startswith("manifest.json: field segments[2].sha256:")
    del document["segments"][2]["sha256"]
    del document["case_ref"]
    _resign(env, bundle_copy, document)
    assert verify_bundle(bundle_copy).first_problem.startswith(
        "manifest.json: field segments[2].sha256: Field required"
    )


def test_verify_checks_the_expected_fingerprint(bundle_copy: Path) -> None:
    report = verify_bundle(bundle_copy, expected_fingerprint="0" * 64)
    assert not report.ok and report.first_problem.startswith("recorder-public-key.pem: fingerprint")


def test_verify_rejects_another_key(bundle_copy: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vmsd.export.signing import public_pem

    impostor = Ed25519PrivateKey.generate()
    (bundle_copy / mf.SIGNATURE_NAME).write_bytes(impostor.sign((bundle_copy / mf.MANIFEST_NAME).read_bytes()))
    (bundle_copy / mf.PUBLIC_KEY_NAME).write_bytes(public_pem(impostor.public_key()))
    problems = verify_bundle(bundle_copy).problems
    # Signature fine with the swapped key, but it is not the key the manifest names, and the key
    # file's listed hash no longer matches.
    assert problems[0].startswith("recorder-public-key.pem: its fingerprint")
    assert any(p.startswith("recorder-public-key.pem: SHA-256") for p in problems)


def test_verify_of_not_a_bundle(tmp_path: Path) -> None:
    assert verify_bundle(tmp_path).first_problem == "manifest.json: missing from the bundle"
    assert verify_bundle(tmp_path / "nope").first_problem.endswith("not a directory")


def _forge(bundle: Path) -> str:
    """Rewrite a bundle as a forger would: changed manifest, signed with their own key, and
    every listing made consistent with it. Returns the forger's fingerprint."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vmsd.export.signing import fingerprint, public_pem

    forger = Ed25519PrivateKey.generate()
    pem = public_pem(forger.public_key())
    (bundle / mf.PUBLIC_KEY_NAME).write_bytes(pem)
    document = json.loads((bundle / mf.MANIFEST_NAME).read_text())
    document["recorder"]["key_fingerprint_sha256"] = fingerprint(forger.public_key())
    document["case_ref"] = "CR-FORGED"
    for entry in document["files"]:
        if entry["name"] == mf.PUBLIC_KEY_NAME:
            entry["sha256"], entry["bytes"] = hashlib.sha256(pem).hexdigest(), len(pem)
    sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in document["files"] if f["name"] != mf.SUMS_NAME)
    (bundle / mf.SUMS_NAME).write_text(sums)
    for entry in document["files"]:
        if entry["name"] == mf.SUMS_NAME:
            entry["sha256"], entry["bytes"] = hashlib.sha256(sums.encode()).hexdigest(), len(sums)
    data = (json.dumps(document, indent=2) + "\n").encode()
    (bundle / mf.MANIFEST_NAME).write_bytes(data)
    (bundle / mf.SIGNATURE_NAME).write_bytes(forger.sign(data))
    return fingerprint(forger.public_key())


def test_verify_without_a_trusted_key_is_not_verified(
    exported: tuple[Env, ExportResult], bundle_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vmsd.cli.vmsctl import main as vmsctl

    env, result = exported
    recorder_fp = env.exporter.key.fingerprint
    trusted_pem = env.root / "keys" / "recorder-ed25519.pub.pem"
    forger_fp = _forge(bundle_copy)
    assert verify_bundle(bundle_copy).ok  # intact and consistently signed — by the forger
    # Without a key from outside the bundle: a distinct exit status and verdict, never VERIFIED.
    assert vmsctl(["verify", str(bundle_copy)]) == 5
    out = capsys.readouterr().out
    assert out.startswith("NOT VERIFIED AGAINST A TRUSTED KEY") and forger_fp in out and "VERIFIED:" not in out
    assert vmsctl(["verify", str(result.path)]) == 5
    capsys.readouterr()
    assert vmsctl(["--json", "verify", str(bundle_copy)]) == 5
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "intact_key_not_checked" and document["key_trusted"] is False
    # With the recorder's fingerprint (or public key file), the forgery fails and the genuine passes.
    assert vmsctl(["verify", str(bundle_copy), "--key-fingerprint", recorder_fp]) == 1
    assert capsys.readouterr().out.startswith("VERIFICATION FAILED: recorder-public-key.pem: fingerprint")
    assert vmsctl(["verify", str(bundle_copy), "--trusted-key", str(trusted_pem)]) == 1
    capsys.readouterr()
    assert vmsctl(["verify", str(result.path), "--key-fingerprint", recorder_fp.upper()]) == 0
    assert capsys.readouterr().out.startswith("VERIFIED against the trusted key")
    assert vmsctl(["verify", str(result.path), "--trusted-key", str(trusted_pem)]) == 0
    capsys.readouterr()
    assert vmsctl(["--json", "verify", str(result.path), "--trusted-key", str(trusted_pem)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "verified" and document["key_trusted"] is True
    # A malformed fingerprint or an unreadable key file is a usage error, not a verdict.
    assert vmsctl(["verify", str(result.path), "--key-fingerprint", "abc"]) == 2
    assert vmsctl(["verify", str(result.path), "--trusted-key", str(bundle_copy / "nope.pem")]) == 2


def test_open_segment_is_exported_up_to_its_last_complete_fragment(tmp_path: Path, h264_ts: Path) -> None:
    from tests.export.conftest import close_env, open_env
    from tests.support.feed import feed
    from vmsd.clock import FakeClock
    from vmsd.ingest.segmenter import Segmenter
    from vmsd.storage.fmp4 import complete_length
    from vmsd.storage.store import Storage

    root = tmp_path / "root"
    storage = Storage(root)
    storage.open()
    storage.catalogue.upsert_camera("in-cam", "in-cam", "", 0)
    clock = FakeClock(wall_ns=MID)
    segmenter = Segmenter("in-cam", storage, clock, segment_duration_ns=60 * S)
    # 7 s into a 60 s segment, still open: the GOPs [0,2) [2,4) [4,6) s are complete fragments.
    feed(segmenter, clock, h264_ts, seconds=7, end_reason=None)
    assert segmenter.segment is not None
    storage.close()
    env = open_env(root)
    try:
        result = env.exporter.export(env.request(start_ns=MID, end_ns=MID + 7 * S, include_originals=False))
        m = result.manifest
        [segment] = m.segments
        assert segment.open_at_export and segment.file is None and segment.end_ns == MID + 6 * S
        assert (segment.bytes, 3) == complete_length(root / segment.recorded_path)  # its complete fragments
        assert [(c.start_ns, c.end_ns) for c in m.covered] == [(MID, MID + 6 * S)]
        gaps = [(g.start_ns, g.end_ns, g.reason) for g in m.gaps]
        assert gaps == [(MID + 6 * S, MID + 7 * S, "recording_in_progress")]
        assert m.masters[0].video_frames == 150
        assert '"open_at_export": true' in (result.path / mf.MANIFEST_NAME).read_text()
        report = verify_bundle(result.path, expected_fingerprint=env.exporter.key.fingerprint)
        assert report.verdict == "verified", report.problems
        assert any("still being recorded at export time" in w for w in report.warnings)
        # A finished segment's entry reads as before (no open_at_export key at all).
        finished = json.loads((result.path / mf.MANIFEST_NAME).read_text())
        finished["segments"][0]["open_at_export"] = False
        assert mf.Manifest.model_validate(finished).segments[0].open_at_export is False
    finally:
        close_env(env)


def _exporter(env: Env, **options: Any) -> Exporter:
    """Another exporter on the same storage, with export limits."""
    from tests.export.conftest import camera_info

    exporter = Exporter(
        env.storage,
        env.audit,
        env.clock,
        recorder_id="dover-test-01",
        camera_info=camera_info,
        holds=env.holds,
        **options,
    )
    exporter.open()
    return exporter


def test_export_quota_refuses_an_export_that_would_exceed_it(env: Env) -> None:
    first = env.exporter.export(env.request())
    holds_before = env.holds.list(include_released=True)
    # Room for what is kept plus a little: not for another export of the same range.
    limited = _exporter(env, max_total=lambda total_bytes: first.bytes + 1024 * 1024)
    with pytest.raises(VmsdError) as caught:
        limited.export(env.request())
    assert caught.value.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert "[export] max_total" in caught.value.message and str(limited.root) in caught.value.message
    # Refused before anything was made: no bundle, no hold, no staging folder.
    assert [p.name for p in limited.root.iterdir()] == [first.export_id]
    assert env.holds.list(include_released=True) == holds_before
    # A quota with room for both lets it through.
    roomy = _exporter(env, max_total=lambda total_bytes: 4 * first.bytes)
    assert roomy.export(env.request()).bytes > 0


def test_export_never_eats_into_the_recordings_free_space_reserve(env: Env) -> None:
    greedy_reserve = _exporter(env, min_free=lambda total_bytes: total_bytes)  # keep the whole disk free
    with pytest.raises(VmsdError) as caught:
        greedy_reserve.export(env.request())
    assert caught.value.kind is ErrorKind.RESOURCE_EXHAUSTED and "storage.min_free" in caught.value.message
    assert list(greedy_reserve.root.iterdir()) == []
