"""`vmsctl verify DIR`: check an export bundle offline (no server, no token, no network).

Exit codes: 0 verified (warnings may be printed), 1 verification failed — the first line after
the verdict names the first problem (the file or manifest field at fault).
"""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path

from vmsd.export.manifest import iso_ns
from vmsd.export.verify import verify_bundle

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_verify(path: str, json: bool, fingerprint: str | None = None) -> int:
    """Verify the bundle in `path`, print the verdict (or one JSON document), return the exit code.

    `fingerprint`: the recorder key's SHA-256 fingerprint as obtained from the recorder's operator;
    without it the bundle's own key is trusted for consistency only (and a warning says so).
    """
    report = verify_bundle(Path(path), expected_fingerprint=fingerprint)
    if json:
        print(jsonlib.dumps(report.to_dict(), indent=2))
        return EXIT_OK if report.ok else EXIT_FAILED
    m = report.manifest
    about = f" — export {m.export_id}, camera {m.camera.id}, case {m.case_ref}" if m else ""
    if report.ok:
        print(f"VERIFIED: {path}{about}")
    else:
        print(f"VERIFICATION FAILED: {report.first_problem}")
        print(f"  bundle: {path}{about}")
    for check in report.checks:
        print(f"  ok       {check}")
    for problem in report.problems:
        print(f"  PROBLEM  {problem}")
    for warning in report.warnings:
        print(f"  warning  {warning}")
    if m is not None and report.ok:
        covered_ns = sum(s.end_ns - s.start_ns for s in m.covered)
        print(
            f"  footage  {m.requested.start} .. {m.requested.end}: {covered_ns / 1e9:.1f} s recorded, "
            f"{len(m.gaps)} gap(s)"
        )
        for gap in m.gaps:
            length_s = (gap.end_ns - gap.start_ns) / 1e9
            print(f"    gap    {iso_ns(gap.start_ns)} .. {iso_ns(gap.end_ns)} ({length_s:.1f} s): {gap.reason}")
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED
