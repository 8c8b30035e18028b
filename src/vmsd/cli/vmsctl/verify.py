"""`vmsctl verify DIR [--key-fingerprint FP | --trusted-key FILE]`: check a bundle offline.

No server, no token, no network. A bundle carries its own public key, so a bundle that is intact
and consistently signed proves nothing about *who* signed it: a forger can make one with a key
of their own. Only a key obtained outside the bundle — the recorder's fingerprint from its
operator (`vmsd key-fingerprint` on the recorder, written on the continuity statement), or the
recorder's public key file — says that the recorder made it.

Exit codes:
  0  VERIFIED: intact and signed by the trusted key given;
  1  VERIFICATION FAILED: the first line after the verdict names the first problem;
  2  usage error (a malformed fingerprint, an unreadable key file);
  5  NOT VERIFIED AGAINST A TRUSTED KEY: intact and signed by the key it names, which was not
     checked (no --key-fingerprint/--trusted-key given).
"""

from __future__ import annotations

import json as jsonlib
import re
import sys
from pathlib import Path

from vmsd.export.manifest import iso_ns
from vmsd.export.signing import fingerprint as key_fingerprint
from vmsd.export.signing import load_public_pem
from vmsd.export.verify import VerifyReport, verify_bundle

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_KEY_NOT_CHECKED = 0, 1, 2, 5
_FINGERPRINT_RE = re.compile(r"^[0-9a-fA-F]{64}$")


class TrustError(ValueError):
    """The trusted key given on the command line is unusable (a usage error)."""


def trusted_fingerprint(fingerprint: str | None, trusted_key: str | None) -> str | None:
    """The fingerprint to check the bundle's key against, from the options (None: not given)."""
    wanted: str | None = None
    if fingerprint is not None:
        wanted = fingerprint.strip().replace(":", "").lower()
        if not _FINGERPRINT_RE.match(wanted):
            raise TrustError(
                f"--key-fingerprint {fingerprint!r} is not a key fingerprint: expected 64 hex characters "
                "(the SHA-256 that `vmsd key-fingerprint` prints on the recorder)"
            )
    if trusted_key is not None:
        try:
            from_file = key_fingerprint(load_public_pem(Path(trusted_key).read_bytes()))
        except OSError as error:
            raise TrustError(f"--trusted-key {trusted_key}: cannot read it ({error.strerror})") from None
        except ValueError as error:
            raise TrustError(f"--trusted-key {trusted_key}: not an Ed25519 public key in PEM ({error})") from None
        if wanted is not None and wanted != from_file:
            raise TrustError(
                f"--trusted-key {trusted_key} has fingerprint {from_file}, not the --key-fingerprint given ({wanted})"
            )
        wanted = from_file
    return wanted


def exit_code(report: VerifyReport) -> int:
    return {"verified": EXIT_OK, "intact_key_not_checked": EXIT_KEY_NOT_CHECKED}.get(report.verdict, EXIT_FAILED)


def cmd_verify(path: str, json: bool, fingerprint: str | None = None, trusted_key: str | None = None) -> int:
    """Verify the bundle in `path`, print the verdict (or one JSON document), return the exit code.

    `fingerprint` / `trusted_key`: the recorder key's SHA-256 fingerprint, or its public key file,
    as obtained from the recorder's operator; without either the verdict is at best "intact, key
    not checked" (exit 5).
    """
    try:
        expected = trusted_fingerprint(fingerprint, trusted_key)
    except TrustError as error:
        print(f"vmsctl: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = verify_bundle(Path(path), expected_fingerprint=expected)
    if json:
        print(jsonlib.dumps(report.to_dict(), indent=2))
        return exit_code(report)
    m = report.manifest
    about = f" — export {m.export_id}, camera {m.camera.id}, case {m.case_ref}" if m else ""
    if report.verdict == "verified":
        print(f"VERIFIED against the trusted key {report.key_fingerprint}: {path}{about}")
    elif report.verdict == "intact_key_not_checked":
        print(f"NOT VERIFIED AGAINST A TRUSTED KEY: {path}{about}")
        print(
            f"  the bundle is intact and signed by key {report.key_fingerprint}, which was not checked: anyone\n"
            "  can make a bundle signed by a key of their own. Check it against the recorder's key, obtained\n"
            "  from its operator (`vmsd key-fingerprint` on the recorder) through a channel you trust:\n"
            f"    vmsctl verify {path} --key-fingerprint FINGERPRINT   (or --trusted-key recorder-public-key.pem)"
        )
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
    return exit_code(report)
