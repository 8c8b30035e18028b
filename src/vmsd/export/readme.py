"""README.txt of a bundle: what it holds and how to verify it, with vmsctl or by hand."""

from __future__ import annotations

from vmsd.export import manifest as mf
from vmsd.export.manifest import iso_ns
from vmsd.export.model import CameraInfo, ExportRequest
from vmsd.units import NS_PER_S


def readme_text(
    export_id: str,
    camera: CameraInfo,
    request: ExportRequest,
    key_fingerprint: str,
    masters: list[mf.Master],
    redacted: list[mf.Redacted],
    originals: bool,
    open_segment: bool,
    *,
    recorders: list[str] | None = None,
) -> str:
    master_lines = "\n".join(
        f"  {m.file}: {m.start} .. {iso_ns(m.end_ns)} ({m.duration_ns / NS_PER_S:.1f} s of footage,"
        f" {m.video_codec} {m.width}x{m.height}, not re-encoded)"
        for m in masters
    )
    extra = []
    if originals:
        extra.append("  segments/: the recorded segment files exactly as the recorder wrote them.")
    for r in redacted:
        extra.append(f"  {r.file}: a REDACTED WORKING COPY (re-encoded, privacy-masked) — not the master.")
    extras = "\n".join(extra)
    in_progress = (
        """
     The last segment was still being recorded when this export was made ("open_at_export"):
     its hash covers the complete fragments written by then, a prefix of the file the recorder
     finished later; the requested time after them is a "recording_in_progress" gap."""
        if open_segment
        else ""
    )
    site = (
        f"""
     This bundle holds the footage of several recorders of a site ({", ".join(recorders)}):
     every segment names its "recorder", and the chain rule holds per recorder (each segment
     links to the previous one of the same recorder). "recorders" in manifest.json lists each
     recorder's part, "overlaps" any time two of them both recorded (both are included), and the
     masters are per recorder. The bundle is signed by the recorder named in "recorder", which
     checked every other recorder's segment against that recorder's own
     catalogue hash as it arrived."""
        if recorders
        else ""
    )
    return f"""\
Evidence export {export_id}
Camera: {camera.id} {camera.name} {camera.location}
Requested: {iso_ns(request.start_ns)} .. {iso_ns(request.end_ns)}
Case reference: {request.case_ref}

Contents
{master_lines}
{extras}
  manifest.json: every fact about this export (times in ns since 1970 UTC), including the gaps in
    the footage, the SHA-256 of every file and of every source segment with its hash-chain link.
  manifest.sig: the recorder's Ed25519 signature over manifest.json.
  recorder-public-key.pem: the recorder's public key (SHA-256 of the raw key:
    {key_fingerprint}).
    Confirm this fingerprint with the recorder's operator through a channel you trust
    (they print it with `vmsd key-fingerprint`); a fingerprint read from this bundle alone
    proves nothing, since anyone can sign a bundle with a key of their own.

To verify with vmsd's tool (offline, no connection to the recorder needed):
  vmsctl verify . --key-fingerprint <the fingerprint from the recorder's operator>

To verify by hand (in this directory):
  1. The signature:
       openssl pkeyutl -verify -pubin -inkey recorder-public-key.pem -rawin -in manifest.json -sigfile manifest.sig
     must print "Signature Verified Successfully".
  2. The key's fingerprint:
       openssl pkey -pubin -in recorder-public-key.pem -outform DER | tail -c 32 | sha256sum
     must print the recorder's fingerprint as its operator gave it to you (and the one above,
     which is also "key_fingerprint_sha256" in manifest.json).
  3. The files:
       sha256sum -c SHA256SUMS
     must report OK for every file, and `sha256sum SHA256SUMS` must equal the "sha256" listed for
     SHA256SUMS in manifest.json's "files".
  4. The chain: in manifest.json "segments", each segment's "prev_sha256" must equal the
     "sha256" of the segment listed before it (or lead to it through "erased_segments").{in_progress}{site}

The master is a remux of the recorded packets (no re-encoding); its own hash therefore differs
from the source segments' hashes, which are listed (and, in segments/, included) separately.
"""
