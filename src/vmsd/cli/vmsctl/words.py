"""Daemon error messages in the CLI's words: option names instead of request fields."""

from __future__ import annotations

import re
from collections.abc import Callable

from vmsd.cli.vmsctl.times import format_time


def _days_or_seconds(seconds: str) -> str:
    value = int(seconds)
    return f"{value // 86400} day(s)" if value % 86400 == 0 else f"{value} s"


_NO_TOKEN = "no token given: pass --token or set VMSD_TOKEN"
# The daemon's messages name request fields (the gRPC API's words: `range.end_ns`, metadata); the
# person at the terminal typed options. Fields are renamed where a message starts with one; the
# unambiguous ones (`range.start_ns`, `until_ns`, ...) wherever they appear.
_CLI_WORDS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"range\.(start|end)_ns (-?\d+) is not a time between 2000 and 2100 in nanoseconds since the epoch"),
        lambda m: f"{'--from' if m[1] == 'start' else '--to'} {format_time(int(m[2]))} is not between 2000 and 2100",
    ),
    (re.compile(r"\brange\.start_ns\b"), "--from"),
    (re.compile(r"\brange\.end_ns\b"), "--to"),
    (
        re.compile(r"^range is longer than the maximum of (\d+) s"),
        lambda m: f"--from … --to spans more than the maximum of {_days_or_seconds(m[1])}",
    ),
    (re.compile(r"\(or 0: until released\)"), "(or leave --until out: until released)"),
    (re.compile(r"\bsince_ns\b"), "--since"),
    (re.compile(r"\buntil_ns\b"), "--until"),
    (re.compile(r"^duration_ns\b"), "--duration"),
    (re.compile(r"^case_ref\b"), "--case"),
    (re.compile(r"^(reason|recipient|principal|limit)\b"), r"--\1"),
    (re.compile(r"^camera_ids\[\d+\]"), "camera"),
    (re.compile(r"^camera_ids\b"), "the camera list"),
    (re.compile(r"^camera_id\b"), "camera"),
    (re.compile(r"\bthis principal's scope"), "this token's cameras"),
    (re.compile(r"^(missing|this call needs) 'authorization: Bearer <token>' metadata$"), _NO_TOKEN),
    (
        re.compile(r"^authorization metadata must be 'Bearer <token>'$"),
        "the token is empty: check --token or VMSD_TOKEN",
    ),
]


def cli_words(message: str) -> str:
    """A daemon error message in the CLI's words (option names instead of request fields)."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message
