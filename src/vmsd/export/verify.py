"""Offline verification of an export bundle: needs the directory only, never the recorder.

Checks, in this order (the verdict names the first problem; later checks still run where they
can, so one report shows everything wrong):
  1. the bundle has manifest.json, manifest.sig and recorder-public-key.pem;
  2. manifest.sig is a valid Ed25519 signature of manifest.json's exact bytes by that key;
  3. manifest.json is valid against the v1 schema (required fields, types, hash formats);
  4. the key's fingerprint is the one the manifest names (and the one the caller expects, when
     given — the bundle's own key proves consistency, only a fingerprint obtained elsewhere
     proves *which* recorder signed: anyone can make a bundle that is intact under a key of
     their own, so a report is only `verified` when the key was checked, see `verdict`);
  5. every listed file exists with its listed size and SHA-256, no unlisted file is present,
     and SHA256SUMS says the same as the manifest;
  6. each included original segment is the listed source segment (same SHA-256 and size);
  7. the source segments are in time order and satisfy the hash-chain rule (manifest.py);
     breaks the recorder declared are warnings, any other break is a failure; only the last
     segment may be one still being recorded at export time (`open_at_export`, a warning).
  8. vmsd-export/2 (footage of several recorders of a site): `recorders` lists every recorder
     whose segments are listed, with their counts; each recorder's segments are in time order and
     its chain holds on its own (a break names the recorder); time two recorders both recorded is
     exactly the manifest's `overlaps`. The report names each recorder's part (`parts`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vmsd.export import manifest as mf
from vmsd.export.signing import fingerprint, load_public_pem, signature_valid
from vmsd.files import sha256_file


@dataclass
class VerifyReport:
    path: str
    checks: list[str] = field(default_factory=list)  # what was verified, for the report
    problems: list[str] = field(default_factory=list)  # each names the file or field at fault
    warnings: list[str] = field(default_factory=list)
    manifest: mf.Manifest | None = None
    key_fingerprint: str = ""  # of the key in the bundle (whoever it belongs to)
    key_trusted: bool = False  # that key is the one the caller expected (from outside the bundle)

    @property
    def ok(self) -> bool:
        """The bundle is intact and consistently signed — by *some* key unless `key_trusted`."""
        return not self.problems

    @property
    def verdict(self) -> str:
        """`verified` (intact, signed by the expected key), `intact_key_not_checked` or `failed`."""
        if self.problems:
            return "failed"
        return "verified" if self.key_trusted else "intact_key_not_checked"

    @property
    def first_problem(self) -> str:
        return self.problems[0] if self.problems else ""

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "path": self.path,
            "verdict": self.verdict,
            "ok": self.ok,
            "key_trusted": self.key_trusted,
            "first_problem": self.first_problem,
            "problems": self.problems,
            "warnings": self.warnings,
            "checks": self.checks,
            "export_id": m.export_id if m else "",
            "recorder_id": m.recorder.id if m else "",
            "key_fingerprint_sha256": m.recorder.key_fingerprint_sha256 if m else "",
            "camera_id": m.camera.id if m else "",
            "case_ref": m.case_ref if m else "",
            "requested": m.requested.model_dump() if m else None,
            "covered": [s.model_dump() for s in m.covered] if m else [],
            "gaps": [g.model_dump() for g in m.gaps] if m else [],
            # vmsd-export/2: each recorder's part (which recorder each segment came from).
            "parts": [p.model_dump() for p in m.recorders] if m else [],
            "missing": [p.model_dump() for p in m.missing] if m else [],
        }


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def verify_bundle(path: Path, *, expected_fingerprint: str | None = None) -> VerifyReport:
    """Verify the bundle in directory `path` (blocking: reads and hashes every file)."""
    report = VerifyReport(str(path))
    if not path.is_dir():
        report.problems.append(f"{path}: not a directory")
        return report
    missing = [n for n in (mf.MANIFEST_NAME, mf.SIGNATURE_NAME, mf.PUBLIC_KEY_NAME) if not (path / n).is_file()]
    if missing:
        report.problems.extend(f"{name}: missing from the bundle" for name in missing)
        return report
    manifest_bytes = (path / mf.MANIFEST_NAME).read_bytes()

    # 2. Signature.
    try:
        public_key = load_public_pem((path / mf.PUBLIC_KEY_NAME).read_bytes())
    except ValueError as exc:
        report.problems.append(f"{mf.PUBLIC_KEY_NAME}: not a usable Ed25519 public key ({exc})")
        return report
    key_fingerprint = fingerprint(public_key)
    report.key_fingerprint = key_fingerprint
    if signature_valid(public_key, manifest_bytes, (path / mf.SIGNATURE_NAME).read_bytes()):
        report.checks.append(f"signature: {mf.MANIFEST_NAME} is signed by key {key_fingerprint}")
    else:
        report.problems.append(
            f"{mf.MANIFEST_NAME}: the signature in {mf.SIGNATURE_NAME} does not match — the manifest was changed "
            f"after signing, or signed by another key than {mf.PUBLIC_KEY_NAME}"
        )

    # 3. Schema.
    try:
        json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.problems.append(f"{mf.MANIFEST_NAME}: not valid JSON ({exc})")
        return report
    try:
        manifest = mf.Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        first = exc.errors()[0]
        report.problems.append(f"{mf.MANIFEST_NAME}: field {_field(tuple(first['loc']))}: {first['msg']}")
        return report
    report.manifest = manifest
    report.checks.append(f"schema: {mf.MANIFEST_NAME} is a valid {manifest.format} manifest")

    # 4. Key identity.
    if manifest.recorder.key_fingerprint_sha256 != key_fingerprint:
        report.problems.append(
            f"{mf.PUBLIC_KEY_NAME}: its fingerprint {key_fingerprint} is not the manifest's "
            f"recorder.key_fingerprint_sha256 {manifest.recorder.key_fingerprint_sha256}"
        )
    if expected_fingerprint is not None:
        if expected_fingerprint.strip().lower() == key_fingerprint:
            report.key_trusted = True
            report.checks.append("key: the fingerprint is the one expected")
        else:
            report.problems.append(
                f"{mf.PUBLIC_KEY_NAME}: fingerprint {key_fingerprint} is not the expected {expected_fingerprint}"
            )
    else:
        report.warnings.append(
            f"the signing key was not checked against a fingerprint from outside the bundle; confirm "
            f"{key_fingerprint} with the recorder's operator"
        )

    _check_files(path, manifest, report)
    _check_segments(manifest, report)
    named = [x.recorder for x in manifest.segments] + [x.recorder for x in manifest.erased_segments]
    named += [x.recorder for x in manifest.masters]
    site_fields = manifest.recorders or manifest.overlaps or manifest.missing or any(named)
    if manifest.format == mf.FORMAT_SITE or site_fields:
        # (A v1 manifest whose segments named recorders would split one chain into several.)
        _check_parts(manifest, report)
    return report


def _check_files(path: Path, manifest: mf.Manifest, report: VerifyReport) -> None:
    listed: dict[str, mf.File] = {}
    bad = 0
    for entry in manifest.files:
        if entry.name in listed or entry.name in (mf.MANIFEST_NAME, mf.SIGNATURE_NAME):
            report.problems.append(f"{mf.MANIFEST_NAME}: file {entry.name} is listed twice")
            bad += 1
            continue
        listed[entry.name] = entry
        target = path / entry.name
        if not target.is_file() or target.is_symlink():
            report.problems.append(f"{entry.name}: missing from the bundle")
            bad += 1
            continue
        digest, size = sha256_file(target)
        if digest != entry.sha256 or size != entry.bytes:
            whose = next(
                (f" (footage of recorder {s.recorder})" for s in manifest.segments if s.file == entry.name), ""
            )
            report.problems.append(
                f"{entry.name}: SHA-256 {digest} ({size} bytes) does not match the manifest's "
                f"{entry.sha256} ({entry.bytes} bytes) — the file was altered{whose}"
            )
            bad += 1
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() or p.is_symlink()} - {
        mf.MANIFEST_NAME,
        mf.SIGNATURE_NAME,
    }
    for extra in sorted(present - set(listed)):
        report.problems.append(f"{extra}: in the bundle but not listed in {mf.MANIFEST_NAME}")
        bad += 1
    sums = listed.get(mf.SUMS_NAME)
    if sums is not None and (path / mf.SUMS_NAME).is_file():
        expected = "".join(f"{f.sha256}  {f.name}\n" for f in manifest.files if f.name != mf.SUMS_NAME)
        if (path / mf.SUMS_NAME).read_text(encoding="ascii", errors="replace") != expected:
            report.problems.append(f"{mf.SUMS_NAME}: does not list exactly the manifest's files and hashes")
            bad += 1
    for master in manifest.masters:
        if master.file not in listed or listed[master.file].role != mf.ROLE_MASTER:
            report.problems.append(f"{mf.MANIFEST_NAME}: master {master.file} is not listed as a master file")
            bad += 1
    for copy in manifest.redacted:
        if copy.file not in listed or listed[copy.file].role != mf.ROLE_REDACTED:
            report.problems.append(f"{mf.MANIFEST_NAME}: working copy {copy.file} is not listed as a redacted file")
            bad += 1
    if not bad:
        report.checks.append(f"files: all {len(listed)} listed files match their SHA-256; nothing unlisted")


def _check_segments(manifest: mf.Manifest, report: VerifyReport) -> None:
    files = {f.name: f for f in manifest.files}
    bad = 0
    originals = 0
    # Per recorder (vmsd-export/1: every segment has the same, empty, recorder).
    last_of: dict[str, int] = {}
    for index, segment in enumerate(manifest.segments):
        last_of[segment.recorder] = index
    before_of: dict[str, int] = {}
    for index, segment in enumerate(manifest.segments):
        before = before_of.get(segment.recorder)
        before_of[segment.recorder] = index
        if segment.open_at_export:
            if index != last_of[segment.recorder]:
                report.problems.append(
                    f"{mf.MANIFEST_NAME}: segments[{index}] is marked open_at_export but is not the last segment"
                )
                bad += 1
            else:
                report.warnings.append(
                    f"segments[{index}] was still being recorded at export time: its hash covers the "
                    f"{segment.bytes} bytes of complete fragments written by then (to {mf.iso_ns(segment.end_ns)}), "
                    "so the recorder's hash of the finished file differs"
                )
        if before is not None and segment.start_ns < manifest.segments[before].end_ns:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: segments[{index}] starts before segments[{before}] ends (not in time order)"
            )
            bad += 1
        elif index and segment.start_ns < manifest.segments[index - 1].start_ns:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: segments[{index}] starts before segments[{index - 1}] (not in time order)"
            )
            bad += 1
        if segment.file is None:
            continue
        originals += 1
        entry = files.get(segment.file)
        if entry is None or entry.role != mf.ROLE_ORIGINAL:
            report.problems.append(f"{segment.file}: segments[{index}] names it but it is not a listed original")
            bad += 1
        elif entry.sha256 != segment.sha256 or entry.bytes != segment.bytes:
            report.problems.append(
                f"{segment.file}: its listed SHA-256 is not segments[{index}].sha256 — not the recorded segment"
            )
            bad += 1
    declared = {b.index: b for b in manifest.chain_breaks}
    for found in mf.chain_breaks(list(manifest.segments), list(manifest.erased_segments)):
        if found.index in declared:
            report.warnings.append(
                f"chain: break before segments[{found.index}] declared by the recorder: {declared[found.index].detail}"
            )
        else:
            report.problems.append(f"chain: {found.detail}")
            bad += 1
    if not bad:
        erased = (
            f", {len(manifest.erased_segments)} erased segment(s) accounted for" if manifest.erased_segments else ""
        )
        report.checks.append(
            f"chain: {len(manifest.segments)} source segments in order and linked{erased};"
            f" {originals} original(s) included match their recorded hashes"
        )


def _check_parts(manifest: mf.Manifest, report: VerifyReport) -> None:
    """vmsd-export/2: the recorders named are exactly those of the segments, with their counts;
    overlaps are exactly the time two recorders' segments both cover."""
    bad = 0
    if manifest.format != mf.FORMAT_SITE or not manifest.recorders:
        report.problems.append(
            f"{mf.MANIFEST_NAME}: recorders, overlaps, missing and the recorder of a segment belong to a "
            f"{mf.FORMAT_SITE} manifest with recorders, not to a {manifest.format} one"
        )
        return
    parts = {p.id: p for p in manifest.recorders}
    if len(parts) != len(manifest.recorders):
        report.problems.append(f"{mf.MANIFEST_NAME}: a recorder is listed twice in recorders")
        bad += 1
    for index, segment in enumerate(manifest.segments):
        if segment.recorder not in parts:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: segments[{index}] names recorder {segment.recorder!r}, not one of recorders"
            )
            bad += 1
    for master in manifest.masters:
        if master.recorder not in parts:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: master {master.file} names recorder {master.recorder!r}, not one of recorders"
            )
            bad += 1
    for erased in manifest.erased_segments:
        if erased.recorder not in parts:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: an erased segment names recorder {erased.recorder!r}, not one of recorders"
            )
            bad += 1
    breaks = mf.chain_breaks(list(manifest.segments), list(manifest.erased_segments))
    broken = {manifest.segments[b.index].recorder for b in breaks}
    for part in manifest.recorders:
        own = [s for s in manifest.segments if s.recorder == part.id]
        if len(own) != part.segments or sum(s.bytes for s in own) != part.bytes:
            report.problems.append(
                f"{mf.MANIFEST_NAME}: recorders entry {part.id} says {part.segments} segments ({part.bytes} bytes); "
                f"{len(own)} ({sum(s.bytes for s in own)} bytes) are listed"
            )
            bad += 1
            continue
        chain = "broken" if part.id in broken else "linked"
        if chain != part.chain:
            report.problems.append(f"{mf.MANIFEST_NAME}: recorders entry {part.id} says its chain is {part.chain}")
            bad += 1
        key = part.key_fingerprint_sha256 or "not reported"
        epochs = ", ".join(str(e) for e in part.epochs) or "none (recorded outside a site)"
        report.checks.append(
            f"part of recorder {part.id} ({part.source}; key {key}): {len(own)} segments "
            f"{mf.iso_ns(part.start_ns)} .. {mf.iso_ns(part.end_ns)}, chain {chain}, epochs {epochs}"
            + (", partly unfenced" if part.unfenced else "")
        )
    if mf.overlaps(list(manifest.segments)) != list(manifest.overlaps):
        report.problems.append(
            f"{mf.MANIFEST_NAME}: overlaps does not state exactly the time two recorders' segments both cover"
        )
        bad += 1
    for overlap in manifest.overlaps:
        report.warnings.append(
            f"{overlap.start} .. {overlap.end} was recorded by {' and '.join(overlap.recorders)}: each one's footage "
            "is included, not merged"
        )
    for missing in manifest.missing:
        spans = ", ".join(f"{s.start} .. {s.end}" for s in missing.spans) or "no time the bundle does not cover"
        report.warnings.append(
            f"PARTIAL EXPORT: the part of recorder {missing.recorder} is missing ({missing.reason}); it may hold "
            f"footage of {spans}"
        )
    if not bad:
        report.checks.append(
            f"recorders: {len(parts)} recorders' parts ({', '.join(parts)}) account for every segment"
            + (f"; {len(manifest.overlaps)} overlap(s) stated" if manifest.overlaps else "")
        )
