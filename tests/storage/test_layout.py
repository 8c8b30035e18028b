"""Storage layout: ids and segment paths are matched whole."""

from __future__ import annotations

import pytest

from vmsd.errors import VmsdError
from vmsd.storage.layout import check_id, parse_segment_relpath


def test_an_id_with_a_trailing_newline_is_not_a_safe_directory_name() -> None:
    with pytest.raises(VmsdError):
        check_id("cam-1\n")
    assert check_id("cam-1") == "cam-1"


def test_a_segment_path_with_trailing_newlines_is_not_ours() -> None:
    good = "recordings/cam-1/2026-01-02/000000.000000000Z.mp4"
    assert parse_segment_relpath(good) is not None
    assert parse_segment_relpath("recordings/cam-1\n/2026-01-02/000000.000000000Z.mp4") is None
    assert parse_segment_relpath("recordings/cam-1/2026-01-02\n/000000.000000000Z.mp4") is None
    assert parse_segment_relpath(good + "\n") is None
