"""Request fields beyond those of web/context.py: integers, booleans and lists, from the query
string or a JSON body, each refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError

_TRUE = ("1", "true", "yes")
_FALSE = ("", "0", "false", "no")


def _invalid(message: str) -> VmsdError:
    return VmsdError(ErrorKind.INVALID_ARGUMENT, message)


def query_int(request: web.Request, name: str, default: int = 0) -> int:
    """A non-negative integer from the query string (`?page_size=50`)."""
    text = request.query.get(name, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise _invalid(f"query parameter {name!r} must be a non-negative integer, not {text[:40]!r}")
    return int(text)


def query_bool(request: web.Request, name: str) -> bool:
    """`?name=true` (or 1, yes); absent or false/0/no: False."""
    text = request.query.get(name, "").lower()
    if text not in _TRUE + _FALSE:
        raise _invalid(f"query parameter {name!r} must be true or false, not {text[:40]!r}")
    return text in _TRUE


def bool_field(body: dict[str, Any], name: str) -> bool:
    """An optional boolean field of a JSON body (absent: false)."""
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"field {name!r} must be true or false")
    return value


def int_field(body: dict[str, Any], name: str) -> int:
    """An optional non-negative integer field of a JSON body (absent: 0); a decimal string is
    taken too, as ids and nanoseconds travel as strings."""
    value = body.get(name, 0)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _invalid(f"field {name!r} must be a non-negative integer")
    return value


def str_list_field(body: dict[str, Any], name: str) -> list[str]:
    """An optional list of strings (absent: [])."""
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"field {name!r} must be a list of strings")
    return value
