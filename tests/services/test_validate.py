"""Request-field validation: ids are matched whole (a trailing newline is not part of an id)."""

from __future__ import annotations

import pytest

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services import validate


@pytest.mark.parametrize("value", ["cam-1\n", "cam-1\r\n", "\ncam-1", "cam 1", "-cam", "x" * 65])
def test_an_id_with_anything_around_it_is_refused(value: str) -> None:
    with pytest.raises(VmsdError) as caught:
        validate.camera_id(value)
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert "camera_id" in caught.value.message


@pytest.mark.parametrize("value", ["cam-1", "C.2_b", "x" * 64])
def test_valid_ids_pass(value: str) -> None:
    assert validate.camera_id(value) == value
