"""Bundles.archive: a finished bundle as one tar, sized before it is read, refusing a file that shrank."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.export.conftest import Env
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.model import ExportResult
from vmsd.export.serve import Bundles
from vmsd.export.verify import verify_bundle


def _copy(exported: tuple[Env, ExportResult], tmp_path: Path) -> tuple[Bundles, str]:
    result = exported[1]
    shutil.copytree(result.path, tmp_path / "exports" / result.export_id)
    return Bundles(tmp_path / "exports"), result.export_id


def test_the_archive_holds_every_file_under_the_export_id_and_is_exactly_its_size(
    exported: tuple[Env, ExportResult], tmp_path: Path
) -> None:
    bundles, export_id = _copy(exported, tmp_path)
    archive = bundles.archive(export_id)
    data = b"".join(archive.chunks)
    assert (archive.name, len(data)) == (f"{export_id}.tar", archive.size)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m.size for m in tar.getmembers()}
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert members == {f"{export_id}/{f.name}": f.bytes for f in bundles.files(export_id)}
    key = exported[0].exporter.key.fingerprint
    assert verify_bundle(tmp_path / "unpacked" / export_id, expected_fingerprint=key).verdict == "verified"


def test_a_file_that_shrinks_while_it_is_sent_ends_the_archive_with_data_loss(
    exported: tuple[Env, ExportResult], tmp_path: Path
) -> None:
    bundles, export_id = _copy(exported, tmp_path)
    archive = bundles.archive(export_id)  # sizes taken now
    master = next(f for f in bundles.files(export_id) if f.role == "master")
    (tmp_path / "exports" / export_id / master.name).write_bytes(b"short")
    with pytest.raises(VmsdError) as caught:
        b"".join(archive.chunks)
    assert (caught.value.kind, caught.value.message) == (
        ErrorKind.DATA_LOSS,
        f"export {export_id}: {master.name} became shorter while being sent",
    )


def test_any_part_of_the_archive_is_that_slice_of_the_whole_and_the_etag_names_its_bytes(
    exported: tuple[Env, ExportResult], tmp_path: Path
) -> None:
    bundles, export_id = _copy(exported, tmp_path)
    whole = bundles.archive(export_id)
    data = b"".join(whole.chunks)
    header = tarfile.BLOCKSIZE
    for offset, end in [(0, None), (1, None), (header - 1, header + 1), (header, 3 * header), (len(data) - 1, None)]:
        part = bundles.archive(export_id, offset, end)
        assert (part.size, part.etag) == (whole.size, whole.etag)
        assert b"".join(part.chunks) == data[offset:end], (offset, end)
    assert b"".join(bundles.archive(export_id, len(data)).chunks) == b""
    with pytest.raises(VmsdError) as caught:
        bundles.archive(export_id, 10, 5)
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert caught.value.message == f"bytes 10..5 are not a part of the archive (0..{len(data)} bytes)"
    readme = tmp_path / "exports" / export_id / "README.txt"
    readme.write_bytes(readme.read_bytes() + b"more")
    assert bundles.archive(export_id).etag != whole.etag  # another size: other bytes, another etag
