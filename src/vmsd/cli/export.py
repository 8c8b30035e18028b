"""`vmsctl export CAM --from T --to T --case REF --reason TEXT -o DIR`: make a bundle, download it.

The server builds the bundle (progress is shown on stderr); then every file is downloaded into
DIR, each first as `<name>.partial` — an interrupted run resumes from what it already has when
run again with the same DIR (`download_bundle`). Each file's SHA-256 is checked against the
server's listing, and finally the whole bundle is verified offline exactly as `vmsctl verify`
would. Exit 0 only when the downloaded bundle verifies.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vmsd.export.verify import verify_bundle
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc

EXIT_OK, EXIT_FAILED = 0, 1
_err = Console(stderr=True, highlight=False)


def cmd_export(client: Any, args: argparse.Namespace, start_ns: int, end_ns: int) -> int:
    """Create an export on the server and download it to args.output. `client` is vmsctl's Client.

    Args used: camera, case, reason, recipient (optional), redact, no_originals, no_hold, output, json.
    gRPC errors propagate (vmsctl maps them to exit codes).
    """
    stub = export_pb2_grpc.ExportServiceStub(client.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.CreateExportRequest(
        camera_id=args.camera,
        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
        case_ref=args.case,
        reason=args.reason,
        recipient=getattr(args, "recipient", "") or "",
        exclude_originals=bool(getattr(args, "no_originals", False)),
        redact=bool(getattr(args, "redact", False)),
        no_hold=bool(getattr(args, "no_hold", False)),
    )
    done: Any = None
    # No deadline: a long range takes as long as the disk needs; the server finishes regardless.
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=_err,
        disable=args.json or not _err.is_terminal,
    ) as progress:
        task = progress.add_task("exporting", total=1.0)
        for step in stub.CreateExport(request, metadata=client.metadata):
            progress.update(task, completed=step.fraction, description=step.phase)
            if step.HasField("done"):
                done = step.done
    if done is None:
        _err.print("vmsctl: the export stream ended without a result")
        return EXIT_FAILED
    if not args.json:
        _err.print(f"export {done.export_id} made on the recorder; downloading {len(done.files)} files")
    return download_bundle(client, done, Path(args.output), as_json=args.json)


def download_bundle(client: Any, summary: Any, output: Path, *, as_json: bool = False) -> int:
    """Download every file of an ExportSummary into `output` (resuming .partial files), verify."""
    stub = export_pb2_grpc.ExportServiceStub(client.channel)  # type: ignore[no-untyped-call]
    output.mkdir(parents=True, exist_ok=True)
    for entry in summary.files:
        target = output / entry.name
        if output.resolve() not in target.resolve().parents:
            raise ValueError(f"the server named a file outside the bundle: {entry.name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and _sha256(target) == entry.sha256:
            continue  # already complete from an earlier run
        partial = target.with_name(target.name + ".partial")
        offset = partial.stat().st_size if partial.exists() else 0
        if offset > entry.bytes:
            partial.unlink()
            offset = 0
        with open(partial, "ab") as handle:
            if offset < entry.bytes:
                request = export_pb2.DownloadRequest(export_id=summary.export_id, name=entry.name, offset=offset)
                for chunk in stub.Download(request, metadata=client.metadata):
                    if chunk.offset != offset:
                        raise ValueError(f"{entry.name}: server sent offset {chunk.offset}, expected {offset}")
                    handle.write(chunk.data)
                    offset += len(chunk.data)
            handle.flush()
            os.fsync(handle.fileno())
        if _sha256(partial) != entry.sha256:
            partial.unlink()  # a resumed download that went wrong: start this file afresh next time
            _err.print(f"vmsctl: {entry.name}: downloaded bytes do not match the server's SHA-256; run again")
            return EXIT_FAILED
        os.replace(partial, target)
    report = verify_bundle(output, expected_fingerprint=summary.key_fingerprint_sha256)
    if as_json:
        print(json.dumps({"export_id": summary.export_id, "output": str(output), **report.to_dict()}, indent=2))
    elif report.ok:
        print(f"saved export {summary.export_id} to {output}: verified (key {summary.key_fingerprint_sha256})")
    else:
        print(f"saved export {summary.export_id} to {output}: VERIFICATION FAILED: {report.first_problem}")
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
