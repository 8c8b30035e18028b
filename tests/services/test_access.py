"""The authorisation decision every use case makes: role permission, then camera scope."""

from __future__ import annotations

import pytest

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Permission, Principal


def test_a_role_without_the_permission_is_denied_naming_role_and_permission() -> None:
    viewer = Principal("v", "viewer", ("*",))
    with pytest.raises(VmsdError) as caught:
        viewer.require(Permission.HOLDS_ADD)
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert caught.value.message == "role 'viewer' does not have permission 'holds.add'"


def test_a_camera_outside_the_scope_is_denied_whether_or_not_it_exists() -> None:
    viewer = Principal("v", "viewer", ("in-*",))
    viewer.require(Permission.RECORDINGS_SEARCH, "in-anything")
    for camera_id in ("out-cam", "no-such-camera"):
        with pytest.raises(VmsdError) as caught:
            viewer.require(Permission.RECORDINGS_SEARCH, camera_id)
        assert caught.value.kind is ErrorKind.PERMISSION_DENIED
        assert caught.value.message == f"camera_id {camera_id!r} is outside this principal's scope"


def test_an_unknown_role_may_do_nothing() -> None:
    assert not any(Principal("x", "no-such-role", ("*",)).can(p) for p in Permission)
