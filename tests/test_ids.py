from __future__ import annotations

import pytest

from vmsd.ids import ID_RE


@pytest.mark.parametrize("value", ["cam1", "Gate.North_2-a", "a" * 64])
def test_path_safe_ids_are_accepted(value: str) -> None:
    assert ID_RE.fullmatch(value)


@pytest.mark.parametrize("value", ["", ".hidden", "a/b", "..", "cam\n", "a" * 65, "caméra", "-x"])
def test_unsafe_ids_are_refused(value: str) -> None:
    assert not ID_RE.fullmatch(value)
    assert not ID_RE.match(value)  # \A...\Z: safe with match() too (no trailing-newline escape)
