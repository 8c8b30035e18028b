"""A segment id names one file forever, even when recovery drops the newest row (found by the
repeated kill -9 test: a torn segment's row was dropped and its id handed to the next segment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsd.storage.catalogue import GENESIS_SHA256
from vmsd.storage.store import Storage

pytestmark = pytest.mark.reliability


def test_ids_of_dropped_rows_are_not_reused(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "root")
    storage.open()
    try:
        catalogue = storage.catalogue
        catalogue.upsert_camera("cam", "cam", "", 0)

        def insert(n: int) -> int:
            return catalogue.insert_writing_segment(
                camera_id="cam",
                run_id=None,
                path=f"recordings/cam/{n}.mp4",
                start_ns=n,
                prev_sha256=GENESIS_SHA256,
                video_codec="h264",
                width=1,
                height=1,
                has_audio=False,
            )

        first = insert(1)
        torn = insert(2)
        catalogue.mark_garbage(torn)
        catalogue.delete_segment(torn, erased_ns=2, reason="torn_without_fragments")
        assert insert(3) not in (first, torn)
    finally:
        storage.close()
