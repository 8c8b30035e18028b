"""`vmsctl export CAM --from T --to T --case REF --reason TEXT -o DIR`: make a bundle, download it.

DIR must not exist yet or be an empty folder: an export is never written over another (the old
bundle's files would mix with the new one's and neither would verify). This is checked before
anything is made on the recorder (exit 2).

The server builds the bundle (progress is shown on stderr); then every file is downloaded into a
staging folder beside DIR, `.<DIR name>.partial`, each first as `<name>.partial` — an interrupted
run resumes from what it already has when run again with the same DIR (files already there are
kept when their SHA-256 is the one listed, anything else is dropped). Each file's SHA-256 is
checked against the server's listing, then the whole bundle is verified offline exactly as
`vmsctl verify` would; only a bundle that verifies is renamed to DIR. So DIR either holds a
complete, verified bundle or does not exist. Exit 0 only when the downloaded bundle verifies.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vmsd.export.manifest import GAP_RECORDING_IN_PROGRESS, iso_ns
from vmsd.export.verify import verify_bundle
from vmsd.files import fsync_dir, sha256_file
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_err = Console(stderr=True, highlight=False)


def cmd_export(client: Any, args: argparse.Namespace, start_ns: int, end_ns: int) -> int:
    """Create an export on the server and download it to args.output. `client` is vmsctl's Client.

    Args used: camera, case, reason, recipient (optional), redact, no_originals, no_hold,
    allow_partial, output, json.
    gRPC errors propagate (vmsctl maps them to exit codes).
    """
    output = Path(args.output)
    problem = unusable_output(output)
    if problem:
        _err.print(f"vmsctl: {problem}", soft_wrap=True)
        return EXIT_USAGE
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
        allow_partial=bool(getattr(args, "allow_partial", False)),
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
    return download_bundle(client, done, output, as_json=args.json)


def unusable_output(output: Path) -> str:
    """Why `output` cannot receive a bundle ('' when it can: absent, or an empty folder)."""
    if output.is_dir():
        if any(output.iterdir()):
            return f"output folder {output} is not empty; an export is never written over another (choose a new folder)"
        return ""
    if output.exists() or output.is_symlink():
        return f"output {output} exists and is not a folder (choose a new folder)"
    return ""


def staging_path(output: Path) -> Path:
    """Where a bundle for `output` is downloaded before it is complete and verified."""
    absolute = Path(os.path.abspath(output))
    return absolute.with_name(f".{absolute.name}.partial")


def download_bundle(client: Any, summary: Any, output: Path, *, as_json: bool = False) -> int:
    """Download every file of an ExportSummary into the staging folder (resuming .partial
    files), verify it, and only then rename it to `output` (see the module docstring)."""
    problem = unusable_output(output)
    if problem:
        _err.print(f"vmsctl: {problem}", soft_wrap=True)
        return EXIT_USAGE
    stub = export_pb2_grpc.ExportServiceStub(client.channel)  # type: ignore[no-untyped-call]
    staging = staging_path(output)
    staging.mkdir(mode=0o750, parents=True, exist_ok=True)
    listed = {entry.name for entry in summary.files}
    for entry in summary.files:
        target = staging / entry.name
        if staging.resolve() not in target.resolve().parents:
            raise ValueError(f"the server named a file outside the bundle: {entry.name!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and sha256_file(target)[0] == entry.sha256:
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
        if sha256_file(partial)[0] != entry.sha256:
            partial.unlink()  # a resumed download that went wrong: start this file afresh next time
            _err.print(
                f"vmsctl: {entry.name}: downloaded bytes do not match the server's SHA-256; run again "
                f"(the files so far are in {staging}; nothing was written to {output})"
            )
            return EXIT_FAILED
        os.replace(partial, target)
    _drop_unlisted(staging, listed)
    report = verify_bundle(staging, expected_fingerprint=summary.key_fingerprint_sha256)
    saved = output
    if report.ok:
        try:
            # rename(2) replaces an empty folder and fails on a non-empty one: nothing is overwritten.
            os.rename(staging, output)
        except OSError as error:
            report.problems.append(f"{output}: cannot move the verified bundle there ({error.strerror})")
        else:
            fsync_dir(Path(os.path.abspath(output)).parent)
    if not report.ok:
        saved = staging
    if as_json:
        print(json.dumps({"export_id": summary.export_id, "output": str(saved), **report.to_dict()}, indent=2))
    elif report.ok:
        print(
            f"saved export {summary.export_id} to {output}: verified, signed by recorder key "
            f"{summary.key_fingerprint_sha256} (as the recorder reported it; confirm it with "
            "`vmsd key-fingerprint` on the recorder and record it on the continuity statement)"
        )
        for gap in report.manifest.gaps if report.manifest is not None else []:
            if gap.reason == GAP_RECORDING_IN_PROGRESS:
                print(
                    f"recording in progress: footage up to {iso_ns(gap.start_ns)} is in the bundle; the last "
                    f"{(gap.end_ns - gap.start_ns) / 1e9:.1f} s requested had not reached the recorder's file "
                    "yet (listed as a recording_in_progress gap)"
                )
    else:
        print(
            f"export {summary.export_id}: VERIFICATION FAILED: {report.first_problem}; "
            f"the downloaded files are in {staging}, not in {output}"
        )
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_FAILED


def _drop_unlisted(staging: Path, listed: set[str]) -> None:
    """Remove what an earlier, different export left in the staging folder (a resumed run)."""
    for path in sorted(staging.rglob("*"), reverse=True):
        name = path.relative_to(staging).as_posix()
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif name not in listed:
            path.unlink()
