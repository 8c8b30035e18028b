"""check_websocket_origin: a browser's WebSocket must come from this console's own origin."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from vmsd.errors import ErrorKind, VmsdError
from vmsd.web.sessions import check_websocket_origin

LIVE = "/api/v1/cameras/in-cam/live"


def _check(headers: dict[str, str]) -> None:
    check_websocket_origin(make_mocked_request("GET", LIVE, headers={"Host": "127.0.0.1:8080", **headers}))


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:8080"},
        {"Origin": "HTTP://127.0.0.1:8080/"},
        {"Authorization": "Bearer t"},  # not a browser: no Origin, no cookie to ride on
    ],
)
def test_the_consoles_own_origin_passes(headers: dict[str, str]) -> None:
    _check(headers)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Origin": "http://evil.example"}, "cross-origin WebSocket refused: Origin 'http://evil.example'"),
        ({"Origin": "http://127.0.0.1:8081"}, "is not 'http://127.0.0.1:8080'"),
        ({"Origin": "https://127.0.0.1:8080"}, "cross-origin"),
        ({"Origin": "null"}, "cross-origin"),
        ({}, "needs a bearer token"),
    ],
)
def test_other_origins_are_refused(headers: dict[str, str], words: str) -> None:
    with pytest.raises(VmsdError) as caught:
        _check(headers)
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert words in caught.value.message
