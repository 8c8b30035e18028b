"""Domain values as JSON: dataclasses become objects, and int64 nanoseconds become strings.

A JS number loses precision past 2**53, so every integer under a key ending in `_ns` travels as
a decimal string (DESIGN §6); everything else keeps its JSON type.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def jsonable(value: Any, key: str = "") -> Any:
    """`value` as JSON-ready data; `key` is the name it is stored under (for the `_ns` rule)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_ns"):
        return str(value)
    return value
